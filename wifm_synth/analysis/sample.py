"""analyze(): one recorded note → SampleAnalysis (pitch, onset, harmonic spectrum over time, envelope)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from wifm_synth.analysis.audio import load_audio, prepare_audio
from wifm_synth.analysis.envelope import (
    detect_onset,
    detect_release,
    frame_rms,
    level_db,
)
from wifm_synth.analysis.pitch import (
    MAX_F0_HZ,
    MIN_VOICED_FRACTION,
    VOICED_APERIODICITY,
    spectral_f0,
    yin_f0,
)
from wifm_synth.analysis.spectrum import (
    MAX_PARTIAL_HZ,
    MAX_WINDOW,
    PartialSeries,
    measure_partials,
    missing_multiple,
    track_partials,
    window_length,
    zero_phase_stft,
)
from wifm_synth.checks import integer_in
from wifm_synth.errors import InputError, NoPitchError

# Pitch and the average spectrum come from frames within this many dB of the loudest one, skipping
# the first ATTACK_SKIP_S where hammer/breath noise and pitch glides dominate.
LOUD_FRAME_DB = -20.0
ATTACK_SKIP_S = 0.03
MAX_PITCH_FRAMES = 24
MAX_MULTIPLE_CORRECTIONS = 3
MAX_AVERAGE_FRAMES = 64
FRAMES_PER_CHUNK = 256
HINT_TOLERANCE_CENTS = 50.0
# Octave checks against a hint look at the first few partials that only the lower octave has, and count
# one as present when it peaks this far above the spectrum halfway to its neighbours.
BETWEEN_PARTIALS_CHECKED = 6
BETWEEN_PARTIAL_PROMINENCE_DB = 6.0


@dataclass
class SampleAnalysis:
    source: str
    sample_rate: int
    audio: np.ndarray  # mono float64 at sample_rate: the file, up to its first ANALYSED_SECONDS
    onset_index: int
    f0_hz: float
    midi_note: float  # fractional, from f0_hz
    note_hint: int | None
    hop_s: float
    frame_times: np.ndarray  # (T,) seconds since onset
    harmonic_amps: np.ndarray  # (T, H) linear peak amplitude of partial k = 1..H
    harmonic_freqs: np.ndarray  # (T, H) measured Hz
    harmonic_phases: np.ndarray  # (T, H) radians of a cosine at the frame centre
    rms_env: np.ndarray  # (T,) linear RMS over ±hop around each frame
    release_start_s: float | None
    partial_hz: np.ndarray  # (H,) each partial's frequency in the averaged spectrum
    inharmonicity: float  # B of f_k = k·f0·sqrt(1 + B·k²) (stiff strings; 0 when harmonic)
    warnings: list[str] = field(default_factory=list)

    @property
    def frame_centers(self) -> np.ndarray:
        """Sample index of each frame's centre in ``audio``."""
        return self.onset_index + np.round(self.frame_times * self.sample_rate).astype(np.int64)

    @property
    def frame_f0_hz(self) -> np.ndarray:
        """(T,) fundamental per frame: each measured partial's frequency divided by its number (and by its
        stretch when inharmonic), averaged with amplitude weights. Weighting by amplitude lets the strong
        partials, whose peaks are measured precisely, carry the track; a frame without any measured
        amplitude (digital silence) reports ``f0_hz``."""
        numbers = np.arange(1, self.harmonic_freqs.shape[1] + 1, dtype=np.float64)
        per_partial = self.harmonic_freqs / (numbers * np.sqrt(1.0 + self.inharmonicity * numbers**2))
        total = self.harmonic_amps.sum(axis=1)
        weighted = (self.harmonic_amps * per_partial).sum(axis=1)
        return np.where(total > 0.0, weighted / np.where(total > 0.0, total, 1.0), self.f0_hz)


def midi_to_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


def hz_to_midi(f0_hz: float) -> float:
    return 69.0 + 12.0 * float(np.log2(f0_hz / 440.0))


def analyze(
    source: str | os.PathLike | tuple[np.ndarray, int],
    *,
    note_hint: int | None = None,
    sample_rate: int = 48000,
    hop_s: float = 0.01,
    f0_hz: float | None = None,
) -> SampleAnalysis:
    """Analyse one note: a file path, or ``(audio, rate)`` with audio as (frames,) or (frames, channels).

    ``note_hint`` (MIDI note) checks the detected pitch: a disagreement of more than 50 cents adds a
    warning, and an octave error is resolved in the hint's favour. ``f0_hz`` skips detection and
    measures the partials of that fundamental (for scoring a render against its target's pitch).
    """
    reading_warnings: list[str] = []
    if isinstance(source, tuple):
        if len(source) != 2:
            raise InputError("audio source must be a path or an (audio, rate) pair")
        name = "<audio>"
        _check_options(name, note_hint, hop_s, f0_hz)
        audio = prepare_audio(source[0], source[1], sample_rate, source=name)
    else:
        name = os.fspath(source)
        _check_options(name, note_hint, hop_s, f0_hz)
        audio, _ = load_audio(source, sample_rate, warnings=reading_warnings)

    hop = max(1, round(hop_s * sample_rate))
    onset = detect_onset(audio, sample_rate)
    n_frames = max(1, -(-(audio.size - onset) // hop))
    centers = onset + np.arange(n_frames) * hop
    rms_env = frame_rms(audio, centers, hop)
    frame_times = np.arange(n_frames) * (hop / sample_rate)
    loud = _loud_frames(rms_env, frame_times)

    warnings: list[str] = []
    if f0_hz is None:
        series = _detect_partials(audio, sample_rate, centers[loud], name, note_hint, warnings)
        detected_f0 = series.first_partial_hz
    else:
        series = _partial_series(audio, sample_rate, centers[loud], float(f0_hz))
        detected_f0 = float(f0_hz)
    if note_hint is not None and not warnings:
        cents = 1200.0 * np.log2(detected_f0 / midi_to_hz(note_hint))
        if abs(cents) > HINT_TOLERANCE_CENTS:
            warnings.append(
                f"detected pitch {detected_f0:.2f} Hz is {cents:+.0f} cents from note hint {note_hint}"
            )
    amps, freqs, phases = _measure_frames(audio, sample_rate, centers, series)
    return SampleAnalysis(
        source=name,
        sample_rate=sample_rate,
        audio=audio,
        onset_index=int(onset),
        f0_hz=detected_f0,
        midi_note=hz_to_midi(detected_f0),
        note_hint=note_hint,
        hop_s=hop / sample_rate,
        frame_times=frame_times,
        harmonic_amps=amps,
        harmonic_freqs=freqs,
        harmonic_phases=phases,
        rms_env=rms_env,
        release_start_s=detect_release(rms_env, hop / sample_rate),
        partial_hz=series.freqs,
        inharmonicity=series.stretch,
        warnings=reading_warnings + warnings,
    )


def _check_options(name: str, note_hint: int | None, hop_s: float, f0_hz: float | None) -> None:
    if note_hint is not None:
        integer_in(note_hint, "note hint", 0, 127, path=name)
    if not isinstance(hop_s, (int, float)) or not 0.001 <= hop_s <= 0.1:
        raise InputError(f"hop must be between 0.001 and 0.1 s, got {hop_s!r}", name)
    if f0_hz is not None and (not isinstance(f0_hz, (int, float)) or not 20.0 <= f0_hz <= 5000.0):
        raise InputError(f"f0 must be between 20 and 5000 Hz, got {f0_hz!r}", name)


def _loud_frames(rms_env: np.ndarray, frame_times: np.ndarray) -> np.ndarray:
    loud = level_db(rms_env, rms_env.max()) >= LOUD_FRAME_DB
    after_attack = loud & (frame_times >= ATTACK_SKIP_S)
    return np.flatnonzero(after_attack if after_attack.any() else loud)


def _detect_partials(
    audio: np.ndarray, rate: int, loud_centers: np.ndarray, name: str, note_hint: int | None, warnings: list[str]
) -> PartialSeries:
    """YIN's f0, raised to the multiple the spectrum supports, then moved to the hint's octave.

    When most YIN frames are aperiodic (stretched or noisy partials blur its dips), the f0 comes from
    the averaged spectrum instead, and a note whose partials do not stand out there is unpitched.
    """
    picks = np.unique(np.linspace(0, loud_centers.size - 1, MAX_PITCH_FRAMES).round().astype(int))
    frame_f0, aperiodicity = yin_f0(audio, rate, loud_centers[picks])
    voiced = aperiodicity < VOICED_APERIODICITY
    if voiced.mean() >= MIN_VOICED_FRACTION:
        rough_f0 = float(np.exp(np.median(np.log(frame_f0[voiced]))))
    else:
        power_db, bin_hz = _average_power_db(audio, rate, loud_centers, MAX_WINDOW)
        rough_f0 = spectral_f0(power_db, bin_hz, None if note_hint is None else midi_to_hz(note_hint))
        if rough_f0 is None:
            raise NoPitchError("no clear pitch (unpitched or noise)", name)
    series = _partial_series(audio, rate, loud_centers, rough_f0)
    for _ in range(MAX_MULTIPLE_CORRECTIONS):
        multiple = missing_multiple(series)
        if multiple == 1 or series.first_partial_hz * multiple > MAX_F0_HZ:
            break
        series = _partial_series(audio, rate, loud_centers, series.first_partial_hz * multiple)
    if not series.present.any():
        raise NoPitchError("no clear pitch (unpitched or noise)", name)
    return _octave_of_hint(audio, rate, loud_centers, series, note_hint, warnings)


def _octave_of_hint(
    audio: np.ndarray, rate: int, loud_centers: np.ndarray, series: PartialSeries, note_hint: int | None,
    warnings: list[str],
) -> PartialSeries:
    """Move to the hint's octave when the audio allows it, adding a warning either way.

    Up only when the detected fundamental is missing and so are most partials between the higher
    pitch's harmonics (they are what an octave up would drop); down only when most of the lower pitch's
    extra partials are there. Otherwise the detection stands and the hint (often a file name) is reported
    as disagreeing. Disagreements other than whole octaves are reported by the caller.
    """
    if note_hint is None:
        return series
    f0_hz = series.first_partial_hz
    octaves = np.log2(midi_to_hz(note_hint) / f0_hz)
    shift = int(np.round(octaves))
    if shift == 0 or abs(octaves - shift) * 1200.0 > HINT_TOLERANCE_CENTS:
        return series
    corrected = f0_hz * 2.0**shift
    lower = series if shift > 0 else _partial_series(audio, rate, loud_centers, corrected)
    lower_supported = _between_partials_present(audio, rate, loud_centers, lower, abs(shift))
    if shift > 0 and not (series.present[0] or lower_supported):
        candidate = _partial_series(audio, rate, loud_centers, corrected)
    else:
        candidate = lower if shift < 0 and lower_supported else None
    if candidate is None:
        warnings.append(
            f"note hint {note_hint} is {abs(shift)} octave(s) {'above' if shift > 0 else 'below'} the detected"
            f" pitch {f0_hz:.2f} Hz, but the partials do not support it; using {f0_hz:.2f} Hz"
        )
        return series
    warnings.append(
        f"pitch detection found {f0_hz:.2f} Hz, {abs(shift)} octave(s) from note hint {note_hint};"
        f" using {corrected:.2f} Hz"
    )
    return candidate


def _between_partials_present(
    audio: np.ndarray, rate: int, loud_centers: np.ndarray, series: PartialSeries, octaves: int
) -> bool:
    """Whether at least half of the first partials that are not multiples of 2**octaves (the ones that
    tell this pitch from the one ``octaves`` higher) peak BETWEEN_PARTIAL_PROMINENCE_DB above the spectrum
    halfway to their neighbours. Weak partials count: a window-leakage trough is never such a peak. The
    median over frames keeps the few frames cut by the file's end from smearing weak partials away."""
    power_db, bin_hz = _average_power_db(audio, rate, loud_centers, window_length(series.f0_hz, rate), np.median)
    edges = np.concatenate([[0.0], series.freqs])
    numbers = np.arange(1, series.freqs.size)  # the last partial has no upper neighbour
    between = numbers[numbers % 2**octaves != 0][:BETWEEN_PARTIALS_CHECKED]
    if between.size == 0:
        return False
    peak_bins = np.round(edges[between] / bin_hz).astype(int)
    peaks = np.max([power_db[peak_bins - 1], power_db[peak_bins], power_db[peak_bins + 1]], axis=0)
    below = power_db[np.round(0.5 * (edges[between - 1] + edges[between]) / bin_hz).astype(int)]
    above = power_db[np.round(0.5 * (edges[between] + edges[between + 1]) / bin_hz).astype(int)]
    prominent = peaks >= np.maximum(below, above) + BETWEEN_PARTIAL_PROMINENCE_DB
    return 2 * np.count_nonzero(prominent) >= between.size


def _average_power_db(
    audio: np.ndarray, rate: int, loud_centers: np.ndarray, length: int, average=np.mean
) -> tuple[np.ndarray, float]:
    """Power spectrum (dB per bin) averaged over up to MAX_AVERAGE_FRAMES loud frames, and the bin width."""
    picks = np.unique(np.linspace(0, loud_centers.size - 1, MAX_AVERAGE_FRAMES).round().astype(int))
    spectrogram = zero_phase_stft(audio, rate, loud_centers[picks], length)
    average_power = average(np.square(np.abs(spectrogram.spectra)), axis=0)
    return 10.0 * np.log10(np.maximum(average_power, np.finfo(float).tiny)), spectrogram.bin_hz


def _partial_series(audio: np.ndarray, rate: int, loud_centers: np.ndarray, f0_hz: float) -> PartialSeries:
    """Partials of ``f0_hz`` found in the averaged spectrum of the loud frames."""
    power_db, bin_hz = _average_power_db(audio, rate, loud_centers, window_length(f0_hz, rate))
    return track_partials(power_db, bin_hz, f0_hz, min(MAX_PARTIAL_HZ, 0.5 * rate - f0_hz))


def _measure_frames(
    audio: np.ndarray, rate: int, centers: np.ndarray, series: PartialSeries
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """measure_partials over all frames, a chunk at a time so long files do not need gigabytes of spectra."""
    length = window_length(series.f0_hz, rate)
    chunks = [
        measure_partials(zero_phase_stft(audio, rate, centers[start : start + FRAMES_PER_CHUNK], length),
                         series.freqs, series.f0_hz)
        for start in range(0, centers.size, FRAMES_PER_CHUNK)
    ]
    return tuple(np.concatenate(parts) for parts in zip(*chunks))
