"""Vibrato and tremolo of a recorded note → the patch's LFO, and the tremolo to take out of its envelope.

The engine has one sine LFO per voice, started at note-on, whose depths fade in linearly over
``delay_s``: vibrato moves non-fixed operators ±``pitch_depth_cents``, tremolo moves carriers between
0 dB and −``amp_depth_db``. This module measures both from the analysis:

- Tracks: the pitch in cents (``SampleAnalysis.frame_f0_hz`` re the note's f0) and the level in dB
  (``rms_env``), on the 10 ms analysis frames from ANALYSIS_START_S (attack transients bend the
  pitch) to RELEASE_MARGIN_S before the release, over the frames within LOUD_RANGE_DB of the loudest (a decayed
  tail is noise). At least MIN_CYCLES cycles of the slowest rate must fit in that span.
- Drift: every fit includes a Legendre polynomial in time whose degree follows the span so it
  follows changes slower than DRIFT_MAX_HZ (intonation drift, the envelope's decay) but not the 3–9 Hz
  modulation; fitting it jointly with the sine keeps the drift from absorbing the modulation.
- Rate: the peak within RATE_BAND_HZ of the Hann-windowed, zero-padded spectrum of the detrended
  track, refined by parabolic interpolation of its log magnitude (a few hundredths of a Hz).
- Delay and depth: least squares of drift + fade(t)·(a·cos + b·sin) at that rate, for every delay on
  a DELAY_STEP_S grid, fade as the engine's; the delay with the smallest residual wins, depth = |(a, b)|.
- Significance: a track is modulated only when (1) its spectrum at the rate stands MIN_PEAK_RATIO
  above the median over PEAK_REFERENCE_HZ (broadband wobble and noise have no such peak), (2) the sine
  explains MIN_EXPLAINED of the detrended variance, (3) the sine fitted on each half of the modulated
  span agrees in phase within MAX_PHASE_DISAGREEMENT_RAD (a steady oscillator, not two bursts), and
  (4) the depth is at least MIN_DEPTH (2 cents, 0.5 dB), about half the smallest audible
  change: smaller modulation would not be heard, and an LFO would only add risk.
- One LFO: when both tracks are modulated the one with the higher peak ratio sets rate and delay
  (they are usually one physical oscillation: a violinist's finger moves pitch and, through the body
  resonances, level); the other is measured at that rate and delay and kept if it passes the tests.
  The engine also fixes their relative phase (loudest at the highest pitch) and the start phase (a sine
  from note-on); neither is fitted, so a note that is loudest at its lowest pitch keeps both depths
  but plays with the opposite coupling.
- Tuning: with vibrato, the patch is tuned to the vibrato's centre (the mean of the pitch track
  without its sine) instead of the averaged spectrum's f0 (``LfoFit.pitch_offset_cents``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from wifm_synth.analysis import SampleAnalysis
from wifm_synth.analysis.envelope import level_db
from wifm_synth.analysis.spectrum import parabolic_vertex
from wifm_synth.voice.patch import Lfo, Pitch
from wifm_synth.voice.schema import SCHEMA

RATE_BAND_HZ = (3.0, 9.0)
# Spectrum magnitudes over this band (Hz) give the broadband reference the peak is compared with.
PEAK_REFERENCE_HZ = (1.0, 20.0)
ANALYSIS_START_S = 0.05
# The release detector marks the knee where the level has already left the held trend, up to about a
# tenth of a second after the note-off for a fast release; the falling level must stay out of the span.
RELEASE_MARGIN_S = 0.15
LOUD_RANGE_DB = 30.0
MIN_CYCLES = 2.0
DRIFT_MAX_HZ = 1.0
MIN_DRIFT_DEGREE = 2
MAX_DRIFT_DEGREE = 24
SPECTRUM_PADDING = 8
DELAY_STEP_S = 0.02
# Unmodulated notes reach these only by chance: on the bundled notes the largest explained share is 0.3
# (the Rhodes' decay, which also peaks 45 times above the broadband level: the ratio alone is not
# enough), while engine vibrato explains over 0.99 and a played one, less regular, 0.7 and more.
MIN_PEAK_RATIO = 8.0
MIN_EXPLAINED = 0.4
MAX_PHASE_DISAGREEMENT_RAD = np.pi / 4
# Smallest depths worth an LFO, in the units of the patch fields (cents either way; dB peak to trough).
MIN_DEPTH = {"vibrato": 2.0, "tremolo": 0.5}


@dataclass(frozen=True)
class Modulation:
    """One track's sine at the LFO rate: amplitude (cents or dB) and the statistics that judged it."""

    rate_hz: float
    delay_s: float
    cos_coefficient: float  # the track's sine is fade(t)·(cos_coefficient·cos(2πrt) + sin_coefficient·sin(2πrt))
    sin_coefficient: float
    peak_ratio: float
    explained: float
    phase_disagreement_rad: float
    significant: bool

    @property
    def amplitude(self) -> float:
        return float(np.hypot(self.cos_coefficient, self.sin_coefficient))


@dataclass(frozen=True)
class LfoFit:
    """The patch's LFO (the default, depth 0, when nothing is modulated) and the level correction."""

    lfo: Lfo
    # (T,) dB per analysis frame to subtract from the measured level so that the engine's tremolo on
    # top of the corrected envelope reproduces the recording; zeros without tremolo.
    level_correction_db: np.ndarray
    vibrato: Modulation | None  # None when the note is too short to measure
    tremolo: Modulation | None
    # The vibrato's centre re the analysis f0, 0 without vibrato; the engine's vibrato swings about
    # the tuned pitch. The f0 of the averaged spectrum is not the centre when the level swings with the
    # pitch (a violin's body resonances): louder frames weigh more, so it leans towards the loud half of
    # the cycle (6–12 cents for ±20–40 cents with 6 dB of tremolo in step, as tests/fit/test_lfo.py shows).
    pitch_offset_cents: float = 0.0

    @property
    def found(self) -> bool:
        return self.lfo.pitch_depth_cents > 0.0 or self.lfo.amp_depth_db > 0.0

    def centred(self, pitch: Pitch) -> Pitch:
        """``pitch`` retuned to the vibrato's centre (unchanged without vibrato)."""
        if self.pitch_offset_cents == 0.0:
            return pitch
        tune = SCHEMA["pitch.tune_cents"].clip(pitch.tune_cents + self.pitch_offset_cents)
        return dataclasses.replace(pitch, tune_cents=round(float(tune), 3))


def fit_lfo(analysis: SampleAnalysis) -> LfoFit:
    """Measure vibrato and tremolo of the held part of an analysed note (see the module docstring)."""
    no_lfo = LfoFit(Lfo(), np.zeros(analysis.frame_times.size), None, None)
    frames = _analysed_frames(analysis)
    if frames.size == 0 or np.ptp(analysis.frame_times[frames]) < MIN_CYCLES / RATE_BAND_HZ[0]:
        return no_lfo
    times = analysis.frame_times[frames]
    tracks = {
        "vibrato": 1200.0 * np.log2(analysis.frame_f0_hz[frames] / analysis.f0_hz),
        "tremolo": level_db(analysis.rms_env[frames], analysis.rms_env[frames].max()),
    }
    drift = _drift_basis(times)
    own = {name: _measured_at_peak(name, times, track, drift) for name, track in tracks.items()}
    leads = [name for name in tracks if own[name].significant]
    if not leads:
        return LfoFit(Lfo(), no_lfo.level_correction_db, own["vibrato"], own["tremolo"])
    lead = max(leads, key=lambda name: own[name].peak_ratio)
    rate_hz, delay_s = own[lead].rate_hz, own[lead].delay_s
    judged = {lead: own[lead]}
    for name in tracks.keys() - {lead}:
        ratio = _peak_ratio_at(times, _detrended(drift, tracks[name]), rate_hz)
        judged[name] = _judged(name, _measure(times, tracks[name], drift, rate_hz, np.array([delay_s]), ratio))
    vibrato, tremolo = judged["vibrato"], judged["tremolo"]
    lfo = Lfo(
        rate_hz=round(float(SCHEMA["lfo.rate_hz"].clip(rate_hz)), 3),
        delay_s=round(float(SCHEMA["lfo.delay_s"].clip(delay_s)), 3),
        pitch_depth_cents=round(float(SCHEMA["lfo.pitch_depth_cents"].clip(_patch_depth("vibrato", vibrato))), 2)
        if vibrato.significant else 0.0,
        amp_depth_db=round(float(SCHEMA["lfo.amp_depth_db"].clip(_patch_depth("tremolo", tremolo))), 2)
        if tremolo.significant else 0.0,
    )
    correction = _level_correction_db(analysis.frame_times, tremolo) if tremolo.significant \
        else no_lfo.level_correction_db
    offset = float(np.mean(tracks["vibrato"] - _sine_values(times, vibrato))) if vibrato.significant else 0.0
    return LfoFit(lfo, correction, vibrato, tremolo, offset)


def _measured_at_peak(name: str, times: np.ndarray, track: np.ndarray, drift: np.ndarray) -> Modulation:
    """The track's modulation at its own spectral peak, the delay searched."""
    rate_hz, peak_ratio = _spectral_peak(times, _detrended(drift, track))
    return _judged(name, _measure(times, track, drift, rate_hz, _delay_grid(times), peak_ratio))


def lfo_fade(times: np.ndarray, delay_s: float) -> np.ndarray:
    """The engine's depth fade: 0 at note-on rising linearly to 1 at ``delay_s``."""
    if delay_s <= 0.0:
        return np.ones_like(times)
    return np.clip(times / delay_s, 0.0, 1.0)


def _level_correction_db(frame_times: np.ndarray, tremolo: Modulation) -> np.ndarray:
    """The measured tremolo minus the engine's average loss over a cycle (half its depth): the engine
    swings from the envelope down by the depth, the recording swings about its mean level."""
    return _sine_values(frame_times, tremolo) - lfo_fade(frame_times, tremolo.delay_s) * tremolo.amplitude


def _sine_values(times: np.ndarray, modulation: Modulation) -> np.ndarray:
    """The track's fitted sine at ``times``, faded in as the engine does."""
    angle = 2.0 * np.pi * modulation.rate_hz * times
    swing = modulation.cos_coefficient * np.cos(angle) + modulation.sin_coefficient * np.sin(angle)
    return lfo_fade(times, modulation.delay_s) * swing


def _analysed_frames(analysis: SampleAnalysis) -> np.ndarray:
    """Contiguous frames from ANALYSIS_START_S to RELEASE_MARGIN_S before the release, trimmed to the
    span within LOUD_RANGE_DB of the loudest of them."""
    times = analysis.frame_times
    held = times >= ANALYSIS_START_S
    if analysis.release_start_s is not None:
        held &= times <= analysis.release_start_s - RELEASE_MARGIN_S
    candidates = np.flatnonzero(held)
    if candidates.size == 0:
        return candidates
    rms = analysis.rms_env[candidates]
    loud = candidates[level_db(rms, rms.max()) >= -LOUD_RANGE_DB]
    return np.arange(loud[0], loud[-1] + 1)


def _drift_basis(times: np.ndarray) -> np.ndarray:
    """(frames, degree + 1) Legendre polynomials over the span, degree enough for DRIFT_MAX_HZ."""
    span = max(float(np.ptp(times)), np.finfo(float).eps)
    degree = int(np.clip(np.ceil(2.0 * DRIFT_MAX_HZ * span), MIN_DRIFT_DEGREE, MAX_DRIFT_DEGREE))
    return np.polynomial.legendre.legvander(2.0 * (times - times[0]) / span - 1.0, degree)


def _detrended(basis: np.ndarray, values: np.ndarray) -> np.ndarray:
    return values - basis @ np.linalg.lstsq(basis, values, rcond=None)[0]


def _spectrum(times: np.ndarray, residual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude (in the track's units of sine amplitude) and frequency of the Hann-windowed residual."""
    window = np.hanning(residual.size)
    n_fft = 1 << int(np.ceil(np.log2(SPECTRUM_PADDING * residual.size)))
    magnitude = np.abs(np.fft.rfft(residual * window, n_fft)) * 2.0 / window.sum()
    return magnitude, np.fft.rfftfreq(n_fft, float(np.median(np.diff(times))))


def _broadband(magnitude: np.ndarray, freqs: np.ndarray) -> float:
    reference = magnitude[(freqs >= PEAK_REFERENCE_HZ[0]) & (freqs <= PEAK_REFERENCE_HZ[1])]
    return max(float(np.median(reference)), np.finfo(float).tiny)


def _spectral_peak(times: np.ndarray, residual: np.ndarray) -> tuple[float, float]:
    """(rate_hz, peak ratio) of the strongest peak within RATE_BAND_HZ."""
    magnitude, freqs = _spectrum(times, residual)
    band = np.flatnonzero((freqs >= RATE_BAND_HZ[0]) & (freqs <= RATE_BAND_HZ[1]))
    peak = int(band[np.argmax(magnitude[band])])
    log_magnitude = np.log(np.maximum(magnitude[peak - 1 : peak + 2], np.finfo(float).tiny))
    shift, _ = parabolic_vertex(*log_magnitude)
    rate_hz = float(np.clip(freqs[peak] + float(shift) * freqs[1], *RATE_BAND_HZ))
    return rate_hz, float(magnitude[peak]) / _broadband(magnitude, freqs)


def _peak_ratio_at(times: np.ndarray, residual: np.ndarray, rate_hz: float) -> float:
    magnitude, freqs = _spectrum(times, residual)
    return float(np.interp(rate_hz, freqs, magnitude)) / _broadband(magnitude, freqs)


def _delay_grid(times: np.ndarray) -> np.ndarray:
    """Candidate delays: from 0 to half the analysed span (later onsets leave too few cycles to judge)."""
    latest = min(0.5 * float(times[-1]), SCHEMA["lfo.delay_s"].high)
    return np.arange(0.0, latest + 0.5 * DELAY_STEP_S, DELAY_STEP_S)


def _sine_fit(times, values, basis, rate_hz, delay_s) -> tuple[np.ndarray, float]:
    """Least squares of drift + fade·(a·cos + b·sin): ((a, b), residual sum of squares)."""
    angle = 2.0 * np.pi * rate_hz * times
    fade = lfo_fade(times, delay_s)
    design = np.column_stack([basis, fade * np.cos(angle), fade * np.sin(angle)])
    coefficients = np.linalg.lstsq(design, values, rcond=None)[0]
    return coefficients[-2:], float(np.sum(np.square(values - design @ coefficients)))


def _measure(times, values, basis, rate_hz, delays, peak_ratio) -> Modulation:
    """The best delay of ``delays`` and the sine's coefficients there, with its explained variance and
    the phase agreement of its two halves; ``significant`` is set by ``_judged``."""
    fits = [_sine_fit(times, values, basis, rate_hz, delay) for delay in delays]
    best = int(np.argmin([residual for _, residual in fits]))
    (cos_coefficient, sin_coefficient), residual = fits[best]
    drift_only = float(np.sum(np.square(_detrended(basis, values))))
    explained = 1.0 - residual / drift_only if drift_only > 0.0 else 0.0
    return Modulation(
        rate_hz=rate_hz, delay_s=float(delays[best]), cos_coefficient=float(cos_coefficient),
        sin_coefficient=float(sin_coefficient), peak_ratio=peak_ratio, explained=explained,
        phase_disagreement_rad=_phase_disagreement(times, values, rate_hz, float(delays[best])),
        significant=False,
    )


def _phase_disagreement(times, values, rate_hz, delay_s) -> float:
    """Angle between the sines fitted (with their own drift) on the two halves of the span after the
    delay; π when a half holds less than one cycle."""
    modulated = np.flatnonzero(times >= delay_s)
    halves = np.array_split(modulated, 2)
    if min(np.ptp(times[half]) if half.size else 0.0 for half in halves) * rate_hz < 1.0:
        return float(np.pi)
    phasors = []
    for half in halves:
        (a, b), _ = _sine_fit(times[half], values[half], _drift_basis(times[half]), rate_hz, 0.0)
        phasors.append(complex(a, -b))
    return float(abs(np.angle(phasors[0] * np.conj(phasors[1]))))


def _patch_depth(name: str, modulation: Modulation) -> float:
    """The LFO field's depth: vibrato swings ±depth cents, tremolo ``depth`` dB from peak to trough."""
    return modulation.amplitude if name == "vibrato" else 2.0 * modulation.amplitude


def _judged(name: str, modulation: Modulation) -> Modulation:
    """``modulation`` with ``significant`` set by the tests of the module docstring."""
    significant = (
        _patch_depth(name, modulation) >= MIN_DEPTH[name]
        and modulation.peak_ratio >= MIN_PEAK_RATIO
        and modulation.explained >= MIN_EXPLAINED
        and modulation.phase_disagreement_rad <= MAX_PHASE_DISAGREEMENT_RAD
    )
    return dataclasses.replace(modulation, significant=bool(significant))
