"""Control commands carried by the event ring besides MIDI: a record whose status is a command kind.

A command kind is above every MIDI status byte, so the render loop tells the two apart by the status
alone. The control thread prepares data in preallocated staging rows of the state, then posts the
command, which the audio thread applies at the record's frame: copying rows, no locks, no allocation.

``COMMAND_LOAD_PATCH`` (data1: staged row S, data2: patch row P) copies staged patch and routing row S
into row P, like a synthesizer's SysEx voice load. Notes sounding on P keep sounding and follow the
new parameters from that frame on (gains ramp over the span, phases continue), the way a held note
follows a voice edit; operators the new version adds stay silent for them. Later notes start with
the new patch.

``COMMAND_SET_MASTER`` (data1: a ``master`` row, data2: the float64's bits) sets the master gain or
tuning; the gain ramps over the next span with the channel gains, the tuning moves every voice.

``COMMAND_RESET`` (a GM System On or GS Reset message) returns every channel to power-on.

``COMMAND_LOAD_INSTRUMENT`` swaps in another instrument: the control thread has written its patch rows
into rows no sounding note uses and staged its program and zone tables (``staged_programs``,
``staged_zones``, the ``ENGINE_STAGED_*`` rows); the command copies those tables in and resolves every
channel's program again. Notes already sounding keep their old patch rows, so they ring on unchanged.
"""

from __future__ import annotations

import math

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from wifm_synth.engine.kernels import KERNEL
from wifm_synth.engine.layout import (
    CHANNEL_PROGRAM,
    ENGINE_DRUM_PROGRAM,
    ENGINE_EVERY_PROGRAM,
    ENGINE_INSTRUMENTS_LOADED,
    ENGINE_PATCHES_LOADED,
    ENGINE_REFUSED_COMMANDS,
    ENGINE_STAGED_DRUM_PROGRAM,
    ENGINE_STAGED_EVERY_PROGRAM,
    ENGINE_STAGED_ZONE_ROWS,
    MASTER_A4_HZ,
    MASTER_GAIN,
)
from wifm_synth.engine.midi import program_change, reset_all_channels
from wifm_synth.engine.tables import OPERATOR_COUNT
from wifm_synth.engine.voice_pool import silence_added_operators
from wifm_synth.midi import MIDI_CHANNELS

COMMAND_FIRST = 0x100  # MIDI status bytes end at 0xFF
COMMAND_LOAD_PATCH = COMMAND_FIRST
COMMAND_SET_MASTER = COMMAND_FIRST + 1
COMMAND_RESET = COMMAND_FIRST + 2
COMMAND_LOAD_INSTRUMENT = COMMAND_FIRST + 3


@intrinsic
def float_from_bits(typingctx, bits):
    """The float64 whose bit pattern is the int64 ``bits`` (a ring record carries int64 fields)."""
    signature = types.float64(types.int64)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return signature, codegen


@njit(**KERNEL)
def load_staged_patch(state, staged_row, patch_row):
    silence_added_operators(state, patch_row, state.staged_routing[staged_row, OPERATOR_COUNT])
    for column in range(state.patch_table.shape[1]):
        state.patch_table[patch_row, column] = state.staged_patches[staged_row, column]
    for column in range(state.routing_table.shape[1]):
        state.routing_table[patch_row, column] = state.staged_routing[staged_row, column]
    state.engine[ENGINE_PATCHES_LOADED] += 1


@njit(**KERNEL)
def set_master(state, row, value):
    """Gain ≥ 0 and tuning > 0, finite; anything else is refused."""
    if math.isfinite(value) and ((row == MASTER_GAIN and value >= 0.0) or (row == MASTER_A4_HZ and value > 0.0)):
        state.master[row] = value
    else:
        state.engine[ENGINE_REFUSED_COMMANDS] += 1


@njit(**KERNEL)
def load_staged_instrument(state):
    engine = state.engine
    program_table, zone_table = state.program_table, state.zone_table
    for row in range(program_table.shape[0]):
        for column in range(program_table.shape[1]):
            program_table[row, column] = state.staged_programs[row, column]
    for row in range(min(engine[ENGINE_STAGED_ZONE_ROWS], zone_table.shape[0])):
        for column in range(zone_table.shape[1]):
            zone_table[row, column] = state.staged_zones[row, column]
    engine[ENGINE_DRUM_PROGRAM] = engine[ENGINE_STAGED_DRUM_PROGRAM]
    engine[ENGINE_EVERY_PROGRAM] = engine[ENGINE_STAGED_EVERY_PROGRAM]
    for channel in range(MIDI_CHANNELS):
        program_change(state, channel, state.channel_ints[CHANNEL_PROGRAM, channel])
    engine[ENGINE_INSTRUMENTS_LOADED] += 1


@njit(**KERNEL)
def apply_command(state, kind, data1, data2, frame):
    """Apply one command record at ``frame``; an unknown kind or a row out of range is counted and ignored."""
    if (kind == COMMAND_LOAD_PATCH and 0 <= data1 < state.staged_patches.shape[0]
            and 0 <= data2 < state.patch_table.shape[0]):
        load_staged_patch(state, data1, data2)
    elif kind == COMMAND_SET_MASTER:
        set_master(state, data1, float_from_bits(data2))
    elif kind == COMMAND_RESET:
        reset_all_channels(state, frame)
    elif kind == COMMAND_LOAD_INSTRUMENT:
        load_staged_instrument(state)
    else:
        state.engine[ENGINE_REFUSED_COMMANDS] += 1
