"""Fit-quality metrics the fitter does not optimise, and the two reference renders.

All level comparisons are in dB relative to the *target's* peak, so a render that is too loud or
too quiet is penalised; values are clamped to a floor so silence compares as finite numbers. Both
analyses must be onset-aligned (frame 0 at each note's onset), as analyze() produces them.

- floor: a sine at f0 carrying the target's RMS envelope. A fit that loses to it is not a fit.
- limit: the target resynthesised from its own measured partials (amplitude, frequency and phase of
  each partial per frame, overlap-added): the best any purely harmonic model could do.
"""

from __future__ import annotations

import numpy as np
import scipy.signal

from wifm_synth.analysis.envelope import level_db
from wifm_synth.analysis.sample import SampleAnalysis
from wifm_synth.checks import integer_in
from wifm_synth.errors import InputError

STFT_SIZES = (256, 512, 1024, 2048, 4096)
STFT_FLOOR_DB = -80.0
# Harmonic and envelope errors count frames (and partials) where the target is within this of its peak;
# the render is clamped LEVEL_CLAMP_DB below that, so a missing partial costs a bounded amount.
LEVEL_THRESHOLD_DB = -60.0
LEVEL_CLAMP_DB = -20.0
# Partials this far below the loudest are left out of the resynthesis (inaudible, and costly for basses).
RESYNTHESIS_FLOOR_DB = -90.0


def multires_log_stft_distance_db(
    target: np.ndarray,
    rendered: np.ndarray,
    rate: int,
    *,
    fft_sizes: tuple[int, ...] = STFT_SIZES,
    floor_db: float = STFT_FLOOR_DB,
) -> float:
    """Mean |dB difference| of Hann STFT magnitudes, averaged over FFT sizes (hop = size/4).

    Both spectrograms are in dB re the target's peak bin at that size, clamped at ``floor_db``; bins
    where both are at the floor are left out so long silences do not dilute the score. The shorter
    signal is zero-padded to the longer one.
    """
    target = _checked_signal(target, "target")
    rendered = _checked_signal(rendered, "rendered")
    integer_in(rate, "sample rate", 1, unit=" Hz")
    # every size sees the same padded signals: at least one window of the largest size
    length = max(target.size, rendered.size, max(fft_sizes))
    target = np.pad(target, (0, length - target.size))
    rendered = np.pad(rendered, (0, length - rendered.size))
    distances = []
    for size in fft_sizes:
        total, count = 0.0, 0
        for difference, audible in _block_differences(target, rendered, size, floor_db):
            total += float(difference[audible].sum())
            count += int(np.count_nonzero(audible))
        distances.append(total / count if count else 0.0)
    return float(np.mean(distances))


class LogSpectrogramTarget:
    """The target's side of ``multires_log_stft_distance_db``, computed once, to score many renders of one
    note cheaply (the fitter's polish). ``distance_db(rendered)`` is that distance for ``rendered`` cut or
    zero-padded to the target's length. Holds every spectrogram whole (≈ 100 floats per sample at the
    default sizes): meant for a few seconds of audio, not a long sample."""

    def __init__(self, target: np.ndarray, rate: int, *, fft_sizes: tuple[int, ...] = STFT_SIZES,
                 floor_db: float = STFT_FLOOR_DB):
        target = _checked_signal(target, "target")
        integer_in(rate, "sample rate", 1, unit=" Hz")
        self.length = target.size
        self._padded_length = max(target.size, max(fft_sizes))
        self._floor_db = floor_db
        padded = np.pad(target, (0, self._padded_length - target.size))
        self._sizes = []
        for size in fft_sizes:
            frames = _stft_frames(padded, size)
            reference = float(np.abs(_spectra(frames, size, 0, None)).max())
            self._sizes.append((size, reference, _clamped_db(frames, size, 0, None, reference, floor_db)))

    def distance_db(self, rendered: np.ndarray) -> float:
        rendered = np.asarray(rendered, dtype=np.float64)[:self.length]
        rendered = np.pad(rendered, (0, self._padded_length - rendered.size))
        distances = []
        for size, reference, target_db in self._sizes:
            rendered_db = _clamped_db(_stft_frames(rendered, size), size, 0, None, reference, self._floor_db)
            difference, audible = _compared(target_db, rendered_db, self._floor_db)
            count = int(np.count_nonzero(audible))
            distances.append(float(difference[audible].sum()) / count if count else 0.0)
        return float(np.mean(distances))


def log_stft_differences(target: np.ndarray, rendered: np.ndarray, rate: int, size: int, *,
                         floor_db: float = STFT_FLOOR_DB):
    """One FFT size of ``multires_log_stft_distance_db``, per bin: (frequencies Hz, frame times s,
    |dB difference| (F, T), audible mask (F, T)) — for finding where a distance comes from."""
    target = _checked_signal(target, "target")
    rendered = _checked_signal(rendered, "rendered")
    integer_in(rate, "sample rate", 1, unit=" Hz")
    length = max(target.size, rendered.size, size)  # at least one window of this size
    target = np.pad(target, (0, length - target.size))
    rendered = np.pad(rendered, (0, length - rendered.size))
    blocks = list(_block_differences(target, rendered, size, floor_db))
    difference = np.concatenate([block for block, _ in blocks]).T
    audible = np.concatenate([block for _, block in blocks]).T
    times = np.arange(difference.shape[1]) * (size // 4) / rate
    return np.fft.rfftfreq(size, 1.0 / rate), times, difference, audible


# Spectra are made and compared a block of frames at a time: a minute of audio at 48 kHz is 5.8 M complex
# bins per signal and FFT size, hundreds of MB when held whole.
_FRAMES_PER_BLOCK = 512


def _block_differences(target: np.ndarray, rendered: np.ndarray, size: int, floor_db: float):
    """Per block of frames: |dB difference| (frames, bins) of the two Hann STFTs, in dB re the target's
    peak bin, clamped at ``floor_db``, and the mask of bins where either is above the floor."""
    target_frames, rendered_frames = _stft_frames(target, size), _stft_frames(rendered, size)
    reference = max(float(np.abs(_spectra(target_frames, size, start)).max())
                    for start in range(0, len(target_frames), _FRAMES_PER_BLOCK))
    for start in range(0, len(target_frames), _FRAMES_PER_BLOCK):
        yield _compared(_clamped_db(target_frames, size, start, _FRAMES_PER_BLOCK, reference, floor_db),
                        _clamped_db(rendered_frames, size, start, _FRAMES_PER_BLOCK, reference, floor_db), floor_db)


def _clamped_db(frames: np.ndarray, size: int, start: int, count: int | None, reference: float,
                floor_db: float) -> np.ndarray:
    """Levels (dB re ``reference``, clamped at ``floor_db``) of the spectra of ``count`` frames from ``start``."""
    return np.maximum(level_db(np.abs(_spectra(frames, size, start, count)), reference), floor_db)


def _compared(target_db: np.ndarray, rendered_db: np.ndarray, floor_db: float) -> tuple[np.ndarray, np.ndarray]:
    """|dB difference| of two clamped spectrograms and the mask of bins where either is above the floor."""
    return np.abs(target_db - rendered_db), (target_db > floor_db) | (rendered_db > floor_db)


def _stft_frames(signal: np.ndarray, size: int) -> np.ndarray:
    """The frames of scipy.signal.stft(signal, nperseg=size, noverlap=size - size // 4) (zero boundaries of
    size // 2, zero padding to whole hops), as a strided view."""
    hop = size // 4
    padded = np.pad(signal, (size // 2, size // 2))
    padded = np.pad(padded, (0, (-(padded.size - size) % hop) % size))
    return np.lib.stride_tricks.sliding_window_view(padded, size)[::hop]


def _spectra(frames: np.ndarray, size: int, start: int, count: int | None = _FRAMES_PER_BLOCK) -> np.ndarray:
    """Hann-windowed spectra of ``count`` frames from ``start`` (a block; None: to the end); unscaled, as every
    level is relative to a peak."""
    stop = None if count is None else start + count
    return np.fft.rfft(frames[start:stop] * scipy.signal.get_window("hann", size), axis=1)


def harmonic_level_error_db(
    target: SampleAnalysis, rendered: SampleAnalysis, *, threshold_db: float = LEVEL_THRESHOLD_DB
) -> float:
    """Mean |dB difference| of partial k's amplitude over frames × partials where the target's is audible.

    Frames or partials the render lacks count as silence.
    """
    return level_error_db(target.harmonic_amps, rendered.harmonic_amps, threshold_db)


def envelope_error_db(
    target: SampleAnalysis, rendered: SampleAnalysis, *, threshold_db: float = LEVEL_THRESHOLD_DB
) -> float:
    """Mean |dB difference| of the RMS envelopes over frames where the target is audible."""
    return level_error_db(target.rms_env[:, None], rendered.rms_env[:, None], threshold_db)


def f0_error_cents(target: SampleAnalysis, rendered: SampleAnalysis) -> float:
    """Signed pitch error of the render, in cents."""
    return float(1200.0 * np.log2(rendered.f0_hz / target.f0_hz))


def sine_floor(analysis: SampleAnalysis) -> np.ndarray:
    """A sine at the target's f0 carrying its RMS envelope, aligned with ``analysis.audio``."""
    samples = np.arange(analysis.audio.size)
    rms = np.interp(samples, analysis.frame_centers, analysis.rms_env, left=0.0, right=analysis.rms_env[-1])
    since_onset = (samples - analysis.onset_index) / analysis.sample_rate
    return np.sqrt(2.0) * rms * np.sin(2.0 * np.pi * analysis.f0_hz * since_onset)


def harmonic_resynthesis(analysis: SampleAnalysis) -> np.ndarray:
    """The target rebuilt from its measured partials, aligned with ``analysis.audio``.

    Each frame contributes Σ_k a_k·cos(2π·f_k·τ + φ_k) around its centre (τ = time from the centre,
    φ_k the phase measured there) under a periodic Hann window two hops long; at 50 % overlap those
    windows sum to one, so steady partials come back at their measured amplitude.
    """
    hop = round(analysis.hop_s * analysis.sample_rate)
    window = scipy.signal.get_window("hann", 2 * hop)
    offsets = np.arange(-hop, hop)
    tau = offsets / analysis.sample_rate
    output = np.zeros(analysis.audio.size + 4 * hop)  # margin so the last windows fit; trimmed below
    amps = analysis.harmonic_amps
    audible = amps > amps.max() * 10.0 ** (RESYNTHESIS_FLOOR_DB / 20.0)
    for frame, centre in enumerate(analysis.frame_centers):
        keep = audible[frame]
        if not keep.any():
            continue
        phase = 2.0 * np.pi * np.outer(analysis.harmonic_freqs[frame, keep], tau)
        phase += analysis.harmonic_phases[frame, keep, None]
        start = centre - hop + 2 * hop  # shifted by the leading margin of 2 hops
        output[start : start + 2 * hop] += window * (amps[frame, keep] @ np.cos(phase))
    return output[2 * hop : 2 * hop + analysis.audio.size]


def level_error_db(target_amps: np.ndarray, rendered_amps: np.ndarray, threshold_db: float = LEVEL_THRESHOLD_DB) -> float:
    """Mean |dB difference| of (frames, partials) amplitudes where the target's is within ``threshold_db`` of
    its peak; the render is aligned to the target's shape (missing frames are silence) and clamped
    LEVEL_CLAMP_DB below the threshold."""
    frames, partials = target_amps.shape
    aligned = np.zeros_like(target_amps)
    common_frames = min(frames, rendered_amps.shape[0])
    common_partials = min(partials, rendered_amps.shape[1])
    aligned[:common_frames, :common_partials] = rendered_amps[:common_frames, :common_partials]
    reference = target_amps.max()
    target_db = level_db(target_amps, reference)
    clamp_db = threshold_db + LEVEL_CLAMP_DB
    rendered_db = np.maximum(level_db(aligned, reference), clamp_db)
    audible = target_db >= threshold_db
    if not audible.any():
        return 0.0
    return float(np.abs(target_db - rendered_db)[audible].mean())


def _checked_signal(signal: np.ndarray, name: str) -> np.ndarray:
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim != 1 or signal.size == 0:
        raise InputError(f"{name} audio must be a non-empty 1-D array")
    if not np.all(np.isfinite(signal)):
        raise InputError(f"{name} audio contains NaN or infinite samples")
    return signal
