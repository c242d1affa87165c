"""Numba kernels for one voice's operators: fast sine, envelopes, LFO, operator loops, channel gains.

They read a patch row (``patch_table``) and plain numbers, never the engine state as a whole.

Phases are in cycles (wrapped to [0, 1) once per span); modulation arrives in cycles too, so a
modulator's index β in radians is scaled by 1/2π once per span, never per sample.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from wifm_synth.engine.layout import CHANNEL_MOD_WHEEL, CHANNEL_PRESSURE
from wifm_synth.engine.tables import (
    KEY_POINT_KEY,
    KEY_POINT_LEVEL_DB,
    KEY_POINT_WIDTH,
    LFO_AMP_DB,
    LFO_DELAY_S,
    LFO_PITCH_CENTS,
    LFO_RATE_HZ,
    LFO_SAMPLE_AND_HOLD,
    LFO_SAW_DOWN,
    LFO_SAW_UP,
    LFO_SQUARE,
    LFO_START_PHASE,
    LFO_TRIANGLE,
    LFO_WAVE,
    OP_KEY_POINT_COUNT,
    OP_KEY_POINTS,
    OP_RELEASE_S,
    OP_SEGMENT_COUNT,
    OP_SEGMENTS,
    OPERATOR_WIDTH,
    OPERATORS,
    PITCH_ENV_RELEASE_CENTS,
    PITCH_ENV_RELEASE_CENTS_PER_S,
    PITCH_ENV_STAGE_COUNT,
    PITCH_ENV_STAGES,
    PITCH_ENV_START_CENTS,
    SEG_DURATION_S,
    SEG_END_DB,
    SEG_FUTURE_PEAK_DB,
    SEG_START_S,
    SEGMENT_WIDTH,
)

# Without the Numba runtime ("_nrt": False) the audio path has no reference counting: with it, every array
# argument and row view cost an atomic increment and decrement, 52 % of the engine benchmark's time
# (2.3 → 0.86 ns per 2-op operator-sample, docs/RESULTS.md). It also makes an allocation in a kernel a
# compile error. The price: a kernel may not return a view (it returns a row number instead).
KERNEL = {"cache": True, "nogil": True, "_nrt": False, "fastmath": {"nsz", "arcp", "contract", "reassoc"},
          "boundscheck": False}

TWO_PI = 2.0 * math.pi
DB_TO_LOG = math.log(10.0) / 20.0
SILENT_DB = -240.0  # stands for "no level at all" in dB arithmetic
RELEASE_DB_PER_TIME = 60.0  # release falls 60 dB per release_s
MOD_WHEEL_VIBRATO_CENTS = 50.0  # vibrato depth added by CC1 (and by aftertouch) at 127
# Taylor coefficients of sin(2π y) in powers of y; |y| ≤ 1/4 after folding, error < 6e-8 (−144 dB).
_S1 = TWO_PI
_S3 = -(TWO_PI ** 3) / 6.0
_S5 = (TWO_PI ** 5) / 120.0
_S7 = -(TWO_PI ** 7) / 5040.0
_S9 = (TWO_PI ** 9) / 362880.0
_S11 = -(TWO_PI ** 11) / 39916800.0


@njit(inline="always", **KERNEL)
def sin_cycles(x):
    """sin(2π x) for any finite x: fold to |y| ≤ 1/4 by symmetry, then an odd polynomial.

    The polynomial is evaluated in Estrin form: a shorter dependency chain than Horner's, which is
    what limits operators with feedback (each sample needs the previous one).
    """
    y = x - np.rint(x)
    if y > 0.25:
        y = 0.5 - y
    elif y < -0.25:
        y = -0.5 - y
    y2 = y * y
    y4 = y2 * y2
    return y * ((_S1 + _S3 * y2) + y4 * ((_S5 + _S7 * y2) + y4 * (_S9 + _S11 * y2)))


@njit(inline="always", **KERNEL)
def db_to_amplitude(level_db):
    return math.exp(level_db * DB_TO_LOG)


@njit(inline="always", **KERNEL)
def amplitude_to_db(amplitude):
    return math.log(amplitude) / DB_TO_LOG if amplitude > 0.0 else SILENT_DB


@njit(**KERNEL)
def held_envelope(patch_table, patch, operator, time_s):
    """Envelope before note-off at local time ``time_s`` ≥ 0: (amplitude, loudest segment end still to come, dB).

    Levels move monotonically between segment ends, so the larger of the two bounds all later levels.

    Segment 0 rises linearly in amplitude from silence; later segments are linear in dB; the last
    level is held.
    """
    base = OPERATORS + operator * OPERATOR_WIDTH
    count = int(patch_table[patch, base + OP_SEGMENT_COUNT])
    for segment in range(count):
        cell = base + OP_SEGMENTS + segment * SEGMENT_WIDTH
        start = patch_table[patch, cell + SEG_START_S]
        duration = patch_table[patch, cell + SEG_DURATION_S]
        if time_s < start + duration:
            end_db = patch_table[patch, cell + SEG_END_DB]
            fraction = (time_s - start) / duration
            future_peak = patch_table[patch, cell + SEG_FUTURE_PEAK_DB]
            if segment == 0:
                return db_to_amplitude(end_db) * fraction, future_peak
            start_db = patch_table[patch, cell - SEGMENT_WIDTH + SEG_END_DB]
            return db_to_amplitude(start_db + (end_db - start_db) * fraction), future_peak
    last_db = patch_table[patch, base + OP_SEGMENTS + (count - 1) * SEGMENT_WIDTH + SEG_END_DB]
    return db_to_amplitude(last_db), last_db


@njit(**KERNEL)
def key_points_db(patch_table, patch, operator, key):
    """The operator's keyboard level scaling points at ``key``, in dB: linear between points (in key
    order; at a key two points share, the later one), the first and last level held beyond them; 0 dB
    without points."""
    base = OPERATORS + operator * OPERATOR_WIDTH
    count = int(patch_table[patch, base + OP_KEY_POINT_COUNT])
    if count == 0:
        return 0.0
    first = base + OP_KEY_POINTS
    if key < patch_table[patch, first + KEY_POINT_KEY]:
        return patch_table[patch, first + KEY_POINT_LEVEL_DB]
    for point in range(1, count):
        cell = first + point * KEY_POINT_WIDTH
        right_key = patch_table[patch, cell + KEY_POINT_KEY]
        if key < right_key:
            left_key = patch_table[patch, cell - KEY_POINT_WIDTH + KEY_POINT_KEY]
            left_db = patch_table[patch, cell - KEY_POINT_WIDTH + KEY_POINT_LEVEL_DB]
            right_db = patch_table[patch, cell + KEY_POINT_LEVEL_DB]
            return left_db + (right_db - left_db) * (key - left_key) / (right_key - left_key)
    return patch_table[patch, first + (count - 1) * KEY_POINT_WIDTH + KEY_POINT_LEVEL_DB]


@njit(**KERNEL)
def pitch_envelope_cents(patch_table, patch, time_s, release_time_s):
    """The patch's pitch envelope ``time_s`` after note-on, in cents; ``release_time_s`` < 0 while the key
    is down. Held: from the start offset through three stages linear in cents, the third held. After
    note-off: from the held value at ``release_time_s`` towards the release offset at its speed."""
    if 0.0 <= release_time_s <= time_s:
        level = _held_pitch_cents(patch_table, patch, release_time_s)
        target = patch_table[patch, PITCH_ENV_RELEASE_CENTS]
        moved = patch_table[patch, PITCH_ENV_RELEASE_CENTS_PER_S] * (time_s - release_time_s)
        if level < target:
            return min(target, level + moved)
        return max(target, level - moved)
    return _held_pitch_cents(patch_table, patch, time_s)


@njit(inline="always", **KERNEL)
def _held_pitch_cents(patch_table, patch, time_s):
    level = patch_table[patch, PITCH_ENV_START_CENTS]
    stage_start = 0.0
    for stage in range(PITCH_ENV_STAGE_COUNT):
        duration = patch_table[patch, PITCH_ENV_STAGES + 2 * stage]
        end = patch_table[patch, PITCH_ENV_STAGES + 2 * stage + 1]
        if time_s < stage_start + duration:
            return level + (end - level) * (time_s - stage_start) / duration
        stage_start += duration
        level = end
    return level


@njit(inline="always", **KERNEL)
def released_envelope(patch_table, patch, operator, release_db, seconds_since_release):
    """Envelope after note-off: falls linearly in dB, 60 dB per release_s, from ``release_db``."""
    release_s = patch_table[patch, OPERATORS + operator * OPERATOR_WIDTH + OP_RELEASE_S]
    return db_to_amplitude(release_db - RELEASE_DB_PER_TIME * seconds_since_release / release_s)


@njit(inline="always", **KERNEL)
def lfo_value(patch_table, patch, time_s):
    """The patch's LFO at ``time_s`` after note-on, in −1..1, for its wave (schema ``lfo.wave``)."""
    cycles = patch_table[patch, LFO_START_PHASE] + patch_table[patch, LFO_RATE_HZ] * time_s
    wave = int(patch_table[patch, LFO_WAVE])
    position = cycles - math.floor(cycles)
    if wave == LFO_TRIANGLE:
        return 4.0 * position - 1.0 if position < 0.5 else 3.0 - 4.0 * position
    if wave == LFO_SAW_DOWN:
        return 1.0 - 2.0 * position
    if wave == LFO_SAW_UP:
        return 2.0 * position - 1.0
    if wave == LFO_SQUARE:
        return 1.0 if position < 0.5 else -1.0
    if wave == LFO_SAMPLE_AND_HOLD:
        return sample_and_hold_level(math.floor(cycles))
    return sin_cycles(cycles)


@njit(inline="always", **KERNEL)
def sample_and_hold_level(cycle):
    """A pseudo-random level in −1..1 for LFO cycle ``cycle`` (an integer hash: the same every run)."""
    state = (cycle * 2654435761 + 12345) & 0xFFFFFFFF
    state ^= state >> 15
    state = (state * 2246822519) & 0xFFFFFFFF
    state ^= state >> 13
    return (state & 0xFFFF) / 32767.5 - 1.0


@njit(inline="always", **KERNEL)
def lfo_fade(delay_s, time_s):
    """The patch's LFO depth fades in linearly over ``delay_s`` after the note-on."""
    if time_s >= delay_s:
        return 1.0
    return time_s / delay_s


@njit(inline="always", **KERNEL)
def tremolo(patch_table, patch, time_s):
    """Amplitude factor of the patch's LFO tremolo: 0 dB at the LFO's peak, −depth at its trough."""
    depth_db = patch_table[patch, LFO_AMP_DB]
    if depth_db == 0.0:  # most patches have no tremolo: skip the sine and the exponential
        return 1.0
    depth_db *= lfo_fade(patch_table[patch, LFO_DELAY_S], time_s)
    swing = 0.5 * (1.0 - lfo_value(patch_table, patch, time_s))
    return db_to_amplitude(-depth_db * swing)


@njit(inline="always", **KERNEL)
def vibrato_cents(patch_table, patch, channel_ints, channel, key_pressure, time_s):
    """The patch's LFO vibrato plus the mod wheel's and aftertouch's vibrato, in cents.

    Aftertouch deepens the vibrato, as on a DX7 routed to pitch modulation: a player's pressure means
    "more expression" on any patch, where a brightness change would mean a different thing per patch.
    Aftertouch is the channel's, or the key's own (polyphonic) when that is stronger.
    """
    depth = patch_table[patch, LFO_PITCH_CENTS] * lfo_fade(patch_table[patch, LFO_DELAY_S], time_s)
    pressure = max(channel_ints[CHANNEL_PRESSURE, channel], key_pressure)
    depth += MOD_WHEEL_VIBRATO_CENTS * (channel_ints[CHANNEL_MOD_WHEEL, channel] + pressure) / 127.0
    if depth == 0.0:  # no vibrato: skip the sine
        return 0.0
    return depth * lfo_value(patch_table, patch, time_s)


@njit(**KERNEL)
def render_operator(out, modulation, count, phase, increment, gain, gain_step):
    """out[i] = (gain + i·gain_step) · sin(2π(phase + i·increment + modulation[i])); returns the next phase."""
    for i in range(count):
        out[i] = (gain + gain_step * i) * sin_cycles(phase + increment * i + modulation[i])
    next_phase = phase + increment * count
    return next_phase - math.floor(next_phase)


@njit(**KERNEL)
def render_operator_feedback(out, modulation, count, phase, increment, gain, gain_step, level,
                             feedback_cycles, previous_1, previous_2):
    """Like render_operator, with the mean of the last two unit-level outputs × feedback added to the phase.

    ``feedback_cycles`` is the feedback index in cycles and already halved (mean of two).
    Returns (next phase, last output, output before it).
    """
    for i in range(count):
        unit = (gain + gain_step * i) * sin_cycles(
            phase + increment * i + modulation[i] + feedback_cycles * (previous_1 + previous_2))
        previous_2 = previous_1
        previous_1 = unit
        out[i] = level * unit
    next_phase = phase + increment * count
    return next_phase - math.floor(next_phase), previous_1, previous_2


@njit(inline="always", **KERNEL)
def controller_gain(value):
    """CC7 / CC11 curve: (value/127)²."""
    ratio = value / 127.0
    return ratio * ratio


@njit(**KERNEL)
def channel_gains(volume, expression, pan):
    """Left and right gains of a channel: volume and expression curves, equal-power pan (64 = centre)."""
    position = min(max((pan - 64.0) / 63.0, -1.0), 1.0)
    angle = (position + 1.0) * (math.pi / 4.0)
    gain = controller_gain(volume) * controller_gain(expression)
    return gain * math.cos(angle), gain * math.sin(angle)
