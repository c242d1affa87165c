"""Guards the CLI applies before any work: no command may write over a file it reads.

A render or report whose ``-o`` names its own patch, bank, bank patch, MIDI file or source sample
would replace that input with its output; the check compares files (device and inode), not spellings,
so ``./p.json``, a symlink or a hard link to the input are refused alike.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from wifm_synth.errors import WifmError

# Bank and patch files are small; a larger one is not ours and is left to its reader to refuse.
_MAX_PEEK_BYTES = 16 * 1024 * 1024


def _same_file(first: Path, second: Path) -> bool:
    try:
        return os.path.samefile(first, second)
    except (OSError, ValueError):  # a missing file is nobody's input; ValueError: NUL in the name
        return False


def _peek_json(path: Path) -> object:
    """``path``'s JSON document, or None when it is not a small readable regular JSON file."""
    try:
        if not path.is_file() or path.stat().st_size > _MAX_PEEK_BYTES:
            return None
        return json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError):  # the real reader reports these, one line each
        return None


def _patch_source(patch_path: Path, document: object) -> list[Path]:
    """The source sample named by a patch's metadata (as the report looks for it), if any."""
    metadata = document.get("metadata") if isinstance(document, dict) else None
    source = metadata.get("source") if isinstance(metadata, dict) else None
    if not isinstance(source, str) or not source or "\0" in source:
        return []
    return [Path(source) if Path(source).is_absolute() else patch_path.parent / source]


def instrument_files(instrument: Path, with_sources: bool = False) -> list[Path]:
    """Every file reading ``instrument`` opens: the patch or bank, a bank's patch files, and with
    ``with_sources`` (the report) their source samples."""
    files = [instrument]
    document = _peek_json(instrument)
    patch_files = [(instrument, document)]
    if isinstance(document, dict) and isinstance(document.get("programs"), list):
        patch_files = []
        for program in document["programs"]:
            zones = program.get("zones") if isinstance(program, dict) else None
            for zone in zones if isinstance(zones, list) else []:
                relative = zone.get("patch") if isinstance(zone, dict) else None
                if isinstance(relative, str) and relative and "\0" not in relative:
                    patch_path = instrument.parent / relative
                    files.append(patch_path)
                    patch_files.append((patch_path, _peek_json(patch_path) if with_sources else None))
    if with_sources:
        for patch_path, patch_document in patch_files:
            files.extend(_patch_source(patch_path, patch_document))
    return files


def refuse_overwriting_inputs(output: Path, inputs: Iterable[Path]) -> None:
    """Raise a one-line WifmError when ``output`` is the same file as any of ``inputs``."""
    for path in inputs:
        if _same_file(output, path):
            what = "the input" if path == output else f"input {path}"
            raise WifmError(f"the output would overwrite {what}; choose another -o", output)


def refuse_overwriting_command_inputs(command: str, args: object) -> None:
    """The check for one parsed ``wifm`` command line (argparse namespace) before it starts."""
    output = getattr(args, "output", None)
    if output is None:
        return
    if command == "render":
        inputs = instrument_files(args.instrument)
        if getattr(args, "midi", None) is not None:
            inputs.append(args.midi)
    elif command == "report":
        inputs = instrument_files(args.instrument, with_sources=True)
    elif command == "fit":
        inputs = [args.input]
    else:
        return
    refuse_overwriting_inputs(output, inputs)


class Terminated(KeyboardInterrupt):  # an interruption, handled like Ctrl-C
    """SIGTERM turned into an exception, so that every cleanup (temporary outputs, worker pools) runs
    as it does for Ctrl-C instead of the process vanishing with its temporary files."""


# The signals received so far (SIGINT, SIGTERM). A KeyboardInterrupt that lands inside Numba's compiler or
# a compiled function can come out as another exception (a SystemError, a RuntimeError about a library with
# no compiled object), or be swallowed by C code that clears errors (a dict lookup calling a Python __eq__);
# the command still ends as interrupted, because this says it was (see raise_if_interrupted).
received_interruptions: list[int] = []

_REDELIVERY_DELAY_S = 0.01


def _interruption(signal_number: int) -> KeyboardInterrupt:
    import signal

    return Terminated(signal_number) if signal_number == signal.SIGTERM else KeyboardInterrupt()


def _redeliver_soon(signal_number: int) -> None:
    """The signal again, from another thread a moment later, so that it lands in the main thread's code."""
    import _thread
    import threading

    redelivery = threading.Timer(_REDELIVERY_DELAY_S, _thread.interrupt_main, args=(signal_number,))
    redelivery.daemon = True
    redelivery.start()


def _llvmlite_folder() -> str | None:
    module = sys.modules.get("llvmlite")
    file = getattr(module, "__file__", None)
    return os.path.dirname(file) + os.sep if file else None


def _inside_llvmlite(frame: object) -> bool:
    """Whether the main thread is in llvmlite's Python layer, which pairs each LLVM pointer with ownership
    flags in two steps (a C call, then ``module._owned = True``, or ``del _as_parameter_``, then ``_closed``):
    an exception between them makes the object free its memory twice later, a segmentation fault (shown
    with a KeyboardInterrupt forced after ``ExecutionEngine.add_module``'s C call)."""
    folder = _llvmlite_folder()
    while folder is not None and frame is not None:
        if frame.f_code.co_filename.startswith(folder):
            return True
        frame = frame.f_back
    return False


def _raise_interrupted(signal_number: int, frame: object) -> None:
    if signal_number not in received_interruptions:
        received_interruptions.append(signal_number)
    if _inside_llvmlite(frame):
        _redeliver_soon(signal_number)  # outside llvmlite's bookkeeping, a few milliseconds later
        return
    raise _interruption(signal_number)


def raise_if_interrupted() -> None:
    """Stop here if an interruption was received but lost on its way (see received_interruptions): the
    checkpoints of long loops and the last step before an output is delivered call this."""
    if received_interruptions:
        raise _interruption(received_interruptions[-1])


def _raise_again_where_it_counts(unraisable) -> None:
    """sys.unraisablehook: an interruption raised where Python can only ignore it (a weakref callback of the
    import system, a __del__) would be lost, and the command would run on to the end; it is delivered again
    to the main thread, where it stops the command. After an interruption, other failures of finalizers are
    objects it left half-built: the command is ending, and they are not shown."""
    if received_interruptions:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            _redeliver_soon(received_interruptions[-1])
        return
    sys.__unraisablehook__(unraisable)


def _print_unless_interrupted(exc_type, exc_value, exc_traceback) -> None:
    """sys.excepthook: C code that meets an error while importing prints it with PyErr_Print (numpy's
    ``import_array()``, run by every extension module built on numpy's C API when it loads, then raises an
    ImportError); an interruption landing there is the user's Ctrl-C, not a failure, and is not shown."""
    if received_interruptions and issubclass(exc_type, KeyboardInterrupt):
        return
    sys.__excepthook__(exc_type, exc_value, exc_traceback)


def install_interruption_handlers() -> None:
    """Ctrl-C and SIGTERM raise (and are recorded); a SIGINT the caller ignores (a background job) stays
    ignored."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _raise_interrupted)
    signal.signal(signal.SIGTERM, _raise_interrupted)
    sys.unraisablehook = _raise_again_where_it_counts
    sys.excepthook = _print_unless_interrupted


def before_command(args: object) -> None:
    """What every ``wifm`` command does before its work: the overwrite check."""
    refuse_overwriting_command_inputs(args.command, args)
