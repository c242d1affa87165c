"""Atomic file writes: a crash or a kill never leaves a half-written output file."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from wifm_synth.errors import InputError, OutputError
from wifm_synth.formats.inputs import open_input

# mkstemp creates files readable by the owner only; finished outputs get the usual umask-based mode.
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_OUTPUT_MODE = 0o666 & ~_UMASK


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    The temporary name keeps the final suffix (``suffix`` or the target's) so that writers which pick
    a format from the extension (soundfile) see the right one. On any exception it is removed.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise OutputError("output folder does not exist", directory)
    if target.is_dir():
        raise OutputError("is a folder, expected a file name", target)
    try:
        handle, temp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=suffix if suffix is not None else target.suffix, dir=directory
        )
    except OSError as exc:
        raise OutputError(f"cannot write here ({exc.strerror})", target) from None
    os.close(handle)
    temp = Path(temp_name)
    try:
        yield temp
        os.chmod(temp, _OUTPUT_MODE)
        try:
            os.replace(temp, target)
        except OSError as exc:  # e.g. the target became a folder, or the folder went read-only
            raise OutputError(f"cannot write ({exc.strerror})", target) from None
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_output(path) as temp, open(temp, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())


_INNERMOST_NUMERIC_LIST = re.compile(r'\[\s+([^\[\]{}"]*?)\s+\]')


def readable_json(document: object) -> str:
    """Indented JSON with lists of numbers (envelope segments, modulators) kept on one line."""
    text = json.dumps(document, indent=2, allow_nan=False)
    return _INNERMOST_NUMERIC_LIST.sub(lambda match: "[" + re.sub(r",\s+", ", ", match.group(1)) + "]", text) + "\n"


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


def source_reference(sample: str | os.PathLike, output: str | os.PathLike) -> str:
    """How a file written at ``output`` names the ``sample`` it came from: relative to ``output``'s folder,
    so that they can move together, or absolute when they share no folder but the root."""
    sample, folder = Path(sample).resolve(), Path(output).parent.resolve()
    shares_folder = os.path.commonpath([sample, folder]) != sample.anchor
    return os.path.relpath(sample, folder) if shares_folder else str(sample)
