"""JACK MIDI input without Python in JACK's thread: a compiled process callback and the byte ring it fills.

The MIDI client's process callback is a Numba ``@cfunc`` that JACK calls directly, like the engine's
audio callback (``engine/abi.py``): it never runs Python bytecode, never takes the GIL, never
allocates and never locks, so it cannot stall the JACK graph. Each cycle it copies every event of the
client's MIDI input port into a single-producer single-consumer byte ring, stamped with its exact
JACK frame (the cycle's first frame plus the event's offset in the period); the MIDI pump thread
takes them out with ``take_event``.

The libjack functions are called through their addresses, kept with the ring's in an int64 *pointer
table* (``userData``), so the compiled callback holds no process-specific constant and Numba can cache
it. The addresses come from the libjack that JACK-Client loaded — the system's, the one PortAudio's
JACK host uses — so the player maps one JACK client library.

A record is an 8-byte header (the event's JACK frame and its size, both little-endian uint32) and the
event's bytes, wrapping around the ring's end; the ring orders its indices with the engine ring's
fences (``engine/ring.py``). An event that does not fit (the pump stopped), or that libjack did not
hand over whole, is counted, not written.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np
from numba import carray, cfunc, njit, types
from numba.extending import intrinsic

from wifm_synth.engine.abi import (
    address_as_voidptr,
    call_through,
    call_uint32_of_pointer,
    pointer_address,
)
from wifm_synth.engine.ring import (
    RING_KERNEL,
    acquire_fence,
    load_index,
    release_fence,
    store_index,
)

RING_BYTES = 1 << 16  # a 32-voice DX7 dump is 4104 bytes; the pump empties the ring every half millisecond
HEADER_BYTES = 8
FRAME_MASK = 0xFFFFFFFF  # jack_nframes_t is a uint32 that wraps (after 24.8 hours at 48 kHz)

# --- ring indices (int64): write, read and dropped on separate cache lines ---
INDEX_WRITE = 0
INDEX_READ = 8
INDEX_DROPPED = 16
INDEX_FIELDS = 24

# --- the pointer table (int64) ---
TABLE_CLIENT = 0  # jack_client_t *
TABLE_PORT = 1  # jack_port_t * of the MIDI input port
TABLE_RING = 2
TABLE_RING_BYTES = 3
TABLE_INDICES = 4
TABLE_EVENT = 5  # scratch jack_midi_event_t: uint32 time (padded to 8 bytes), size_t size, uint8 *buffer
TABLE_PORT_GET_BUFFER = 6
TABLE_MIDI_GET_EVENT_COUNT = 7
TABLE_MIDI_EVENT_GET = 8
TABLE_LAST_FRAME_TIME = 9
TABLE_SIZE = 10
EVENT_WORDS = 3
EVENT_TIME, EVENT_SIZE, EVENT_BUFFER = range(EVENT_WORDS)
MIDI_BUFFER_HEADER_WORDS = 2  # uint32 magic (jack2) or frame count (jack1), then the buffer's size in bytes
MIDI_BUFFER_SIZE_WORD = 1

JACK_PROCESS_CALLBACK = types.intc(types.uint32, types.voidptr)
JACK_FUNCTIONS = {  # table slot: (name, ctypes result, ctypes arguments)
    TABLE_PORT_GET_BUFFER: ("jack_port_get_buffer", ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_uint32]),
    TABLE_MIDI_GET_EVENT_COUNT: ("jack_midi_get_event_count", ctypes.c_uint32, [ctypes.c_void_p]),
    TABLE_MIDI_EVENT_GET: ("jack_midi_event_get", ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32]),
    TABLE_LAST_FRAME_TIME: ("jack_last_frame_time", ctypes.c_uint32, [ctypes.c_void_p]),
}


@intrinsic
def port_get_buffer(typingctx, address, port, frames):
    return call_through(types.voidptr, (types.voidptr, types.uint32))


@intrinsic
def _midi_event_get(typingctx, address, event, buffer, index):
    return call_through(types.intc, (types.voidptr, types.voidptr, types.uint32))


@njit(**RING_KERNEL)
def put_event(ring, indices, frame, message) -> bool:
    """Producer: append one event (``message``: its bytes) at JACK frame ``frame``; False if it does not fit."""
    capacity = ring.shape[0]
    mask = capacity - 1
    size = message.shape[0]
    write = indices[INDEX_WRITE]  # only the producer stores it
    read = load_index(indices, INDEX_READ)
    acquire_fence()  # the consumer is done with the bytes before ``read``
    if write + HEADER_BYTES + size - read > capacity:
        return False
    for shift in range(4):
        ring[(write + shift) & mask] = (frame >> (8 * shift)) & 0xFF
        ring[(write + 4 + shift) & mask] = (size >> (8 * shift)) & 0xFF
    for index in range(size):
        ring[(write + HEADER_BYTES + index) & mask] = message[index]
    release_fence()  # the record is complete before the index that publishes it
    store_index(indices, INDEX_WRITE, write + HEADER_BYTES + size)
    return True


@njit(**RING_KERNEL)
def take_event(ring, indices, message):
    """Consumer: the oldest event's (JACK frame, size), its bytes copied into ``message``; size −1 if none."""
    mask = ring.shape[0] - 1
    read = indices[INDEX_READ]  # only the consumer stores it
    written = load_index(indices, INDEX_WRITE)
    acquire_fence()  # the record is complete
    if written == read:
        return 0, -1
    frame = 0
    size = 0
    for shift in range(4):
        frame |= np.int64(ring[(read + shift) & mask]) << (8 * shift)
        size |= np.int64(ring[(read + 4 + shift) & mask]) << (8 * shift)
    for index in range(size):
        message[index] = ring[(read + HEADER_BYTES + index) & mask]
    release_fence()  # the reads of the record are done before the slot is freed
    store_index(indices, INDEX_READ, read + HEADER_BYTES + size)
    return frame, size


@njit(**RING_KERNEL)
def next_event_frame(ring, indices) -> int:
    """Consumer: the oldest event's JACK frame, without taking it; −1 if the ring is empty."""
    mask = ring.shape[0] - 1
    read = indices[INDEX_READ]  # only the consumer stores it
    written = load_index(indices, INDEX_WRITE)
    acquire_fence()  # the record is complete
    if written == read:
        return -1
    frame = 0
    for shift in range(4):
        frame |= np.int64(ring[(read + shift) & mask]) << (8 * shift)
    return frame


@njit(**RING_KERNEL)
def dropped_events(indices) -> int:
    return load_index(indices, INDEX_DROPPED)


def _process(frames, user_data):
    """JACK process callback: every event of this cycle into the ring, each at its exact JACK frame."""
    table = carray(user_data, TABLE_SIZE, np.int64)
    ring = carray(address_as_voidptr(table[TABLE_RING]), table[TABLE_RING_BYTES], np.uint8)
    indices = carray(address_as_voidptr(table[TABLE_INDICES]), INDEX_FIELDS, np.int64)
    event_pointer = address_as_voidptr(table[TABLE_EVENT])
    event = carray(event_pointer, EVENT_WORDS, np.int64)
    buffer = port_get_buffer(table[TABLE_PORT_GET_BUFFER], address_as_voidptr(table[TABLE_PORT]), frames)
    count = call_uint32_of_pointer(table[TABLE_MIDI_GET_EVENT_COUNT], buffer)
    cycle_start = np.int64(call_uint32_of_pointer(table[TABLE_LAST_FRAME_TIME], address_as_voidptr(table[TABLE_CLIENT])))
    first_byte = pointer_address(buffer)
    if first_byte == 0:
        return 0
    # The port buffer's size in bytes: the uint32 after the first in jack2's, jack1's and PipeWire's MIDI
    # buffer header. An event whose bytes would lie outside the buffer (a writer that ran on while this
    # client was late) is dropped instead of read.
    end_byte = first_byte + np.int64(carray(buffer, MIDI_BUFFER_HEADER_WORDS, np.uint32)[MIDI_BUFFER_SIZE_WORD])
    for index in range(count):
        if _midi_event_get(table[TABLE_MIDI_EVENT_GET], event_pointer, buffer, np.uint32(index)) != 0:
            continue  # not filled: never read it (rtmidi did, and crashed on stack garbage)
        data, size = event[EVENT_BUFFER], event[EVENT_SIZE]
        written = False
        if size > 0 and data >= first_byte and data + size <= end_byte:
            frame = (cycle_start + (event[EVENT_TIME] & FRAME_MASK)) & FRAME_MASK
            written = put_event(ring, indices, frame, carray(address_as_voidptr(data), size, np.uint8))
        if not written:
            store_index(indices, INDEX_DROPPED, load_index(indices, INDEX_DROPPED) + 1)  # only this thread stores it
    return 0


@functools.cache
def jack_midi_process_callback():
    """The compiled process callback (``.address`` for ``jack_set_process_callback``)."""
    return cfunc(JACK_PROCESS_CALLBACK, cache=True)(_process)


def function_addresses(library_name: str, functions: dict | None = None) -> dict[int, int]:
    """Table slot → address of each libjack function a callback calls (``functions``: slot → (name, ctypes
    result, ctypes arguments); the MIDI input's by default), from ``library_name`` (already loaded by
    JACK-Client: dlopen returns the same library)."""
    library = ctypes.CDLL(library_name)
    addresses = {}
    for slot, (name, result, arguments) in (functions or JACK_FUNCTIONS).items():
        function = getattr(library, name)
        function.restype, function.argtypes = result, arguments
        addresses[slot] = ctypes.cast(function, ctypes.c_void_p).value
    return addresses


class EventRing:
    """The ring, its indices, the callback's scratch event and pointer table (all outliving the client)."""

    def __init__(self, client_address: int, port_address: int, library_name: str, ring_bytes: int = RING_BYTES):
        self.ring = np.zeros(ring_bytes, dtype=np.uint8)
        self.indices = np.zeros(INDEX_FIELDS, dtype=np.int64)
        self.event = np.zeros(EVENT_WORDS, dtype=np.int64)
        self.message = np.zeros(ring_bytes, dtype=np.uint8)  # the consumer's copy of one event
        self.table = np.zeros(TABLE_SIZE, dtype=np.int64)
        self.table[TABLE_CLIENT] = client_address
        self.table[TABLE_PORT] = port_address
        self.table[TABLE_RING] = self.ring.ctypes.data
        self.table[TABLE_RING_BYTES] = ring_bytes
        self.table[TABLE_INDICES] = self.indices.ctypes.data
        self.table[TABLE_EVENT] = self.event.ctypes.data
        for slot, address in function_addresses(library_name).items():
            self.table[slot] = address

    def take(self) -> tuple[int, list[int]] | None:
        """The oldest event as (JACK frame, bytes), or None."""
        frame, size = take_event(self.ring, self.indices, self.message)
        if size < 0:
            return None
        return int(frame), self.message[:size].tolist()

    @property
    def dropped(self) -> int:
        return int(dropped_events(self.indices))
