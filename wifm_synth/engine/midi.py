"""MIDI channel-voice state machine (FluidSynth is the reference behaviour), applied at one frame.

``resolve_program`` and ``find_zone_patch`` read only the program and zone tables, so Python code
(``Bank.program_for``) can call them too.
"""

from __future__ import annotations

from numba import njit

from wifm_synth.engine.kernels import KERNEL
from wifm_synth.engine.layout import (
    CHANNEL_BANK_LSB,
    CHANNEL_BANK_MSB,
    CHANNEL_BEND,
    CHANNEL_BEND_RANGE,
    CHANNEL_EXPRESSION,
    CHANNEL_MOD_WHEEL,
    CHANNEL_PAN,
    CHANNEL_PRESSURE,
    CHANNEL_PROGRAM,
    CHANNEL_PROGRAM_ROW,
    CHANNEL_RPN_LSB,
    CHANNEL_RPN_MSB,
    CHANNEL_SOFT,
    CHANNEL_SOSTENUTO,
    CHANNEL_SUSTAIN,
    CHANNEL_VOLUME,
    ENGINE_DRUM_PROGRAM,
    ENGINE_EVENTS_APPLIED,
    ENGINE_EVERY_PROGRAM,
    ENGINE_SILENT_DRUM_NOTES,
    ENGINE_UNKNOWN_BANK,
    ENGINE_UNKNOWN_CHANNEL,
    ENGINE_UNKNOWN_PLAYING_ROW,
    ENGINE_UNKNOWN_PROGRAM,
    ENGINE_UNKNOWN_PROGRAMS,
    VOICE_CHANNEL,
    VOICE_KEY,
    VOICE_PRESSURE,
    VOICE_SOSTENUTO,
    VOICE_STAGE,
)
from wifm_synth.engine.state import (
    FREE,
    HELD,
    RELEASED,
    SUSTAINED,
    default_program_row,
    power_on_channel,
    restore_channel_defaults,
)
from wifm_synth.engine.tables import (
    PROGRAM_BANK,
    PROGRAM_FIRST_ZONE,
    PROGRAM_NUMBER,
    PROGRAM_ZONE_COUNT,
    ZONE_KEY_HI,
    ZONE_KEY_LO,
    ZONE_PATCH,
    ZONE_VEL_HI,
    ZONE_VEL_LO,
)
from wifm_synth.engine.voice_pool import play_note, release_voice
from wifm_synth.midi import (
    CC_ALL_NOTES_OFF,
    CC_ALL_SOUND_OFF,
    CC_BANK_LSB,
    CC_BANK_MSB,
    CC_DATA_ENTRY_LSB,
    CC_DATA_ENTRY_MSB,
    CC_EXPRESSION,
    CC_MOD_WHEEL,
    CC_NRPN_LSB,
    CC_NRPN_MSB,
    CC_PAN,
    CC_RESET_CONTROLLERS,
    CC_RPN_LSB,
    CC_RPN_MSB,
    CC_SOFT_PEDAL,
    CC_SOSTENUTO,
    CC_SUSTAIN,
    CC_VOLUME,
    CHANNEL_PRESSURE_STATUS,
    CONTROL_CHANGE,
    DRUM_CHANNEL,
    KEY_PRESSURE_STATUS,
    MIDI_CHANNELS,
    NOTE_OFF,
    NOTE_ON,
    PEDAL_DOWN,
    PITCH_BEND,
    PROGRAM_CHANGE,
    RPN_NULL,
)


@njit(**KERNEL)
def resolve_program(program_table, bank, program):
    """(row, exact): the program itself, else the nearest program number in the same bank (lower on a
    tie), else bank 0 program 0, else the first program — the same rule as Bank.program_for."""
    nearest = -1
    nearest_distance = 1 << 30
    default = 0
    for row in range(program_table.shape[0]):
        row_bank = program_table[row, PROGRAM_BANK]
        row_program = program_table[row, PROGRAM_NUMBER]
        if row_bank == 0 and row_program == 0:
            default = row
        if row_bank != bank:
            continue
        if row_program == program:
            return row, True
        distance = abs(row_program - program)
        if distance < nearest_distance:  # rows are sorted by program, so ties keep the lower one
            nearest, nearest_distance = row, distance
    return (nearest if nearest >= 0 else default), False


@njit(**KERNEL)
def find_zone_patch(program_table, zone_table, program_row, key, velocity):
    """Patch row of the zone of ``program_row`` that holds (key, velocity), or −1."""
    first = program_table[program_row, PROGRAM_FIRST_ZONE]
    for zone in range(first, first + program_table[program_row, PROGRAM_ZONE_COUNT]):
        if (zone_table[zone, ZONE_KEY_LO] <= key <= zone_table[zone, ZONE_KEY_HI]
                and zone_table[zone, ZONE_VEL_LO] <= velocity <= zone_table[zone, ZONE_VEL_HI]):
            return zone_table[zone, ZONE_PATCH]
    return -1


@njit(**KERNEL)
def _key_up(state, voice, frame):
    """A held voice's key goes up: the pedals may keep it sounding."""
    channel = state.voice_ints[VOICE_CHANNEL, voice]
    if state.channel_ints[CHANNEL_SUSTAIN, channel] or state.voice_ints[VOICE_SOSTENUTO, voice]:
        state.voice_ints[VOICE_STAGE, voice] = SUSTAINED
    else:
        release_voice(state, voice, frame)


@njit(**KERNEL)
def _pedal_up(state, channel, frame):
    """Release the channel's pedal-held voices that neither pedal holds any more."""
    if state.channel_ints[CHANNEL_SUSTAIN, channel]:
        return
    voice_ints = state.voice_ints
    for voice in range(voice_ints.shape[1]):
        if (voice_ints[VOICE_STAGE, voice] == SUSTAINED and voice_ints[VOICE_CHANNEL, voice] == channel
                and not voice_ints[VOICE_SOSTENUTO, voice]):
            release_voice(state, voice, frame)


@njit(**KERNEL)
def note_on(state, channel, key, velocity, frame):
    engine = state.engine
    if channel == DRUM_CHANNEL:
        program_row = engine[ENGINE_DRUM_PROGRAM]
        if program_row < 0:
            engine[ENGINE_SILENT_DRUM_NOTES] += 1
            return
    else:
        program_row = state.channel_ints[CHANNEL_PROGRAM_ROW, channel]
    patch = find_zone_patch(state.program_table, state.zone_table, program_row, key, velocity)
    if patch >= 0:
        play_note(state, channel, key, velocity, patch, frame)


@njit(**KERNEL)
def note_off(state, channel, key, frame):
    voice_ints = state.voice_ints
    for voice in range(voice_ints.shape[1]):
        if (voice_ints[VOICE_STAGE, voice] == HELD and voice_ints[VOICE_CHANNEL, voice] == channel
                and voice_ints[VOICE_KEY, voice] == key):
            _key_up(state, voice, frame)


@njit(**KERNEL)
def program_change(state, channel, program):
    channel_ints, engine = state.channel_ints, state.engine
    channel_ints[CHANNEL_PROGRAM, channel] = program
    bank = channel_ints[CHANNEL_BANK_MSB, channel] * 128 + channel_ints[CHANNEL_BANK_LSB, channel]
    row, exact = resolve_program(state.program_table, bank, program)
    channel_ints[CHANNEL_PROGRAM_ROW, channel] = row
    if not exact and channel != DRUM_CHANNEL and not engine[ENGINE_EVERY_PROGRAM]:
        engine[ENGINE_UNKNOWN_PROGRAMS] += 1
        engine[ENGINE_UNKNOWN_CHANNEL] = channel
        engine[ENGINE_UNKNOWN_BANK] = bank
        engine[ENGINE_UNKNOWN_PROGRAM] = program
        engine[ENGINE_UNKNOWN_PLAYING_ROW] = row


@njit(**KERNEL)
def control_change(state, channel, controller, value, frame):
    channel_ints, channel_floats, voice_ints = state.channel_ints, state.channel_floats, state.voice_ints
    if controller == CC_BANK_MSB:
        channel_ints[CHANNEL_BANK_MSB, channel] = value
    elif controller == CC_BANK_LSB:
        channel_ints[CHANNEL_BANK_LSB, channel] = value
    elif controller == CC_MOD_WHEEL:
        channel_ints[CHANNEL_MOD_WHEEL, channel] = value
    elif controller == CC_VOLUME:
        channel_ints[CHANNEL_VOLUME, channel] = value
    elif controller == CC_PAN:
        channel_ints[CHANNEL_PAN, channel] = value
    elif controller == CC_EXPRESSION:
        channel_ints[CHANNEL_EXPRESSION, channel] = value
    elif controller == CC_SUSTAIN:
        channel_ints[CHANNEL_SUSTAIN, channel] = 1 if value >= PEDAL_DOWN else 0
        if value < PEDAL_DOWN:
            _pedal_up(state, channel, frame)
    elif controller == CC_SOSTENUTO:
        down = value >= PEDAL_DOWN
        if down and not channel_ints[CHANNEL_SOSTENUTO, channel]:
            for voice in range(voice_ints.shape[1]):  # latch the keys that are down now
                if voice_ints[VOICE_STAGE, voice] == HELD and voice_ints[VOICE_CHANNEL, voice] == channel:
                    voice_ints[VOICE_SOSTENUTO, voice] = 1
        elif not down and channel_ints[CHANNEL_SOSTENUTO, channel]:
            for voice in range(voice_ints.shape[1]):
                if voice_ints[VOICE_CHANNEL, voice] == channel and voice_ints[VOICE_STAGE, voice] != RELEASED:
                    voice_ints[VOICE_SOSTENUTO, voice] = 0
            _pedal_up(state, channel, frame)
        channel_ints[CHANNEL_SOSTENUTO, channel] = 1 if down else 0
    elif controller == CC_SOFT_PEDAL:
        channel_ints[CHANNEL_SOFT, channel] = 1 if value >= PEDAL_DOWN else 0
    elif controller == CC_RPN_MSB:
        channel_ints[CHANNEL_RPN_MSB, channel] = value
    elif controller == CC_RPN_LSB:
        channel_ints[CHANNEL_RPN_LSB, channel] = value
    elif controller == CC_NRPN_MSB or controller == CC_NRPN_LSB:
        channel_ints[CHANNEL_RPN_MSB, channel] = RPN_NULL  # data entry now addresses an NRPN, which we ignore
        channel_ints[CHANNEL_RPN_LSB, channel] = RPN_NULL
    elif controller == CC_DATA_ENTRY_MSB or controller == CC_DATA_ENTRY_LSB:
        if channel_ints[CHANNEL_RPN_MSB, channel] == 0 and channel_ints[CHANNEL_RPN_LSB, channel] == 0:
            semitones = int(channel_floats[CHANNEL_BEND_RANGE, channel])
            cents = round((channel_floats[CHANNEL_BEND_RANGE, channel] - semitones) * 100.0)
            if controller == CC_DATA_ENTRY_MSB:
                semitones = value
            else:
                cents = min(value, 99)
            channel_floats[CHANNEL_BEND_RANGE, channel] = semitones + cents / 100.0
    elif controller == CC_ALL_SOUND_OFF:
        for voice in range(voice_ints.shape[1]):
            if voice_ints[VOICE_CHANNEL, voice] == channel:
                voice_ints[VOICE_STAGE, voice] = FREE
    elif controller == CC_RESET_CONTROLLERS:
        restore_channel_defaults(channel_ints, channel_floats, channel, True)
        _controllers_reset(state, channel, frame)
    elif controller == CC_ALL_NOTES_OFF:
        _all_notes_off(state, channel, frame)


@njit(**KERNEL)
def _controllers_reset(state, channel, frame):
    """After the channel's controller rows were reset: no pedal holds its voices, no key pressure stays."""
    voice_ints = state.voice_ints
    for voice in range(voice_ints.shape[1]):
        if voice_ints[VOICE_CHANNEL, voice] == channel and voice_ints[VOICE_STAGE, voice] != RELEASED:
            voice_ints[VOICE_SOSTENUTO, voice] = 0
            voice_ints[VOICE_PRESSURE, voice] = 0
    _pedal_up(state, channel, frame)


@njit(**KERNEL)
def _all_notes_off(state, channel, frame):
    voice_ints = state.voice_ints
    for voice in range(voice_ints.shape[1]):
        if voice_ints[VOICE_STAGE, voice] == HELD and voice_ints[VOICE_CHANNEL, voice] == channel:
            _key_up(state, voice, frame)


@njit(**KERNEL)
def reset_all_channels(state, frame):
    """A GM System On / GS Reset message: every channel back to power-on (the channel-reset rule,
    programs included) and its notes released; the master gain and tuning are the player's and stay."""
    program_row = default_program_row(state.program_table)
    for channel in range(MIDI_CHANNELS):
        power_on_channel(state.channel_ints, state.channel_floats, channel, program_row)
        _controllers_reset(state, channel, frame)
        _all_notes_off(state, channel, frame)


@njit(**KERNEL)
def key_pressure(state, channel, key, pressure):
    """Polyphonic aftertouch: the pressure of the sounding voices of that key."""
    voice_ints = state.voice_ints
    for voice in range(voice_ints.shape[1]):
        stage = voice_ints[VOICE_STAGE, voice]
        if ((stage == HELD or stage == SUSTAINED) and voice_ints[VOICE_CHANNEL, voice] == channel
                and voice_ints[VOICE_KEY, voice] == key):
            voice_ints[VOICE_PRESSURE, voice] = pressure


@njit(**KERNEL)
def apply_event(state, frame, status, data1, data2):
    """Apply one channel-voice message at ``frame``; system messages (status ≥ 0xF0) are ignored."""
    kind = status & 0xF0
    channel = status & 0x0F
    state.engine[ENGINE_EVENTS_APPLIED] += 1
    if kind == NOTE_ON and data2 > 0:
        note_on(state, channel, data1, data2, frame)
    elif kind == NOTE_OFF or kind == NOTE_ON:
        note_off(state, channel, data1, frame)
    elif kind == CONTROL_CHANGE:
        control_change(state, channel, data1, data2, frame)
    elif kind == PROGRAM_CHANGE:
        program_change(state, channel, data1)
    elif kind == KEY_PRESSURE_STATUS:
        key_pressure(state, channel, data1, data2)
    elif kind == CHANNEL_PRESSURE_STATUS:
        state.channel_ints[CHANNEL_PRESSURE, channel] = data1
    elif kind == PITCH_BEND:
        state.channel_floats[CHANNEL_BEND, channel] = ((data2 << 7 | data1) - 8192) / 8192.0
