"""Bounded output: the schema's per-voice ceiling, and the safety stage (engine/safety.py) against its NumPy
twin — the identity at or below −1 dBFS bit for bit, never past 0 dBFS, counted for the notice."""

import json
import math
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from wifm_synth.engine import Synth
from wifm_synth.engine.kernels import channel_gains
from wifm_synth.engine.layout import (
    ENGINE_LIMITED_PEAK_CENTI_DBFS,
    ENGINE_LIMITED_SAMPLES,
)
from wifm_synth.engine.safety import (
    LIMIT_THRESHOLD,
    UNBOUNDED_PEAK_CENTI_DBFS,
    centi_dbfs,
    count_limiting,
    limit_frames,
)
from wifm_synth.voice.patch import Envelope, Lfo, Operator, Patch, Pitch
from wifm_synth.voice.schema import SCALING_GAIN_CEILING_DB, SCHEMA, voice_peak_ceiling

RATE = 48000


def soft_limit_twin(samples: np.ndarray) -> np.ndarray:
    """NumPy twin of ``soft_limit``: threshold + headroom · tanh(excess / headroom) above −1 dBFS, NaN → 0."""
    threshold = 10.0 ** (-1.0 / 20.0)
    headroom = 1.0 - threshold
    magnitude = np.abs(samples.astype(np.float64))
    with np.errstate(invalid="ignore"):
        limited = np.minimum(threshold + headroom * np.tanh((magnitude - threshold) / headroom), 1.0)
        out = np.where(magnitude <= threshold, samples, np.sign(samples) * limited)
    return np.where(np.isnan(samples), 0.0, out).astype(samples.dtype)


def loudest_valid_patch() -> Patch:
    """Every schema range at its loudest end: six in-phase carriers of the highest level, every envelope
    segment at its highest level, the steepest velocity and key scaling from the lowest reference, the
    strongest feedback."""
    def high(key):
        return SCHEMA[key].high

    segments = [(0.001, high("segment.end_level_db"))] * int(high("envelope.segments"))
    operators = [Operator(ratio=1.0, level=high("operator.level"), feedback=high("operator.feedback"),
                          velocity_sensitivity=high("operator.velocity_sensitivity"),
                          key_level_db_per_octave=high("operator.key_level_db_per_octave"),
                          rate_scaling=high("operator.rate_scaling"),
                          envelope=Envelope(segments, high("envelope.release_s")))
                 for _ in range(int(high("patch.operators")))]
    return Patch(name="loudest valid", operators=operators, lfo=Lfo(rate_hz=high("lfo.rate_hz")),
                 pitch=Pitch(reference_note=int(SCHEMA["pitch.reference_note"].low),
                             reference_velocity=int(SCHEMA["pitch.reference_velocity"].low)))


def test_the_voice_ceiling_is_derived_from_the_schema_ranges():
    expected = (SCHEMA["patch.operators"].high * SCHEMA["operator.level"].high
                * 10 ** (SCHEMA["segment.end_level_db"].high / 20) * 10 ** (SCALING_GAIN_CEILING_DB / 20))
    assert voice_peak_ceiling() == pytest.approx(expected)
    wider = replace(SCHEMA, parameters=tuple(replace(p, high=2 * p.high) if p.key == "operator.level" else p
                                             for p in SCHEMA.parameters))
    assert voice_peak_ceiling(wider) == pytest.approx(2 * expected)  # one definition: it follows the ranges


def test_one_voice_of_the_loudest_valid_patch_reaches_but_never_passes_the_ceiling():
    synth = Synth(loudest_valid_patch(), RATE, polyphony=2)
    synth.send(0, 0x90, 127, 127)
    engine_output = synth.render(RATE // 4, dtype=np.float64)  # no safety stage on this path
    left_gain, _ = channel_gains(100.0, 127.0, 64.0)  # default volume, expression, centre pan
    peak = float(np.max(np.abs(engine_output[:, 0]))) / left_gain
    assert np.all(np.isfinite(engine_output))
    assert 0.5 * voice_peak_ceiling() < peak <= voice_peak_ceiling() * (1 + 1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_safety_stage_matches_its_numpy_twin(dtype):
    rng = np.random.default_rng(5)
    frames = (rng.standard_normal((4096, 2)) * rng.choice([0.1, 1.0, 10.0, 1e6], size=(4096, 2))).astype(dtype)
    frames[:4, 0] = [np.inf, -np.inf, np.nan, LIMIT_THRESHOLD]
    expected = soft_limit_twin(frames)
    over = ~(np.abs(frames) <= LIMIT_THRESHOLD)
    peak_before = float(np.max(np.where(np.isnan(frames), np.inf, np.abs(frames))))
    changed, peak = limit_frames(frames)
    assert changed == np.count_nonzero(over) and peak == peak_before == np.inf
    np.testing.assert_array_equal(frames[~over], expected[~over])
    np.testing.assert_allclose(frames[over], expected[over], rtol=4 * np.finfo(dtype).eps, atol=0)
    assert np.all(np.isfinite(frames)) and np.max(np.abs(frames)) <= 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_safety_stage_is_exactly_the_identity_at_or_below_its_threshold(dtype):
    rng = np.random.default_rng(6)
    frames = rng.uniform(-LIMIT_THRESHOLD, LIMIT_THRESHOLD, size=(48000, 2)).astype(dtype)
    frames[:3, 1] = [LIMIT_THRESHOLD, -LIMIT_THRESHOLD, 0.0]
    frames = np.clip(frames, -LIMIT_THRESHOLD, LIMIT_THRESHOLD).astype(dtype)  # float32 rounding may cross it
    frames[frames.astype(np.float64) > LIMIT_THRESHOLD] = np.nextafter(dtype(LIMIT_THRESHOLD), dtype(0))
    frames[frames.astype(np.float64) < -LIMIT_THRESHOLD] = -np.nextafter(dtype(LIMIT_THRESHOLD), dtype(0))
    original = frames.copy()
    assert limit_frames(frames) == (0, 0.0)
    assert frames.tobytes() == original.tobytes()


def test_safety_stage_is_continuous_increasing_and_below_full_scale():
    magnitudes = np.linspace(0.0, 40.0, 400_001)
    frames = magnitudes[:, None].copy()
    limit_frames(frames)
    out = frames[:, 0]
    assert np.all(np.diff(out) >= 0) and out[-1] <= 1.0
    assert np.max(np.abs(np.diff(out))) <= np.max(np.diff(magnitudes)) * (1 + 1e-9)  # slope ≤ 1: no step
    assert out[-1] > 0.999  # it reaches toward full scale instead of a lower ceiling


def test_limiting_counters_keep_the_total_and_the_loudest_peak():
    engine = np.zeros(ENGINE_LIMITED_PEAK_CENTI_DBFS + 1, dtype=np.int64)
    count_limiting(engine, 0, 0.0)
    assert engine[ENGINE_LIMITED_SAMPLES] == 0 and engine[ENGINE_LIMITED_PEAK_CENTI_DBFS] == 0
    count_limiting(engine, 3, 2.0)
    count_limiting(engine, 2, 1.5)
    assert engine[ENGINE_LIMITED_SAMPLES] == 5 and engine[ENGINE_LIMITED_PEAK_CENTI_DBFS] == centi_dbfs(2.0) == 603
    count_limiting(engine, 1, math.inf)
    assert engine[ENGINE_LIMITED_PEAK_CENTI_DBFS] == UNBOUNDED_PEAK_CENTI_DBFS


CALLBACK_UNDER_RANDOM_MIDI = """
import ctypes, json, sys
import numpy as np
from numba.core.runtime import rtsys
sys.path.insert(0, {tests!r})
from test_output_safety import loudest_valid_patch
from wifm_synth.engine import Synth
from wifm_synth.engine.abi import CLOCK_FIELDS, CLOCK_SAMPLE_RATE, engine_pointer_table, engine_stream_callback

PERIOD = 256
synth = Synth(loudest_valid_patch(), 48000, polyphony=64)
clock = np.zeros(CLOCK_FIELDS)
clock[CLOCK_SAMPLE_RATE] = 48000
table = engine_pointer_table(synth.state, clock)
output = np.zeros(2 * PERIOD, dtype=np.float32)
time_info = np.zeros(3)
callback = engine_stream_callback().ctypes
arguments = (None, output.ctypes.data_as(ctypes.c_void_p), PERIOD, time_info.ctypes.data_as(ctypes.c_void_p), 0,
             table.ctypes.data_as(ctypes.c_void_p))
rng = np.random.default_rng(13)
peak, finite, allocations = 0.0, True, 0
for period in range(400):  # about 2 s of random notes, bends and controllers on every channel
    for _ in range(rng.integers(0, 4)):
        channel = int(rng.integers(0, 16))
        kind = rng.choice([0x90, 0x80, 0xB0, 0xE0])
        data2 = int(rng.integers(1, 128))
        data1 = int(rng.choice([7, 11, 10, 1, 64])) if kind == 0xB0 else int(rng.integers(0, 128))
        synth.send(synth.frame + int(rng.integers(0, PERIOD)), int(kind) | channel, data1, data2)
    before = rtsys.get_allocation_stats().alloc
    callback(*arguments)
    allocations += rtsys.get_allocation_stats().alloc - before if period else 0  # the first call compiles
    finite = finite and bool(np.all(np.isfinite(output)))
    peak = max(peak, float(np.max(np.abs(output))))
print(json.dumps({{"peak": peak, "finite": finite, "allocations": allocations,
                  "limited": synth.limited_samples, "report": synth.limiting_report(), "notices": synth.notices()}}))
"""


def test_the_loudest_valid_patch_under_random_midi_through_the_audio_callback_stays_within_full_scale():
    script = CALLBACK_UNDER_RANDOM_MIDI.format(tests=os.path.dirname(__file__))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            env={**os.environ, "NUMBA_NRT_STATS": "1"})
    report = json.loads(result.stdout)
    assert report["finite"] and 0.99 < report["peak"] <= 1.0
    assert report["allocations"] == 0
    assert report["limited"] > 0
    assert report["report"].startswith(f"output limited on {report['limited']} samples (peak before limiting +")
    assert report["report"] + " so far" in report["notices"]
