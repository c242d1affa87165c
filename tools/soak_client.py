"""The soak's own JACK client with no Python in JACK's thread: random MIDI out, the player's output in.

Its process callback is a Numba ``@cfunc`` like the player's MIDI input (``wifm_synth/drivers/jack_ring.py``,
whose byte ring and libjack calls it reuses): JACK calls it directly, it never takes the GIL, never
allocates, never locks. Each cycle it

- sends every event a feeder thread queued in the ring whose JACK frame falls in this cycle, at its
  offset (an event whose frame has passed goes out at offset 0 and is counted late), and
- scans the two captured channels: frames, peak, non-finite samples,

adding to the *current window's* row of a statistics array. The feeder selects the window (a relaxed
atomic store the callback loads once per cycle) and reads a window's row after it has switched away
from it and a cycle has passed.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np
from llvmlite import ir
from numba import carray, cfunc, njit, types
from numba.extending import intrinsic

from wifm_synth.drivers.jack_midi_in import cffi_address
from wifm_synth.drivers.jack_ring import (
    FRAME_MASK,
    INDEX_FIELDS,
    JACK_PROCESS_CALLBACK,
    function_addresses,
    next_event_frame,
    port_get_buffer,
    put_event,
    take_event,
)
from wifm_synth.engine.abi import (
    address_as_voidptr,
    call_through,
    call_uint32_of_pointer,
)
from wifm_synth.engine.ring import RING_KERNEL, load_index, store_index

RING_BYTES = 1 << 20  # 0.1 s of a 5000 event/s flood is ≈ 9 kB
MAX_WINDOWS = 16
_HALF_FRAME_RANGE = 1 << 31

# --- per-window statistics (int64) ---
STAT_FRAMES, STAT_NONFINITE, STAT_EVENTS_SENT, STAT_LATE_EVENTS, STAT_UNWRITTEN_EVENTS, STAT_FIELDS = range(6)
CONTROL_WINDOW = 0
CONTROL_FIELDS = 8  # one cache line

# --- the pointer table (int64) ---
(TABLE_CLIENT, TABLE_MIDI_OUT, TABLE_IN_LEFT, TABLE_IN_RIGHT, TABLE_RING, TABLE_RING_BYTES, TABLE_INDICES,
 TABLE_MESSAGE, TABLE_STATS, TABLE_PEAKS, TABLE_CONTROL, TABLE_PORT_GET_BUFFER, TABLE_MIDI_CLEAR_BUFFER,
 TABLE_MIDI_EVENT_WRITE, TABLE_LAST_FRAME_TIME, TABLE_SIZE) = range(16)
JACK_FUNCTIONS = {  # table slot: (name, ctypes result, ctypes arguments)
    TABLE_PORT_GET_BUFFER: ("jack_port_get_buffer", ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_uint32]),
    TABLE_MIDI_CLEAR_BUFFER: ("jack_midi_clear_buffer", None, [ctypes.c_void_p]),
    TABLE_MIDI_EVENT_WRITE: ("jack_midi_event_write", ctypes.c_int,
                             [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p, ctypes.c_size_t]),
    TABLE_LAST_FRAME_TIME: ("jack_last_frame_time", ctypes.c_uint32, [ctypes.c_void_p]),
}


@intrinsic
def _midi_clear_buffer(typingctx, address, buffer):
    """``jack_midi_clear_buffer(buffer)``: void f(void *)."""
    def codegen(context, builder, signature, args):
        function_type = ir.FunctionType(ir.VoidType(), [context.get_value_type(types.voidptr)])
        builder.call(builder.inttoptr(args[0], function_type.as_pointer()), [args[1]])
        return context.get_dummy_value()

    return types.void(types.int64, types.voidptr), codegen


@intrinsic
def _midi_event_write(typingctx, address, buffer, offset, data, size):
    return call_through(types.intc, (types.voidptr, types.uint32, types.voidptr, types.uintp))


@njit(**RING_KERNEL)
def scan_block(block):
    """(peak of the finite samples, number of non-finite samples) of one captured block."""
    peak = 0.0
    nonfinite = 0
    for sample in block:
        if np.isfinite(sample):
            peak = max(peak, abs(sample))
        else:
            nonfinite += 1
    return peak, nonfinite


@njit(**RING_KERNEL)
def frames_after(frame, start):
    """How many frames ``frame`` lies after ``start`` on JACK's wrapping uint32 clock (negative: before)."""
    return ((frame - start + _HALF_FRAME_RANGE) & FRAME_MASK) - _HALF_FRAME_RANGE


@njit(**RING_KERNEL)
def select_window(control, window):
    """Feeder: count from the next cycle on into ``window``."""
    store_index(control, CONTROL_WINDOW, window)


def _process(frames, user_data):
    """JACK process callback: this cycle's queued events out, the captured block scanned."""
    table = carray(user_data, TABLE_SIZE, np.int64)
    control = carray(address_as_voidptr(table[TABLE_CONTROL]), CONTROL_FIELDS, np.int64)
    stats = carray(address_as_voidptr(table[TABLE_STATS]), (MAX_WINDOWS, STAT_FIELDS), np.int64)
    peaks = carray(address_as_voidptr(table[TABLE_PEAKS]), MAX_WINDOWS, np.float64)
    window = load_index(control, CONTROL_WINDOW)
    cycle_start = np.int64(call_uint32_of_pointer(table[TABLE_LAST_FRAME_TIME], address_as_voidptr(table[TABLE_CLIENT])))
    for slot in (TABLE_IN_LEFT, TABLE_IN_RIGHT):
        buffer = port_get_buffer(table[TABLE_PORT_GET_BUFFER], address_as_voidptr(table[slot]), frames)
        peak, nonfinite = scan_block(carray(buffer, frames, np.float32))
        stats[window, STAT_NONFINITE] += nonfinite
        peaks[window] = max(peaks[window], peak)
    stats[window, STAT_FRAMES] += frames
    out = port_get_buffer(table[TABLE_PORT_GET_BUFFER], address_as_voidptr(table[TABLE_MIDI_OUT]), frames)
    _midi_clear_buffer(table[TABLE_MIDI_CLEAR_BUFFER], out)
    ring = carray(address_as_voidptr(table[TABLE_RING]), table[TABLE_RING_BYTES], np.uint8)
    indices = carray(address_as_voidptr(table[TABLE_INDICES]), INDEX_FIELDS, np.int64)
    message = carray(address_as_voidptr(table[TABLE_MESSAGE]), table[TABLE_RING_BYTES], np.uint8)
    while True:
        frame = next_event_frame(ring, indices)
        if frame < 0:
            break
        offset = frames_after(frame, cycle_start)
        if offset >= frames:
            break  # a later cycle's
        frame, size = take_event(ring, indices, message)
        if offset < 0:
            offset = 0
            stats[window, STAT_LATE_EVENTS] += 1
        written = _midi_event_write(table[TABLE_MIDI_EVENT_WRITE], out, np.uint32(offset),
                                    address_as_voidptr(table[TABLE_MESSAGE]), np.uint64(size))
        stats[window, STAT_EVENTS_SENT if written == 0 else STAT_UNWRITTEN_EVENTS] += 1
    return 0


@functools.cache
def soak_process_callback():
    """The compiled process callback (``.address`` for ``jack_set_process_callback``, ``.ctypes`` for tests)."""
    return cfunc(JACK_PROCESS_CALLBACK, cache=True)(_process)


class SoakBuffers:
    """Ring, statistics and pointer table of the callback (all outliving the client)."""

    def __init__(self, ring_bytes: int = RING_BYTES):
        self.ring = np.zeros(ring_bytes, dtype=np.uint8)
        self.indices = np.zeros(INDEX_FIELDS, dtype=np.int64)
        self.message = np.zeros(ring_bytes, dtype=np.uint8)
        self.stats = np.zeros((MAX_WINDOWS, STAT_FIELDS), dtype=np.int64)
        self.peaks = np.zeros(MAX_WINDOWS, dtype=np.float64)
        self.control = np.zeros(CONTROL_FIELDS, dtype=np.int64)
        self.table = np.zeros(TABLE_SIZE, dtype=np.int64)
        for slot, array in ((TABLE_RING, self.ring), (TABLE_INDICES, self.indices), (TABLE_MESSAGE, self.message),
                            (TABLE_STATS, self.stats), (TABLE_PEAKS, self.peaks), (TABLE_CONTROL, self.control)):
            self.table[slot] = array.ctypes.data
        self.table[TABLE_RING_BYTES] = ring_bytes
        self.window = 0

    def queue(self, frame: int, message: bytes) -> bool:
        """Feeder: send ``message`` at JACK frame ``frame``; False if the ring is full."""
        return put_event(self.ring, self.indices, frame & FRAME_MASK, np.frombuffer(message, dtype=np.uint8))

    def next_window(self) -> int:
        """Count into a fresh window from the next cycle on; returns the one that ends."""
        if self.window + 1 >= MAX_WINDOWS:
            raise RuntimeError(f"the soak client counts at most {MAX_WINDOWS} windows")
        finished, self.window = self.window, self.window + 1
        select_window(self.control, self.window)
        return finished

    def counts(self, window: int) -> dict:
        row = self.stats[window]
        return {"frames": int(row[STAT_FRAMES]), "peak": float(self.peaks[window]),
                "nonfinite_samples": int(row[STAT_NONFINITE]), "events_sent": int(row[STAT_EVENTS_SENT]),
                "late_events": int(row[STAT_LATE_EVENTS]), "unwritten_events": int(row[STAT_UNWRITTEN_EVENTS])}


def open_soak_client(name: str):
    """A JACK client ``name`` with MIDI output ``keys`` and audio inputs ``in_left``/``in_right`` whose
    process callback is the compiled one; returns (client, its MIDI port, its input ports, buffers).
    The caller may add notification callbacks (they run in JACK's notification thread) before
    ``client.activate()``."""
    import jack

    client = jack.Client(name, no_start_server=True)
    midi_out = client.midi_outports.register("keys")
    inports = [client.inports.register(f"in_{side}") for side in ("left", "right")]
    buffers = SoakBuffers()
    buffers.table[TABLE_CLIENT] = cffi_address(client._ptr)
    buffers.table[TABLE_MIDI_OUT] = cffi_address(midi_out._ptr)
    buffers.table[TABLE_IN_LEFT], buffers.table[TABLE_IN_RIGHT] = (cffi_address(port._ptr) for port in inports)
    for slot, address in function_addresses(jack._libname, JACK_FUNCTIONS).items():
        buffers.table[slot] = address
    status = jack._lib.jack_set_process_callback(
        client._ptr, jack._ffi.cast("JackProcessCallback", soak_process_callback().address),
        jack._ffi.cast("void *", buffers.table.ctypes.data))
    if status != 0:
        client.close()
        raise RuntimeError(f"jack_set_process_callback failed ({status})")
    return client, midi_out, inports, buffers
