"""The soak's compiled JACK client (``tools/soak_client.py``) called as JACK would, with libjack played by
ctypes functions, against a Python twin: which queued events go out in which cycle at which offset, the
late ones, and the captured blocks' peak and non-finite samples per window."""

import ctypes
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

from soak_client import (
    JACK_FUNCTIONS,
    TABLE_CLIENT,
    TABLE_IN_LEFT,
    TABLE_IN_RIGHT,
    TABLE_MIDI_OUT,
    SoakBuffers,
    frames_after,
    scan_block,
    soak_process_callback,
)

PERIOD = 64
LEFT, RIGHT, MIDI = 0x100, 0x200, 0x300  # the fake port handles


class FakeJack:
    """libjack's four functions the callback calls, over NumPy buffers; events written are recorded."""

    def __init__(self):
        self.cycle_start = 0
        self.audio = {LEFT: np.zeros(PERIOD, np.float32), RIGHT: np.zeros(PERIOD, np.float32)}
        self.midi = np.zeros(16, np.uint8)  # only its address matters
        self.written: list[tuple[int, int, bytes]] = []  # (cycle start, offset, bytes)
        self.cleared = 0
        signatures = {slot: ctypes.CFUNCTYPE(result, *arguments) for slot, (_, result, arguments)
                      in JACK_FUNCTIONS.items()}
        names = {name: slot for slot, (name, _, _) in JACK_FUNCTIONS.items()}
        self.functions = {
            names["jack_port_get_buffer"]: signatures[names["jack_port_get_buffer"]](self.port_get_buffer),
            names["jack_midi_clear_buffer"]: signatures[names["jack_midi_clear_buffer"]](self.clear),
            names["jack_midi_event_write"]: signatures[names["jack_midi_event_write"]](self.write),
            names["jack_last_frame_time"]: signatures[names["jack_last_frame_time"]](lambda client: self.cycle_start),
        }

    def port_get_buffer(self, port, frames):
        return self.midi.ctypes.data if port == MIDI else self.audio[port].ctypes.data

    def clear(self, buffer):
        self.cleared += 1

    def write(self, buffer, offset, data, size):
        self.written.append((self.cycle_start, offset, ctypes.string_at(data, size)))
        return 0


def test_callback_sends_each_event_in_its_cycle_and_scans_the_capture_like_its_twin():
    generator = np.random.default_rng(11)
    fake, buffers = FakeJack(), SoakBuffers(ring_bytes=1 << 12)
    buffers.table[TABLE_CLIENT], buffers.table[TABLE_MIDI_OUT] = 1, MIDI
    buffers.table[TABLE_IN_LEFT], buffers.table[TABLE_IN_RIGHT] = LEFT, RIGHT
    for slot, function in fake.functions.items():
        buffers.table[slot] = ctypes.cast(function, ctypes.c_void_p).value
    start = (1 << 32) - 10 * PERIOD  # JACK's clock wraps during the run
    frames = sorted(int(frame) for frame in generator.integers(start - 100, start + 30 * PERIOD, 200))
    late = sum(frame < start for frame in frames)  # already past when the first cycle comes: offset 0
    for frame in frames:
        assert buffers.queue(frame, bytes([0x90, frame % 128, 1 + frame % 127]))
    expected_windows = {0: [0.0, 0, 0], 1: [0.0, 0, 0]}  # peak, non-finite, frames
    expected_written = []
    for cycle in range(40):
        if cycle == 20:
            buffers.next_window()
        window = expected_windows[buffers.window]
        fake.cycle_start = (start + cycle * PERIOD) & 0xFFFFFFFF
        for block in fake.audio.values():
            block[:] = generator.normal(0, 0.3, PERIOD)
            block[generator.random(PERIOD) < 0.02] = np.nan
            finite = block[np.isfinite(block)]
            window[0] = max(window[0], float(np.max(np.abs(finite))) if finite.size else 0.0)
            window[1] += int(np.count_nonzero(~np.isfinite(block)))
        window[2] += PERIOD
        cycle_frame = start + cycle * PERIOD
        due = [frame for frame in frames if frame < cycle_frame + PERIOD]
        frames = frames[len(due):]
        expected_written += [(fake.cycle_start, max(0, frame - cycle_frame), bytes([0x90, frame % 128, 1 + frame % 127]))
                             for frame in due]
        assert soak_process_callback().ctypes(PERIOD, buffers.table.ctypes.data_as(ctypes.c_void_p)) == 0
    assert fake.written == expected_written and fake.cleared == 40
    for window, (peak, nonfinite, frame_count) in expected_windows.items():
        counts = buffers.counts(window)
        assert counts["peak"] == peak and counts["nonfinite_samples"] == nonfinite > 0
        assert counts["frames"] == frame_count
    assert sum(buffers.counts(window)["events_sent"] for window in (0, 1)) == len(expected_written) == 200
    assert buffers.counts(0)["late_events"] == late > 0 and buffers.counts(1)["late_events"] == 0

def test_block_scan_and_wrapping_distance_match_numpy():
    block = np.array([0.5, -0.75, np.nan, np.inf, -np.inf, 0.25], dtype=np.float32)
    assert scan_block(block) == (0.75, 3)
    assert frames_after(5, (1 << 32) - 5) == 10 and frames_after((1 << 32) - 5, 5) == -10
