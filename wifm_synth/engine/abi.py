"""The engine's C entry point: a PortAudio stream callback compiled with Numba ``@cfunc``, and its ``userData``.

The callback is machine code that PortAudio calls directly, so the audio thread never runs Python
bytecode and never waits for the GIL. Everything it touches is preallocated: ``userData`` points to
a small int64 *pointer table* — the stream clock's address, then each engine array's address and
shape — and the callback rebuilds the ``EngineState`` from it with ``numba.carray``. Table layout and
rebuilding are both generated from the layout spec (``engine/layout.py``), so adding a state array
needs no change here. The callback must not read mutable globals: Numba freezes global arrays into
the compiled code as constants.

The callback keeps the stream clock (``engine/period_clock.py``): the engine frame at stream time 0 (from
``timeInfo->currentTime``) and, once a driver has given it JACK's ``jack_last_frame_time`` and a client,
the engine frame of JACK frame 0, exact; so a driver can stamp events with frames. It also times itself
(``clock_gettime``, monotonic and thread CPU clocks) and counts the periods it overran.

C functions are called through addresses kept in the pointer table (``call_through``), never through
constants frozen into the code, so the compiled callback holds nothing process-specific and Numba can
cache it. A zero address means "not available": no JACK dating, no timing.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np
from llvmlite import ir
from numba import carray, cfunc, njit, types
from numba.extending import intrinsic

from wifm_synth.engine.block import process_block
from wifm_synth.engine.kernels import KERNEL
from wifm_synth.engine.layout import (
    ENGINE_ARRAYS,
    ENGINE_FRAMES_OUT,
    ENGINE_SAMPLE_RATE,
    EngineState,
    layout_mismatches,
)
from wifm_synth.engine.period_clock import (
    CLOCK_CALLBACKS,
    CLOCK_FIELDS,
    CLOCK_FRAME_ORIGIN,
    CLOCK_SAMPLE_RATE,
    CLOCK_UNDERFLOWS,
    count_period_time,
    date_period_by_jack,
)
from wifm_synth.engine.safety import count_limiting, limit_frames
from wifm_synth.errors import DeviceError

OUTPUT_CHANNELS = 2  # interleaved stereo float32
PA_OUTPUT_UNDERFLOW = 0x00000004  # statusFlags bit
PA_CONTINUE = 0
TIME_INFO_CURRENT_TIME = 1  # PaStreamCallbackTimeInfo: inputBufferAdcTime, currentTime, outputBufferDacTime
TIME_INFO_FIELDS = 3
PA_STREAM_CALLBACK = types.intc(types.voidptr, types.voidptr, types.ulong, types.voidptr, types.ulong, types.voidptr)

CLOCK_MONOTONIC = 1  # clockid_t values of Linux (and glibc's other systems)
CLOCK_THREAD_CPUTIME_ID = 3

# --- the pointer table (int64): the clock's address, C functions and their scratch, then per engine
# array (address, shape…) ---
TABLE_CLOCK = 0
TABLE_CLOCK_GETTIME = 1  # int clock_gettime(clockid_t, struct timespec *), or 0: no timing
TABLE_TIMESPEC = 2  # its struct timespec (two 8-byte words: seconds, nanoseconds), scratch
TABLE_JACK_LAST_FRAME_TIME = 4  # jack_nframes_t jack_last_frame_time(jack_client_t *), or 0: no JACK dating
TABLE_JACK_CLIENT = 5  # a client of the JACK server the stream plays on
TABLE_ENGINE_FIRST = 6
TABLE_ENTRY_WIDTH = 1 + max(spec.ndim for spec in ENGINE_ARRAYS)
TABLE_SIZE = TABLE_ENGINE_FIRST + TABLE_ENTRY_WIDTH * len(ENGINE_ARRAYS)


@intrinsic
def address_as_voidptr(typingctx, address):
    """``(void *) address`` — turns an address stored in the pointer table back into a pointer."""
    signature = types.voidptr(types.int64)

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], context.get_value_type(types.voidptr))

    return signature, codegen


def call_through(result, arguments):
    """Typing and lowering of a call to the C function at an address: ``f(address, *arguments)``."""
    signature = result(types.int64, *arguments)

    def codegen(context, builder, sig, args):
        function_type = ir.FunctionType(context.get_value_type(result),
                                        [context.get_value_type(argument) for argument in arguments])
        function = builder.inttoptr(args[0], function_type.as_pointer())
        return builder.call(function, args[1:])

    return signature, codegen


@intrinsic
def pointer_address(typingctx, pointer):
    """``(int64) pointer``."""
    def codegen(context, builder, signature, args):
        return builder.ptrtoint(args[0], context.get_value_type(types.int64))

    return types.int64(types.voidptr), codegen


@intrinsic
def _clock_gettime(typingctx, address, clock_id, timespec):
    return call_through(types.intc, (types.intc, types.voidptr))


@intrinsic
def call_uint32_of_pointer(typingctx, address, pointer):
    """The C function ``uint32 f(void *)`` at ``address``: ``jack_last_frame_time(client)``,
    ``jack_midi_get_event_count(buffer)``."""
    return call_through(types.uint32, (types.voidptr,))


@njit(**KERNEL)
def _now_ns(table, clock_id):
    """``clock_id``'s time in nanoseconds through the table's ``clock_gettime``; 0 without one."""
    if table[TABLE_CLOCK_GETTIME] == 0:
        return 0
    timespec = address_as_voidptr(np.int64(table.ctypes.data) + TABLE_TIMESPEC * table.itemsize)
    if _clock_gettime(table[TABLE_CLOCK_GETTIME], np.intc(clock_id), timespec) != 0:
        return 0
    return table[TABLE_TIMESPEC] * 1_000_000_000 + table[TABLE_TIMESPEC + 1]


def clock_gettime_address() -> int:
    """The address of libc's ``clock_gettime`` (a vDSO call for the monotonic clock: no syscall, no lock)."""
    return ctypes.cast(ctypes.CDLL(None).clock_gettime, ctypes.c_void_p).value


def _table_entry(index: int) -> int:
    return TABLE_ENGINE_FIRST + TABLE_ENTRY_WIDTH * index


def _state_from_table_source() -> str:
    """Source of ``state_from_table(table)``: one ``carray`` per layout spec, in EngineState order."""
    arrays = []
    for index, spec in enumerate(ENGINE_ARRAYS):
        entry = _table_entry(index)
        shape = "".join(f"table[{entry + 1 + axis}], " for axis in range(spec.ndim))
        arrays.append(f"        carray(address_as_voidptr(table[{entry}]), ({shape}), np.{np.dtype(spec.dtype).name}),"
                      f"  # {spec.name}")
    return "def state_from_table(table):\n    return EngineState(\n" + "\n".join(arrays) + "\n    )\n"


def _compile_state_from_table():
    namespace = {"EngineState": EngineState, "carray": carray, "address_as_voidptr": address_as_voidptr, "np": np}
    exec(_state_from_table_source(), namespace)  # noqa: S102 - generated from the layout spec above, no input
    # Not cached by itself (it has no source file): it is compiled into the cached callback.
    return njit(nogil=True)(namespace["state_from_table"])


state_from_table = _compile_state_from_table()


def engine_pointer_table(state: EngineState, clock: np.ndarray) -> np.ndarray:
    """The callback's ``userData``: addresses and shapes of the clock and every engine array.

    The arrays must outlive the stream (the caller keeps ``state`` and ``clock``).
    """
    problems = layout_mismatches(state)
    if problems:
        raise DeviceError(f"engine state does not match its layout: {'; '.join(problems)}")
    if clock.dtype != np.float64 or clock.shape != (CLOCK_FIELDS,):
        raise DeviceError(f"stream clock: must be float64 ({CLOCK_FIELDS},), got {clock.dtype} {clock.shape}")
    table = np.zeros(TABLE_SIZE, dtype=np.int64)
    table[TABLE_CLOCK] = clock.ctypes.data
    table[TABLE_CLOCK_GETTIME] = clock_gettime_address()
    for index, array in enumerate(state):
        entry = _table_entry(index)
        table[entry] = array.ctypes.data
        table[entry + 1:entry + 1 + array.ndim] = array.shape
    return table


def _stream_callback(input_buffer, output_buffer, frame_count, time_info, status_flags, user_data):
    """PortAudio callback: render ``frame_count`` interleaved stereo float32 frames with the engine."""
    table = carray(user_data, TABLE_SIZE, np.int64)
    started_ns = _now_ns(table, CLOCK_MONOTONIC)
    started_cpu_ns = _now_ns(table, CLOCK_THREAD_CPUTIME_ID)
    clock = carray(address_as_voidptr(table[TABLE_CLOCK]), CLOCK_FIELDS, np.float64)
    state = state_from_table(table)
    times = carray(time_info, TIME_INFO_FIELDS, np.float64)
    clock[CLOCK_FRAME_ORIGIN] = (state.engine[ENGINE_FRAMES_OUT]
                                 - times[TIME_INFO_CURRENT_TIME] * clock[CLOCK_SAMPLE_RATE])
    if table[TABLE_JACK_LAST_FRAME_TIME] != 0:
        cycle_frame = call_uint32_of_pointer(table[TABLE_JACK_LAST_FRAME_TIME],
                                             address_as_voidptr(table[TABLE_JACK_CLIENT]))
        date_period_by_jack(clock, state.engine[ENGINE_FRAMES_OUT], np.int64(cycle_frame))
    if status_flags & PA_OUTPUT_UNDERFLOW:
        clock[CLOCK_UNDERFLOWS] += 1
    clock[CLOCK_CALLBACKS] += 1
    # The engine writes the two channels straight into the interleaved buffer through strided views.
    frames = carray(output_buffer, (frame_count, OUTPUT_CHANNELS), np.float32)
    process_block(state, frames[:, 0], frames[:, 1], frame_count)
    changed, peak = limit_frames(frames)  # the last stage: nothing past 0 dBFS reaches the device
    count_limiting(state.engine, changed, peak)
    if table[TABLE_CLOCK_GETTIME] != 0:
        count_period_time(state.engine, _now_ns(table, CLOCK_MONOTONIC) - started_ns,
                          _now_ns(table, CLOCK_THREAD_CPUTIME_ID) - started_cpu_ns, np.int64(frame_count),
                          state.engine[ENGINE_SAMPLE_RATE])
    return PA_CONTINUE


@functools.cache
def engine_stream_callback():
    """The compiled callback (``.address`` for PortAudio, ``.ctypes`` to call it from Python).

    Compiled, or loaded from Numba's cache, on first use, so listing devices doesn't pay for it.
    """
    return cfunc(PA_STREAM_CALLBACK, cache=True)(_stream_callback)
