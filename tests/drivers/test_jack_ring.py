"""The JACK MIDI byte ring (``drivers/jack_ring.py``) against its NumPy/Python twin: a queue of
(frame, bytes) records that takes a record only while header and bytes fit in the free space."""

from collections import deque

import numpy as np

from wifm_synth.drivers.jack_ring import (
    FRAME_MASK,
    HEADER_BYTES,
    INDEX_FIELDS,
    dropped_events,
    next_event_frame,
    put_event,
    take_event,
)

RING_BYTES = 64  # small, so that records wrap around the end and the ring fills


class TwinRing:
    def __init__(self, capacity: int):
        self.capacity = capacity
        self.records: deque[tuple[int, list[int]]] = deque()

    def used(self) -> int:
        return sum(HEADER_BYTES + len(message) for _, message in self.records)

    def put(self, frame: int, message: list[int]) -> bool:
        if self.used() + HEADER_BYTES + len(message) > self.capacity:
            return False
        self.records.append((frame, message))
        return True

    def take(self):
        return self.records.popleft() if self.records else None


def test_ring_matches_its_twin_through_wrap_around_and_full_ring():
    generator = np.random.default_rng(7)
    ring = np.zeros(RING_BYTES, dtype=np.uint8)
    indices = np.zeros(INDEX_FIELDS, dtype=np.int64)
    scratch = np.zeros(RING_BYTES, dtype=np.uint8)
    twin = TwinRing(RING_BYTES)
    refused = 0
    for _ in range(5000):
        if generator.random() < 0.55:
            frame = int(generator.integers(0, FRAME_MASK + 1))
            message = [int(byte) for byte in generator.integers(0, 256, size=int(generator.integers(1, 30)))]
            accepted = put_event(ring, indices, frame, np.array(message, dtype=np.uint8))
            assert accepted == twin.put(frame, message)
            refused += not accepted
        else:
            expected_next = twin.records[0][0] if twin.records else -1
            assert next_event_frame(ring, indices) == expected_next
            frame, size = take_event(ring, indices, scratch)
            expected = twin.take()
            if expected is None:
                assert size == -1
            else:
                assert (frame, scratch[:size].tolist()) == expected
    assert refused > 0, "the sequence never filled the ring"
    assert dropped_events(indices) == 0  # only the JACK callback counts drops
