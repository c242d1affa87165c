"""Plain NumPy twins of the engine's kernels, written from docs/FORMATS.md, for the engine tests."""

from __future__ import annotations

import itertools

import numpy as np

from wifm_synth.voice.patch import Envelope, Operator, Patch
from wifm_synth.voice.schema import SCALING_GAIN_CEILING_DB

BLOCK = 64
MOD_WHEEL_VIBRATO_CENTS = 50.0


def held_envelope(envelope: Envelope, t: np.ndarray) -> np.ndarray:
    """Linear-amplitude attack from silence, then dB-linear segments, then the last level held."""
    t = np.asarray(t, dtype=float)
    durations = np.array([duration for duration, _ in envelope.segments])
    levels_db = np.array([level for _, level in envelope.segments])
    ends = np.cumsum(durations)
    decay_db = np.interp(t, ends, levels_db)  # holds the last level after the last breakpoint
    attack = 10 ** (levels_db[0] / 20) * t / max(ends[0], 1e-300)
    return np.where(t < ends[0], attack, 10 ** (decay_db / 20))


def key_points_db(operator: Operator, key: float) -> float:
    """Keyboard level-scaling points: linear between them in key order, the end levels held; 0 dB without."""
    if not operator.key_levels:
        return 0.0
    points = sorted(operator.key_levels, key=lambda point: point[0])
    return float(np.interp(key, [k for k, _ in points], [level for _, level in points]))


def pitch_envelope_cents(patch: Patch, t: float, release_time: float | None = None) -> float:
    """Start offset, three stages linear in cents (the third held), then towards the release offset at its speed."""
    envelope = patch.pitch_envelope
    durations = [getattr(envelope, f"stage_{stage}_s") for stage in (1, 2, 3)]
    knots = np.concatenate([[0.0], np.cumsum(durations)])
    levels = [envelope.start_cents] + [getattr(envelope, f"stage_{stage}_cents") for stage in (1, 2, 3)]

    def held(time):
        for stage in range(3):
            if time < knots[stage + 1]:
                return levels[stage] + (levels[stage + 1] - levels[stage]) * (time - knots[stage]) / durations[stage]
        return levels[3]

    if release_time is None or t < release_time:
        return float(held(t))
    level, target = held(release_time), envelope.release_cents
    step = envelope.release_cents_per_s * (t - release_time)
    return float(min(target, level + step) if level < target else max(target, level - step))


def released_envelope(envelope: Envelope, release_time: float, t: np.ndarray) -> np.ndarray:
    """60 dB per release_s down from the level at ``release_time``."""
    level_at_release = held_envelope(envelope, release_time)
    start_db = 20 * np.log10(level_at_release) if level_at_release > 0 else -240.0
    return 10 ** ((start_db - 60.0 * (np.asarray(t) - release_time) / envelope.release_s) / 20)


def lfo_fade(delay_s: float, t):
    return np.ones_like(t) if delay_s == 0 else np.minimum(1.0, np.asarray(t) / delay_s)


def sample_and_hold_level(cycle: int) -> float:
    state = (cycle * 2654435761 + 12345) & 0xFFFFFFFF
    state ^= state >> 15
    state = (state * 2246822519) & 0xFFFFFFFF
    state ^= state >> 13
    return (state & 0xFFFF) / 32767.5 - 1.0


def lfo_value(patch: Patch, t):
    """The LFO's wave in −1..1 at ``t``: sine, triangle, saw down, saw up, square, sample-and-hold."""
    cycles = patch.lfo.start_phase + patch.lfo.rate_hz * np.asarray(t, dtype=float)
    position = cycles - np.floor(cycles)
    waves = [np.sin(2 * np.pi * cycles), np.where(position < 0.5, 4 * position - 1, 3 - 4 * position),
             1 - 2 * position, 2 * position - 1, np.where(position < 0.5, 1.0, -1.0),
             np.vectorize(sample_and_hold_level)(np.floor(cycles).astype(np.int64))]
    return waves[patch.lfo.wave]


def tremolo(patch: Patch, t):
    depth = patch.lfo.amp_depth_db * lfo_fade(patch.lfo.delay_s, t)
    return 10 ** (-depth * 0.5 * (1 - lfo_value(patch, t)) / 20)


def vibrato_cents(patch: Patch, t, mod_wheel=0, pressure=0, key_pressure=0):
    depth = patch.lfo.pitch_depth_cents * lfo_fade(patch.lfo.delay_s, t)
    depth = depth + MOD_WHEEL_VIBRATO_CENTS * (mod_wheel + max(pressure, key_pressure)) / 127
    return depth * lfo_value(patch, t)


def channel_gains(volume, expression, pan):
    position = np.clip((pan - 64) / 63, -1, 1)
    angle = (position + 1) * np.pi / 4
    gain = (volume / 127) ** 2 * (expression / 127) ** 2
    return gain * np.cos(angle), gain * np.sin(angle)


def operator_scale(patch: Patch, operator: Operator, note: int, velocity: int) -> float:
    scale_db = min(40 * operator.velocity_sensitivity * np.log10(velocity / patch.pitch.reference_velocity)
                   + operator.key_level_db_per_octave * (note - patch.pitch.reference_note) / 12
                   + key_points_db(operator, note), SCALING_GAIN_CEILING_DB)
    return 10 ** (scale_db / 20)


SOFT_PEDAL_DB = {True: -4.0, False: -3.0}  # carrier, modulator


def operator_hz(patch: Patch, operator: Operator, note: int, a4_hz: float = 440.0) -> float:
    if operator.fixed_hz is not None:
        return operator.fixed_hz
    key_hz = a4_hz * 2 ** ((note - 69 + patch.pitch.tune_cents / 100) / 12)
    return operator.ratio * key_hz * 2 ** (operator.detune_cents / 1200)


def operator_start_phase(patch: Patch, operator: Operator, note: int, frame: int, sample_rate: int) -> float:
    """Phase (cycles) at note-on: 0 with key sync, else that of an oscillator at the operator's
    frequency (A4 = 440 Hz, as the engine's note-on computes it) running since frame 0."""
    if patch.oscillator_key_sync:
        return 0.0
    cycles = operator_hz(patch, operator, note) * (frame / sample_rate)
    return cycles - np.floor(cycles)


def render_operator(modulation, phase, increment, gain_start, gain_end):
    """One span of a feedback-free operator; returns (output, next phase)."""
    count = len(modulation)
    i = np.arange(count)
    gains = gain_start + (gain_end - gain_start) / count * i
    out = gains * np.sin(2 * np.pi * (phase + increment * i + modulation))
    return out, (phase + increment * count) % 1.0


def render_operator_feedback(modulation, phase, increment, gain_start, gain_end, level_cycles, feedback_radians,
                             history):
    """One span of an operator that feeds back the mean of its last two unit-level outputs."""
    count = len(modulation)
    out = np.empty(count)
    previous_1, previous_2 = history
    for i in range(count):
        gain = gain_start + (gain_end - gain_start) / count * i
        unit = gain * np.sin(2 * np.pi * (phase + increment * i + modulation[i])
                             + feedback_radians * (previous_1 + previous_2) / 2)
        previous_1, previous_2 = unit, previous_1
        out[i] = level_cycles * unit
    return out, (phase + increment * count) % 1.0, (previous_1, previous_2)


def render_voice(patch: Patch, note: int, velocity: int, n_frames: int, release_frame: int | None,
                 sample_rate: int = 48000, mod_wheel: int = 0, a4_hz: float = 440.0, soft: bool = False,
                 note_on_frame: int = 0) -> np.ndarray:
    """Mono output of one voice started at frame 0, spans cut at the 64-frame grid and the release;
    ``soft``: struck with the soft pedal down; ``note_on_frame``: the engine's frame count at the note-on,
    where free-running oscillators (``oscillator_key_sync`` false) have got to."""
    topology = patch.check_routing()
    carriers, modulators, order = topology.carriers, topology.modulators, topology.order
    feedback = [operator.feedback for operator in patch.operators]
    padded_frames = -(-n_frames // BLOCK) * BLOCK  # the engine always renders whole blocks
    edges = set(range(0, padded_frames + 1, BLOCK))
    if release_frame is not None and release_frame < padded_frames:
        edges.add(release_frame)
    edges = sorted(edges)
    operators = patch.operators
    key_offset = note - patch.pitch.reference_note
    rates = [2 ** (op.rate_scaling * key_offset / 12) for op in operators]
    scales = [operator_scale(patch, op, note, velocity) * (10 ** (SOFT_PEDAL_DB[carriers[k]] / 20) if soft else 1)
              for k, op in enumerate(operators)]

    def envelope_at(k, frame):
        local = frame / sample_rate * rates[k]
        if release_frame is not None and frame >= release_frame:
            return released_envelope(operators[k].envelope, release_frame / sample_rate * rates[k], local)
        return held_envelope(operators[k].envelope, local)

    def gain_at(k, frame):
        gain = envelope_at(k, frame) * scales[k]
        return gain * tremolo(patch, frame / sample_rate) if carriers[k] else gain

    phases = [operator_start_phase(patch, op, note, note_on_frame, sample_rate) for op in operators]
    gains = [gain_at(k, 0) for k in range(len(operators))]
    histories = [(0.0, 0.0)] * len(operators)
    output = np.zeros(padded_frames)
    for start, end in itertools.pairwise(edges):
        pitch = 2 ** (vibrato_cents(patch, start / sample_rate, mod_wheel) / 1200)
        outs = {}
        for k in order:
            op = operators[k]
            gain_end = gain_at(k, end)
            modulation = sum((outs[m] for m in modulators[k]), np.zeros(end - start))
            hz = operator_hz(patch, op, note, a4_hz) * (1 if op.fixed_hz is not None else pitch)
            level = op.level if carriers[k] else op.level / (2 * np.pi)
            if feedback[k] > 0:
                outs[k], phases[k], histories[k] = render_operator_feedback(
                    modulation, phases[k], hz / sample_rate, gains[k], gain_end, level, feedback[k], histories[k])
            else:
                unit, phases[k] = render_operator(modulation, phases[k], hz / sample_rate, gains[k], gain_end)
                outs[k] = level * unit
            gains[k] = gain_end
        output[start:end] = sum(outs[k] for k in range(len(operators)) if carriers[k])
    return output[:n_frames]
