"""The event ring under two real threads, and patch-load commands carried through it."""

import os
import threading
import time

import numpy as np
from numba import njit

from wifm_synth.engine import Synth, process_block
from wifm_synth.engine.layout import (
    BLOCK,
    CHANNEL_INT_FIELDS,
    CHANNEL_MOD_WHEEL,
    ENGINE_EVENTS_APPLIED,
    ENGINE_PATCHES_LOADED,
    ENGINE_REFUSED_COMMANDS,
    RING_DATA1,
    RING_DATA2,
    RING_FRAME,
    RING_READ,
    RING_STATUS,
    VOICE_KEY,
    VOICE_STAGE,
)
from wifm_synth.engine.ring import ring_consumed, ring_publish, ring_published
from wifm_synth.engine.state import CHANNEL_INT_CONTROLLERS, CHANNEL_INT_POWER_ON, HELD
from wifm_synth.voice.patch import Envelope, Operator, Patch, Pitch

RATE = 48000
STRESS_RECORDS = 2_000_000
STRESS_CAPACITY = 256  # small, so the ring wraps and fills constantly


@njit(nogil=True)
def record_fields(sequence):
    """What record number ``sequence`` carries: checkable on the consumer side."""
    return sequence, (sequence * 7) & 0xFFFF, (sequence * 13) % 127, sequence >> 7


# Each side spins at most this many times in compiled code before yielding the CPU from Python: on a
# loaded machine a side spinning for its whole time slice would only delay the other side it waits for.
SPINS_BEFORE_YIELD = 1_000_000
STRESS_DEADLINE_S = 600.0  # a lost record ends the test with a failure here, not a hang


@njit(nogil=True)
def publish_burst(ring_events, ring_indices, first, count, max_spins):
    """Producer: records first … first + count − 1, spinning while the ring is full; returns how many it
    published before the ring stayed full for ``max_spins`` tries."""
    for sequence in range(first, first + count):
        frame, status, data1, data2 = record_fields(sequence)
        spins = 0
        while not ring_publish(ring_events, ring_indices, frame, status, data1, data2):
            spins += 1
            if spins == max_spins:
                return sequence - first
    return count


@njit(nogil=True)
def consume_checking(ring_events, ring_indices, total, max_spins):
    """Consumer: read records up to ``total``, checking each; returns (records read so far, first
    out-of-sequence record or −1) when done, on a bad record, or after ``max_spins`` tries on an empty ring."""
    mask = ring_events.shape[0] - 1
    read = ring_indices[RING_READ]
    spins = 0
    while read < total and spins < max_spins:
        published = ring_published(ring_indices)
        if published == read:
            spins += 1
            continue
        spins = 0
        while read != published:
            record = read & mask
            frame, status, data1, data2 = record_fields(read)
            if (ring_events[record, RING_FRAME] != frame or ring_events[record, RING_STATUS] != status
                    or ring_events[record, RING_DATA1] != data1 or ring_events[record, RING_DATA2] != data2):
                return read, read
            read += 1
            ring_consumed(ring_indices, read)
    return read, -1


def test_two_million_records_in_random_bursts_arrive_complete_and_in_order():
    ring_events = np.zeros((STRESS_CAPACITY, 4), dtype=np.int64)
    ring_indices = np.zeros(16, dtype=np.int64)
    publish_burst(ring_events, ring_indices, 0, 0, 1)  # compile before the threads start
    consume_checking(ring_events, ring_indices, 0, 1)
    rng = np.random.default_rng(11)
    bursts = []
    total = 0
    while total < STRESS_RECORDS:
        size = int(min(rng.integers(1, 3 * STRESS_CAPACITY), STRESS_RECORDS - total))
        bursts.append(size)
        total += size
    deadline = time.monotonic() + STRESS_DEADLINE_S

    def producer():
        sequence = 0
        for number, size in enumerate(bursts):
            end = sequence + size
            while sequence < end and time.monotonic() < deadline:
                sequence += publish_burst(ring_events, ring_indices, sequence, end - sequence,
                                          SPINS_BEFORE_YIELD)  # releases the GIL
                if sequence < end:
                    os.sched_yield()  # the ring is full: let the consumer run
            if number % 97 == 0:
                time.sleep(0.0001)  # let the consumer run dry now and then

    result = {"read": 0, "first_bad": -1}

    def consumer():
        while result["read"] < STRESS_RECORDS and result["first_bad"] < 0 and time.monotonic() < deadline:
            result["read"], result["first_bad"] = consume_checking(ring_events, ring_indices, STRESS_RECORDS,
                                                                   SPINS_BEFORE_YIELD)
            os.sched_yield()  # the ring is empty: let the producer run

    threads = [threading.Thread(target=consumer), threading.Thread(target=producer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert result == {"read": STRESS_RECORDS, "first_bad": -1}


@njit(nogil=True)
def render_until_applied(state, left, right, events, max_periods):
    """The real consumer: render periods until ``events`` MIDI events were applied (or give up)."""
    for _ in range(max_periods):
        if state.engine[ENGINE_EVENTS_APPLIED] >= events:
            return True
        process_block(state, left, right, left.shape[0])
    return False


@njit(nogil=True)
def publish_controllers(ring_events, ring_indices, count):
    for sequence in range(count):
        while not ring_publish(ring_events, ring_indices, 0, 0xB0 | (sequence & 0x0F), 1, sequence % 128):
            pass


def test_the_render_loop_applies_every_event_another_thread_publishes():
    synth = Synth(sine_patch(), RATE, polyphony=4, event_capacity=64)
    state = synth.state
    left, right = np.zeros(128, np.float32), np.zeros(128, np.float32)
    events = 200_000
    render_until_applied(state, left, right, 0, 1)
    publish_controllers(state.ring_events, state.ring_indices, 0)
    applied = {}
    consumer = threading.Thread(target=lambda: applied.update(
        done=render_until_applied(state, left, right, events, 50_000_000)))
    consumer.start()
    publish_controllers(state.ring_events, state.ring_indices, events)
    consumer.join(timeout=60)
    assert applied == {"done": True}
    assert state.engine[ENGINE_EVENTS_APPLIED] == events and synth.queued_events == 0
    last = events - 1  # every channel's mod wheel holds the value of the last event sent on it
    assert state.channel_ints[CHANNEL_MOD_WHEEL].tolist() == [
        (last - (last - channel) % 16) % 128 for channel in range(16)]


def sine_patch(ratio=1.0, level=0.5) -> Patch:
    return Patch(operators=[Operator(ratio=ratio, level=level, velocity_sensitivity=0.0,
                                     envelope=Envelope([(0.0, 0.0)], 0.05))], pitch=Pitch(reference_note=69))


def fm_patch() -> Patch:
    return Patch(operators=[
        Operator(level=0.5, modulators=[1], velocity_sensitivity=0.0, envelope=Envelope([(0.0, 0.0)], 0.05)),
        Operator(ratio=3.0, level=2.0, carrier=False, envelope=Envelope([(0.0, 0.0)], 0.05)),
    ], pitch=Pitch(reference_note=69))


PANNED = [(0, 0xB0, 10, 0), (0, 0xB1, 10, 127)]  # MIDI channel 1 hard left, channel 2 hard right
SWAP_FRAME, NEW_NOTE_FRAME, END = 4800, 9600, 19200


def test_a_patch_load_changes_later_notes_and_keeps_the_playing_one():
    synth = Synth(sine_patch(), RATE, polyphony=8)
    for event in [*PANNED, (BLOCK, 0x90, 69, 100)]:  # after the first block, where the pan gains ramp
        synth.send(*event)
    before = synth.render(SWAP_FRAME, dtype=np.float64)
    synth.load_patch(0, fm_patch(), frame=SWAP_FRAME)
    synth.send(NEW_NOTE_FRAME, 0x91, 64, 100)  # the ring keeps order: sent after the load, played after it
    after = synth.render(END - SWAP_FRAME, dtype=np.float64)
    assert synth.state.engine[ENGINE_PATCHES_LOADED] == 1 and synth.compiled.patches[0] == fm_patch()

    # The note playing across the load is not cut: still held, its left-channel sine as loud as before.
    voices = synth.state.voice_ints
    assert sorted(voices[VOICE_KEY][voices[VOICE_STAGE] == HELD].tolist()) == [64, 69]
    assert np.max(np.abs(after[:, 0])) > 0.9 * np.max(np.abs(before[:, 0])) > 0.1
    # The operator the new version adds stays silent for it, so it is still a pure sine.
    held_tone = after[NEW_NOTE_FRAME - SWAP_FRAME:, 0]
    spectrum = np.abs(np.fft.rfft(held_tone))
    assert spectrum[round(3 * 440 * len(held_tone) / RATE)] < 1e-3 * spectrum.max()

    # The next note plays the loaded patch: the right channel equals a render of that patch.
    def right_channel(patch):
        reference = Synth(patch, RATE, polyphony=8)
        for event in [*PANNED, (NEW_NOTE_FRAME, 0x91, 64, 100)]:
            reference.send(*event)
        return reference.render(END, dtype=np.float64)[:, 1]

    played = np.concatenate([before, after])[:, 1]
    np.testing.assert_array_equal(played, right_channel(fm_patch()))
    assert np.max(np.abs(played - right_channel(sine_patch()))) > 0.1


def test_staging_rows_are_reused_once_the_engine_applied_their_loads():
    synth = Synth(sine_patch(), RATE, polyphony=4)
    staging_rows = len(synth.state.staged_patches)
    for number in range(3 * staging_rows):
        synth.load_patch(0, sine_patch(ratio=1.0 + number), frame=64 * number)
        if number % staging_rows == staging_rows - 1:
            synth.render(64 * staging_rows)
    synth.render(64)
    assert synth.state.engine[ENGINE_PATCHES_LOADED] == 3 * staging_rows
    assert synth.state.patch_table[0].tolist() == synth.state.staged_patches[(3 * staging_rows - 1) % staging_rows].tolist()


def test_a_command_with_rows_out_of_range_is_refused_and_counted():
    synth = Synth(sine_patch(), RATE, polyphony=4)
    synth._publish(0, 0x100, 0, 5)  # patch row 5 does not exist
    synth._publish(0, 0x1FF, 0, 0)  # no such command kind
    table = synth.state.patch_table.copy()
    synth.render(64)
    assert synth.state.engine[ENGINE_REFUSED_COMMANDS] == 2
    np.testing.assert_array_equal(synth.state.patch_table, table)


def test_reset_all_controllers_restores_the_controller_rows_of_the_power_on_table():
    synth = Synth(sine_patch(), RATE, polyphony=4)
    for controller in (0, 1, 7, 10, 11, 32, 64, 66, 67, 100, 101):
        synth.send(0, 0xB2, controller, 127 if controller in (64, 66, 67) else 5)
    synth.send(0, 0xD2, 99)
    synth.send(0, 0xE2, 0, 0)
    synth.send(0, 0xC2, 3)
    synth.render(64)
    changed = synth.state.channel_ints[:, 2].copy()
    assert all(changed[row] != CHANNEL_INT_POWER_ON[row] for row in range(CHANNEL_INT_FIELDS) if CHANNEL_INT_CONTROLLERS[row])
    synth.send(64, 0xB2, 121, 0)
    synth.render(64)
    after = synth.state.channel_ints[:, 2]
    for row in range(CHANNEL_INT_FIELDS):
        assert after[row] == (CHANNEL_INT_POWER_ON[row] if CHANNEL_INT_CONTROLLERS[row] else changed[row])
    assert synth.state.channel_floats[0, 2] == 0.0  # bend centred
