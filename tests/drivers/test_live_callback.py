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
    CLOCK_MONOTONIC,
    CLOCK_SAMPLE_RATE,
    CLOCK_THREAD_CPUTIME_ID,
    CLOCK_UNDERFLOWS,
    PA_CONTINUE,
    PA_OUTPUT_UNDERFLOW,
    TABLE_CLOCK,
    TABLE_CLOCK_GETTIME,
    TABLE_ENGINE_FIRST,
    TABLE_ENTRY_WIDTH,
    TABLE_JACK_CLIENT,
    TABLE_JACK_LAST_FRAME_TIME,
    TABLE_SIZE,
    engine_pointer_table,
    engine_stream_callback,
)
from wifm_synth.engine.layout import (
    ENGINE_ARRAYS,
    ENGINE_LATE_PERIODS,
    ENGINE_STALLED_PERIODS,
    ENGINE_WORST_PERIOD_CPU_NS,
    ENGINE_WORST_PERIOD_NS,
)
from wifm_synth.engine.period_clock import CLOCK_JACK_ORIGIN, CLOCK_JACK_PERIODS
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


LAST_FRAME_TIME = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_void_p)
CLOCK_GETTIME = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)


def test_callback_dates_its_periods_by_jack_and_counts_the_late_ones():
    """The C functions the callback calls through its table, played by ctypes: a JACK cycle clock that
    starts near the 2**32 wrap, and clocks on which every callback takes 5 ms (2.67 ms budget) of which
    1 ms is its own CPU time."""
    synth = Synth(two_operator_patch(), RATE, 4)
    clock = np.zeros(CLOCK_FIELDS)
    clock[CLOCK_SAMPLE_RATE] = RATE
    table = engine_pointer_table(synth.state, clock)
    cycles = iter([(1 << 32) - PERIOD, 0, PERIOD])
    clients = []

    def last_frame_time(client):
        clients.append(client)
        return next(cycles)

    steps_ns = {CLOCK_MONOTONIC: 5_000_000, CLOCK_THREAD_CPUTIME_ID: 1_000_000}
    now_ns = dict.fromkeys(steps_ns, 0)

    def clock_gettime(clock_id, timespec):
        now_ns[clock_id] += steps_ns[clock_id]  # from one reading to the next: one callback
        ctypes.cast(timespec, ctypes.POINTER(ctypes.c_int64))[0] = now_ns[clock_id] // 1_000_000_000
        ctypes.cast(timespec, ctypes.POINTER(ctypes.c_int64))[1] = now_ns[clock_id] % 1_000_000_000
        return 0

    jack_function, time_function = LAST_FRAME_TIME(last_frame_time), CLOCK_GETTIME(clock_gettime)
    table[TABLE_JACK_LAST_FRAME_TIME] = ctypes.cast(jack_function, ctypes.c_void_p).value
    table[TABLE_JACK_CLIENT] = 0x1234
    table[TABLE_CLOCK_GETTIME] = ctypes.cast(time_function, ctypes.c_void_p).value
    origins = []
    for index in range(3):
        call_callback(synth, clock, table, stream_time=1.0 + index * PERIOD / RATE)
        origins.append(clock[CLOCK_JACK_ORIGIN])
    assert clients == [0x1234] * 3
    # Engine frame 0 at JACK frame 2**32 − PERIOD; after the wrap the origin is the same modulo 2**32.
    assert origins == [PERIOD - (1 << 32), PERIOD, PERIOD] and clock[CLOCK_JACK_PERIODS] == 3
    engine = synth.state.engine
    assert (engine[ENGINE_LATE_PERIODS], engine[ENGINE_STALLED_PERIODS]) == (0, 3)
    assert (engine[ENGINE_WORST_PERIOD_NS], engine[ENGINE_WORST_PERIOD_CPU_NS]) == (5_000_000, 1_000_000)


def test_callback_times_itself_with_the_real_clock():
    synth = Synth(two_operator_patch(), RATE, 4)
    clock = np.zeros(CLOCK_FIELDS)
    clock[CLOCK_SAMPLE_RATE] = RATE
    table = engine_pointer_table(synth.state, clock)
    for index in range(5):
        call_callback(synth, clock, table, stream_time=index * PERIOD / RATE)
    engine = synth.state.engine
    assert 0 < engine[ENGINE_WORST_PERIOD_CPU_NS] and 0 < engine[ENGINE_WORST_PERIOD_NS] < 1_000_000_000
    assert clock[CLOCK_JACK_PERIODS] == 0  # no JACK function given: no JACK dating
