"""The audio entry point: ``process_block`` consumes the event ring and fills the host's buffers.

Rendering runs in fixed 64-frame blocks on the absolute sample grid; each block is split into
spans at its events' frames, and the host's period is served from the last rendered block. So
the output depends only on the events and their frames, never on the host period.
"""

from __future__ import annotations

from numba import njit

from wifm_synth.engine.commands import COMMAND_FIRST, apply_command
from wifm_synth.engine.kernels import KERNEL
from wifm_synth.engine.layout import (
    BLOCK,
    ENGINE_BLOCK_FRAME,
    ENGINE_FIFO_POSITION,
    ENGINE_FRAMES_OUT,
    RING_DATA1,
    RING_DATA2,
    RING_FRAME,
    RING_READ,
    RING_STATUS,
    SCRATCH_FIFO_LEFT,
    SCRATCH_FIFO_RIGHT,
)
from wifm_synth.engine.midi import apply_event
from wifm_synth.engine.ring import ring_consumed, ring_published
from wifm_synth.engine.voice_dsp import render_span


@njit(**KERNEL)
def render_block(state):
    """Render the next 64-frame block into the fifo rows, applying every event due before its end.

    An event stamped earlier than the current position (late, or out of order) applies there.
    Records published while the block renders wait for the next block.
    """
    engine, scratch, ring_events = state.engine, state.scratch, state.ring_events
    block_frame = engine[ENGINE_BLOCK_FRAME]
    block_end = block_frame + BLOCK
    for i in range(BLOCK):
        scratch[SCRATCH_FIFO_LEFT, i] = 0.0
        scratch[SCRATCH_FIFO_RIGHT, i] = 0.0
    mask = ring_events.shape[0] - 1
    cursor = block_frame
    published = ring_published(state.ring_indices)
    read = state.ring_indices[RING_READ]  # only this thread stores it
    while read != published:
        record = read & mask
        frame = ring_events[record, RING_FRAME]
        if frame >= block_end:
            break
        if frame > cursor:
            render_span(state, cursor - block_frame, frame - cursor, cursor)
            cursor = frame
        status = ring_events[record, RING_STATUS]
        if status >= COMMAND_FIRST:
            apply_command(state, status, ring_events[record, RING_DATA1], ring_events[record, RING_DATA2], cursor)
        else:
            apply_event(state, cursor, status, ring_events[record, RING_DATA1], ring_events[record, RING_DATA2])
        read += 1
        ring_consumed(state.ring_indices, read)
    if cursor < block_end:
        render_span(state, cursor - block_frame, block_end - cursor, cursor)
    engine[ENGINE_BLOCK_FRAME] = block_end


@njit(**KERNEL)
def process_block(state, out_left, out_right, n_frames):
    """Write the next ``n_frames`` stereo frames of ``state`` (an EngineState) to ``out_left`` / ``out_right``."""
    engine, scratch = state.engine, state.scratch
    done = 0
    while done < n_frames:
        position = engine[ENGINE_FIFO_POSITION]
        if position == BLOCK:
            render_block(state)
            position = 0
        take = min(BLOCK - position, n_frames - done)
        for i in range(take):
            out_left[done + i] = scratch[SCRATCH_FIFO_LEFT, position + i]
            out_right[done + i] = scratch[SCRATCH_FIFO_RIGHT, position + i]
        engine[ENGINE_FIFO_POSITION] = position + take
        done += take
    engine[ENGINE_FRAMES_OUT] += n_frames
