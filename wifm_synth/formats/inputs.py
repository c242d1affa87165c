"""Opening input files: one check of the path (missing, folder, not a regular file, unreadable) for every reader,
and which file a patch-or-bank argument means (``instrument_path``)."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from wifm_synth.errors import InputError, WifmError


@contextlib.contextmanager
def open_input(path: str | os.PathLike, kind: str, error: type[InputError] = InputError) -> Iterator[BinaryIO]:
    """``path`` open for binary reading, or ``error(reason, path)`` when it is missing, a folder, not a
    regular file (a device or pipe would block or never end) or unreadable, also part way through.
    ``kind`` names what was expected, e.g. "a JSON file"; each reader adds only its format's errors."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise error("no such file", path) from None
    except OSError as exc:
        raise error(_unreadable(exc), path) from None
    if stat.S_ISDIR(mode):
        raise error(f"is a folder, expected {kind}", path)
    if not stat.S_ISREG(mode):
        raise error(f"is not a regular file, expected {kind}", path)
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed below, after the caller's block
    except OSError as exc:
        raise error(_unreadable(exc), path) from None
    with stream:
        try:
            yield stream
        except OSError as exc:  # the caller's format errors are not OSErrors: this one is the file's
            raise error(_unreadable(exc), path) from None


def _unreadable(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    return f"cannot read file ({exc.strerror or exc})"


def is_existing_file(path: str | os.PathLike) -> bool:
    """``Path.is_file`` that answers False, not raises, for names the system cannot look up: a name longer
    than 255 bytes (ENAMETOOLONG), a NUL byte, a permission problem on the way."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3"}


def instrument_path(path: Path) -> Path:
    """The patch or bank file meant by ``path``: a bank folder means its ``bank.json``. Samples and SFZ
    files, given where a patch is expected, get a hint at the command that turns them into one."""
    if path.is_dir():
        if (path / "bank.json").is_file():
            return path / "bank.json"
        raise WifmError("is a folder without a bank.json; to make a bank from its samples: wifm bank", path)
    suffix = path.suffix.lower()
    if suffix in AUDIO_EXTENSIONS:
        raise WifmError("is an audio sample, not a patch; did you mean wifm fit (one patch) or wifm bank?", path)
    if suffix == ".sfz":
        raise WifmError("is an SFZ instrument, not a patch bank; did you mean wifm bank?", path)
    return path
