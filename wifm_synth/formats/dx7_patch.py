"""A DX7 voice compiled to a native patch (docs/DX7.md): the DX7's figures turned into the engine's model.

The DX7 works in fixed-point log units; so does msfa, the reference engine. This module restates the
facts of that arithmetic as figures of our own (``level_units``: 256 units per octave of amplitude;
the EG's per-block increments) and converts each DX7 parameter into the patch fields that reproduce
it at the reference key (60) and velocity (100):

- output level and EG levels → ``level`` (peak) and envelope ``end_level_db`` — exact;
- EG rates → segment durations, computed from the DX7's EG arithmetic; decays are linear in dB on
  both sides (exact), the DX7's curved attack is followed by several segments;
- rate scaling → ``rate_scaling`` (exact up to the DX7's integer steps);
- keyboard level scaling → ``key_levels`` points, exact at every key (``key_level_points``);
- key velocity sensitivity → the native straight-line law fitted by least squares (approximate away
  from the reference velocity);
- coarse / fine / detune / fixed mode / transpose → ``ratio``, ``detune_cents``, ``fixed_hz`` — exact;
- feedback 0–7 → the feedback index in radians, exact (the DX7 halves the phase shift per step down);
- algorithm → ``algorithm``; LFO speed / wave / key sync / delay / PMD·PMS / AMD·AMS → the LFO (delay
  and AMD approximate).

- pitch EG → ``pitch_envelope`` (levels and speeds exact; the DX7 steps once per 64 samples).

What the native patch does not play is listed by :func:`compile_losses`.
The voice itself is kept in ``metadata["dx7"]`` so that an unchanged patch exports byte for byte.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np

from wifm_synth.errors import PatchError
from wifm_synth.formats.dx7_voice import Dx7Voice
from wifm_synth.voice.patch import Envelope, Lfo, Operator, Patch, Pitch, PitchEnvelope
from wifm_synth.voice.schema import SCHEMA
from wifm_synth.voice.topology import Topology

REFERENCE_NOTE = 60
REFERENCE_VELOCITY = 100
SAMPLE_RATE = 44100.0
BLOCK = 64  # the DX7 EG (as msfa models it) steps once per 64 samples
UNITS_PER_OCTAVE = 256  # level units: 256 per doubling of amplitude
EG_UNITS_PER_LEVEL_UNIT = 1 << 16  # the EG accumulates in finer steps
DB_PER_UNIT = 20.0 * math.log10(2.0) / UNITS_PER_OCTAVE
FULL_SCALE_EXPONENT = 14  # amplitude = 2 ** (units / 256 - 14): full scale is 2 at output level 99
CARRIER_GAIN = 0.125  # output level 99 plays at 1/4 of full scale: headroom for 6 carriers
_ATTACK_JUMP_UNITS = 1716  # an attack starts no lower than this
_ATTACK_CEILING_OCTAVES = 17  # attack speed ∝ (this − current level in octaves)
_MIN_LEVEL_UNITS = 16
_LEVEL_OFFSET = 4256
_SEGMENT_CAP_S = 60.0
_LOW_OUTPUT_LEVELS = (0, 5, 9, 13, 17, 20, 23, 25, 27, 29, 31, 33, 35, 37, 39, 41, 42, 43, 45, 46)
_VELOCITY_CURVE = (
    0, 70, 86, 97, 106, 114, 121, 126, 132, 138, 142, 148, 152, 156, 160, 163, 166, 170, 173, 174, 178, 181,
    184, 186, 189, 190, 194, 196, 198, 200, 202, 205, 206, 209, 211, 214, 216, 218, 220, 222, 224, 225, 227,
    229, 230, 232, 233, 235, 237, 238, 240, 241, 242, 243, 244, 246, 246, 248, 249, 250, 251, 252, 253, 254)
_EXPONENTIAL_SCALING = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 14, 16, 19, 23, 27, 33, 39, 47, 56, 66, 80, 94, 110,
                        126, 142, 158, 174, 190, 206, 222, 238, 250)
# Pitch EG: level 0..99 → offset in 1/32 octave; rate 0..99 → speed in 1/21.3 octave per second.
_PITCH_EG_LEVEL = (
    -128, -116, -104, -95, -85, -76, -68, -61, -56, -52, -49, -46, -43, -41, -39, -37, -35, -33, -32, -31, -30,
    -29, -28, -27, -26, -25, -24, -23, -22, -21, -20, -19, -18, -17, -16, -15, -14, -13, -12, -11, -10, -9, -8,
    -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
    23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 38, 40, 43, 46, 49, 53, 58, 65, 73, 82, 92, 103, 115, 127)
_PITCH_EG_RATE = (
    1, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 16, 16, 17, 18, 18,
    19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 30, 31, 33, 34, 36, 37, 38, 39, 41, 42, 44, 46, 47, 49, 51, 53, 54,
    56, 58, 60, 62, 64, 66, 68, 70, 72, 74, 76, 79, 82, 85, 88, 91, 94, 98, 102, 106, 110, 115, 120, 125, 130,
    135, 141, 147, 153, 159, 165, 171, 178, 185, 193, 202, 211, 232, 243, 254, 255)
_PITCH_EG_CENTS_PER_STEP = 1200.0 / 32
_PITCH_EG_CENTS_PER_S_PER_STEP = 1200.0 / 21.3
# DX7 LFO wave 0..5 (triangle, saw down, saw up, square, sine, sample-and-hold) → the schema's lfo.wave.
NATIVE_LFO_WAVE = (1, 2, 3, 4, 0, 5)
_PITCH_MOD_SENSITIVITY = (0, 10, 20, 33, 55, 92, 153, 255)
# Amplitude-modulation depth of AMS 0..3 as a fraction of the deepest; the deepest (AMD 99, AMS 3) is
# taken as TREMOLO_FULL_DB. An approximation: see docs/DX7.md.
_AMP_MOD_SENSITIVITY = (0.0, 0.259, 0.427, 1.0)
TREMOLO_FULL_DB = 48.0
DETUNE_CENTS_PER_STEP = 1200.0 * 12606 / (1 << 24)
_FIXED_DETUNE_OCTAVES_PER_STEP = 13457 / (1 << 24)
_LFO_HZ_PER_STEP = 25190424 / 2.0 ** 32  # per step of the scaled speed below


def scaled_output_level(level: int) -> int:
    """A 0..99 output or EG level on the DX7's 0..127 scale (0.75 dB per step above 19)."""
    return level + 28 if level >= 20 else _LOW_OUTPUT_LEVELS[level]


def velocity_units(velocity: int, sensitivity: int) -> int:
    """Level change (units) of key velocity sensitivity 0..7 at ``velocity``."""
    value = _VELOCITY_CURVE[max(0, min(127, velocity)) >> 1] - 239
    return ((sensitivity * value + 7) >> 3) << 4


def _curve(group: int, depth: int, curve: int) -> int:
    if curve in (0, 3):  # -LIN, +LIN
        scale = (group * depth * 329) >> 12
    else:
        scale = (_EXPONENTIAL_SCALING[min(group, len(_EXPONENTIAL_SCALING) - 1)] * depth * 329) >> 15
    return -scale if curve < 2 else scale


def key_scaling_steps(key: int, operator: dict[str, int]) -> int:
    """Keyboard level scaling at ``key``, in steps of the 0..127 output-level scale."""
    offset = key - operator["level_scaling_break_point"] - 17
    if offset >= 0:
        return _curve(offset // 3, operator["level_scaling_right_depth"], operator["level_scaling_right_curve"])
    return _curve(-offset // 3, operator["level_scaling_left_depth"], operator["level_scaling_left_curve"])


def rate_scaling_steps(key: int, sensitivity: int) -> int:
    return (sensitivity * min(31, max(0, key // 3 - 7))) >> 3


def output_units(operator: dict[str, int], key: int, velocity: int) -> int:
    """The operator's output level at ``key`` and ``velocity`` in level units (before the EG)."""
    steps = scaled_output_level(operator["output_level"]) + key_scaling_steps(key, operator)
    return output_units_of_steps(steps, velocity_units(velocity, operator["key_velocity_sensitivity"]))


def output_units_of_steps(steps: int, velocity_change: int) -> int:
    """Output level (units) of an output level plus key scaling of ``steps`` (0..127 scale, capped at 127)."""
    return max(0, (min(127, steps) << 5) + velocity_change)


def output_units_by_key(operator: dict[str, int], velocity: int) -> np.ndarray:
    """``output_units`` at every key 0..127 at once (the same integer arithmetic, in arrays)."""
    offsets = np.arange(128) - operator["level_scaling_break_point"] - 17
    right = offsets >= 0
    groups = np.where(right, offsets, -offsets) // 3
    depth = np.where(right, operator["level_scaling_right_depth"], operator["level_scaling_left_depth"])
    curve = np.where(right, operator["level_scaling_right_curve"], operator["level_scaling_left_curve"])
    exponential = np.asarray(_EXPONENTIAL_SCALING)[np.minimum(groups, len(_EXPONENTIAL_SCALING) - 1)]
    scale = np.where((curve == 0) | (curve == 3), (groups * depth * 329) >> 12, (exponential * depth * 329) >> 15)
    steps = np.minimum(127, scaled_output_level(operator["output_level"]) + np.where(curve < 2, -scale, scale))
    return np.maximum(0, (steps << 5) + velocity_units(velocity, operator["key_velocity_sensitivity"]))


def eg_level_units(level: int, output: int) -> int:
    """Where EG level 0..99 puts an operator whose output level is ``output`` units."""
    return max(_MIN_LEVEL_UNITS, ((scaled_output_level(level) >> 1) << 6) + output - _LEVEL_OFFSET)


def eg_increment(rate: int, rate_scaling: int) -> int:
    """EG step per block (in EG units) of rate 0..99 plus the rate-scaling steps."""
    quarter_rate = min(63, ((rate * 41) >> 6) + rate_scaling)
    return (4 + (quarter_rate & 3)) << (2 + 6 + (quarter_rate >> 2))


def amplitude(units: float) -> float:
    return 2.0 ** (units / UNITS_PER_OCTAVE - FULL_SCALE_EXPONENT)


class EgStage:
    """One EG stage from ``start`` to ``target`` (EG units): how long it takes and where it is at a time."""

    def __init__(self, start: int, target: int, increment: int):
        self.target, self.increment = target, increment
        self.rising = target > start
        self.start = max(start, _ATTACK_JUMP_UNITS * EG_UNITS_PER_LEVEL_UNIT) if self.rising else start
        self.blocks = self._blocks_to(target)

    def _attack_bands(self):
        """(level at band start, block count to cross it, step per block) for each octave band of the attack."""
        level = self.start
        while level < self.target:
            step = (_ATTACK_CEILING_OCTAVES - (level >> 24)) * self.increment
            band_end = min(self.target, ((level >> 24) + 1) << 24)
            blocks = max(1, -(-(band_end - level) // step))
            yield level, blocks, step
            level += blocks * step

    def _blocks_to(self, target: int) -> int:
        if not self.rising:
            return max(1, -(-(self.start - target) // self.increment))
        return max(1, sum(blocks for _, blocks, _ in self._attack_bands()))

    def breakpoints(self) -> list[tuple[float, float]]:
        """(blocks since the stage began, EG units) where the level's slope changes, ending at the target."""
        if not self.rising:
            return [(0.0, float(self.start)), (float(self.blocks), float(self.target))]
        points, elapsed = [(0.0, float(self.start))], 0
        for level, blocks, step in self._attack_bands():
            elapsed += blocks
            points.append((float(elapsed), float(min(self.target, level + blocks * step))))
        return points

    def level_after(self, blocks: float) -> float:
        if blocks >= self.blocks:
            return float(self.target)
        if not self.rising:
            return self.start - blocks * self.increment
        for level, band_blocks, step in self._attack_bands():
            if blocks <= band_blocks:
                return min(self.target, level + blocks * step)
            blocks -= band_blocks
        return float(self.target)

    @property
    def seconds(self) -> float:
        return self.blocks * BLOCK / SAMPLE_RATE


def held_segments(operator: dict[str, int], output: int, rate_scaling: int, reference_units: int):
    """Native envelope segments ``[(duration_s, end_level_db)]`` following the DX7 EG's first three stages."""
    segments: list[tuple[float, float]] = []
    level = 0
    for stage_index in range(3):
        target = eg_level_units(operator[f"eg_level_{stage_index + 1}"], output) * EG_UNITS_PER_LEVEL_UNIT
        stage = EgStage(level, target, eg_increment(operator[f"eg_rate_{stage_index + 1}"], rate_scaling))
        pieces = (4 if stage_index == 0 else 2) if stage.rising else 1
        capped = stage.seconds > _SEGMENT_CAP_S
        total_blocks = _SEGMENT_CAP_S * SAMPLE_RATE / BLOCK if capped else stage.blocks
        for piece in range(1, pieces + 1):
            blocks = total_blocks * piece / pieces
            units = stage.level_after(blocks) / EG_UNITS_PER_LEVEL_UNIT
            db = max(-120.0, (units - reference_units) * DB_PER_UNIT)
            segments.append((total_blocks / pieces * BLOCK / SAMPLE_RATE, db))
        if capped:  # the DX7 would still be in this stage after a minute; later stages never come
            break
        level = target
    return segments


def held_eg_db(operator: dict[str, int], output: int, rate_scaling: int, reference_units: int,
               seconds: np.ndarray) -> np.ndarray:
    """The DX7 EG before key-off (stages 1–3, level 3 held) at ``seconds``, in dB re ``reference_units``."""
    times, levels, elapsed, level = [], [], 0.0, 0
    for stage_index in range(3):
        target = eg_level_units(operator[f"eg_level_{stage_index + 1}"], output) * EG_UNITS_PER_LEVEL_UNIT
        stage = EgStage(level, target, eg_increment(operator[f"eg_rate_{stage_index + 1}"], rate_scaling))
        for blocks, units in stage.breakpoints():
            times.append(elapsed + blocks * BLOCK / SAMPLE_RATE)
            levels.append(units)
        elapsed, level = times[-1], target
    units = np.interp(seconds, times, levels) / EG_UNITS_PER_LEVEL_UNIT
    return np.maximum(-120.0, (units - reference_units) * DB_PER_UNIT)


def release_seconds(operator: dict[str, int], rate_scaling: int) -> float:
    """Time for the release (EG rate 4) to fall 60 dB."""
    db_per_s = eg_increment(operator["eg_rate_4"], rate_scaling) / EG_UNITS_PER_LEVEL_UNIT * DB_PER_UNIT * (
        SAMPLE_RATE / BLOCK)
    return float(SCHEMA["envelope.release_s"].clip(60.0 / db_per_s))


def _fitted_slope(keys, values_db, per: float) -> float:
    keys = np.asarray(keys, float)
    values_db = np.asarray(values_db, float)
    return float(np.dot(keys, values_db) / max(np.dot(keys, keys), 1e-12) * per)


VELOCITY_SENSITIVITY_BY_KVS = tuple(
    _fitted_slope([40.0 * math.log10(v / REFERENCE_VELOCITY) for v in range(1, 128)],
                  [(velocity_units(v, kvs) - velocity_units(REFERENCE_VELOCITY, kvs)) * DB_PER_UNIT
                   for v in range(1, 128)], 1.0) for kvs in range(8))


def key_level_db_per_octave(operator: dict[str, int]) -> float:
    """The straight line (dB per octave about the reference key) closest to the DX7's level scaling."""
    units = output_units_by_key(operator, REFERENCE_VELOCITY)
    keys = range(24, 109)
    values = (units[24:109] - units[REFERENCE_NOTE]) * DB_PER_UNIT
    return float(SCHEMA["operator.key_level_db_per_octave"].clip(
        _fitted_slope([key - REFERENCE_NOTE for key in keys], values, 12.0)))


def key_level_points(operator: dict[str, int]) -> list[tuple[float, float]]:
    """The DX7's keyboard level scaling (break point, depths, the four curves) as native ``key_levels``,
    exact at every key 0..127: its gain re the reference key is constant over runs of keys (groups of
    3), so a point at each end of every run, less the points in line with their neighbours, plays it
    (at most 2 × 43 groups + 2 points, within the schema's limit). No points when the scaling is flat."""
    units = output_units_by_key(operator, REFERENCE_VELOCITY)
    if not np.any(units != units[REFERENCE_NOTE]):
        return []
    levels = SCHEMA["key_point.level_db"].clip((units - units[REFERENCE_NOTE]) * DB_PER_UNIT).tolist()
    edges = sorted({0, 127, *(key for changed in range(1, 128) if levels[changed] != levels[changed - 1]
                              for key in (changed - 1, changed))})
    kept = [edges[0]]
    for middle, following in itertools.pairwise(edges[1:]):
        previous = kept[-1]
        in_line = levels[previous] + (levels[following] - levels[previous]) * (middle - previous) / (following - previous)
        if abs(in_line - levels[middle]) > 1e-9:
            kept.append(middle)
    kept.append(edges[-1])
    return [(float(key), levels[key]) for key in kept]


def operator_frequency(operator: dict[str, int], transpose: int) -> dict[str, float | None]:
    """``ratio``, ``fixed_hz`` and ``detune_cents`` of a DX7 operator."""
    coarse, fine, detune = operator["frequency_coarse"], operator["frequency_fine"], operator["detune"]
    if operator["oscillator_mode"] == 1:
        octaves = _FIXED_DETUNE_OCTAVES_PER_STEP * max(0, detune - 7)
        hz = 10.0 ** ((coarse & 3) + fine / 100.0) * 2.0 ** octaves
        return {"ratio": 1.0, "fixed_hz": float(SCHEMA["operator.fixed_hz"].clip(hz)), "detune_cents": 0.0}
    ratio = (coarse if coarse else 0.5) * (1.0 + fine / 100.0) * 2.0 ** ((transpose - 24) / 12.0)
    return {"ratio": float(SCHEMA["operator.ratio"].clip(ratio)), "fixed_hz": None,
            "detune_cents": (detune - 7) * DETUNE_CENTS_PER_STEP}


def lfo_rate_hz(speed: int) -> float:
    scaled = 1 if speed == 0 else (165 * speed) >> 6
    scaled *= 11 if scaled < 160 else 11 + ((scaled - 160) >> 4)
    return _LFO_HZ_PER_STEP * scaled


def lfo_delay_s(delay: int) -> float:
    """Time until the LFO is at full depth: the DX7 waits, then fades in; the native LFO fades in over it."""
    if delay == 0:
        return 0.0
    unit = BLOCK * 25190424 / SAMPLE_RATE
    step = 99 - delay
    hold_step = (16 + (step & 15)) << (1 + (step >> 4))
    ramp_step = max(0x80, hold_step & 0xFF80)
    blocks = 2.0 ** 31 / (unit * hold_step) + 2.0 ** 31 / (unit * ramp_step)
    return float(SCHEMA["lfo.delay_s"].clip(blocks * BLOCK / SAMPLE_RATE))


def vibrato_cents(depth: int, sensitivity: int) -> float:
    return 1200.0 * ((depth * 165) >> 6) * _PITCH_MOD_SENSITIVITY[sensitivity] / 65536.0


def tremolo_db(depth: int, sensitivity: int) -> float:
    return TREMOLO_FULL_DB * depth / 99.0 * _AMP_MOD_SENSITIVITY[sensitivity]


def lfo_start_phase(parameters: dict[str, int]) -> float:
    """Key sync starts the DX7 LFO half a cycle in; without it the LFO runs free and its phase at a
    note-on is anyone's: taken as the start of its cycle (as a freshly started LFO is). The native saws
    are the DX7's half a cycle on."""
    saw = NATIVE_LFO_WAVE[parameters["lfo_wave"]] in (NATIVE_LFO_WAVE[1], NATIVE_LFO_WAVE[2])
    phase = (0.5 if parameters["lfo_key_sync"] else 0.0) + (0.5 if saw else 0.0)
    return phase - math.floor(phase)


def feedback_radians(feedback: int, operator_amplitude: float) -> float:
    """The DX7 shifts the phase by the operator's output × 2^(feedback − 8) cycles (none at 0)."""
    if feedback == 0:
        return 0.0
    return float(SCHEMA["operator.feedback"].clip(2.0 * math.pi * 2.0 ** (feedback - 8) * operator_amplitude))


def pitch_eg_cents(level: int) -> float:
    return _PITCH_EG_LEVEL[level] * _PITCH_EG_CENTS_PER_STEP


def pitch_eg_cents_per_s(rate: int) -> float:
    return _PITCH_EG_RATE[rate] * _PITCH_EG_CENTS_PER_S_PER_STEP


def pitch_envelope(parameters: dict[str, int]) -> PitchEnvelope:
    """The DX7 pitch EG: it starts at level 4, moves at constant speed (rates 1–3) through levels 1–3,
    holds level 3 while the key is down, then moves to level 4 at rate 4. None (all zero) when flat."""
    if not any(pitch_eg_cents(parameters[f"pitch_eg_level_{stage}"]) for stage in (1, 2, 3, 4)):
        return PitchEnvelope()
    level = pitch_eg_cents(parameters["pitch_eg_level_4"])
    stages = {"start_cents": level}
    for stage in (1, 2, 3):
        target = pitch_eg_cents(parameters[f"pitch_eg_level_{stage}"])
        seconds = abs(target - level) / pitch_eg_cents_per_s(parameters[f"pitch_eg_rate_{stage}"])
        stages |= {f"stage_{stage}_s": float(SCHEMA[f"pitch_envelope.stage_{stage}_s"].clip(seconds)),
                   f"stage_{stage}_cents": target}
        level = target
    return PitchEnvelope(**stages, release_cents=stages["start_cents"],
                         release_cents_per_s=pitch_eg_cents_per_s(parameters["pitch_eg_rate_4"]))


def compile_voice(voice: Dx7Voice) -> Patch:
    """The native patch playing ``voice`` (clamped to the DX7's ranges): operator 0 is DX7 operator 1."""
    parameters = voice.voice_parameters()
    topology = Topology.from_algorithm(voice.algorithm_number)
    feedback_operator = topology.feedback_operators[0]
    operators = []
    for index in range(6):
        dx7 = voice.operator(index + 1)
        output = output_units(dx7, REFERENCE_NOTE, REFERENCE_VELOCITY)
        reference_units = eg_level_units(99, output)
        peak = amplitude(reference_units)
        rate_scaling = rate_scaling_steps(REFERENCE_NOTE, dx7["rate_scaling"])
        carrier = topology.carriers[index]
        operators.append(Operator(
            **operator_frequency(dx7, parameters["transpose"]),
            level=float(SCHEMA["operator.level"].clip(peak * CARRIER_GAIN if carrier else 2.0 * math.pi * peak)),
            carrier=carrier,
            modulators=list(topology.modulators[index]),
            feedback=feedback_radians(parameters["feedback"], peak) if index == feedback_operator else 0.0,
            envelope=Envelope(segments=held_segments(dx7, output, rate_scaling, reference_units),
                              release_s=release_seconds(dx7, rate_scaling)),
            velocity_sensitivity=float(SCHEMA["operator.velocity_sensitivity"].clip(
                VELOCITY_SENSITIVITY_BY_KVS[dx7["key_velocity_sensitivity"]])),
            key_levels=key_level_points(dx7),
            rate_scaling=dx7["rate_scaling"] / 8.0,  # 4 rate steps double the speed; an octave adds rs/2 steps
        ))
    carrier_ams = max(voice.value("amp_mod_sensitivity", index + 1) for index in topology.carrier_indices)
    lfo = Lfo(rate_hz=lfo_rate_hz(parameters["lfo_speed"]), delay_s=lfo_delay_s(parameters["lfo_delay"]),
              pitch_depth_cents=vibrato_cents(parameters["lfo_pitch_mod_depth"], parameters["pitch_mod_sensitivity"]),
              amp_depth_db=tremolo_db(parameters["lfo_amp_mod_depth"], carrier_ams),
              wave=NATIVE_LFO_WAVE[parameters["lfo_wave"]], start_phase=lfo_start_phase(parameters))
    return Patch(name=voice.name.strip() or "untitled", pitch=Pitch(REFERENCE_NOTE, REFERENCE_VELOCITY, 0.0),
                 algorithm=voice.algorithm_number, operators=operators, lfo=lfo,
                 pitch_envelope=pitch_envelope(parameters),
                 oscillator_key_sync=bool(parameters["oscillator_key_sync"]),
                 metadata={"dx7": {"voice": voice.raw.hex(), "packed_spare_bits": voice.packed_spare_bits.hex()}})


def stored_voice(patch: Patch) -> Dx7Voice | None:
    """The DX7 voice a patch was compiled from, if it still plays exactly that voice."""
    stored = patch.metadata.get("dx7") if isinstance(patch.metadata, dict) else None
    if not isinstance(stored, dict):
        return None
    try:
        voice = Dx7Voice(bytes.fromhex(stored["voice"]), bytes.fromhex(stored.get("packed_spare_bits", "")))
    except (KeyError, TypeError, ValueError, PatchError):  # a malformed record: export by fitting instead
        return None
    compiled = compile_voice(voice.clamped())
    if dataclasses.replace(compiled, name=patch.name, metadata=patch.metadata) == patch:
        return voice  # equal fields: the documents are equal too, no need to build them
    same = {key: value for key, value in compiled.to_dict().items() if key not in ("metadata", "name")}
    mine = {key: value for key, value in patch.to_dict().items() if key not in ("metadata", "name")}
    return voice if same == mine else None


def compile_losses(voice: Dx7Voice) -> list[str]:
    """What of ``voice`` the native patch does not play."""
    parameters = voice.voice_parameters()
    losses = []
    if not parameters["lfo_key_sync"] and (parameters["lfo_pitch_mod_depth"] or parameters["lfo_amp_mod_depth"]):
        losses.append("LFO key sync off (every note starts the LFO at the start of its cycle)")
    return losses
