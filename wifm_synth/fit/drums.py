"""Unpitched (drum) fits: one 2-operator patch per drum key, sounding at that key, with free ratios and feedback.

A drum sample has no pitch to detect, and a detector would move it to whatever partial it finds; the key
the sample is mapped to is kept as the patch's reference note instead, and operator frequencies are ratios
of that key's frequency. What is fitted is the sound's band spectrum over its first ``SPECTRUM_S`` (the hit)
and its level envelope:

1. the carrier frequency, from a log-spaced grid of absolute frequencies (as ratios of the key's, any
   value, not only integers), with the modulator off;
2. for the best ``CARRIER_CANDIDATES`` carriers, a modulator at free (non-integer) ratios to the carrier,
   modulation indices and feedback up to 16 rad: high feedback turns the modulator into noise, which is
   what hi-hats, snares and cymbals need; a clean tom or kick keeps a low index and no feedback (the same
   search restricted to integer ratios of the key and no feedback runs too, and the better one is kept);
3. the envelope: the sample's frame RMS in dB (both operators follow it), a release as long as the
   sample's own decay, since drum notes are often released before the hit has died away.

Each candidate is rendered by the engine itself (``render_note``), so what is chosen is what plays; the
loss is the mean absolute difference of the 1/3-octave band levels (dB, each spectrum normalised to its
total power, bands more than ``FLOOR_DB`` down clamped), the same score the bank reports as ``band_db``.
"""

from __future__ import annotations

import datetime
import itertools
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import wifm_synth
from wifm_synth.analysis import load_audio, midi_to_hz
from wifm_synth.analysis.envelope import detect_onset, frame_rms, level_db
from wifm_synth.errors import AnalysisError, InputError
from wifm_synth.fit.envelope import fit_envelope
from wifm_synth.voice.patch import Envelope, Operator, Patch, Pitch
from wifm_synth.voice.schema import SCHEMA

SAMPLE_RATE = 48000
SPECTRUM_S = 0.3  # the hit: where a drum's timbre is
HOP_S = 0.01
FLOOR_DB = -60.0
# 1/3-octave bands from 25 Hz to 20 kHz.
BAND_EDGES_HZ = 25.0 * 2.0 ** (np.arange(0, 30) / 3.0)
FFT_SIZE = 2048
# Candidate carrier frequencies (Hz): every half octave from 40 Hz to 10 kHz, and the key's own frequency.
CARRIER_HZ = 40.0 * 2.0 ** (np.arange(0, 17) / 2.0)
CARRIER_CANDIDATES = 3
# Modulator ratios to the carrier: consonant ones and inharmonic ones (bells, membranes, metal).
MODULATOR_RATIOS = (0.5, 1.0, 1.41, 2.0, 2.76, 3.5, 5.4)
INDICES = (0.5, 1.5, 4.0, 10.0)
FEEDBACKS = (0.0, 3.0, 8.0, 16.0)
MAX_RATIO = SCHEMA["operator.ratio"].high
MIN_RATIO = 0.01


@dataclass(frozen=True)
class Timbre:
    """The spectral part of a drum patch: carrier and modulator ratios (of the key's frequency), peak
    modulation index and modulator feedback (rad)."""

    carrier_ratio: float
    modulator_ratio: float
    index: float
    feedback: float


@dataclass
class DrumFit:
    """A fitted drum patch, its band-spectrum loss (dB) and the timbre searched."""

    patch: Patch
    loss: float
    timbre: Timbre
    seconds: float


def band_levels_db(audio: np.ndarray, rate: int, start: int, seconds: float = SPECTRUM_S) -> np.ndarray:
    """1/3-octave band levels (dB re the total power, floored at FLOOR_DB) of ``audio[start:start+seconds]``."""
    piece = audio[start:start + max(FFT_SIZE, round(seconds * rate))]
    if piece.size < FFT_SIZE:
        piece = np.pad(piece, (0, FFT_SIZE - piece.size))
    hop = FFT_SIZE // 2
    starts = np.arange(0, piece.size - FFT_SIZE + 1, hop)
    frames = piece[starts[:, None] + np.arange(FFT_SIZE)] * np.hanning(FFT_SIZE)
    power = np.square(np.abs(np.fft.rfft(frames, axis=1))).mean(axis=0)
    bins = np.fft.rfftfreq(FFT_SIZE, 1.0 / rate)
    band = np.searchsorted(BAND_EDGES_HZ, bins) - 1
    inside = (band >= 0) & (band < BAND_EDGES_HZ.size - 1)
    bands = np.bincount(band[inside], weights=power[inside], minlength=BAND_EDGES_HZ.size - 1)
    total = bands.sum()
    if total <= 0.0:
        return np.full(bands.size, FLOOR_DB)
    return np.maximum(10.0 * np.log10(np.maximum(bands / total, 1e-30)), FLOOR_DB)


def band_distance_db(target_db: np.ndarray, candidate_db: np.ndarray) -> float:
    return float(np.mean(np.abs(target_db - candidate_db)))


def _patch(key: int, timbre: Timbre, level: float, segments, release_s: float, name: str) -> Patch:
    envelope = Envelope(segments=list(segments), release_s=release_s)
    return Patch(
        name=name, pitch=Pitch(reference_note=key, tune_cents=0.0),
        operators=[
            Operator(ratio=timbre.carrier_ratio, level=level, carrier=True, modulators=[1], envelope=envelope),
            Operator(ratio=timbre.modulator_ratio, level=timbre.index, carrier=False, feedback=timbre.feedback,
                     envelope=Envelope(segments=list(segments), release_s=release_s)),
        ],
    )


def _render_bands(key: int, timbre: Timbre) -> np.ndarray:
    # Imported here: the engine compiles its kernels on import, which a plain fit of a pitched note never needs.
    from wifm_synth.engine import render_note

    steady = [(0.001, 0.0)]
    audio = render_note(_patch(key, timbre, 0.5, steady, 0.05, "candidate"), key, hold_s=SPECTRUM_S, tail_s=0.0,
                        sample_rate=SAMPLE_RATE)
    return band_levels_db(audio, SAMPLE_RATE, 0)


def _ratio(value: float) -> float:
    return float(np.clip(round(value, 4), MIN_RATIO, MAX_RATIO))


def search_timbre(target_db: np.ndarray, key: int, *, harmonic_only: bool = False) -> tuple[Timbre, float]:
    """The timbre whose engine render's band levels are closest to ``target_db``, and that distance (dB).

    ``harmonic_only`` restricts the search to what a pitched fit can reach (integer ratios of the key's
    frequency, no feedback): the baseline the free search is measured against.
    """
    key_hz = midi_to_hz(key)
    if harmonic_only:
        carrier_ratios = sorted({_ratio(max(1.0, round(hz / key_hz))) for hz in CARRIER_HZ})
        modulator_factors, feedbacks = (1.0, 2.0, 3.0, 5.0), (0.0,)
    else:
        carrier_ratios = sorted({_ratio(hz / key_hz) for hz in CARRIER_HZ} | {1.0})
        modulator_factors, feedbacks = MODULATOR_RATIOS, FEEDBACKS
    scored = []
    for carrier in carrier_ratios:
        timbre = Timbre(carrier, carrier, 0.0, 0.0)
        scored.append((band_distance_db(target_db, _render_bands(key, timbre)), timbre))
    scored.sort(key=lambda pair: pair[0])
    best = scored[0]
    for _, plain in scored[:CARRIER_CANDIDATES]:
        for factor, index, feedback in itertools.product(modulator_factors, INDICES, feedbacks):
            modulator = _ratio(round(plain.carrier_ratio * factor) if harmonic_only else plain.carrier_ratio * factor)
            timbre = Timbre(plain.carrier_ratio, max(modulator, MIN_RATIO if not harmonic_only else 1.0),
                            index, feedback)
            distance = band_distance_db(target_db, _render_bands(key, timbre))
            if distance < best[0]:
                best = (distance, timbre)
    return best[1], best[0]


def _envelope_and_release(audio: np.ndarray, onset: int, source: str) -> tuple[list, float, float]:
    """Envelope segments (dB re the loudest frame), release seconds (the sample's own decay per 60 dB) and the
    loudest frame's RMS."""
    hop = round(HOP_S * SAMPLE_RATE)
    centers = onset + np.arange(max(1, (audio.size - onset) // hop)) * hop
    rms = frame_rms(audio, centers, hop)
    peak = float(rms.max())
    if peak <= 0.0:
        raise AnalysisError("silent: nothing to fit", source)
    levels = level_db(rms, peak)
    audible = np.flatnonzero(levels > FLOOR_DB)
    last = int(audible[-1]) if audible.size else 1
    times = np.arange(centers.size) * HOP_S
    frames = np.arange(1, max(last + 1, 3))
    if frames.size < 2:
        raise AnalysisError("too short to fit: audible in fewer than 2 analysis frames", source)
    envelope = fit_envelope(times[frames], np.maximum(levels[frames], FLOOR_DB))
    peak_frame = int(np.argmax(rms))
    decay_s = max(times[last] - times[peak_frame], HOP_S)
    fall_db = max(-float(levels[last]), 20.0)
    release_s = float(SCHEMA["envelope.release_s"].clip(decay_s * 60.0 / fall_db))
    return envelope.segments, release_s, peak


def fit_drum(audio: np.ndarray, key: int, *, source: str = "<audio>", velocity: int | None = None) -> DrumFit:
    """Fit a drum patch for ``key`` to mono ``audio`` at SAMPLE_RATE (see the module docstring)."""
    from wifm_synth.engine import render_note

    started = time.perf_counter()
    onset = detect_onset(audio, SAMPLE_RATE)
    segments, release_s, peak_rms = _envelope_and_release(audio, onset, source)
    target_db = band_levels_db(audio, SAMPLE_RATE, onset)
    # The pitched-reach search too: its integer carriers sit between the free search's half-octave steps.
    timbre, loss = min(search_timbre(target_db, key), search_timbre(target_db, key, harmonic_only=True),
                       key=lambda found: found[1])
    # The carrier level that gives the sample's loudest frame RMS, measured on a render of the patch itself.
    reference_velocity = velocity if velocity is not None else SCHEMA["pitch.reference_velocity"].default
    trial = _patch(key, timbre, 1.0, segments, release_s, Path(source).stem)
    trial.pitch.reference_velocity = int(reference_velocity)
    rendered = render_note(trial, key, velocity=int(reference_velocity), hold_s=SPECTRUM_S, tail_s=0.0)
    hop = round(HOP_S * SAMPLE_RATE)
    rendered_peak = float(frame_rms(rendered, np.arange(0, rendered.size, hop), hop).max())
    level = float(SCHEMA["operator.level"].clip(peak_rms / rendered_peak if rendered_peak > 0 else 1.0))
    trial.operators[0].level = round(level, 6)
    seconds = time.perf_counter() - started
    trial.metadata = {
        "source": os.path.basename(source), "method": "drum", "unpitched": True, "loss": loss,
        "loss_kind": "band_db", "ratios": [timbre.carrier_ratio, timbre.modulator_ratio],
        "seconds": round(seconds, 4), "tool_version": wifm_synth.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return DrumFit(patch=trial, loss=loss, timbre=timbre, seconds=seconds)


def fit_drum_file(path: str | os.PathLike, key: int | None, *, velocity: int | None = None) -> DrumFit:
    """Load a drum sample and fit it at ``key`` (required: a drum is never pitch-detected)."""
    if key is None:
        raise InputError("a drum sample needs its key (from the name, the SFZ region or the SoundFont)", path)
    audio, _ = load_audio(path, SAMPLE_RATE)
    return fit_drum(audio, int(key), source=os.fspath(path), velocity=velocity)
