"""The audio entry point: ``process_block`` consumes the event ring and fills the host's buffers.

Rendering runs in fixed 64-frame blocks on the absolute sample grid; each block is split into
spans at its events' frames, and the host's period is served from the last rendered block. So
the output depends only on the events and their frames, never on the host period.
"""

from __future__ import annotations

from numba import njit

from wifm_synth.engine.kernels import KERNEL
from wifm_synth.engine.midi import apply_event
from wifm_synth.engine.state import (
    BLOCK,
    ENGINE_BLOCK_FRAME,
    ENGINE_FIFO_POSITION,
    ENGINE_FRAMES_OUT,
    RING_DATA1,
    RING_DATA2,
    RING_FRAME,
    RING_READ,
    RING_STATUS,
    RING_WRITE,
    SCRATCH_FIFO_LEFT,
    SCRATCH_FIFO_RIGHT,
)
from wifm_synth.engine.voices import render_span


@njit(**KERNEL)
def render_block(patch_table, routing_table, program_table, zone_table, voice_ints, voice_floats, operators,
                 channels, engine, scratch, ring_events, ring_indices):
    """Render the next 64-frame block into the fifo rows, applying every event due before its end.

    An event stamped earlier than the current position (late, or out of order) applies there.
    """
    block_frame = engine[ENGINE_BLOCK_FRAME]
    block_end = block_frame + BLOCK
    for i in range(BLOCK):
        scratch[SCRATCH_FIFO_LEFT, i] = 0.0
        scratch[SCRATCH_FIFO_RIGHT, i] = 0.0
    mask = ring_events.shape[0] - 1
    cursor = block_frame
    read = ring_indices[RING_READ]
    while read != ring_indices[RING_WRITE]:
        record = read & mask
        frame = ring_events[record, RING_FRAME]
        if frame >= block_end:
            break
        if frame > cursor:
            render_span(patch_table, routing_table, voice_ints, voice_floats, operators, channels, engine, scratch,
                        cursor - block_frame, frame - cursor, cursor)
            cursor = frame
        apply_event(patch_table, routing_table, program_table, zone_table, voice_ints, voice_floats, operators,
                    channels, engine, cursor, ring_events[record, RING_STATUS], ring_events[record, RING_DATA1],
                    ring_events[record, RING_DATA2])
        read += 1
        ring_indices[RING_READ] = read
    if cursor < block_end:
        render_span(patch_table, routing_table, voice_ints, voice_floats, operators, channels, engine, scratch,
                    cursor - block_frame, block_end - cursor, cursor)
    engine[ENGINE_BLOCK_FRAME] = block_end


@njit(**KERNEL)
def process_block(patch_table, routing_table, program_table, zone_table, voice_ints, voice_floats, operators,
                  channels, engine, scratch, ring_events, ring_indices, out_left, out_right, n_frames):
    """Write the next ``n_frames`` stereo frames to ``out_left`` / ``out_right`` (any period size)."""
    done = 0
    while done < n_frames:
        position = engine[ENGINE_FIFO_POSITION]
        if position == BLOCK:
            render_block(patch_table, routing_table, program_table, zone_table, voice_ints, voice_floats,
                         operators, channels, engine, scratch, ring_events, ring_indices)
            position = 0
        take = min(BLOCK - position, n_frames - done)
        for i in range(take):
            out_left[done + i] = scratch[SCRATCH_FIFO_LEFT, position + i]
            out_right[done + i] = scratch[SCRATCH_FIFO_RIGHT, position + i]
        engine[ENGINE_FIFO_POSITION] = position + take
        done += take
    engine[ENGINE_FRAMES_OUT] += n_frames
