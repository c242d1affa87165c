"""Host-period independence, the event ring protocol, and what a live driver relies on."""

import numpy as np
import pytest

from wifm_synth.engine import Synth, process_block
from wifm_synth.engine.layout import RING_READ, RING_WRITE
from wifm_synth.engine.state import allocate_state
from wifm_synth.engine.tables import compile_instrument
from wifm_synth.errors import InputError
from wifm_synth.voice.patch import Envelope, Lfo, Operator, Patch

RATE = 48000


def busy_patch() -> Patch:
    return Patch(operators=[
        Operator(level=0.2, modulators=[1], envelope=Envelope([(0.01, 0.0), (0.5, -12.0)], 0.2)),
        Operator(ratio=3.0, level=2.0, carrier=False, feedback=0.7, envelope=Envelope([(0.02, 0.0), (1.0, -20.0)], 0.3)),
    ], lfo=Lfo(rate_hz=5.0, pitch_depth_cents=10.0, amp_depth_db=2.0))


def scripted_events():
    rng = np.random.default_rng(3)
    events = []
    for index in range(60):
        frame = int(rng.integers(0, 40000))
        channel = int(rng.integers(0, 4))
        key = int(rng.integers(40, 90))
        events += [(frame, 0x90 | channel, key, int(rng.integers(1, 128))),
                   (frame + int(rng.integers(100, 8000)), 0x80 | channel, key, 0)]
    events += [(5000, 0xB0, 64, 127), (20000, 0xB0, 64, 0), (7000, 0xE0 | 1, 0, 90), (9001, 0xB0 | 2, 10, 10),
               (12345, 0xB0 | 3, 7, 60), (15000, 0xB0, 1, 100), (30000, 0xB0 | 1, 123, 0), (31000, 0xD0 | 2, 90, 0)]
    return sorted(events, key=lambda event: event[0])


def render_with_period(period: int, frames: int = 48000) -> np.ndarray:
    synth = Synth(busy_patch(), RATE, polyphony=32)
    for event in scripted_events():
        synth.send(*event)
    chunks = [synth.render(min(period, frames - start)) for start in range(0, frames, period)]
    return np.concatenate(chunks)


def test_output_does_not_depend_on_the_host_period():
    reference = render_with_period(64)
    assert np.max(np.abs(reference)) > 0.05
    for period in (17, 128, 1000):
        np.testing.assert_array_equal(render_with_period(period), reference)


def test_process_block_serves_a_live_style_caller_from_the_raw_arrays():
    state = allocate_state(compile_instrument(busy_patch()), RATE, polyphony=8, event_capacity=8)
    events, indices = state.ring_events, state.ring_indices
    left = np.zeros(128, dtype=np.float32)
    right = np.zeros(128, dtype=np.float32)
    # producer protocol: write the record, then publish the write index
    events[0] = (64, 0x90, 69, 100)
    indices[RING_WRITE] = 1
    process_block(state, left, right, 128)
    assert indices[RING_READ] == 1
    assert np.all(left[:65] == 0.0) and np.any(left[65:] != 0.0)
    assert np.all(np.isfinite(right))


def test_render_validates_the_frame_count():
    synth = Synth(busy_patch(), RATE)
    with pytest.raises(InputError, match="frame count"):
        synth.render(-1)
    assert synth.render(0).shape == (0, 2)
