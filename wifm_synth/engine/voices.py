"""Voice pool: start, release, steal, and render one span of every sounding voice.

A span is a stretch of frames inside one 64-frame block with no event in it; per-span values
(pitch bend, vibrato, envelope end points) are computed once and gains ramp linearly per sample
from the value at the span's start to the value at its end, so events land sample-accurately.
"""

from __future__ import annotations

import math

from numba import njit

from wifm_synth.engine.kernels import (
    KERNEL,
    SILENT_DB,
    TWO_PI,
    amplitude_to_db,
    channel_gains,
    db_to_amplitude,
    held_envelope,
    lfo_fade,
    lfo_value,
    released_envelope,
    render_operator,
    render_operator_feedback,
)
from wifm_synth.engine.state import (
    CHANNEL_BEND,
    CHANNEL_BEND_RANGE,
    CHANNEL_EXPRESSION,
    CHANNEL_GAIN_LEFT,
    CHANNEL_GAIN_RIGHT,
    CHANNEL_MOD_WHEEL,
    CHANNEL_PAN,
    CHANNEL_PRESSURE,
    CHANNEL_VOLUME,
    ENGINE_ACTIVE_VOICES,
    ENGINE_DROPPED_NOTES,
    ENGINE_NOTE_SERIAL,
    ENGINE_PEAK_VOICES,
    ENGINE_SAMPLE_RATE,
    ENGINE_STOLEN_VOICES,
    FREE,
    HELD,
    MIDI_CHANNELS,
    OPERATOR_ENVELOPE,
    OPERATOR_FEEDBACK_1,
    OPERATOR_FEEDBACK_2,
    OPERATOR_GAIN,
    OPERATOR_HZ,
    OPERATOR_PHASE,
    OPERATOR_RELEASE_DB,
    OPERATOR_SCALE,
    OPERATOR_TIME_RATE,
    RELEASED,
    SCRATCH_CHANNEL_MIX,
    SCRATCH_FIFO_LEFT,
    SCRATCH_FIFO_RIGHT,
    SCRATCH_MODULATION,
    SCRATCH_OPERATOR_OUT,
    SCRATCH_SILENCE,
    SUSTAINED,
    VOICE_CHANNEL,
    VOICE_KEY,
    VOICE_KEY_HZ,
    VOICE_LOUDNESS,
    VOICE_PATCH,
    VOICE_RELEASE_FRAME,
    VOICE_SERIAL,
    VOICE_SOSTENUTO,
    VOICE_STAGE,
    VOICE_START_FRAME,
    VOICE_VELOCITY,
)
from wifm_synth.patch.compile import (
    EVALUATION_ORDER,
    IS_CARRIER,
    LFO_AMP_DB,
    LFO_DELAY_S,
    LFO_PITCH_CENTS,
    LFO_RATE_HZ,
    MODULATOR_COUNT,
    MODULATORS,
    OP_DETUNE_CENTS,
    OP_FEEDBACK,
    OP_FIXED_HZ,
    OP_KEY_LEVEL_DB_PER_OCTAVE,
    OP_LEVEL,
    OP_RATE_SCALING,
    OP_RATIO,
    OP_VELOCITY_SENSITIVITY,
    OPERATOR_COUNT,
    OPERATOR_WIDTH,
    OPERATORS,
    REFERENCE_NOTE,
    REFERENCE_VELOCITY,
    TUNE_CENTS,
)
from wifm_synth.patch.model import MAX_OPERATORS

SILENCE_AMPLITUDE = 10.0 ** (-90.0 / 20.0)  # a voice whose carriers all stay below −90 dB is freed
MOD_WHEEL_VIBRATO_CENTS = 50.0  # vibrato depth added by CC1 (and by channel pressure) at 127
MAX_MODULATORS = MAX_OPERATORS - 1


@njit(inline="always", **KERNEL)
def tremolo(patch_table, patch, time_s):
    """Amplitude factor of the patch's LFO tremolo: 0 dB at the LFO's peak, −depth at its trough."""
    depth_db = patch_table[patch, LFO_AMP_DB] * lfo_fade(patch_table[patch, LFO_DELAY_S], time_s)
    swing = 0.5 * (1.0 - lfo_value(patch_table[patch, LFO_RATE_HZ], time_s))
    return db_to_amplitude(-depth_db * swing)


@njit(inline="always", **KERNEL)
def vibrato_cents(patch_table, patch, channels, channel, time_s):
    depth = patch_table[patch, LFO_PITCH_CENTS] * lfo_fade(patch_table[patch, LFO_DELAY_S], time_s)
    depth += MOD_WHEEL_VIBRATO_CENTS * (channels[CHANNEL_MOD_WHEEL, channel] + channels[CHANNEL_PRESSURE, channel]) / 127.0
    return depth * lfo_value(patch_table[patch, LFO_RATE_HZ], time_s)


@njit(**KERNEL)
def start_voice(patch_table, routing_table, voice_ints, voice_floats, operators, engine,
                voice, channel, key, velocity, patch, frame):
    voice_ints[VOICE_STAGE, voice] = HELD
    voice_ints[VOICE_CHANNEL, voice] = channel
    voice_ints[VOICE_KEY, voice] = key
    voice_ints[VOICE_VELOCITY, voice] = velocity
    voice_ints[VOICE_PATCH, voice] = patch
    voice_ints[VOICE_START_FRAME, voice] = frame
    voice_ints[VOICE_SOSTENUTO, voice] = 0
    voice_ints[VOICE_SERIAL, voice] = engine[ENGINE_NOTE_SERIAL]
    engine[ENGINE_NOTE_SERIAL] += 1
    key_offset = key - patch_table[patch, REFERENCE_NOTE]
    key_hz = 440.0 * 2.0 ** ((key - 69 + patch_table[patch, TUNE_CENTS] / 100.0) / 12.0)
    voice_floats[VOICE_KEY_HZ, voice] = key_hz
    velocity_ratio = math.log10(velocity / patch_table[patch, REFERENCE_VELOCITY])
    start_tremolo = tremolo(patch_table, patch, 0.0)
    for operator in range(routing_table[patch, OPERATOR_COUNT]):
        base = OPERATORS + operator * OPERATOR_WIDTH
        fixed_hz = patch_table[patch, base + OP_FIXED_HZ]
        if fixed_hz > 0.0:
            operators[OPERATOR_HZ, operator, voice] = fixed_hz
        else:
            operators[OPERATOR_HZ, operator, voice] = (
                patch_table[patch, base + OP_RATIO] * key_hz * 2.0 ** (patch_table[patch, base + OP_DETUNE_CENTS] / 1200.0))
        scale_db = (40.0 * patch_table[patch, base + OP_VELOCITY_SENSITIVITY] * velocity_ratio
                    + patch_table[patch, base + OP_KEY_LEVEL_DB_PER_OCTAVE] * key_offset / 12.0)
        scale = db_to_amplitude(scale_db)
        envelope, _ = held_envelope(patch_table, patch, operator, 0.0)
        operators[OPERATOR_PHASE, operator, voice] = 0.0
        operators[OPERATOR_SCALE, operator, voice] = scale
        operators[OPERATOR_TIME_RATE, operator, voice] = 2.0 ** (patch_table[patch, base + OP_RATE_SCALING] * key_offset / 12.0)
        operators[OPERATOR_ENVELOPE, operator, voice] = envelope
        gain = envelope * scale
        if routing_table[patch, IS_CARRIER + operator]:
            gain *= start_tremolo
        operators[OPERATOR_GAIN, operator, voice] = gain
        operators[OPERATOR_FEEDBACK_1, operator, voice] = 0.0
        operators[OPERATOR_FEEDBACK_2, operator, voice] = 0.0
    voice_floats[VOICE_LOUDNESS, voice] = 0.0


@njit(**KERNEL)
def release_voice(routing_table, voice_ints, operators, voice, frame):
    """Note-off: each operator's release starts from its envelope level at this frame."""
    voice_ints[VOICE_STAGE, voice] = RELEASED
    voice_ints[VOICE_RELEASE_FRAME, voice] = frame
    voice_ints[VOICE_SOSTENUTO, voice] = 0
    patch = voice_ints[VOICE_PATCH, voice]
    for operator in range(routing_table[patch, OPERATOR_COUNT]):
        operators[OPERATOR_RELEASE_DB, operator, voice] = amplitude_to_db(operators[OPERATOR_ENVELOPE, operator, voice])


@njit(**KERNEL)
def choose_voice(voice_ints, voice_floats, engine, frame):
    """A free voice, else the one to steal: released (quietest), then sustained (quietest), then held
    (oldest); never a voice started at ``frame``. Returns −1 when every voice started at ``frame``."""
    chosen = -1
    chosen_rank = 4
    chosen_order = 0.0
    for voice in range(voice_ints.shape[1]):
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
def _modulation_input(routing_table, scratch, patch, operator, count):
    """The row holding operator ``operator``'s phase modulation (cycles) for this span."""
    sources = routing_table[patch, MODULATOR_COUNT + operator]
    first = MODULATORS + operator * MAX_MODULATORS
    if sources == 0:
        return scratch[SCRATCH_SILENCE]
    if sources == 1:
        return scratch[SCRATCH_OPERATOR_OUT + routing_table[patch, first]]
    total = scratch[SCRATCH_MODULATION]
    source_row = scratch[SCRATCH_OPERATOR_OUT + routing_table[patch, first]]
    for i in range(count):
        total[i] = source_row[i]
    for position in range(1, sources):
        source_row = scratch[SCRATCH_OPERATOR_OUT + routing_table[patch, first + position]]
        for i in range(count):
            total[i] += source_row[i]
    return total


@njit(**KERNEL)
def render_voice(patch_table, routing_table, voice_ints, voice_floats, operators, channels, scratch,
                 voice, span_frame, count, sample_rate):
    """Add one voice's carriers to its channel's mix row; returns False once it can never be heard again."""
    patch = voice_ints[VOICE_PATCH, voice]
    channel = voice_ints[VOICE_CHANNEL, voice]
    start_frame = voice_ints[VOICE_START_FRAME, voice]
    released = voice_ints[VOICE_STAGE, voice] == RELEASED
    time_start = (span_frame - start_frame) / sample_rate
    time_end = (span_frame + count - start_frame) / sample_rate
    release_time = (voice_ints[VOICE_RELEASE_FRAME, voice] - start_frame) / sample_rate
    pitch_cents = (100.0 * channels[CHANNEL_BEND, channel] * channels[CHANNEL_BEND_RANGE, channel]
                   + vibrato_cents(patch_table, patch, channels, channel, time_start))
    key_pitch_factor = 2.0 ** (pitch_cents / 1200.0)
    end_tremolo = tremolo(patch_table, patch, time_end)
    mix = scratch[SCRATCH_CHANNEL_MIX + channel]
    loudest = 0.0
    audible = False
    for slot in range(routing_table[patch, OPERATOR_COUNT]):
        operator = routing_table[patch, EVALUATION_ORDER + slot]
        base = OPERATORS + operator * OPERATOR_WIDTH
        time_rate = operators[OPERATOR_TIME_RATE, operator, voice]
        if released:
            envelope = released_envelope(patch_table, patch, operator, operators[OPERATOR_RELEASE_DB, operator, voice],
                                         (time_end - release_time) * time_rate)
            future_peak_db = SILENT_DB
        else:
            envelope, future_peak_db = held_envelope(patch_table, patch, operator, time_end * time_rate)
        operators[OPERATOR_ENVELOPE, operator, voice] = envelope
        is_carrier = routing_table[patch, IS_CARRIER + operator] != 0
        scale = operators[OPERATOR_SCALE, operator, voice]
        gain_end = envelope * scale
        if is_carrier:
            gain_end *= end_tremolo
        gain_start = operators[OPERATOR_GAIN, operator, voice]
        operators[OPERATOR_GAIN, operator, voice] = gain_end
        gain_step = (gain_end - gain_start) / count
        level = patch_table[patch, base + OP_LEVEL]
        output_level = level if is_carrier else level / TWO_PI
        increment = operators[OPERATOR_HZ, operator, voice] / sample_rate
        if patch_table[patch, base + OP_FIXED_HZ] == 0.0:
            increment *= key_pitch_factor
        modulation = _modulation_input(routing_table, scratch, patch, operator, count)
        out = scratch[SCRATCH_OPERATOR_OUT + operator]
        phase = operators[OPERATOR_PHASE, operator, voice]
        feedback = patch_table[patch, base + OP_FEEDBACK]
        if feedback > 0.0:
            phase, previous_1, previous_2 = render_operator_feedback(
                out, modulation, count, phase, increment, gain_start, gain_step, output_level,
                0.5 * feedback / TWO_PI, operators[OPERATOR_FEEDBACK_1, operator, voice],
                operators[OPERATOR_FEEDBACK_2, operator, voice])
            operators[OPERATOR_FEEDBACK_1, operator, voice] = previous_1
            operators[OPERATOR_FEEDBACK_2, operator, voice] = previous_2
        else:
            phase = render_operator(out, modulation, count, phase, increment,
                                    gain_start * output_level, gain_step * output_level)
        operators[OPERATOR_PHASE, operator, voice] = phase
        if is_carrier:
            for i in range(count):
                mix[i] += out[i]
            amplitude = gain_end * level
            loudest = max(loudest, amplitude)
            if amplitude >= SILENCE_AMPLITUDE or db_to_amplitude(future_peak_db) * scale * level >= SILENCE_AMPLITUDE:
                audible = True
    voice_floats[VOICE_LOUDNESS, voice] = loudest
    return audible


@njit(**KERNEL)
def render_span(patch_table, routing_table, voice_ints, voice_floats, operators, channels, engine, scratch,
                offset, count, span_frame):
    """Render frames [span_frame, span_frame + count) into the block fifo at ``offset``."""
    sample_rate = float(engine[ENGINE_SAMPLE_RATE])
    for channel in range(MIDI_CHANNELS):
        mix = scratch[SCRATCH_CHANNEL_MIX + channel]
        for i in range(count):
            mix[i] = 0.0
    active = 0
    for voice in range(voice_ints.shape[1]):
        if voice_ints[VOICE_STAGE, voice] == FREE:
            continue
        active += 1
        if not render_voice(patch_table, routing_table, voice_ints, voice_floats, operators, channels, scratch,
                            voice, span_frame, count, sample_rate):
            voice_ints[VOICE_STAGE, voice] = FREE
    engine[ENGINE_ACTIVE_VOICES] = active
    engine[ENGINE_PEAK_VOICES] = max(engine[ENGINE_PEAK_VOICES], active)
    left = scratch[SCRATCH_FIFO_LEFT]
    right = scratch[SCRATCH_FIFO_RIGHT]
    for channel in range(MIDI_CHANNELS):
        target_left, target_right = channel_gains(channels[CHANNEL_VOLUME, channel],
                                                  channels[CHANNEL_EXPRESSION, channel], channels[CHANNEL_PAN, channel])
        gain_left = channels[CHANNEL_GAIN_LEFT, channel]
        gain_right = channels[CHANNEL_GAIN_RIGHT, channel]
        step_left = (target_left - gain_left) / count
        step_right = (target_right - gain_right) / count
        channels[CHANNEL_GAIN_LEFT, channel] = target_left
        channels[CHANNEL_GAIN_RIGHT, channel] = target_right
        mix = scratch[SCRATCH_CHANNEL_MIX + channel]
        for i in range(count):
            left[offset + i] += (gain_left + step_left * i) * mix[i]
            right[offset + i] += (gain_right + step_right * i) * mix[i]

