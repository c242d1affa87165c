"""Atomic file writes: a crash or a kill never leaves a half-written output file."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import lock_descriptor

from wifm_synth.errors import InputError, OutputError
from wifm_synth.formats.inputs import open_input
from wifm_synth.guards import raise_if_interrupted

# mkstemp creates files readable by the owner only; finished outputs get the usual umask-based mode.
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_OUTPUT_MODE = 0o666 & ~_UMASK
# Write failures that are the output's, not the program's: a full disk or quota, a file size limit.
_OUTPUT_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    The temporary name keeps the final suffix (``suffix`` or the target's) so that writers which pick
    a format from the extension (soundfile) see the right one. On any exception it is removed. While it
    is written it is locked (filelock's descriptor lock: flock, or LockFileEx on Windows), so that the next run can tell temporaries that a SIGKILL left behind
    (unlocked) from those of a run still writing (locked), and clear only the former.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise OutputError("output folder does not exist", directory)
    if target.is_dir():
        raise OutputError("is a folder, expected a file name", target)
    temp_suffix = suffix if suffix is not None else target.suffix
    clear_stale_temporaries(directory, target.name, temp_suffix)
    handle, temp = _locked_temporary(target, directory, temp_suffix)  # locked until the handle closes
    try:
        try:
            yield temp
        except OSError as exc:
            if exc.errno not in _OUTPUT_FULL:
                raise
            raise OutputError(f"cannot write ({exc.strerror})", target) from None
        raise_if_interrupted()  # an interrupted run never delivers its output
        os.chmod(temp, _OUTPUT_MODE)
        try:
            os.replace(temp, target)
        except OSError as exc:  # e.g. the target became a folder, or the folder went read-only
            raise OutputError(f"cannot write ({exc.strerror})", target) from None
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    finally:
        os.close(handle)


def _locked_temporary(target: Path, directory: Path, suffix: str) -> tuple[int, Path]:
    """A new temporary for ``target`` in ``directory``, open and locked. Between its creation and its lock
    another run clearing stale temporaries may see it unlocked and remove it; then it is made again."""
    while True:
        try:
            handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=directory)
        except OSError as exc:
            raise OutputError(f"cannot write here ({exc.strerror})", target) from None
        lock_descriptor(handle)  # waits for a clearing run that holds it; then it is gone, and seen below
        if os.fstat(handle).st_nlink > 0:
            return handle, Path(name)
        os.close(handle)


def _temporary_pattern(name: str, suffix: str) -> re.Pattern[str]:
    # mkstemp's names: prefix, 8 characters of [a-z0-9_], suffix
    return re.compile(re.escape(f".{name}.") + r"[a-z0-9_]{8}" + re.escape(suffix) + r"\Z")


def clear_stale_temporaries(directory: Path, name: str, suffix: str) -> None:
    """Remove the temporaries of output ``name`` in ``directory`` that no running writer holds locked:
    what a killed run (SIGKILL, power loss) left behind."""
    _clear_stale_matching(directory, _temporary_pattern(name, suffix))


def _clear_stale_matching(directory: Path, pattern: re.Pattern[str]) -> None:
    try:
        candidates = [entry for entry in os.scandir(directory) if pattern.match(entry.name)]
    except OSError:  # an unreadable folder: atomic_output's own error names it
        return
    for entry in candidates:
        try:
            handle = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if not lock_descriptor(handle, blocking=False):
                continue  # a live writer's
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
        finally:
            os.close(handle)


# Scratch folders in the system's temporary folder: "wifm-<use>-<owner pid>-<8 random characters>".
_SCRATCH_FOLDER = re.compile(r"wifm-[a-z]+-(\d+)-[a-z0-9_]{8}\Z")


@contextlib.contextmanager
def scratch_folder(use: str) -> Iterator[Path]:
    """A private folder in the system's temporary folder (a MIDI render's float audio, say), removed on exit.

    Its name carries this process's id, so that the next run removes those whose process died without
    cleaning up (SIGKILL, the OOM killer, power loss): first thing, it clears them."""
    clear_stale_scratch_folders()
    with tempfile.TemporaryDirectory(prefix=f"wifm-{use}-{os.getpid()}-") as folder:
        yield Path(folder)


def clear_stale_scratch_folders(parent: str | os.PathLike | None = None) -> None:
    """Remove this user's wifm scratch folders in ``parent`` (default: the temporary folder) whose owner
    process is gone. A folder whose pid is alive is kept, even when the pid has been reused since."""
    parent = Path(parent if parent is not None else tempfile.gettempdir())
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return
    for entry in entries:
        match = _SCRATCH_FOLDER.match(entry.name)
        try:
            if match is None or not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid \
                    != os.getuid() or _process_alive(int(match.group(1))):
                continue
        except OSError:
            continue
        shutil.rmtree(entry.path, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process; a pid beyond any: nobody's folder
        return True
    return True


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_output(path) as temp, open(temp, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())


def atomic_write_files(files: dict[Path, bytes]) -> None:
    """Write several files, each atomically, with one pass of syncing: every temporary is written and
    locked first (as ``atomic_output`` does, so a killed run's leftovers are cleared by the next), then all
    are fsynced, then each replaces its target in the order given (the file that references the others
    last). One scan per folder for leftovers instead of one per file. A crash
    leaves each target either old or new, never half-written."""
    by_folder: dict[Path, list[Path]] = {}
    for target in files:
        by_folder.setdefault(target.parent if str(target.parent) else Path("."), []).append(target)
    for directory, targets in by_folder.items():  # one scan of each folder for all its outputs' leftovers
        _clear_stale_matching(directory, re.compile("|".join(
            _temporary_pattern(target.name, target.suffix).pattern for target in targets)))
    written: list[tuple[int, Path, Path]] = []  # (locked handle, temporary, target)
    try:
        for target, data in files.items():
            directory = target.parent if str(target.parent) else Path(".")
            if target.is_dir():
                raise OutputError("is a folder, expected a file name", target)
            handle, temp = _locked_temporary(target, directory, target.suffix)
            written.append((handle, temp, target))
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(handle, view):]
                os.chmod(temp, _OUTPUT_MODE)
            except OSError as exc:
                if exc.errno not in _OUTPUT_FULL:
                    raise
                raise OutputError(f"cannot write ({exc.strerror})", target) from None
        for handle, _, target in written:  # all data first, then all renames: no rename waits for a sync
            try:
                os.fsync(handle)
            except OSError as exc:
                raise OutputError(f"cannot write ({exc.strerror})", target) from None
        raise_if_interrupted()  # an interrupted run never delivers its outputs
        for _, temp, target in written:
            try:
                os.replace(temp, target)
            except OSError as exc:
                raise OutputError(f"cannot write ({exc.strerror})", target) from None
    except BaseException:
        for _, temp, _ in written:
            with contextlib.suppress(OSError):
                temp.unlink()
        raise
    finally:
        for handle, _, _ in written:
            os.close(handle)


def readable_json(document: object) -> str:
    """Indented JSON (2 spaces) with lists of numbers (envelope segments, modulators) kept on one line.

    Built here rather than by ``json.dumps(indent=2)``, whose indenting encoder is pure Python and the
    main cost of writing a bank; the scalars and the one-line lists go through json's C encoder."""
    parts: list[str] = []
    _append_readable(document, "", parts)
    parts.append("\n")
    return "".join(parts)


_ONE_LINE = (int, float, bool, type(None))
_ENCODE_STRING = json.encoder.encode_basestring_ascii  # what json.dumps uses for strings (ensure_ascii)
_ENCODE_ONE_LINE = json.JSONEncoder(allow_nan=False).encode  # C encoder, separators ", "


def _scalar(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"Out of range float values are not JSON compliant: {value!r}")
        return float.__repr__(value)
    if isinstance(value, str):
        return _ENCODE_STRING(value)
    return json.dumps(value, allow_nan=False)  # anything else: json's own answer (empty containers, errors)


def _append_readable(value: object, indent: str, parts: list[str]) -> None:
    inner = indent + "  "
    if isinstance(value, dict) and value:
        parts.append("{")
        for index, (key, item) in enumerate(value.items()):
            parts.append(("\n" if index == 0 else ",\n") + inner + _ENCODE_STRING(str(key)) + ": ")
            _append_readable(item, inner, parts)
        parts.append("\n" + indent + "}")
    elif isinstance(value, (list, tuple)) and value:
        if all(isinstance(item, _ONE_LINE) for item in value):
            parts.append(_ENCODE_ONE_LINE(value))
            return
        parts.append("[")
        for index, item in enumerate(value):
            parts.append(("\n" if index == 0 else ",\n") + inner)
            _append_readable(item, inner, parts)
        parts.append("\n" + indent + "]")
    else:
        parts.append(_scalar(value))


def atomic_write_json(path: str | os.PathLike, document: object) -> None:
    atomic_write_bytes(path, readable_json(document).encode())


def atomic_write_with(path: str | os.PathLike, writer: Callable[[Path], None]) -> None:
    """Call ``writer(temp_path)`` and move the result into place only if it succeeds."""
    with atomic_output(path) as temp:
        writer(temp)


def read_json(path: str | os.PathLike) -> object:
    """Read a JSON document; a missing or malformed file is an InputError naming it."""
    with open_input(path, "a JSON file") as stream:
        raw = stream.read()
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError("not a JSON file (not UTF-8 text)", path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", path) from None
    except RecursionError:
        raise InputError("not a usable JSON file (nested too deeply)", path) from None
    except ValueError:  # the one other failure of json.loads: an integer of more digits than Python converts
        raise InputError("not a usable JSON file (an integer of thousands of digits)", path) from None


def source_reference(sample: str | os.PathLike, output: str | os.PathLike) -> str:
    """How a file written at ``output`` names the ``sample`` it came from: relative to ``output``'s folder,
    so that they can move together, or absolute when they share no folder but the root."""
    sample, folder = Path(sample).resolve(), Path(output).parent.resolve()
    shares_folder = os.path.commonpath([sample, folder]) != sample.anchor
    return os.path.relpath(sample, folder) if shares_folder else str(sample)
