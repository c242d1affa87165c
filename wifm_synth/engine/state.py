"""Allocating the engine state and its MIDI power-on values; voice stages and channel defaults.

The arrays and their row names are declared once in ``engine/layout.py``. Nothing is allocated after
``allocate_state``: the audio kernel ``process_block`` only reads and writes these arrays, so a live
driver hands their addresses to the compiled callback (``engine/abi.py``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from wifm_synth.engine.kernels import KERNEL, channel_gains
from wifm_synth.engine.layout import (
    BLOCK,
    CHANNEL_BEND,
    CHANNEL_BEND_RANGE,
    CHANNEL_EXPRESSION,
    CHANNEL_FLOAT_FIELDS,
    CHANNEL_GAIN_LEFT,
    CHANNEL_GAIN_RIGHT,
    CHANNEL_INT_FIELDS,
    CHANNEL_MOD_WHEEL,
    CHANNEL_PAN,
    CHANNEL_PRESSURE,
    CHANNEL_PROGRAM_ROW,
    CHANNEL_RPN_LSB,
    CHANNEL_RPN_MSB,
    CHANNEL_SOFT,
    CHANNEL_SOSTENUTO,
    CHANNEL_SUSTAIN,
    CHANNEL_VOLUME,
    ENGINE_DRUM_PROGRAM,
    ENGINE_EVERY_PROGRAM,
    ENGINE_FIFO_POSITION,
    ENGINE_SAMPLE_RATE,
    MASTER_A4_HZ,
    MASTER_GAIN,
    STEAL_FADE_VOICES,
    EngineState,
    Sizes,
    allocate_arrays,
)
from wifm_synth.engine.tables import PROGRAM_BANK, PROGRAM_NUMBER, CompiledInstrument
from wifm_synth.errors import InputError
from wifm_synth.midi import (
    MIDI_CHANNELS,
    RPN_NULL,
    STANDARD_A4_HZ,
)

DEFAULT_POLYPHONY = 256
DEFAULT_EVENT_CAPACITY = 1 << 14
STAGED_PATCH_ROWS = 8  # patch loads that can be in flight through the ring at once
# Table rows a player that loads other instruments while playing (``wifm play``'s load) allocates at
# least: patch rows for two instruments (the new one is written into rows no sounding note uses), and
# program and zone rows for one (they are copied in by the load command).
LOADABLE_PATCH_ROWS = 256
LOADABLE_PROGRAM_ROWS = 512
LOADABLE_ZONE_ROWS = 4096
UNUSED_ROW = -1  # every cell of a program row no instrument fills: it never matches a bank
STEAL_FADE_S = 0.002  # a stolen voice fades out over this long in a fade column

# --- voice stages ---
FREE = 0
HELD = 1  # key down
SUSTAINED = 2  # key up, held by the sustain or sostenuto pedal
RELEASED = 3
FADING = 4  # a stolen voice fading out in one of the extra fade columns


def _row_values(count: int, values: dict[int, float], dtype) -> np.ndarray:
    row_values = np.zeros(count, dtype=dtype)
    for row, value in values.items():
        row_values[row] = value
    return row_values


def _row_flags(count: int, rows: tuple[int, ...]) -> np.ndarray:
    return _row_values(count, dict.fromkeys(rows, 1), np.int64)


# The one channel-defaults table: GM power-on values (rows not listed start at 0). Reset All
# Controllers (CC121) returns the rows marked below to these same values; volume, pan, bank,
# program and the pitch-bend range keep what they were.
CHANNEL_INT_POWER_ON = _row_values(CHANNEL_INT_FIELDS, {
    CHANNEL_VOLUME: 100, CHANNEL_EXPRESSION: 127, CHANNEL_PAN: 64, CHANNEL_RPN_MSB: RPN_NULL,
    CHANNEL_RPN_LSB: RPN_NULL}, np.int64)
CHANNEL_FLOAT_POWER_ON = _row_values(CHANNEL_FLOAT_FIELDS, {CHANNEL_BEND_RANGE: 2.0}, np.float64)
CHANNEL_INT_CONTROLLERS = _row_flags(CHANNEL_INT_FIELDS, (
    CHANNEL_MOD_WHEEL, CHANNEL_PRESSURE, CHANNEL_EXPRESSION, CHANNEL_RPN_MSB, CHANNEL_RPN_LSB, CHANNEL_SUSTAIN,
    CHANNEL_SOSTENUTO, CHANNEL_SOFT))
CHANNEL_FLOAT_CONTROLLERS = _row_flags(CHANNEL_FLOAT_FIELDS, (CHANNEL_BEND,))


@njit(**KERNEL)
def restore_channel_defaults(channel_ints, channel_floats, channel, controllers_only):
    """Power-on values of every row of ``channel``, or (``controllers_only``) of the rows CC121 resets."""
    for row in range(channel_ints.shape[0]):
        if not controllers_only or CHANNEL_INT_CONTROLLERS[row]:
            channel_ints[row, channel] = CHANNEL_INT_POWER_ON[row]
    for row in range(channel_floats.shape[0]):
        if not controllers_only or CHANNEL_FLOAT_CONTROLLERS[row]:
            channel_floats[row, channel] = CHANNEL_FLOAT_POWER_ON[row]


@njit(**KERNEL)
def power_on_channel(channel_ints, channel_floats, channel, program_row):
    """The channel-reset rule: every row of ``channel`` at its power-on value, playing ``program_row``
    (at power-on, and on a GM/GS reset message)."""
    restore_channel_defaults(channel_ints, channel_floats, channel, False)
    channel_ints[CHANNEL_PROGRAM_ROW, channel] = program_row


def reset_channel(state: EngineState, channel: int, program_row: int) -> None:
    """Power-on MIDI state of one channel, playing ``program_row``, its output gains at their targets."""
    channel_ints, channel_floats = state.channel_ints, state.channel_floats
    power_on_channel(channel_ints, channel_floats, channel, program_row)
    left, right = channel_gains(float(channel_ints[CHANNEL_VOLUME, channel]),
                                float(channel_ints[CHANNEL_EXPRESSION, channel]),
                                float(channel_ints[CHANNEL_PAN, channel]))
    channel_floats[CHANNEL_GAIN_LEFT, channel] = left
    channel_floats[CHANNEL_GAIN_RIGHT, channel] = right


@njit(**KERNEL)
def default_program_row(program_table):
    """Row of bank 0 program 0, else the first program (what a channel plays before any program change)."""
    for row in range(program_table.shape[0]):
        if program_table[row, PROGRAM_BANK] == 0 and program_table[row, PROGRAM_NUMBER] == 0:
            return row
    return 0


def allocate_state(compiled: CompiledInstrument, sample_rate: int = 48000, polyphony: int = DEFAULT_POLYPHONY,
                   event_capacity: int = DEFAULT_EVENT_CAPACITY, loadable: bool = False) -> EngineState:
    """Allocate every array the engine will ever use; ``loadable`` leaves room to load other instruments
    while playing (see LOADABLE_PATCH_ROWS)."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) \
            or not 8000 <= sample_rate <= 384000:
        raise InputError(f"sample rate: must be an integer 8000..384000 Hz, got {sample_rate!r}")
    if isinstance(polyphony, bool) or not isinstance(polyphony, (int, np.integer)) or not 1 <= polyphony <= 65536:
        raise InputError(f"polyphony: must be an integer 1..65536, got {polyphony!r}")
    if isinstance(event_capacity, bool) or not isinstance(event_capacity, (int, np.integer)) \
            or event_capacity < 1 or event_capacity & (event_capacity - 1):
        raise InputError(f"event capacity: must be a power of two, got {event_capacity!r}")
    patches, programs, zones = len(compiled.patch_table), len(compiled.program_table), len(compiled.zone_table)
    if loadable:
        patches = 2 * max(patches, LOADABLE_PATCH_ROWS)
        programs, zones = max(programs, LOADABLE_PROGRAM_ROWS), max(zones, LOADABLE_ZONE_ROWS)
    state = allocate_arrays(Sizes(
        patches=patches, programs=programs, zones=zones,
        voices=polyphony + STEAL_FADE_VOICES, events=event_capacity, staged_patches=STAGED_PATCH_ROWS))
    state.patch_table[:len(compiled.patch_table)] = compiled.patch_table
    state.routing_table[:len(compiled.routing_table)] = compiled.routing_table
    state.program_table[:] = UNUSED_ROW
    state.program_table[:len(compiled.program_table)] = compiled.program_table
    state.zone_table[:len(compiled.zone_table)] = compiled.zone_table
    state.master[MASTER_GAIN] = 1.0
    state.master[MASTER_A4_HZ] = STANDARD_A4_HZ
    program_row = default_program_row(compiled.program_table)
    for channel in range(MIDI_CHANNELS):
        reset_channel(state, channel, program_row)
    state.engine[ENGINE_SAMPLE_RATE] = sample_rate
    state.engine[ENGINE_FIFO_POSITION] = BLOCK  # nothing rendered yet
    state.engine[ENGINE_DRUM_PROGRAM] = compiled.drum_program
    state.engine[ENGINE_EVERY_PROGRAM] = compiled.plays_every_program
    return state
