"""Error hierarchy. Every user-facing failure is a WifmError whose str() is one line.

The CLI prints ``wifm: error: <message>`` and exits with status 2; messages name the file (and the
field, for patches) first, e.g. ``piano.wav: no pitch found (unpitched or noise)``.
"""

from __future__ import annotations

import os


class WifmError(Exception):
    """Base class: a problem with the user's input or environment, reported without a traceback."""

    exit_status = 2

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        self.path = os.fspath(path) if path is not None else None
        self.reason = " ".join(str(message).split())  # keep it on one line
        super().__init__(f"{self.path}: {self.reason}" if self.path else self.reason)


class InputError(WifmError):
    """An input file (audio, MIDI, SFZ, folder) is missing, unreadable or unusable."""


class AnalysisError(InputError):
    """The audio loaded but cannot be analysed (silence, too short, unpitched, NaN samples)."""


class NoPitchError(AnalysisError):
    """The audio has no clear pitch (noise, a drum hit): a pitched fit is impossible, an unpitched one is not."""


class PatchError(WifmError):
    """A patch or bank file is malformed or has a field out of range (message names the field path)."""


class MidiFileError(InputError):
    """A MIDI file is truncated or malformed."""


class DeviceError(WifmError):
    """No usable audio device or MIDI port."""


class OutputError(WifmError):
    """The output location cannot be written."""
