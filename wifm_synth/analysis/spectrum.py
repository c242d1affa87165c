"""Per-frame harmonic spectrum: amplitude, frequency and phase of every partial up to 20 kHz.

Frames are windowed with a 4-term Blackman-Harris window (side lobes −92 dB, so partials 60–80 dB
below their neighbours stay measurable) spanning PERIODS_PER_WINDOW periods of f0, which separates
the main lobes of adjacent harmonics even for a 41 Hz bass. Frames are rotated so the window centre
is sample 0 (zero-phase windowing): the measured phase then refers to the frame centre and is flat
across the main lobe. Peaks are refined by parabolic interpolation of the log magnitude.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.signal

PERIODS_PER_WINDOW = 8
MIN_WINDOW = 1024
MAX_WINDOW = 16384
MAX_PARTIAL_HZ = 20000.0
# Each partial is searched for within this fraction of f0 of where it is expected; the window's main
# lobe is f0/2 wide either side, so the search never reaches a neighbouring harmonic's lobe.
SEARCH_FRACTION = 0.3
# A partial counts as present in the average spectrum when it stands this far above the local median.
PRESENCE_DB = 10.0
# Partials off the m-th multiples holding less than this share of the power mean the f0 is m times higher.
MISSING_SHARE = 0.01


@dataclass(frozen=True)
class Spectrogram:
    spectra: np.ndarray  # (frames, bins) complex, zero-phase windowed
    bin_hz: float
    amplitude_scale: float  # |X| at a sinusoid's peak × this = its amplitude


def window_length(f0_hz: float, rate: int) -> int:
    length = round(PERIODS_PER_WINDOW * rate / f0_hz / 2.0) * 2
    return int(np.clip(length, MIN_WINDOW, MAX_WINDOW))


def zero_phase_stft(audio: np.ndarray, rate: int, centers: np.ndarray, length: int) -> Spectrogram:
    """Spectra of Blackman-Harris frames of even ``length`` centred on ``centers`` (zero beyond the audio)."""
    half = length // 2
    window = scipy.signal.get_window("blackmanharris", length, fftbins=False)
    n_fft = 1 << int(np.ceil(np.log2(1.5 * length)))
    padded = np.pad(audio, (half, half))
    frames = padded[centers[:, None] + np.arange(length)] * window
    rotated = np.zeros((len(centers), n_fft))
    rotated[:, :half] = frames[:, half:]
    rotated[:, n_fft - half :] = frames[:, :half]
    spectra = scipy.fft.rfft(rotated, axis=1)
    return Spectrogram(spectra, rate / n_fft, 2.0 / window.sum())


@dataclass(frozen=True)
class PartialSeries:
    freqs: np.ndarray  # (partials,) Hz: measured where present, else the fitted series
    present: np.ndarray  # (partials,) bool
    levels_db: np.ndarray  # (partials,) averaged power at each partial (its peak, or where expected)
    f0_hz: float  # f0 of the fitted series f_k = k·f0·sqrt(1 + stretch·k²)
    stretch: float

    @property
    def first_partial_hz(self) -> float:
        return self.f0_hz * float(np.sqrt(1.0 + self.stretch))


def track_partials(power_db: np.ndarray, bin_hz: float, f0_hz: float, max_hz: float) -> PartialSeries:
    """Frequencies of partials 1, 2, ... below ``max_hz`` in an averaged power spectrum (dB per bin).

    Each partial is predicted from the stretched-harmonic series fitted to the partials found so far
    (piano partials run sharp, by more than a harmonic spacing high up), searched for near the
    prediction and kept when it stands PRESENCE_DB above the local median.
    """
    numbers: list[int] = []
    measured: list[float] = []
    weights: list[float] = []
    freqs: list[float] = []
    present: list[bool] = []
    levels: list[float] = []
    f0, stretch = f0_hz, 0.0
    n_bins = power_db.size
    k = 1
    while True:
        predicted = k * f0 * np.sqrt(1.0 + stretch * k * k)
        if predicted > max_hz:
            break
        search = max(1, int(SEARCH_FRACTION * f0 / bin_hz))
        centre = round(predicted / bin_hz)
        lo, hi = max(1, centre - search), min(n_bins - 1, centre + search + 1)
        if lo >= hi:
            break
        peak = lo + int(np.argmax(power_db[lo:hi]))
        neighbourhood = power_db[max(0, centre - 2 * search) : centre + 2 * search + 1]
        is_peak = lo < peak < hi - 1 and power_db[peak] >= neighbourhood.max() - 1e-9
        if is_peak and power_db[peak] >= np.median(neighbourhood) + PRESENCE_DB:
            shift, _ = parabolic_vertex(power_db[peak - 1], power_db[peak], power_db[peak + 1])
            found = (peak + shift) * bin_hz
            numbers.append(k)
            measured.append(found)
            weights.append(10.0 ** (power_db[peak] / 20.0))
            f0, stretch = fit_partial_series(np.array(numbers, float), np.array(measured), np.array(weights))
            freqs.append(found)
            present.append(True)
            levels.append(power_db[peak])
        else:
            freqs.append(predicted)
            present.append(False)
            levels.append(power_db[min(centre, n_bins - 1)])
        k += 1
    return PartialSeries(np.array(freqs), np.array(present, dtype=bool), np.array(levels), f0, stretch)


def missing_multiple(series: PartialSeries, max_multiple: int = 16) -> int:
    """The largest m > 1 such that only every m-th partial carries energy (the true f0 is then m times
    higher), else 1.

    YIN can land on a multiple of the period when a short period falls between integer lags (high
    notes) or when stretched partials blur the dips; the spectrum then shows the "missing" partials.
    """
    power = 10.0 ** (series.levels_db[: 3 * max_multiple] / 10.0)
    numbers = np.arange(1, power.size + 1)
    for multiple in range(min(max_multiple, power.size // 2), 1, -1):
        if power[numbers % multiple != 0].sum() < MISSING_SHARE * power.sum():
            return multiple
    return 1


def measure_partials(
    spectrogram: Spectrogram, partial_hz: np.ndarray, f0_hz: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame and partial: ``(amplitude, frequency_hz, phase)``, each (frames, partials).

    Where a frame has no peak near the partial (the search range's maximum is at its edge) the
    frequency is the expected one and the amplitude the magnitude there.
    """
    spectra = spectrogram.spectra
    bin_hz = spectrogram.bin_hz
    search = max(1, int(SEARCH_FRACTION * f0_hz / bin_hz))
    # Each partial's search range plus one bin either side for the parabola; only these bins are
    # converted to dB (a few percent of the spectrum for low notes).
    offsets = np.arange(-search - 1, search + 2)
    centre_bins = np.round(partial_hz / bin_hz).astype(np.int64)
    region_bins = np.clip(centre_bins[:, None] + offsets, 0, spectra.shape[1] - 1)  # (partials, width + 2)
    region = spectra[:, region_bins]  # (frames, partials, width + 2)
    region_db = 20.0 * np.log10(np.maximum(np.abs(region), np.finfo(float).tiny))
    best = 1 + np.argmax(region_db[..., 1:-1], axis=2)
    is_peak = (best > 1) & (best < offsets.size - 2)
    index = np.where(is_peak, best, search + 1)[..., None]  # the expected bin where there is no peak
    centre_db = np.take_along_axis(region_db, index, axis=2)[..., 0]
    shift, peak_db = parabolic_vertex(
        np.take_along_axis(region_db, index - 1, axis=2)[..., 0],
        centre_db,
        np.take_along_axis(region_db, index + 1, axis=2)[..., 0],
    )
    shift = np.where(is_peak, shift, 0.0)
    peak_db = np.where(is_peak, peak_db, centre_db)
    amplitudes = 10.0 ** (peak_db / 20.0) * spectrogram.amplitude_scale
    peak_bins = region_bins[np.arange(partial_hz.size), index[..., 0]]
    frequencies = np.where(is_peak, (peak_bins + shift) * bin_hz, partial_hz[None, :])
    phases = np.angle(np.take_along_axis(region, index, axis=2)[..., 0])
    return amplitudes, frequencies, phases


def parabolic_vertex(left, centre, right):
    """Vertex offset (−0.5…0.5 bins) and height of the parabola through three samples (elementwise)."""
    left, centre, right = np.asarray(left), np.asarray(centre), np.asarray(right)
    denominator = left - 2.0 * centre + right
    curved = denominator < 0.0
    shift = np.where(curved, 0.5 * (left - right) / np.where(curved, denominator, -1.0), 0.0)
    return shift, centre - 0.25 * (left - right) * shift


def fit_partial_series(numbers: np.ndarray, freqs: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """Fit ``f_k = k·f0·sqrt(1 + B·k²)`` (stiff-string stretch) to measured partials: returns ``(f0, B)``.

    Linear least squares on ``(f_k/k)² = f0² + f0²·B·k²``; B is clamped to ≥ 0 and only fitted when
    partials above the fourth are present (a few low partials cannot tell stretch from mistuning).
    """
    squared = np.square(freqs / numbers)
    if numbers.max() <= 4 or numbers.size < 4:
        f0 = float(np.sqrt(np.average(squared, weights=weights)))
        return f0, 0.0
    design = np.stack((np.ones_like(numbers), np.square(numbers)), axis=1) * np.sqrt(weights)[:, None]
    (intercept, slope), *_ = np.linalg.lstsq(design, squared * np.sqrt(weights), rcond=None)
    if intercept <= 0.0 or slope <= 0.0:
        return float(np.sqrt(np.average(squared, weights=weights))), 0.0
    return float(np.sqrt(intercept)), float(slope / intercept)
