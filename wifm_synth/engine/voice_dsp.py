"""Per-voice DSP: render one span of every sounding voice into the channel mixes and the block fifo.

This is the rendering half of a voice (FluidSynth's ``rvoice``); which voice plays what, and
starting, releasing and stealing voices, is ``engine/voice_pool.py``.

A span is a stretch of frames inside one 64-frame block with no event in it; per-span values
(pitch bend, vibrato, envelope end points) are computed once and gains ramp linearly per sample
from the value at the span's start to the value at its end, so events land sample-accurately.

Voices render in groups: a parameter pass per voice (``update_voice_span``), then the group's
feedback operators side by side (``_render_feedback_lanes``), then each voice's other operators
in routing order (``render_voice``).

``render_span`` takes the engine state; the per-voice and per-group kernels take just the arrays they
touch, unpacked once per span: taking an array out of the state NamedTuple updates its reference
count, which per voice and span would cost more than rendering a 2-operator voice.
"""

from __future__ import annotations

import math

from numba import njit

from wifm_synth.engine.kernels import (
    KERNEL,
    SILENT_DB,
    TWO_PI,
    channel_gains,
    db_to_amplitude,
    held_envelope,
    pitch_envelope_cents,
    released_envelope,
    render_operator,
    render_operator_feedback,
    sin_cycles,
    tremolo,
    vibrato_cents,
)
from wifm_synth.engine.layout import (
    CHANNEL_BEND,
    CHANNEL_BEND_RANGE,
    CHANNEL_EXPRESSION,
    CHANNEL_GAIN_LEFT,
    CHANNEL_GAIN_RIGHT,
    CHANNEL_PAN,
    CHANNEL_VOLUME,
    ENGINE_ACTIVE_VOICES,
    ENGINE_PEAK_VOICES,
    ENGINE_SAMPLE_RATE,
    GROUP_AUDIBLE,
    GROUP_LANE,
    GROUP_VOICE,
    MASTER_A4_HZ,
    MASTER_GAIN,
    OPERATOR_ENVELOPE,
    OPERATOR_FEEDBACK_1,
    OPERATOR_FEEDBACK_2,
    OPERATOR_GAIN,
    OPERATOR_HZ,
    OPERATOR_PHASE,
    OPERATOR_RELEASE_DB,
    OPERATOR_SCALE,
    OPERATOR_SPAN_GAIN,
    OPERATOR_SPAN_GAIN_STEP,
    OPERATOR_SPAN_INCREMENT,
    OPERATOR_TIME_RATE,
    SCRATCH_CHANNEL_MIX,
    SCRATCH_FIFO_LEFT,
    SCRATCH_FIFO_RIGHT,
    SCRATCH_LANE_FEEDBACK,
    SCRATCH_LANE_GAIN,
    SCRATCH_LANE_GAIN_STEP,
    SCRATCH_LANE_INCREMENT,
    SCRATCH_LANE_LEVEL,
    SCRATCH_LANE_OUT,
    SCRATCH_LANE_PHASE,
    SCRATCH_LANE_PREVIOUS_1,
    SCRATCH_LANE_PREVIOUS_2,
    SCRATCH_MODULATION,
    SCRATCH_OPERATOR_OUT,
    SCRATCH_SILENCE,
    VOICE_CHANNEL,
    VOICE_FADE_FRAME,
    VOICE_GROUP,
    VOICE_LOUDNESS,
    VOICE_PATCH,
    VOICE_PRESSURE,
    VOICE_RELEASE_FRAME,
    VOICE_STAGE,
    VOICE_START_FRAME,
)
from wifm_synth.engine.state import FADING, FREE, RELEASED, STEAL_FADE_S
from wifm_synth.engine.tables import (
    EVALUATION_ORDER,
    IS_CARRIER,
    LANE_FEEDBACK_OPERATOR,
    MODULATOR_COUNT,
    MODULATORS,
    NO_OPERATOR,
    OP_FEEDBACK,
    OP_FIXED_HZ,
    OP_LEVEL,
    OPERATOR_COUNT,
    OPERATOR_WIDTH,
    OPERATORS,
)
from wifm_synth.midi import MIDI_CHANNELS, STANDARD_A4_HZ
from wifm_synth.voice.patch import MAX_OPERATORS

SILENCE_AMPLITUDE = 10.0 ** (-90.0 / 20.0)  # a voice whose carriers all stay below −90 dB is freed
MAX_MODULATORS = MAX_OPERATORS - 1


@njit(**KERNEL)
def _modulation_row(routing_table, scratch, patch, operator, count):
    """The scratch row holding operator ``operator``'s phase modulation (cycles) for this span.

    A row number, not the row: a kernel compiled without the Numba runtime may not return a view.
    """
    sources = routing_table[patch, MODULATOR_COUNT + operator]
    first = MODULATORS + operator * MAX_MODULATORS
    if sources == 0:
        return SCRATCH_SILENCE
    if sources == 1:
        return SCRATCH_OPERATOR_OUT + routing_table[patch, first]
    total = scratch[SCRATCH_MODULATION]
    source_row = scratch[SCRATCH_OPERATOR_OUT + routing_table[patch, first]]
    for i in range(count):
        total[i] = source_row[i]
    for position in range(1, sources):
        source_row = scratch[SCRATCH_OPERATOR_OUT + routing_table[patch, first + position]]
        for i in range(count):
            total[i] += source_row[i]
    return SCRATCH_MODULATION


@njit(**KERNEL)
def update_voice_span(patch_table, routing_table, voice_ints, voice_floats, operators, channel_ints, channel_floats,
                      voice, span_frame, count, sample_rate, tuning):
    """Per-span parameters of every operator of a voice: envelope ramp from the span's first frame to the
    next span's, and phase increment with pitch bend, vibrato and the master ``tuning`` (a frequency ratio). Returns False once the voice can
    never be heard again (every carrier below −90 dB with no louder envelope level to come)."""
    patch = voice_ints[VOICE_PATCH, voice]
    channel = voice_ints[VOICE_CHANNEL, voice]
    start_frame = voice_ints[VOICE_START_FRAME, voice]
    stage = voice_ints[VOICE_STAGE, voice]
    span_end = span_frame + count
    # a release deferred to the minimum note length begins inside or after this span
    released = (stage == RELEASED or stage == FADING) and span_end > voice_ints[VOICE_RELEASE_FRAME, voice]
    time_end = (span_end - start_frame) / sample_rate
    since_release = (span_end - voice_ints[VOICE_RELEASE_FRAME, voice]) / sample_rate
    fade = 1.0
    if stage == FADING:
        fade = max(0.0, 1.0 - (span_end - voice_ints[VOICE_FADE_FRAME, voice]) / (STEAL_FADE_S * sample_rate))
    pitch_cents = (100.0 * channel_floats[CHANNEL_BEND, channel] * channel_floats[CHANNEL_BEND_RANGE, channel]
                   + vibrato_cents(patch_table, patch, channel_ints, channel, voice_ints[VOICE_PRESSURE, voice],
                                   (span_frame - start_frame) / sample_rate))
    pitch_factor = tuning * (2.0 ** (pitch_cents / 1200.0) if pitch_cents != 0.0 else 1.0)
    # The pitch envelope moves every operator, fixed-frequency ones too (as msfa's DX7 does).
    release_frame = voice_ints[VOICE_RELEASE_FRAME, voice]
    release_time = (release_frame - start_frame) / sample_rate if (
        (stage == RELEASED or stage == FADING) and span_frame >= release_frame) else -1.0
    envelope_cents = pitch_envelope_cents(patch_table, patch, (span_frame - start_frame) / sample_rate, release_time)
    envelope_factor = 2.0 ** (envelope_cents / 1200.0) if envelope_cents != 0.0 else 1.0
    end_tremolo = tremolo(patch_table, patch, time_end)
    loudest = 0.0
    audible = False
    for operator in range(routing_table[patch, OPERATOR_COUNT]):
        base = OPERATORS + operator * OPERATOR_WIDTH
        time_rate = operators[OPERATOR_TIME_RATE, operator, voice]
        if released:
            envelope = released_envelope(patch_table, patch, operator, operators[OPERATOR_RELEASE_DB, operator, voice],
                                         since_release * time_rate)
            future_peak_db = SILENT_DB
        else:
            envelope, future_peak_db = held_envelope(patch_table, patch, operator, time_end * time_rate)
        operators[OPERATOR_ENVELOPE, operator, voice] = envelope
        is_carrier = routing_table[patch, IS_CARRIER + operator] != 0
        scale = operators[OPERATOR_SCALE, operator, voice]
        gain_end = envelope * scale
        if is_carrier:
            gain_end *= end_tremolo * fade
        gain_start = operators[OPERATOR_GAIN, operator, voice]
        operators[OPERATOR_GAIN, operator, voice] = gain_end
        operators[OPERATOR_SPAN_GAIN, operator, voice] = gain_start
        operators[OPERATOR_SPAN_GAIN_STEP, operator, voice] = (gain_end - gain_start) / count
        increment = operators[OPERATOR_HZ, operator, voice] * envelope_factor / sample_rate
        if patch_table[patch, base + OP_FIXED_HZ] == 0.0:  # fixed-frequency operators ignore bend, vibrato, tuning
            increment *= pitch_factor
        operators[OPERATOR_SPAN_INCREMENT, operator, voice] = increment
        if is_carrier:
            level = patch_table[patch, base + OP_LEVEL]
            loudest = max(loudest, gain_end * level)
            if (gain_end * level >= SILENCE_AMPLITUDE
                    or db_to_amplitude(future_peak_db) * scale * level * fade >= SILENCE_AMPLITUDE):
                audible = True
    voice_floats[VOICE_LOUDNESS, voice] = loudest
    return audible


@njit(inline="always", **KERNEL)
def _output_level(patch_table, routing_table, patch, operator):
    """A carrier's level is an amplitude; a modulator's is an index in radians, output in cycles."""
    level = patch_table[patch, OPERATORS + operator * OPERATOR_WIDTH + OP_LEVEL]
    return level if routing_table[patch, IS_CARRIER + operator] else level / TWO_PI


@njit(**KERNEL)
def _render_feedback_lanes(patch_table, routing_table, voice_ints, operators, scratch, group_ints, members, count):
    """Render the group's lane feedback operators side by side, one sample of every lane at a time.

    Each lane is a serial recurrence (a sample needs the previous two); interleaving independent
    lanes keeps the core busy instead of waiting on one lane's latency.
    """
    voices = group_ints[GROUP_VOICE]
    member_lane = group_ints[GROUP_LANE]
    phase = scratch[SCRATCH_LANE_PHASE]
    increment = scratch[SCRATCH_LANE_INCREMENT]
    gain = scratch[SCRATCH_LANE_GAIN]
    gain_step = scratch[SCRATCH_LANE_GAIN_STEP]
    level = scratch[SCRATCH_LANE_LEVEL]
    feedback = scratch[SCRATCH_LANE_FEEDBACK]
    previous_1 = scratch[SCRATCH_LANE_PREVIOUS_1]
    previous_2 = scratch[SCRATCH_LANE_PREVIOUS_2]
    lanes = 0
    for member in range(members):
        voice = voices[member]
        patch = voice_ints[VOICE_PATCH, voice]
        operator = routing_table[patch, LANE_FEEDBACK_OPERATOR]
        if operator == NO_OPERATOR:
            member_lane[member] = -1
            continue
        member_lane[member] = lanes
        phase[lanes] = operators[OPERATOR_PHASE, operator, voice]
        increment[lanes] = operators[OPERATOR_SPAN_INCREMENT, operator, voice]
        gain[lanes] = operators[OPERATOR_SPAN_GAIN, operator, voice]
        gain_step[lanes] = operators[OPERATOR_SPAN_GAIN_STEP, operator, voice]
        level[lanes] = _output_level(patch_table, routing_table, patch, operator)
        feedback[lanes] = 0.5 * patch_table[patch, OPERATORS + operator * OPERATOR_WIDTH + OP_FEEDBACK] / TWO_PI
        previous_1[lanes] = operators[OPERATOR_FEEDBACK_1, operator, voice]
        previous_2[lanes] = operators[OPERATOR_FEEDBACK_2, operator, voice]
        lanes += 1
    if lanes == 0:
        return
    for i in range(count):
        out = scratch[SCRATCH_LANE_OUT + i]
        for lane in range(lanes):
            unit = (gain[lane] + gain_step[lane] * i) * sin_cycles(
                phase[lane] + increment[lane] * i + feedback[lane] * (previous_1[lane] + previous_2[lane]))
            previous_2[lane] = previous_1[lane]
            previous_1[lane] = unit
            out[lane] = level[lane] * unit
    for member in range(members):
        lane = member_lane[member]
        if lane < 0:
            continue
        voice = voices[member]
        operator = routing_table[voice_ints[VOICE_PATCH, voice], LANE_FEEDBACK_OPERATOR]
        next_phase = phase[lane] + increment[lane] * count
        operators[OPERATOR_PHASE, operator, voice] = next_phase - math.floor(next_phase)
        operators[OPERATOR_FEEDBACK_1, operator, voice] = previous_1[lane]
        operators[OPERATOR_FEEDBACK_2, operator, voice] = previous_2[lane]


@njit(**KERNEL)
def render_voice(patch_table, routing_table, voice_ints, operators, scratch, voice, lane, count):
    """Render one voice's operators in routing order and add its carriers to its channel's mix row.

    ``lane`` is the voice's column in the lane output rows, where its lane feedback operator is
    already rendered, or −1.
    """
    patch = voice_ints[VOICE_PATCH, voice]
    lane_operator = routing_table[patch, LANE_FEEDBACK_OPERATOR]
    mix = scratch[SCRATCH_CHANNEL_MIX + voice_ints[VOICE_CHANNEL, voice]]
    for slot in range(routing_table[patch, OPERATOR_COUNT]):
        operator = routing_table[patch, EVALUATION_ORDER + slot]
        out = scratch[SCRATCH_OPERATOR_OUT + operator]
        if operator == lane_operator:
            for i in range(count):
                out[i] = scratch[SCRATCH_LANE_OUT + i, lane]
        else:
            gain = operators[OPERATOR_SPAN_GAIN, operator, voice]
            gain_step = operators[OPERATOR_SPAN_GAIN_STEP, operator, voice]
            increment = operators[OPERATOR_SPAN_INCREMENT, operator, voice]
            output_level = _output_level(patch_table, routing_table, patch, operator)
            modulation = scratch[_modulation_row(routing_table, scratch, patch, operator, count)]
            phase = operators[OPERATOR_PHASE, operator, voice]
            feedback = patch_table[patch, OPERATORS + operator * OPERATOR_WIDTH + OP_FEEDBACK]
            if feedback > 0.0:
                phase, previous_1, previous_2 = render_operator_feedback(
                    out, modulation, count, phase, increment, gain, gain_step, output_level,
                    0.5 * feedback / TWO_PI, operators[OPERATOR_FEEDBACK_1, operator, voice],
                    operators[OPERATOR_FEEDBACK_2, operator, voice])
                operators[OPERATOR_FEEDBACK_1, operator, voice] = previous_1
                operators[OPERATOR_FEEDBACK_2, operator, voice] = previous_2
            else:
                phase = render_operator(out, modulation, count, phase, increment,
                                        gain * output_level, gain_step * output_level)
            operators[OPERATOR_PHASE, operator, voice] = phase
        if routing_table[patch, IS_CARRIER + operator]:
            for i in range(count):
                mix[i] += out[i]


@njit(**KERNEL)
def render_span(state, offset, count, span_frame):
    """Render frames [span_frame, span_frame + count) into the block fifo at ``offset``."""
    patch_table, routing_table, voice_ints, voice_floats, operators = (
        state.patch_table, state.routing_table, state.voice_ints, state.voice_floats, state.operators)
    channel_ints, channel_floats, engine, scratch, group_ints = (
        state.channel_ints, state.channel_floats, state.engine, state.scratch, state.group_ints)
    sample_rate = float(engine[ENGINE_SAMPLE_RATE])
    tuning = state.master[MASTER_A4_HZ] / STANDARD_A4_HZ
    master_gain = state.master[MASTER_GAIN]
    for channel in range(MIDI_CHANNELS):
        mix = scratch[SCRATCH_CHANNEL_MIX + channel]
        for i in range(count):
            mix[i] = 0.0
    active = 0
    group_voices = group_ints[GROUP_VOICE]
    group_audible = group_ints[GROUP_AUDIBLE]
    next_voice = 0
    polyphony = voice_ints.shape[1]
    while next_voice < polyphony:
        members = 0
        while next_voice < polyphony and members < VOICE_GROUP:
            if voice_ints[VOICE_STAGE, next_voice] != FREE:
                group_voices[members] = next_voice
                group_audible[members] = update_voice_span(
                    patch_table, routing_table, voice_ints, voice_floats, operators, channel_ints, channel_floats,
                    next_voice, span_frame, count, sample_rate, tuning)
                members += 1
            next_voice += 1
        _render_feedback_lanes(patch_table, routing_table, voice_ints, operators, scratch, group_ints, members, count)
        for member in range(members):
            voice = group_voices[member]
            render_voice(patch_table, routing_table, voice_ints, operators, scratch, voice, group_ints[GROUP_LANE, member],
                         count)
            if not group_audible[member]:
                voice_ints[VOICE_STAGE, voice] = FREE
        active += members
    engine[ENGINE_ACTIVE_VOICES] = active
    engine[ENGINE_PEAK_VOICES] = max(engine[ENGINE_PEAK_VOICES], active)
    left = scratch[SCRATCH_FIFO_LEFT]
    right = scratch[SCRATCH_FIFO_RIGHT]
    for channel in range(MIDI_CHANNELS):
        target_left, target_right = channel_gains(channel_ints[CHANNEL_VOLUME, channel],
                                                  channel_ints[CHANNEL_EXPRESSION, channel],
                                                  channel_ints[CHANNEL_PAN, channel])
        target_left *= master_gain  # the master gain rides on the channel gains' ramps: no zipper noise
        target_right *= master_gain
        gain_left = channel_floats[CHANNEL_GAIN_LEFT, channel]
        gain_right = channel_floats[CHANNEL_GAIN_RIGHT, channel]
        step_left = (target_left - gain_left) / count
        step_right = (target_right - gain_right) / count
        channel_floats[CHANNEL_GAIN_LEFT, channel] = target_left
        channel_floats[CHANNEL_GAIN_RIGHT, channel] = target_right
        mix = scratch[SCRATCH_CHANNEL_MIX + channel]
        for i in range(count):
            left[offset + i] += (gain_left + step_left * i) * mix[i]
            right[offset + i] += (gain_right + step_right * i) * mix[i]
