"""Fundamental frequency: YIN per frame, and an estimate from the averaged spectrum for when YIN finds no period."""

from __future__ import annotations

import numpy as np
import scipy.fft
import scipy.signal

from wifm_synth.analysis.spectrum import (
    MAX_PARTIAL_HZ,
    PRESENCE_DB,
    parabolic_vertex,
    track_partials,
)

MIN_F0_HZ = 25.0
MAX_F0_HZ = 4200.0
YIN_WINDOW_S = 0.08
YIN_THRESHOLD = 0.15
# Frames whose best YIN dip is above this are treated as unvoiced (noise gives values near 1).
VOICED_APERIODICITY = 0.35
MIN_VOICED_FRACTION = 0.5
# Spectral fallback (spectral_f0): candidates from the strongest peaks, scored on their first partials.
CANDIDATE_PEAKS = 6
MAX_DIVISOR = 8
SCORED_PARTIALS = 10
MIN_SPECTRAL_PRESENCE = 0.6


def yin_f0(audio: np.ndarray, rate: int, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """YIN (de Cheveigné & Kawahara 2002) at each frame center: ``(f0_hz, aperiodicity)`` per frame.

    The lag is the first dip of the cumulative-mean-normalised difference below YIN_THRESHOLD (the
    global minimum when none is), refined by parabolic interpolation. Taking the first dip rather than
    the deepest is what keeps YIN from the sub-octave errors of plain autocorrelation.
    """
    window = round(YIN_WINDOW_S * rate)
    max_lag = min(int(rate / MIN_F0_HZ), window)
    min_lag = max(2, int(rate / MAX_F0_HZ))
    span = window + max_lag
    starts = np.clip(centers - span // 2, 0, max(0, audio.size - span))
    padded = np.pad(audio, (0, max(0, span - audio.size)))
    frames = padded[starts[:, None] + np.arange(span)]
    difference = _difference_function(frames, window, max_lag)
    lags = np.arange(1, max_lag + 1)
    cumulative_mean = np.cumsum(difference[:, 1:], axis=1) / lags
    normalised = np.ones_like(difference)
    normalised[:, 1:] = difference[:, 1:] / np.maximum(cumulative_mean, np.finfo(float).tiny)
    f0 = np.empty(len(centers))
    aperiodicity = np.empty(len(centers))
    for i, curve in enumerate(normalised):
        lag = _pick_lag(curve, min_lag)
        shift, value = parabolic_vertex(-curve[lag - 1], -curve[lag], -curve[lag + 1])
        f0[i] = rate / (lag + float(shift))
        aperiodicity[i] = -float(value)
    return f0, aperiodicity


def _difference_function(frames: np.ndarray, window: int, max_lag: int) -> np.ndarray:
    """d(τ) = Σ_{j<W} (x_j − x_{j+τ})² for τ = 0..max_lag, via FFT cross-correlation."""
    n_fft = scipy.fft.next_fast_len(frames.shape[1] + window)
    head = frames[:, :window]
    correlation = scipy.fft.irfft(
        np.conj(scipy.fft.rfft(head, n_fft)) * scipy.fft.rfft(frames, n_fft), n_fft
    )[:, : max_lag + 1]
    squares = np.concatenate((np.zeros((frames.shape[0], 1)), np.cumsum(np.square(frames), axis=1)), axis=1)
    energy_head = squares[:, window][:, None]
    lags = np.arange(max_lag + 1)
    energy_shifted = squares[:, lags + window] - squares[:, lags]
    return np.maximum(energy_head + energy_shifted - 2.0 * correlation, 0.0)


def _pick_lag(curve: np.ndarray, min_lag: int) -> int:
    last = curve.size - 2
    below = np.flatnonzero(curve[min_lag : last + 1] < YIN_THRESHOLD)
    if below.size == 0:
        return min_lag + int(np.argmin(curve[min_lag : last + 1]))
    lag = min_lag + int(below[0])
    while lag < last and curve[lag + 1] < curve[lag]:  # slide down to the bottom of that dip
        lag += 1
    return lag


def spectral_f0(power_db: np.ndarray, bin_hz: float, hint_hz: float | None = None) -> float | None:
    """f0 from an averaged power spectrum (dB per bin) when YIN finds no clear period, or None.

    Candidates are the strongest and the lowest peaks divided by 1..MAX_DIVISOR (plus the hint). Each is scored by
    the share of its first SCORED_PARTIALS partials that stand out (the tracker follows stretched
    series) times the share of the peak power in that band those partials explain: a sub-octave
    explains the power but misses half its partials, an octave up finds its partials but leaves half
    the power unexplained. Returns None when no candidate has most of its partials (noise).
    """
    peaks, _ = scipy.signal.find_peaks(power_db, prominence=PRESENCE_DB)
    peaks = peaks[(peaks * bin_hz >= MIN_F0_HZ) & (peaks * bin_hz <= MAX_PARTIAL_HZ)]
    if peaks.size == 0:
        return None
    strongest = peaks[np.argsort(power_db[peaks])[-CANDIDATE_PEAKS:]]
    lowest = peaks[:CANDIDATE_PEAKS]
    candidates = {
        peak * bin_hz / divisor for peak in np.union1d(strongest, lowest) for divisor in range(1, MAX_DIVISOR + 1)
    }
    if hint_hz is not None:
        candidates.add(hint_hz)
    peak_power = 10.0 ** (power_db[peaks] / 10.0)
    best_score, best_f0 = 0.0, None
    for candidate in sorted(c for c in candidates if MIN_F0_HZ <= c <= MAX_F0_HZ):
        top_hz = min(MAX_PARTIAL_HZ, (SCORED_PARTIALS + 0.5) * candidate)
        series = track_partials(power_db, bin_hz, candidate, top_hz)
        presence = series.present[:SCORED_PARTIALS].mean() if series.present.size else 0.0
        explained = float(np.sum(10.0 ** (series.levels_db[series.present] / 10.0)))
        band_power = float(peak_power[peaks * bin_hz <= top_hz].sum())
        share = min(1.0, explained / band_power) if band_power > 0.0 else 0.0
        score = presence * share
        if presence >= MIN_SPECTRAL_PRESENCE and score > best_score:
            best_score, best_f0 = score, series.first_partial_hz
    return best_f0
