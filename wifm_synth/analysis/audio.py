"""Loading and validating audio: any soundfile format and rate, mixed to mono, resampled with soxr."""

from __future__ import annotations

import os

import numpy as np
import soundfile
import soxr

from wifm_synth.checks import integer_in
from wifm_synth.errors import AnalysisError, InputError
from wifm_synth.formats.inputs import open_input

MIN_DURATION_S = 0.05


def load_audio(path: str | os.PathLike, sample_rate: int = 48000,
               frames: tuple[int, int | None] | None = None,
               warnings: list[str] | None = None) -> tuple[np.ndarray, int]:
    """Read ``path`` (WAV/FLAC/AIFF/OGG...), mix to mono and resample to ``sample_rate``.

    ``frames`` = (first, stop) reads only the file's frames first..stop-1 (stop None: to the end; a stop
    past the end reads to the end), as an SFZ region's ``offset``/``end`` play only part of a sample.
    Only the first ANALYSED_SECONDS from ``first`` are read (and resampled): the note, not what follows;
    when more is left unread, a warning saying so is appended to ``warnings``.

    Returns ``(audio, sample_rate)`` with ``audio`` a 1-D float64 array. Raises InputError when the file
    is missing, a folder, unreadable or not audio, and AnalysisError when it is empty, silent, too short or
    holds NaN/inf samples.
    """
    _check_sample_rate(sample_rate, path)
    with open_input(path, "an audio file") as stream:
        try:
            start, stop = frames if frames is not None else (0, None)
            info = soundfile.info(stream)
            _refuse_overlong(info, start, stop, path)
            stop = _analysed_stop(info, start, stop, warnings)
            stream.seek(0)
            samples, file_rate = soundfile.read(stream, dtype="float64", always_2d=True, start=start, stop=stop)
        except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
            raise InputError(f"not a readable audio file ({_first_line(exc)})", path) from exc
    return prepare_audio(samples, file_rate, sample_rate, source=path), sample_rate


def prepare_audio(
    samples: np.ndarray, rate: int, sample_rate: int = 48000, *, source: str | os.PathLike = "<audio>"
) -> np.ndarray:
    """Validate samples (frames, or frames × channels), mix to mono and resample to ``sample_rate``.

    Float samples are taken as they are (full scale ±1); integer PCM is scaled to ±1.
    """
    _check_sample_rate(sample_rate, source)
    _check_sample_rate(rate, source)
    samples = np.asarray(samples)
    if samples.ndim not in (1, 2) or not np.issubdtype(samples.dtype, np.number):
        raise InputError("audio must be a 1-D (mono) or 2-D (frames × channels) numeric array", source)
    if samples.size == 0:
        raise AnalysisError("contains no audio samples", source)
    if not np.all(np.isfinite(samples)):
        raise AnalysisError("contains NaN or infinite samples", source)
    full_scale = -float(np.iinfo(samples.dtype).min) if np.issubdtype(samples.dtype, np.integer) else 1.0
    mono = _within_analysable_range(samples.astype(np.float64) / full_scale)
    if mono.ndim == 2:
        mono = mono.mean(axis=1)
    duration_s = mono.size / rate
    if duration_s < MIN_DURATION_S:
        raise AnalysisError(
            f"too short ({duration_s * 1000:.1f} ms; at least {MIN_DURATION_S * 1000:.0f} ms needed)", source
        )
    if not np.any(mono):
        raise AnalysisError("is digital silence (all samples are zero)", source)
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float64)


# Float files may hold any finite value: peaks beyond full scale (up to 1e308) overflow the analysis's
# sums and squares, subnormal ones (1e-310) underflow to zero in them. Such audio is scaled to full scale
# first; audio within [ANALYSABLE_PEAK_FLOOR, ANALYSABLE_PEAK_CEILING] keeps its level (float files may
# legitimately peak a little above full scale), which the fitted patch reproduces.
ANALYSABLE_PEAK_FLOOR = 1e-150  # squares of smaller values underflow; a quiet render (1e-9) keeps its level
ANALYSABLE_PEAK_CEILING = 1e6  # +120 dBFS: no recording, only a scaling gone wrong


def _within_analysable_range(samples: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(samples)))
    if peak > ANALYSABLE_PEAK_CEILING or 0.0 < peak < ANALYSABLE_PEAK_FLOOR:
        return samples / peak if np.isfinite(1.0 / peak) else (samples * 2.0**1000) / (peak * 2.0**1000)
    return samples


MAX_SAMPLE_SECONDS = 600.0  # ten minutes: a note, not a song; longer files are refused
# Of a longer sample only its first minute is read and analysed, which bounds the memory a fit, its
# verification and a report need whatever the file's length. A minute holds the longest natural decays
# (a low piano string fades in well under a minute); what a sustained note does after it, its
# envelope's last segment carries on. A release after the first minute is not measured.
ANALYSED_SECONDS = 60.0


def _refuse_overlong(info, start: int, stop: int | None, path: str | os.PathLike) -> None:
    """Refuse before reading: a header may claim any length (2^36 frames in a 100-byte FLAC), and reading
    allocates what it claims."""
    claimed = (min(stop, info.frames) if stop is not None else info.frames) - start
    if info.samplerate > 0 and claimed / info.samplerate > MAX_SAMPLE_SECONDS:
        raise AnalysisError(f"lasts {claimed / info.samplerate:.0f} s (by its header), longer than the "
                            f"{MAX_SAMPLE_SECONDS:.0f} s a sample may", path)


def _analysed_stop(info, start: int, stop: int | None, warnings: list[str] | None) -> int | None:
    """``stop``, moved in to ANALYSED_SECONDS after ``start`` when the file (or part) lasts longer."""
    if info.samplerate <= 0:
        return stop  # soundfile's read refuses it
    end = min(stop, info.frames) if stop is not None else info.frames
    bound = start + int(ANALYSED_SECONDS * info.samplerate)
    if end <= bound:
        return stop
    if warnings is not None:
        warnings.append(f"lasts {(end - start) / info.samplerate:.1f} s; only its first {ANALYSED_SECONDS:g} s "
                        f"are analysed and fitted")
    return bound


def _check_sample_rate(rate: object, source: str | os.PathLike) -> None:
    integer_in(rate, "sample rate", 1000, 768000, unit=" Hz", path=source)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
