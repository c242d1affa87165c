"""Writing rendered audio in the format the output's extension names, atomically (nothing half-written).

``wifm render`` writes WAV, FLAC, Ogg Vorbis or AIFF (chosen by the extension, overridable with
``--format``/``--subtype``), or a WAV stream to stdout for ``-o -``. Levels are set here too: a gain in
dB or a normalisation of the peak, then the safety stage (``engine/safety.py``): samples above −1 dBFS
are soft-limited so no file holds a sample beyond full scale, whatever its subtype.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from wifm_synth.engine.safety import (
    UNBOUNDED_PEAK_CENTI_DBFS,
    centi_dbfs,
    limit_frames,
    limiting_notice,
    soft_limit,
)
from wifm_synth.errors import OutputError
from wifm_synth.formats.atomic import atomic_output, scratch_folder
from wifm_synth.guards import raise_if_interrupted

WAV_SUBTYPE = "PCM_24"  # rendered audio: 24-bit PCM, which every player reads
STDOUT = "-"  # ``-o -``: the audio goes to standard output
FORMAT_OF_EXTENSION = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".aiff": "AIFF", ".aif": "AIFF"}
DEFAULT_SUBTYPE = {"WAV": WAV_SUBTYPE, "FLAC": "PCM_24", "OGG": "VORBIS", "AIFF": "PCM_24"}
COPY_FRAMES = 1 << 16  # frames per read when converting a finished render into the output format


@dataclass(frozen=True)
class AudioFormat:
    """A soundfile container (``WAV``, ``FLAC``, ``OGG``, ``AIFF``, …) and its sample encoding."""

    container: str
    subtype: str

    @property
    def extension(self) -> str:
        return {"OGG": ".ogg", "FLAC": ".flac", "AIFF": ".aiff"}.get(self.container, ".wav")


def output_format(path: str | os.PathLike, container: str | None = None, subtype: str | None = None) -> AudioFormat:
    """The format to write ``path`` in: ``container``/``subtype`` if given, else from the extension."""
    if container is None:
        if os.fspath(path) == STDOUT:
            container = "WAV"  # the one format every reader of a pipe understands
        else:
            container = FORMAT_OF_EXTENSION.get(Path(path).suffix.lower())
            if container is None:
                known = ", ".join(sorted(set(FORMAT_OF_EXTENSION)))
                raise OutputError(f"unknown audio extension {Path(path).suffix or '(none)'!r}; use one of "
                                  f"{known} or --format", path)
    container = container.upper()
    if container not in soundfile.available_formats():
        raise OutputError(f"unknown --format {container}; try WAV, FLAC, OGG or AIFF", path)
    subtype = (subtype or DEFAULT_SUBTYPE.get(container) or soundfile.default_subtype(container)).upper()
    if not soundfile.check_format(container, subtype):
        choices = ", ".join(soundfile.available_subtypes(container))
        raise OutputError(f"{container} cannot hold --subtype {subtype} (it takes {choices})", path)
    return AudioFormat(container, subtype)


def level_gain(peak: float, gain_db: float = 0.0, normalize_dbfs: float | None = None) -> float:
    """Linear gain: ``gain_db``, or (with ``normalize_dbfs``) the gain that puts ``peak`` at that level."""
    if normalize_dbfs is not None:
        if peak <= 0:
            return 1.0
        target = 10 ** (normalize_dbfs / 20)
        gain = target / peak
        while peak * gain > target:  # one rounding up would put the peak a hair above the level asked for
            gain = float(np.nextafter(gain, 0.0))
        return gain
    return 10 ** (gain_db / 20)


def peak_dbfs(peak: float) -> float | None:
    return round(20 * math.log10(peak), 2) if peak > 0 else None


@contextlib.contextmanager
def delivered(path: str | os.PathLike, audio_format: AudioFormat) -> Iterator[Path]:
    """Yield a temporary file path to write; on success it becomes ``path`` (or goes to stdout for ``-``)."""
    if os.fspath(path) != STDOUT:
        with atomic_output(path) as temp:
            yield temp
        return
    with scratch_folder("stdout") as folder:
        temp = folder / f"audio{audio_format.extension}"
        yield temp
        raise_if_interrupted()
        with open(temp, "rb") as stream:
            shutil.copyfileobj(stream, sys.stdout.buffer)
        sys.stdout.buffer.flush()


@contextlib.contextmanager
def _writing(path: Path, target: str | os.PathLike, sample_rate: int, channels: int,
             audio_format: AudioFormat) -> Iterator[soundfile.SoundFile]:
    """The sound file at ``path`` open for writing; a failure to open, write or close it (a full disk, say)
    is one OutputError naming ``target``."""
    try:
        with soundfile.SoundFile(path, "w", samplerate=sample_rate, channels=channels,
                                 format=audio_format.container, subtype=audio_format.subtype) as sound:
            yield sound
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        raise OutputError(f"cannot write {audio_format.container} ({sound_write_failure(exc, path)})",
                          target) from None


# Below this much free space a failed sound-file write is a full disk: libsndfile reports it only as
# "System error." (it keeps no errno), which tells the user nothing.
_FULL_DISK_BYTES = 1 << 20


def sound_write_failure(exc: Exception, path: Path) -> str:
    """Why writing the sound file ``path`` failed, in words: a full disk named as such."""
    try:
        space = os.statvfs(path.parent)
    except (OSError, AttributeError):  # no statvfs on Windows
        return str(exc)
    if space.f_bavail * space.f_frsize < _FULL_DISK_BYTES:
        return f"no space left on device, writing in {path.parent}"
    return str(exc)


@dataclass
class OutputLevel:
    """What went into a written file: its peak after gain, before the safety stage, and what that stage did."""

    peak: float = 0.0
    limited_samples: int = 0

    @property
    def written_peak(self) -> float:
        """The file's peak: ``peak`` after the safety stage."""
        return abs(float(soft_limit(self.peak)))

    def notice(self, target: str | os.PathLike) -> str | None:
        """The notice line when the safety stage changed samples, else None."""
        if not self.limited_samples:
            return None
        peak_centi_dbfs = centi_dbfs(self.peak) if self.peak > 0 else UNBOUNDED_PEAK_CENTI_DBFS
        return f"{Path(target).name}: {limiting_notice(self.limited_samples, peak_centi_dbfs)}"


def _levelled(audio: np.ndarray, gain: float, level: OutputLevel) -> np.ndarray:
    """``audio`` times ``gain`` through the safety stage, as a new array; adds to ``level``."""
    levelled = np.multiply(audio, gain, dtype=np.float64)  # × 1.0 is exact: unity gain changes nothing
    changed, peak = limit_frames(levelled.reshape(len(levelled), -1))
    if levelled.size:
        level.peak = max(level.peak, peak if changed else float(np.max(np.abs(levelled))))
    level.limited_samples += changed
    return levelled


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int,
                audio_format: AudioFormat | None = None, gain: float = 1.0) -> OutputLevel:
    """Write mono (n,) or multi-channel (n, channels) audio times ``gain``, through the safety stage."""
    audio_format = audio_format or output_format(path)
    audio = np.asarray(audio, dtype=np.float64)
    channels = 1 if audio.ndim == 1 else audio.shape[1]
    level = OutputLevel()
    with delivered(path, audio_format) as temp, _writing(temp, path, sample_rate, channels, audio_format) as sound:
        sound.write(_levelled(audio, gain, level))
    return level


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> OutputLevel:
    """Write 24-bit WAV whatever the extension."""
    return write_audio(path, audio, sample_rate, AudioFormat("WAV", WAV_SUBTYPE))


def convert_render(source: Path, path: str | os.PathLike, audio_format: AudioFormat, gain: float) -> OutputLevel:
    """Copy a finished float render into ``path`` in ``audio_format``, times ``gain``, a slice at a time."""
    level = OutputLevel()
    with soundfile.SoundFile(source) as rendered, delivered(path, audio_format) as temp, \
            _writing(temp, path, rendered.samplerate, rendered.channels, audio_format) as sound:
        for block in rendered.blocks(COPY_FRAMES, dtype="float64", always_2d=True):
            sound.write(_levelled(block, gain, level))
    return level
