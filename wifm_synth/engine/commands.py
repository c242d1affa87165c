"""Control commands carried by the event ring besides MIDI: a record whose status is a command kind.

A command kind is above every MIDI status byte, so the render loop tells the two apart by the status
alone. The control thread prepares data in preallocated staging rows of the state, then posts the
command, which the audio thread applies at the record's frame: copying rows, no locks, no allocation.

``COMMAND_LOAD_PATCH`` (data1: staged row S, data2: patch row P) copies staged patch and routing row S
into row P, like a synthesizer's SysEx voice load. Notes sounding on P keep sounding and follow the
new parameters from that frame on (gains ramp over the span, phases continue), the way a held note
follows a voice edit; operators the new version adds stay silent for them. Later notes start with
the new patch.
"""

from __future__ import annotations

from numba import njit

from wifm_synth.engine.kernels import KERNEL
from wifm_synth.engine.layout import ENGINE_PATCHES_LOADED, ENGINE_REFUSED_COMMANDS
from wifm_synth.engine.tables import OPERATOR_COUNT
from wifm_synth.engine.voice_pool import silence_added_operators

COMMAND_FIRST = 0x100  # MIDI status bytes end at 0xFF
COMMAND_LOAD_PATCH = COMMAND_FIRST


@njit(**KERNEL)
def load_staged_patch(state, staged_row, patch_row):
    silence_added_operators(state, patch_row, state.staged_routing[staged_row, OPERATOR_COUNT])
    for column in range(state.patch_table.shape[1]):
        state.patch_table[patch_row, column] = state.staged_patches[staged_row, column]
    for column in range(state.routing_table.shape[1]):
        state.routing_table[patch_row, column] = state.staged_routing[staged_row, column]
    state.engine[ENGINE_PATCHES_LOADED] += 1


@njit(**KERNEL)
def apply_command(state, kind, data1, data2):
    """Apply one command record; an unknown kind or a row out of range is counted and ignored."""
    if (kind == COMMAND_LOAD_PATCH and 0 <= data1 < state.staged_patches.shape[0]
            and 0 <= data2 < state.patch_table.shape[0]):
        load_staged_patch(state, data1, data2)
    else:
        state.engine[ENGINE_REFUSED_COMMANDS] += 1
