"""A native patch as a DX7 voice (docs/DX7.md): the inverse of ``dx7_patch.compile_voice``.

A patch compiled from a DX7 voice and left unchanged exports that voice byte for byte (it is kept in
the patch's metadata). Any other patch is fitted: its routing is placed on the DX7 algorithm that
holds it (an operator the patch lacks stays silent at output level 0), and each parameter is set to
the DX7 value whose compiled figure is closest to the patch's, by searching the DX7's value range
through the same arithmetic ``dx7_patch`` compiles with. What cannot be placed is listed as a loss.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from wifm_synth.formats import dx7_patch as dx7
from wifm_synth.formats.dx7_voice import Dx7Voice
from wifm_synth.voice.dx7_algorithms import DX7_ALGORITHMS
from wifm_synth.voice.envelope import envelope_levels_db
from wifm_synth.voice.patch import Operator, Patch
from wifm_synth.voice.topology import Topology

_CENTRE_BREAK_POINT = dx7.REFERENCE_NOTE - 17  # level scaling turns about the reference key
_LINEAR_DOWN, _LINEAR_UP = 0, 3  # -LIN, +LIN curves
_EG_FITTED = tuple(f"eg_{kind}_{stage}" for stage in (1, 2, 3) for kind in ("rate", "level"))
_EG_FIT_RANGE_DB = 60.0


def _closest(values, goal, measure) -> int:
    return min(values, key=lambda value: abs(measure(value) - goal))


def feedback_step(operator: Operator, carrier: bool) -> int:
    """The DX7 feedback setting 1–7 whose phase shift at the operator's peak is closest to its ``feedback``
    (``dx7.feedback_radians`` of that step and amplitude is what the DX7 plays)."""
    return _closest(range(1, 8), operator.feedback, lambda step: dx7.feedback_radians(step, feedback_amplitude(operator, carrier)))


def feedback_amplitude(operator: Operator, carrier: bool) -> float:
    """The operator's peak output in the DX7's units (what its feedback shift is proportional to)."""
    return operator.level / (dx7.CARRIER_GAIN if carrier else 2.0 * math.pi)


def place_on_algorithm(patch: Patch) -> tuple[int, list[int | None], list[str]]:
    """(algorithm, DX7 operator index 0..5 of each patch operator, losses) for the patch's routing."""
    topology = patch.topology
    if patch.algorithm is not None:
        return patch.algorithm, list(range(6)), []
    count = topology.operator_count
    feedback = [index for index, operator in enumerate(patch.operators) if operator.feedback > 0.0]
    edges = set(topology.edges())
    for number in sorted(DX7_ALGORITHMS):
        target = Topology.from_algorithm(number)
        for slots in itertools.permutations(range(6), count):
            if any(target.carriers[slots[index]] != topology.carriers[index] for index in range(count)):
                continue
            placed = {(slots[source], slots[modulated]) for source, modulated in edges}
            inside = {edge for edge in target.edges() if edge[0] in slots and edge[1] in slots}
            if placed == inside and all(slots[index] in target.feedback_operators for index in feedback):
                return number, list(slots), []
    # No algorithm holds the routing: keep the carriers, drop the modulation.
    return 32, list(range(count)), ["routing (no DX7 algorithm holds it; exported as algorithm 32, carriers only)"]


def _operator_values(operator, carrier: bool, tune_cents: float) -> dict[str, int]:
    values = {name: 0 for name in ("level_scaling_left_depth", "level_scaling_right_depth", "amp_mod_sensitivity")}
    values |= {"level_scaling_break_point": _CENTRE_BREAK_POINT, "eg_level_4": 0, "oscillator_mode": 0, "detune": 7}
    values["rate_scaling"] = min(7, max(0, round(8 * operator.rate_scaling)))
    values["key_velocity_sensitivity"] = _closest(range(8), operator.velocity_sensitivity,
                                                  lambda kvs: dx7.VELOCITY_SENSITIVITY_BY_KVS[kvs])
    slope, reference_db = _key_scaling(operator)
    values["level_scaling_left_curve"] = _LINEAR_DOWN if slope >= 0 else _LINEAR_UP
    values["level_scaling_right_curve"] = _LINEAR_UP if slope >= 0 else _LINEAR_DOWN
    # Output level first at depth 0; the depths then turn about the reference key, where they add nothing.
    amplitude = operator.level / (dx7.CARRIER_GAIN if carrier else 2.0 * math.pi)
    goal = dx7.UNITS_PER_OCTAVE * (math.log2(max(amplitude, 1e-9)) + dx7.FULL_SCALE_EXPONENT) + reference_db / dx7.DB_PER_UNIT
    values["output_level"] = _closest(range(100), goal, lambda level: dx7.eg_level_units(99, dx7.output_units(
        values | {"output_level": level}, dx7.REFERENCE_NOTE, dx7.REFERENCE_VELOCITY)))
    if slope:
        depth = _closest(range(100), slope, lambda depth: dx7.key_level_db_per_octave(
            values | {"level_scaling_left_depth": depth, "level_scaling_right_depth": depth}))
        values["level_scaling_left_depth"] = values["level_scaling_right_depth"] = depth
    values |= _frequency_values(operator, tune_cents)
    values |= _envelope_values(operator, values)
    return values


def _key_scaling(operator) -> tuple[float, float]:
    """(dB per octave, gain at the reference key) of the operator's keyboard level scaling: its slope plus
    the least-squares line through its ``key_levels`` points over keys 24–108."""
    if not operator.key_levels:
        return operator.key_level_db_per_octave, 0.0
    points = sorted(operator.key_levels, key=lambda point: point[0])
    point_keys, point_levels = [key for key, _ in points], [level for _, level in points]
    keys = np.arange(24, 109) - dx7.REFERENCE_NOTE
    levels = np.interp(keys + dx7.REFERENCE_NOTE, point_keys, point_levels)
    slope, intercept = np.polyfit(keys, levels, 1)
    return operator.key_level_db_per_octave + 12.0 * float(slope), float(intercept)


def _frequency_values(operator, tune_cents: float) -> dict[str, int]:
    """Coarse, fine and detune; the DX7 voice has no tuning of its own, so the patch's ``tune_cents``
    goes into each key-following operator's detune (±6 cents at most)."""
    if operator.fixed_hz is not None:
        decades = math.log10(operator.fixed_hz)
        coarse = min(3, max(0, math.floor(decades)))
        return {"oscillator_mode": 1, "frequency_coarse": coarse, "detune": 7,
                "frequency_fine": min(99, max(0, round((decades - coarse) * 100)))}

    def ratio_of(coarse, fine):
        return (coarse or 0.5) * (1.0 + fine / 100.0)

    candidates = [(coarse, min(99, max(0, round((operator.ratio / (coarse or 0.5) - 1.0) * 100))))
                  for coarse in range(32)]
    coarse, fine = min(candidates, key=lambda pair: abs(math.log(ratio_of(*pair) / operator.ratio)))
    cents = tune_cents + operator.detune_cents + 1200.0 * math.log2(operator.ratio / ratio_of(coarse, fine))
    detune = min(14, max(0, round(cents / dx7.DETUNE_CENTS_PER_STEP) + 7))
    return {"oscillator_mode": 0, "frequency_coarse": coarse, "frequency_fine": fine, "detune": detune}


def _envelope_values(operator, values: dict[str, int]) -> dict[str, int]:
    """EG levels and rates for the patch's segments: the loudest segment end is level 1, the last level 3."""
    segments = list(operator.envelope.segments)
    peak = max(range(len(segments)), key=lambda index: segments[index][1])
    stages = [(sum(duration for duration, _ in segments[:peak + 1]), segments[peak][1])]
    after = segments[peak + 1:]
    if len(after) >= 2:
        stages.append((sum(duration for duration, _ in after[:-1]), after[-2][1]))
        stages.append(after[-1])
    elif after:
        stages += [(0.0, segments[peak][1]), after[0]]
    else:
        stages += [(0.0, segments[peak][1])] * 2
    output = dx7.output_units(values, dx7.REFERENCE_NOTE, dx7.REFERENCE_VELOCITY)
    reference = dx7.eg_level_units(99, output)
    rate_steps = dx7.rate_scaling_steps(dx7.REFERENCE_NOTE, values["rate_scaling"])
    result, level = {}, 0
    for number, (seconds, db) in enumerate(stages, start=1):
        eg_level = _closest(range(100), reference + db / dx7.DB_PER_UNIT, lambda eg: dx7.eg_level_units(eg, output))
        target = dx7.eg_level_units(eg_level, output) * dx7.EG_UNITS_PER_LEVEL_UNIT
        result[f"eg_level_{number}"] = eg_level
        result[f"eg_rate_{number}"] = _closest(range(100), math.log(max(seconds, 1e-4)), lambda rate, start=level, end=target: math.log(
            dx7.EgStage(start, end, dx7.eg_increment(rate, rate_steps)).seconds))
        level = target
    result |= _fitted_eg(segments, result, output, reference, rate_steps)
    result["eg_rate_4"] = _closest(range(100), math.log(operator.envelope.release_s), lambda rate: math.log(
        dx7.release_seconds({"eg_rate_4": rate}, rate_steps)))
    return result


def _fitted_eg(segments, start: dict[str, int], output: int, reference: int, rate_steps: int) -> dict[str, int]:
    """EG rates and levels 1–3 whose held curve is closest to the patch's envelope in dB over time:
    coordinate descent from ``start`` (the stage-by-stage mapping) on ``eg_distance_db``."""
    distance = eg_distance_db(segments)

    def cost(values):
        return distance(values, output, rate_steps, reference)

    return descend({name: start[name] for name in _EG_FITTED}, _EG_FITTED, cost)[0]


def descend(start: dict[str, int], names, cost) -> tuple[dict[str, int], float]:
    """Coordinate descent over the 0..99 values ``names`` from ``start``: (best values, their cost)."""
    best, best_cost = dict(start), cost(start)
    improved = True
    while improved:
        improved = False
        for name in names:
            for step in (1, -1, 2, -2, 4, -4, 8, -8, 16, -16):
                value = best[name] + step
                if not 0 <= value <= 99:
                    continue
                trial = best | {name: value}
                trial_cost = cost(trial)
                if trial_cost < best_cost - 1e-9:
                    best, best_cost, improved = trial, trial_cost, True
    return best, best_cost


def eg_distance_db(segments):
    """The mean absolute dB difference between the DX7 held EG (``values``, ``output``, ``rate_steps``,
    ``reference`` as ``dx7.held_eg_db`` takes them) and the native envelope ``segments``, both floored
    60 dB below the envelope's peak, sampled densely over the first 0.1 s (the attack) and evenly over
    the rest of the envelope and as long again after it (the held level)."""
    ends = np.cumsum([duration for duration, _ in segments])
    levels = np.array([level for _, level in segments])
    horizon = max(2.0 * ends[-1], 0.5)
    times = np.concatenate([np.linspace(0.0, 0.1, 128, endpoint=False), np.linspace(0.1, horizon, 384)])
    floor = levels.max() - _EG_FIT_RANGE_DB
    goal = np.maximum(envelope_levels_db(np.maximum(times, 1e-9), ends, levels), floor)

    def distance(values, output: int, rate_steps: int, reference: int) -> float:
        return float(np.mean(np.abs(np.maximum(dx7.held_eg_db(values, output, rate_steps, reference, times), floor)
                                    - goal)))
    return distance


def _voice_values(patch: Patch) -> dict[str, int]:
    lfo = patch.lfo
    values = {"lfo_speed": _closest(range(100), lfo.rate_hz, dx7.lfo_rate_hz),
              "lfo_delay": _closest(range(100), lfo.delay_s, dx7.lfo_delay_s),
              "lfo_amp_mod_depth": _closest(range(100), lfo.amp_depth_db, lambda depth: dx7.tremolo_db(depth, 3)),
              "lfo_wave": dx7.NATIVE_LFO_WAVE.index(lfo.wave), "transpose": 24}
    pairs = itertools.product(range(100), range(8))
    values["lfo_pitch_mod_depth"], values["pitch_mod_sensitivity"] = min(
        pairs, key=lambda pair: (abs(dx7.vibrato_cents(*pair) - lfo.pitch_depth_cents), -pair[1]))
    return values | _pitch_eg_values(patch.pitch_envelope)


def _pitch_eg_values(envelope) -> dict[str, int]:
    """Pitch EG levels closest to the envelope's offsets (level 4: its start), and the rates closest to
    the speeds its stages move at (99 for a stage that does not move)."""
    values = {"pitch_eg_level_4": _closest(range(100), envelope.start_cents, dx7.pitch_eg_cents)}
    level = dx7.pitch_eg_cents(values["pitch_eg_level_4"])
    for stage in (1, 2, 3):
        values[f"pitch_eg_level_{stage}"] = _closest(range(100), getattr(envelope, f"stage_{stage}_cents"),
                                                     dx7.pitch_eg_cents)
        target = dx7.pitch_eg_cents(values[f"pitch_eg_level_{stage}"])
        seconds = getattr(envelope, f"stage_{stage}_s")
        speed = abs(target - level) / seconds if seconds > 0 else math.inf
        values[f"pitch_eg_rate_{stage}"] = 99 if target == level or speed == math.inf else _closest(
            range(100), math.log(speed), lambda rate: math.log(dx7.pitch_eg_cents_per_s(rate)))
        level = target
    speed = envelope.release_cents_per_s
    values["pitch_eg_rate_4"] = 99 if speed <= 0 else _closest(
        range(100), math.log(speed), lambda rate: math.log(dx7.pitch_eg_cents_per_s(rate)))
    return values


def export_voice(patch: Patch) -> tuple[Dx7Voice, list[str]]:
    """The DX7 voice for ``patch`` and what of the patch it does not keep (empty when exact)."""
    stored = dx7.stored_voice(patch)
    if stored is not None:
        name = dx7_name(patch.name)
        return (stored if name == stored.name.strip() else stored.with_name(name)), []
    algorithm, slots, losses = place_on_algorithm(patch)
    if patch.pitch_envelope.release_cents != patch.pitch_envelope.start_cents:
        losses = [*losses, "pitch envelope release offset (the DX7 returns to its start offset)"]
    if any(operator.key_levels for operator in patch.operators):
        losses = [*losses, "keyboard level scaling points (exported as the closest straight line)"]
    topology = Topology.from_algorithm(algorithm)
    voice = Dx7Voice.init_voice().with_operator(1, output_level=0).with_values(algorithm=algorithm - 1)
    for index, operator in enumerate(patch.operators):
        carrier = topology.carriers[slots[index]]
        voice = voice.with_operator(slots[index] + 1, **_operator_values(operator, carrier, patch.pitch.tune_cents))
        if operator.feedback > 0.0:
            voice = voice.with_values(feedback=feedback_step(operator, carrier))
    if patch.lfo.amp_depth_db > 0:
        for slot in topology.carrier_indices:
            voice = voice.with_operator(slot + 1, amp_mod_sensitivity=3)
    voice = voice.with_values(**_voice_values(patch), oscillator_key_sync=int(patch.oscillator_key_sync))
    return voice.with_name(dx7_name(patch.name)), losses


def dx7_name(name: str) -> str:
    """At most 10 printable ASCII characters of ``name``."""
    return "".join(character if 32 <= ord(character) < 127 else "?" for character in name)[:10]
