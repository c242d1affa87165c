"""The compiled PortAudio callback, called directly (no audio device), against the engine's Python path;
its pointer table as the layout spec generates it."""

import ctypes

import numpy as np
import pytest

from wifm_synth.engine import Synth
from wifm_synth.engine.abi import (
    CLOCK_CALLBACKS,
    CLOCK_FIELDS,
    CLOCK_FRAME_ORIGIN,
    CLOCK_SAMPLE_RATE,
    CLOCK_UNDERFLOWS,
    PA_CONTINUE,
    PA_OUTPUT_UNDERFLOW,
    TABLE_CLOCK,
    TABLE_ENGINE_FIRST,
    TABLE_ENTRY_WIDTH,
    TABLE_SIZE,
    engine_pointer_table,
    engine_stream_callback,
)
from wifm_synth.engine.layout import ENGINE_ARRAYS
from wifm_synth.errors import DeviceError
from wifm_synth.voice.patch import Envelope, Operator, Patch

RATE = 48000
PERIOD = 128


def two_operator_patch() -> Patch:
    return Patch(operators=[
        Operator(level=0.3, modulators=[1], envelope=Envelope([(0.002, 0.0), (0.5, -12.0)], 0.05)),
        Operator(ratio=2.0, level=1.5, carrier=False, envelope=Envelope([(0.002, 0.0), (0.3, -20.0)], 0.05)),
    ])


EVENTS = [(10, 0x90, 60, 100), (200, 0x91, 67, 80), (300, 0xB0, 10, 20), (700, 0x80, 60, 0), (900, 0x81, 67, 0)]


def call_callback(synth: Synth, clock: np.ndarray, table: np.ndarray, stream_time: float, flags: int = 0):
    """Invoke the cfunc as PortAudio would; returns (result, interleaved output of PERIOD frames)."""
    output = np.full(PERIOD * 2, np.nan, dtype=np.float32)
    time_info = np.array([stream_time, stream_time, stream_time + PERIOD / RATE])
    result = engine_stream_callback().ctypes(None, output.ctypes.data_as(ctypes.c_void_p), PERIOD,
                                           time_info.ctypes.data_as(ctypes.c_void_p), flags,
                                           table.ctypes.data_as(ctypes.c_void_p))
    return result, output


def test_callback_renders_exactly_what_the_python_path_renders():
    live, reference = Synth(two_operator_patch(), RATE, 16), Synth(two_operator_patch(), RATE, 16)
    for synth in (live, reference):
        for event in EVENTS:
            synth.send(*event)
        synth.load_patch(0, louder_patch(), frame=400)  # a command record between the MIDI events
    clock = np.zeros(CLOCK_FIELDS)
    clock[CLOCK_SAMPLE_RATE] = RATE
    table = engine_pointer_table(live.state, clock)
    periods = 10
    blocks = []
    for index in range(periods):
        result, output = call_callback(live, clock, table, stream_time=1.0 + index * PERIOD / RATE)
        assert result == PA_CONTINUE
        blocks.append(output.reshape(PERIOD, 2))
    expected = reference.render(periods * PERIOD)
    assert np.max(np.abs(expected)) > 0.01
    np.testing.assert_array_equal(np.concatenate(blocks), expected)
    assert live.frame == periods * PERIOD


def louder_patch() -> Patch:
    return Patch(operators=[
        Operator(level=0.5, modulators=[1], envelope=Envelope([(0.002, 0.0), (0.5, -6.0)], 0.05)),
        Operator(ratio=3.0, level=1.0, carrier=False, feedback=0.3, envelope=Envelope([(0.002, 0.0)], 0.05)),
    ])


def test_pointer_table_holds_every_layout_array_in_spec_order():
    synth = Synth(two_operator_patch(), RATE, 4)
    clock = np.zeros(CLOCK_FIELDS)
    table = engine_pointer_table(synth.state, clock)
    assert table.shape == (TABLE_SIZE,) and table[TABLE_CLOCK] == clock.ctypes.data
    assert synth.state._fields == tuple(spec.name for spec in ENGINE_ARRAYS)
    for index, (spec, array) in enumerate(zip(ENGINE_ARRAYS, synth.state, strict=True)):
        entry = TABLE_ENGINE_FIRST + TABLE_ENTRY_WIDTH * index
        assert array.dtype == spec.dtype and array.flags.c_contiguous
        assert table[entry] == array.ctypes.data
        assert tuple(table[entry + 1:entry + 1 + spec.ndim]) == array.shape
        assert not table[entry + 1 + spec.ndim:entry + TABLE_ENTRY_WIDTH].any()


def test_callback_keeps_the_stream_clock():
    synth = Synth(two_operator_patch(), RATE, 4)
    clock = np.zeros(CLOCK_FIELDS)
    clock[CLOCK_SAMPLE_RATE] = RATE
    table = engine_pointer_table(synth.state, clock)
    call_callback(synth, clock, table, stream_time=2.0)
    assert clock[CLOCK_FRAME_ORIGIN] == 0 - 2.0 * RATE
    call_callback(synth, clock, table, stream_time=2.5, flags=PA_OUTPUT_UNDERFLOW)
    # The second block starts at engine frame PERIOD, half a second of stream time later.
    assert clock[CLOCK_FRAME_ORIGIN] == PERIOD - 2.5 * RATE
    assert clock[CLOCK_UNDERFLOWS] == 1
    assert clock[CLOCK_CALLBACKS] == 2


def test_pointer_table_refuses_a_mismatched_engine_array():
    synth = Synth(two_operator_patch(), RATE, 4)
    broken = synth.state._replace(voice_floats=synth.state.voice_floats.astype(np.float32))
    with pytest.raises(DeviceError, match="voice_floats is float32"):
        engine_pointer_table(broken, np.zeros(CLOCK_FIELDS))
