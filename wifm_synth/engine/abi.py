"""The engine's C entry point: a PortAudio stream callback compiled with Numba ``@cfunc``, and its ``userData``.

The callback is machine code that PortAudio calls directly, so the audio thread never runs Python
bytecode and never waits for the GIL. Everything it touches is preallocated: ``userData`` points to
a small int64 *pointer table* — the stream clock's address, then each engine array's address and
shape — and the callback rebuilds the ``EngineState`` from it with ``numba.carray``. Table layout and
rebuilding are both generated from the layout spec (``engine/layout.py``), so adding a state array
needs no change here. The callback must not read mutable globals: Numba freezes global arrays into
the compiled code as constants.

The stream clock is written by the callback once per period and read by the MIDI thread (each field
is one aligned 8-byte store, so a reader never sees a torn value) and by the main thread: the engine
frame at stream time 0 (from ``timeInfo->currentTime``), so a driver can stamp events with frames.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import carray, cfunc, njit, types
from numba.extending import intrinsic

from wifm_synth.engine.block import process_block
from wifm_synth.engine.layout import (
    ENGINE_ARRAYS,
    ENGINE_FRAMES_OUT,
    EngineState,
    layout_mismatches,
)
from wifm_synth.engine.safety import count_limiting, limit_frames
from wifm_synth.errors import DeviceError

OUTPUT_CHANNELS = 2  # interleaved stereo float32
PA_OUTPUT_UNDERFLOW = 0x00000004  # statusFlags bit
PA_CONTINUE = 0
TIME_INFO_CURRENT_TIME = 1  # PaStreamCallbackTimeInfo: inputBufferAdcTime, currentTime, outputBufferDacTime
TIME_INFO_FIELDS = 3
PA_STREAM_CALLBACK = types.intc(types.voidptr, types.voidptr, types.ulong, types.voidptr, types.ulong, types.voidptr)

# --- the stream clock (float64) ---
CLOCK_FRAME_ORIGIN = 0  # engine frame at stream time 0
CLOCK_SAMPLE_RATE = 1
CLOCK_UNDERFLOWS = 2  # periods PortAudio flagged as output underflow
CLOCK_CALLBACKS = 3
CLOCK_FIELDS = 4

# --- the pointer table (int64): the clock's address, then per engine array (address, shape…) ---
TABLE_CLOCK = 0
TABLE_ENGINE_FIRST = 1
TABLE_ENTRY_WIDTH = 1 + max(spec.ndim for spec in ENGINE_ARRAYS)
TABLE_SIZE = TABLE_ENGINE_FIRST + TABLE_ENTRY_WIDTH * len(ENGINE_ARRAYS)


@intrinsic
def address_as_voidptr(typingctx, address):
    """``(void *) address`` — turns an address stored in the pointer table back into a pointer."""
    signature = types.voidptr(types.int64)

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], context.get_value_type(types.voidptr))

    return signature, codegen


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
    for index, array in enumerate(state):
        entry = _table_entry(index)
        table[entry] = array.ctypes.data
        table[entry + 1:entry + 1 + array.ndim] = array.shape
    return table


def _stream_callback(input_buffer, output_buffer, frame_count, time_info, status_flags, user_data):
    """PortAudio callback: render ``frame_count`` interleaved stereo float32 frames with the engine."""
    table = carray(user_data, TABLE_SIZE, np.int64)
    clock = carray(address_as_voidptr(table[TABLE_CLOCK]), CLOCK_FIELDS, np.float64)
    state = state_from_table(table)
    times = carray(time_info, TIME_INFO_FIELDS, np.float64)
    clock[CLOCK_FRAME_ORIGIN] = (state.engine[ENGINE_FRAMES_OUT]
                                 - times[TIME_INFO_CURRENT_TIME] * clock[CLOCK_SAMPLE_RATE])
    if status_flags & PA_OUTPUT_UNDERFLOW:
        clock[CLOCK_UNDERFLOWS] += 1
    clock[CLOCK_CALLBACKS] += 1
    # The engine writes the two channels straight into the interleaved buffer through strided views.
    frames = carray(output_buffer, (frame_count, OUTPUT_CHANNELS), np.float32)
    process_block(state, frames[:, 0], frames[:, 1], frame_count)
    changed, peak = limit_frames(frames)  # the last stage: nothing past 0 dBFS reaches the device
    count_limiting(state.engine, changed, peak)
    return PA_CONTINUE


@functools.cache
def engine_stream_callback():
    """The compiled callback (``.address`` for PortAudio, ``.ctypes`` to call it from Python).

    Compiled, or loaded from Numba's cache, on first use, so listing devices doesn't pay for it.
    """
    return cfunc(PA_STREAM_CALLBACK, cache=True)(_stream_callback)
