"""Voice allocation: which voice column plays a note, starting and releasing it, stealing with a fade.

This is the bookkeeping half of a voice (FluidSynth's ``fluid_voice``): stages, keys, channels,
serial numbers and each operator's starting parameters. Rendering the sound of the voices is
``engine/voice_dsp.py`` (FluidSynth's ``rvoice``).
"""

from __future__ import annotations

import math

from numba import njit

from wifm_synth.engine.kernels import (
    KERNEL,
    amplitude_to_db,
    db_to_amplitude,
    held_envelope,
    key_points_db,
    tremolo,
)
from wifm_synth.engine.layout import (
    CHANNEL_SOFT,
    ENGINE_DROPPED_NOTES,
    ENGINE_NOTE_SERIAL,
    ENGINE_SAMPLE_RATE,
    ENGINE_STOLEN_VOICES,
    OPERATOR_ENVELOPE,
    OPERATOR_FEEDBACK_1,
    OPERATOR_FEEDBACK_2,
    OPERATOR_GAIN,
    OPERATOR_HZ,
    OPERATOR_PHASE,
    OPERATOR_RELEASE_DB,
    OPERATOR_SCALE,
    OPERATOR_TIME_RATE,
    STEAL_FADE_VOICES,
    VOICE_CHANNEL,
    VOICE_FADE_FRAME,
    VOICE_KEY,
    VOICE_LOUDNESS,
    VOICE_PATCH,
    VOICE_PRESSURE,
    VOICE_RELEASE_FRAME,
    VOICE_SERIAL,
    VOICE_SOSTENUTO,
    VOICE_STAGE,
    VOICE_START_FRAME,
)
from wifm_synth.engine.state import FADING, FREE, HELD, RELEASED, SUSTAINED
from wifm_synth.engine.tables import (
    IS_CARRIER,
    OP_DETUNE_CENTS,
    OP_FIXED_HZ,
    OP_KEY_LEVEL_DB_PER_OCTAVE,
    OP_RATE_SCALING,
    OP_RATIO,
    OP_VELOCITY_SENSITIVITY,
    OPERATOR_COUNT,
    OPERATOR_WIDTH,
    OPERATORS,
    OSCILLATOR_KEY_SYNC,
    REFERENCE_NOTE,
    REFERENCE_VELOCITY,
    TUNE_CENTS,
)
from wifm_synth.midi import STANDARD_A4_HZ
from wifm_synth.voice.schema import SCALING_GAIN_CEILING_DB

MIN_NOTE_S = 0.010  # a note-off sooner than this after its note-on waits until then (FluidSynth's min-note-length)
# The soft pedal (CC67, una corda) acts on the notes struck while it is down, as a piano's does: they
# sound 4 dB softer, and their modulators' indices drop 3 dB, so the tone (its attack above all, where
# the indices are highest) is darker.
SOFT_PEDAL_CARRIER_DB = -4.0
SOFT_PEDAL_MODULATOR_DB = -3.0


@njit(**KERNEL)
def start_voice(state, voice, channel, key, velocity, patch, frame):
    patch_table, routing_table, voice_ints, operators, engine = (
        state.patch_table, state.routing_table, state.voice_ints, state.operators, state.engine)
    voice_ints[VOICE_STAGE, voice] = HELD
    voice_ints[VOICE_CHANNEL, voice] = channel
    voice_ints[VOICE_KEY, voice] = key
    voice_ints[VOICE_PATCH, voice] = patch
    voice_ints[VOICE_START_FRAME, voice] = frame
    voice_ints[VOICE_SOSTENUTO, voice] = 0
    voice_ints[VOICE_PRESSURE, voice] = 0
    voice_ints[VOICE_SERIAL, voice] = engine[ENGINE_NOTE_SERIAL]
    engine[ENGINE_NOTE_SERIAL] += 1
    key_offset = key - patch_table[patch, REFERENCE_NOTE]
    key_hz = STANDARD_A4_HZ * 2.0 ** ((key - 69 + patch_table[patch, TUNE_CENTS] / 100.0) / 12.0)
    velocity_ratio = math.log10(velocity / patch_table[patch, REFERENCE_VELOCITY])
    start_tremolo = tremolo(patch_table, patch, 0.0)
    soft = state.channel_ints[CHANNEL_SOFT, channel] != 0
    key_sync = patch_table[patch, OSCILLATOR_KEY_SYNC] != 0.0
    sample_rate = state.engine[ENGINE_SAMPLE_RATE]
    for operator in range(routing_table[patch, OPERATOR_COUNT]):
        base = OPERATORS + operator * OPERATOR_WIDTH
        fixed_hz = patch_table[patch, base + OP_FIXED_HZ]
        if fixed_hz > 0.0:
            operators[OPERATOR_HZ, operator, voice] = fixed_hz
        else:
            operators[OPERATOR_HZ, operator, voice] = (
                patch_table[patch, base + OP_RATIO] * key_hz * 2.0 ** (patch_table[patch, base + OP_DETUNE_CENTS] / 1200.0))
        scale_db = min(40.0 * patch_table[patch, base + OP_VELOCITY_SENSITIVITY] * velocity_ratio
                       + patch_table[patch, base + OP_KEY_LEVEL_DB_PER_OCTAVE] * key_offset / 12.0
                       + key_points_db(patch_table, patch, operator, key),
                       SCALING_GAIN_CEILING_DB)
        if soft:
            scale_db += SOFT_PEDAL_CARRIER_DB if routing_table[patch, IS_CARRIER + operator] else SOFT_PEDAL_MODULATOR_DB
        scale = db_to_amplitude(scale_db)
        envelope, _ = held_envelope(patch_table, patch, operator, 0.0)
        # Key sync off: where an oscillator running at this frequency since frame 0 is now (deterministic).
        cycles = 0.0 if key_sync else operators[OPERATOR_HZ, operator, voice] * (frame / sample_rate)
        operators[OPERATOR_PHASE, operator, voice] = cycles - math.floor(cycles)
        operators[OPERATOR_SCALE, operator, voice] = scale
        operators[OPERATOR_TIME_RATE, operator, voice] = 2.0 ** (patch_table[patch, base + OP_RATE_SCALING] * key_offset / 12.0)
        operators[OPERATOR_ENVELOPE, operator, voice] = envelope
        gain = envelope * scale
        if routing_table[patch, IS_CARRIER + operator]:
            gain *= start_tremolo
        operators[OPERATOR_GAIN, operator, voice] = gain
        operators[OPERATOR_FEEDBACK_1, operator, voice] = 0.0
        operators[OPERATOR_FEEDBACK_2, operator, voice] = 0.0
    state.voice_floats[VOICE_LOUDNESS, voice] = 0.0


@njit(**KERNEL)
def release_voice(state, voice, frame):
    """Note-off at ``frame``. The release begins there, but no sooner than MIN_NOTE_S after the note-on, so
    even a zero-length note sounds; each operator's release starts from its held envelope level then."""
    voice_ints, operators = state.voice_ints, state.operators
    sample_rate = state.engine[ENGINE_SAMPLE_RATE]
    start_frame = voice_ints[VOICE_START_FRAME, voice]
    release_frame = max(frame, start_frame + round(MIN_NOTE_S * sample_rate))
    voice_ints[VOICE_STAGE, voice] = RELEASED
    voice_ints[VOICE_RELEASE_FRAME, voice] = release_frame
    voice_ints[VOICE_SOSTENUTO, voice] = 0
    patch = voice_ints[VOICE_PATCH, voice]
    release_time = (release_frame - start_frame) / sample_rate
    for operator in range(state.routing_table[patch, OPERATOR_COUNT]):
        envelope, _ = held_envelope(state.patch_table, patch, operator,
                                    release_time * operators[OPERATOR_TIME_RATE, operator, voice])
        operators[OPERATOR_RELEASE_DB, operator, voice] = amplitude_to_db(envelope)


@njit(**KERNEL)
def fade_out_stolen(state, voice, frame):
    """Move the voice being stolen at ``frame`` to a fade column, where it is released and fades out over
    STEAL_FADE_S instead of stopping dead. With every fade column busy, the furthest faded one is cut."""
    voice_ints, voice_floats, operators = state.voice_ints, state.voice_floats, state.operators
    first_fade = voice_ints.shape[1] - STEAL_FADE_VOICES
    slot = first_fade
    for candidate in range(first_fade, voice_ints.shape[1]):
        if voice_ints[VOICE_STAGE, candidate] == FREE:
            slot = candidate
            break
        if voice_ints[VOICE_FADE_FRAME, candidate] < voice_ints[VOICE_FADE_FRAME, slot]:
            slot = candidate
    if voice_ints[VOICE_STAGE, voice] != RELEASED:
        release_voice(state, voice, frame)
    for row in range(voice_ints.shape[0]):
        voice_ints[row, slot] = voice_ints[row, voice]
    for row in range(voice_floats.shape[0]):
        voice_floats[row, slot] = voice_floats[row, voice]
    for row in range(operators.shape[0]):
        for operator in range(operators.shape[1]):
            operators[row, operator, slot] = operators[row, operator, voice]
    voice_ints[VOICE_STAGE, slot] = FADING
    voice_ints[VOICE_FADE_FRAME, slot] = frame


@njit(**KERNEL)
def choose_voice(state, frame):
    """A free playable voice, else the one to steal: released (quietest), then sustained (quietest), then
    held (oldest); never a voice started at ``frame``. Returns −1 when every voice started at ``frame``."""
    voice_ints, voice_floats, engine = state.voice_ints, state.voice_floats, state.engine
    chosen = -1
    chosen_rank = 4
    chosen_order = 0.0
    for voice in range(voice_ints.shape[1] - STEAL_FADE_VOICES):
        stage = voice_ints[VOICE_STAGE, voice]
        if stage == FREE:
            return voice
        if voice_ints[VOICE_START_FRAME, voice] == frame:
            continue
        if stage == RELEASED:
            rank, order = 0, voice_floats[VOICE_LOUDNESS, voice]
        elif stage == SUSTAINED:
            rank, order = 1, voice_floats[VOICE_LOUDNESS, voice]
        else:
            rank, order = 2, float(voice_ints[VOICE_SERIAL, voice])
        if rank < chosen_rank or (rank == chosen_rank and order < chosen_order):
            chosen, chosen_rank, chosen_order = voice, rank, order
    if chosen < 0:
        engine[ENGINE_DROPPED_NOTES] += 1
    else:
        engine[ENGINE_STOLEN_VOICES] += 1
    return chosen


@njit(**KERNEL)
def play_note(state, channel, key, velocity, patch, frame):
    """Start ``key`` on a chosen voice (stealing one if need be): a re-struck key releases its old voice."""
    voice_ints = state.voice_ints
    for voice in range(voice_ints.shape[1]):
        stage = voice_ints[VOICE_STAGE, voice]
        if ((stage == HELD or stage == SUSTAINED) and voice_ints[VOICE_CHANNEL, voice] == channel
                and voice_ints[VOICE_KEY, voice] == key):
            release_voice(state, voice, frame)
    voice = choose_voice(state, frame)
    if voice >= 0:
        if voice_ints[VOICE_STAGE, voice] != FREE:
            fade_out_stolen(state, voice, frame)
        start_voice(state, voice, channel, key, velocity, patch, frame)


@njit(**KERNEL)
def silence_added_operators(state, patch, new_operator_count):
    """Before patch row ``patch`` is replaced: operators the new version adds to a sounding voice start
    from zero (no frequency, no gain), so they stay silent for that note instead of playing stale state."""
    voice_ints, operators = state.voice_ints, state.operators
    old_count = state.routing_table[patch, OPERATOR_COUNT]
    for voice in range(voice_ints.shape[1]):
        if voice_ints[VOICE_STAGE, voice] == FREE or voice_ints[VOICE_PATCH, voice] != patch:
            continue
        for operator in range(old_count, new_operator_count):
            for row in range(operators.shape[0]):
                operators[row, operator, voice] = 0.0
