"""MIDI channel-voice state machine (FluidSynth is the reference behaviour), applied at one frame."""

from __future__ import annotations

from numba import njit

from wifm_synth.engine.kernels import KERNEL
from wifm_synth.engine.state import (
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
    CHANNEL_SOSTENUTO,
    CHANNEL_SUSTAIN,
    CHANNEL_VOLUME,
    DRUM_CHANNEL,
    ENGINE_DRUM_PROGRAM,
    ENGINE_EVENTS_APPLIED,
    ENGINE_EVERY_PROGRAM,
    ENGINE_SILENT_DRUM_NOTES,
    ENGINE_UNKNOWN_BANK,
    ENGINE_UNKNOWN_CHANNEL,
    ENGINE_UNKNOWN_PLAYING_ROW,
    ENGINE_UNKNOWN_PROGRAM,
    ENGINE_UNKNOWN_PROGRAMS,
    FREE,
    HELD,
    RELEASED,
    RPN_NULL,
    SUSTAINED,
    VOICE_CHANNEL,
    VOICE_KEY,
    VOICE_SOSTENUTO,
    VOICE_STAGE,
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
from wifm_synth.engine.voices import (
    choose_voice,
    fade_out_stolen,
    release_voice,
    start_voice,
)

NOTE_OFF = 0x80
NOTE_ON = 0x90
CONTROL_CHANGE = 0xB0
PROGRAM_CHANGE = 0xC0
CHANNEL_PRESSURE_STATUS = 0xD0
PITCH_BEND = 0xE0

CC_BANK_MSB = 0
CC_MOD_WHEEL = 1
CC_DATA_ENTRY_MSB = 6
CC_VOLUME = 7
CC_PAN = 10
CC_EXPRESSION = 11
CC_BANK_LSB = 32
CC_DATA_ENTRY_LSB = 38
CC_SUSTAIN = 64
CC_SOSTENUTO = 66
CC_NRPN_LSB = 98
CC_NRPN_MSB = 99
CC_RPN_LSB = 100
CC_RPN_MSB = 101
CC_ALL_SOUND_OFF = 120
CC_RESET_CONTROLLERS = 121
CC_ALL_NOTES_OFF = 123
PEDAL_DOWN = 64


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
def _key_up(patch_table, routing_table, voice_ints, operators, channels, engine, voice, frame):
    """A held voice's key goes up: the pedals may keep it sounding."""
    channel = voice_ints[VOICE_CHANNEL, voice]
    if channels[CHANNEL_SUSTAIN, channel] or voice_ints[VOICE_SOSTENUTO, voice]:
        voice_ints[VOICE_STAGE, voice] = SUSTAINED
    else:
        release_voice(patch_table, routing_table, voice_ints, operators, engine, voice, frame)


@njit(**KERNEL)
def _pedal_up(patch_table, routing_table, voice_ints, operators, channels, engine, channel, frame):
    """Release the channel's pedal-held voices that neither pedal holds any more."""
    if channels[CHANNEL_SUSTAIN, channel]:
        return
    for voice in range(voice_ints.shape[1]):
        if (voice_ints[VOICE_STAGE, voice] == SUSTAINED and voice_ints[VOICE_CHANNEL, voice] == channel
                and not voice_ints[VOICE_SOSTENUTO, voice]):
            release_voice(patch_table, routing_table, voice_ints, operators, engine, voice, frame)


@njit(**KERNEL)
def note_on(patch_table, routing_table, program_table, zone_table, voice_ints, voice_floats, operators, channels,
            engine, channel, key, velocity, frame):
    if channel == DRUM_CHANNEL:
        program_row = engine[ENGINE_DRUM_PROGRAM]
        if program_row < 0:
            engine[ENGINE_SILENT_DRUM_NOTES] += 1
            return
    else:
        program_row = int(channels[CHANNEL_PROGRAM_ROW, channel])
    patch = find_zone_patch(program_table, zone_table, program_row, key, velocity)
    if patch < 0:
        return
    for voice in range(voice_ints.shape[1]):  # a re-struck key releases its old voice
        stage = voice_ints[VOICE_STAGE, voice]
        if ((stage == HELD or stage == SUSTAINED) and voice_ints[VOICE_CHANNEL, voice] == channel
                and voice_ints[VOICE_KEY, voice] == key):
            release_voice(patch_table, routing_table, voice_ints, operators, engine, voice, frame)
    voice = choose_voice(voice_ints, voice_floats, engine, frame)
    if voice >= 0:
        if voice_ints[VOICE_STAGE, voice] != FREE:
            fade_out_stolen(patch_table, routing_table, voice_ints, voice_floats, operators, engine, voice, frame)
        start_voice(patch_table, routing_table, voice_ints, voice_floats, operators, engine,
                    voice, channel, key, velocity, patch, frame)


@njit(**KERNEL)
def note_off(patch_table, routing_table, voice_ints, operators, channels, engine, channel, key, frame):
    for voice in range(voice_ints.shape[1]):
        if (voice_ints[VOICE_STAGE, voice] == HELD and voice_ints[VOICE_CHANNEL, voice] == channel
                and voice_ints[VOICE_KEY, voice] == key):
            _key_up(patch_table, routing_table, voice_ints, operators, channels, engine, voice, frame)


@njit(**KERNEL)
def program_change(program_table, channels, engine, channel, program):
    channels[CHANNEL_PROGRAM, channel] = program
    bank = int(channels[CHANNEL_BANK_MSB, channel]) * 128 + int(channels[CHANNEL_BANK_LSB, channel])
    row, exact = resolve_program(program_table, bank, program)
    channels[CHANNEL_PROGRAM_ROW, channel] = row
    if not exact and channel != DRUM_CHANNEL and not engine[ENGINE_EVERY_PROGRAM]:
        engine[ENGINE_UNKNOWN_PROGRAMS] += 1
        engine[ENGINE_UNKNOWN_CHANNEL] = channel
        engine[ENGINE_UNKNOWN_BANK] = bank
        engine[ENGINE_UNKNOWN_PROGRAM] = program
        engine[ENGINE_UNKNOWN_PLAYING_ROW] = row


@njit(**KERNEL)
def control_change(patch_table, routing_table, voice_ints, operators, channels, engine, channel, controller, value,
                   frame):
    if controller == CC_BANK_MSB:
        channels[CHANNEL_BANK_MSB, channel] = value
    elif controller == CC_BANK_LSB:
        channels[CHANNEL_BANK_LSB, channel] = value
    elif controller == CC_MOD_WHEEL:
        channels[CHANNEL_MOD_WHEEL, channel] = value
    elif controller == CC_VOLUME:
        channels[CHANNEL_VOLUME, channel] = value
    elif controller == CC_PAN:
        channels[CHANNEL_PAN, channel] = value
    elif controller == CC_EXPRESSION:
        channels[CHANNEL_EXPRESSION, channel] = value
    elif controller == CC_SUSTAIN:
        channels[CHANNEL_SUSTAIN, channel] = 1.0 if value >= PEDAL_DOWN else 0.0
        if value < PEDAL_DOWN:
            _pedal_up(patch_table, routing_table, voice_ints, operators, channels, engine, channel, frame)
    elif controller == CC_SOSTENUTO:
        down = value >= PEDAL_DOWN
        if down and not channels[CHANNEL_SOSTENUTO, channel]:
            for voice in range(voice_ints.shape[1]):  # latch the keys that are down now
                if voice_ints[VOICE_STAGE, voice] == HELD and voice_ints[VOICE_CHANNEL, voice] == channel:
                    voice_ints[VOICE_SOSTENUTO, voice] = 1
        elif not down and channels[CHANNEL_SOSTENUTO, channel]:
            for voice in range(voice_ints.shape[1]):
                if voice_ints[VOICE_CHANNEL, voice] == channel and voice_ints[VOICE_STAGE, voice] != RELEASED:
                    voice_ints[VOICE_SOSTENUTO, voice] = 0
            _pedal_up(patch_table, routing_table, voice_ints, operators, channels, engine, channel, frame)
        channels[CHANNEL_SOSTENUTO, channel] = 1.0 if down else 0.0
    elif controller == CC_RPN_MSB:
        channels[CHANNEL_RPN_MSB, channel] = value
    elif controller == CC_RPN_LSB:
        channels[CHANNEL_RPN_LSB, channel] = value
    elif controller == CC_NRPN_MSB or controller == CC_NRPN_LSB:
        channels[CHANNEL_RPN_MSB, channel] = RPN_NULL  # data entry now addresses an NRPN, which we ignore
        channels[CHANNEL_RPN_LSB, channel] = RPN_NULL
    elif controller == CC_DATA_ENTRY_MSB or controller == CC_DATA_ENTRY_LSB:
        if channels[CHANNEL_RPN_MSB, channel] == 0 and channels[CHANNEL_RPN_LSB, channel] == 0:
            semitones = int(channels[CHANNEL_BEND_RANGE, channel])
            cents = round((channels[CHANNEL_BEND_RANGE, channel] - semitones) * 100.0)
            if controller == CC_DATA_ENTRY_MSB:
                semitones = value
            else:
                cents = min(value, 99)
            channels[CHANNEL_BEND_RANGE, channel] = semitones + cents / 100.0
    elif controller == CC_ALL_SOUND_OFF:
        for voice in range(voice_ints.shape[1]):
            if voice_ints[VOICE_CHANNEL, voice] == channel:
                voice_ints[VOICE_STAGE, voice] = FREE
    elif controller == CC_RESET_CONTROLLERS:
        channels[CHANNEL_MOD_WHEEL, channel] = 0.0
        channels[CHANNEL_PRESSURE, channel] = 0.0
        channels[CHANNEL_BEND, channel] = 0.0
        channels[CHANNEL_EXPRESSION, channel] = 127.0
        channels[CHANNEL_RPN_MSB, channel] = RPN_NULL
        channels[CHANNEL_RPN_LSB, channel] = RPN_NULL
        channels[CHANNEL_SUSTAIN, channel] = 0.0
        channels[CHANNEL_SOSTENUTO, channel] = 0.0
        for voice in range(voice_ints.shape[1]):
            if voice_ints[VOICE_CHANNEL, voice] == channel and voice_ints[VOICE_STAGE, voice] != RELEASED:
                voice_ints[VOICE_SOSTENUTO, voice] = 0
        _pedal_up(patch_table, routing_table, voice_ints, operators, channels, engine, channel, frame)
    elif controller == CC_ALL_NOTES_OFF:
        for voice in range(voice_ints.shape[1]):
            if voice_ints[VOICE_STAGE, voice] == HELD and voice_ints[VOICE_CHANNEL, voice] == channel:
                _key_up(patch_table, routing_table, voice_ints, operators, channels, engine, voice, frame)


@njit(**KERNEL)
def apply_event(patch_table, routing_table, program_table, zone_table, voice_ints, voice_floats, operators,
                channels, engine, frame, status, data1, data2):
    """Apply one channel-voice message at ``frame``; system messages (status ≥ 0xF0) are ignored."""
    kind = status & 0xF0
    channel = status & 0x0F
    engine[ENGINE_EVENTS_APPLIED] += 1
    if kind == NOTE_ON and data2 > 0:
        note_on(patch_table, routing_table, program_table, zone_table, voice_ints, voice_floats, operators,
                channels, engine, channel, data1, data2, frame)
    elif kind == NOTE_OFF or kind == NOTE_ON:
        note_off(patch_table, routing_table, voice_ints, operators, channels, engine, channel, data1, frame)
    elif kind == CONTROL_CHANGE:
        control_change(patch_table, routing_table, voice_ints, operators, channels, engine, channel, data1, data2,
                       frame)
    elif kind == PROGRAM_CHANGE:
        program_change(program_table, channels, engine, channel, data1)
    elif kind == CHANNEL_PRESSURE_STATUS:
        channels[CHANNEL_PRESSURE, channel] = data1
    elif kind == PITCH_BEND:
        channels[CHANNEL_BEND, channel] = ((data2 << 7 | data1) - 8192) / 8192.0
