"""One DX7 voice for a whole multi-zone program (``wifm syx export --one-voice``, docs/DX7.md).

A bank program plays a different patch per key zone; a DX7 voice has one set of parameters and
follows the keyboard only through keyboard level scaling (break point, left/right depths and curves)
and rate scaling. The zone whose root key is nearest the reference key is exported as any patch is
(``dx7_export.export_voice``); then, per operator, the level-scaling parameters are chosen that
minimise the squared dB difference between the voice's operator level at each zone's root key
(``dx7_patch.output_units``, the arithmetic the import compiles with) and that zone's operator
level, and the rate scaling 0–7 whose EG at each root key is closest to that zone's envelope.
"""

from __future__ import annotations

import math

import numpy as np

from wifm_synth.engine.kernels import key_points_db
from wifm_synth.engine.tables import patch_row
from wifm_synth.errors import PatchError
from wifm_synth.formats import dx7_patch as dx7
from wifm_synth.formats.bank_json import Program
from wifm_synth.formats.dx7_export import (
    descend,
    eg_distance_db,
    export_voice,
    place_on_algorithm,
)
from wifm_synth.formats.dx7_voice import Dx7Voice
from wifm_synth.voice.patch import Patch
from wifm_synth.voice.schema import SCALING_GAIN_CEILING_DB
from wifm_synth.voice.topology import Topology

_DEPTHS, _CURVES = range(100), range(4)
_BREAK_POINTS = range(100)
_OUTPUT_LEVELS = range(100)
# Among fits equally close, the shallowest: no keyboard scaling is invented where no zone asks for it.
_DEPTH_PENALTY_DB2 = 1e-6
_SILENT_AMPLITUDE = 1e-9
_EG_RATES = ("eg_rate_1", "eg_rate_2", "eg_rate_3")
_LEVEL_SCALING = ("output_level", "level_scaling_break_point", "level_scaling_left_curve", "level_scaling_left_depth",
                  "level_scaling_right_curve", "level_scaling_right_depth")


def base_zone(program: Program) -> int:
    """The zone exported first: the one whose root key is nearest the reference key (the DX7 export's)."""
    return min(range(len(program.zones)), key=lambda index: (abs(program.zones[index].root_key - dx7.REFERENCE_NOTE),
                                                             index))


def check_same_routing(patches: list[Patch], labels: list[str], source) -> tuple[int, list[int | None]]:
    """The shared (algorithm, operator slots) of the zones' patches; refuses zones routed differently."""
    first = patches[0]
    placement = place_on_algorithm(first)[:2]
    for patch, label in zip(patches[1:], labels[1:], strict=True):
        if patch.topology != first.topology or place_on_algorithm(patch)[:2] != placement:
            raise PatchError(f"--one-voice needs the same operator routing in every zone; {labels[0]} and {label} "
                             "differ", source)
    return placement


def zone_level_units(patch: Patch, index: int, key: int, velocity: int, carrier: bool) -> float:
    """The patch operator's peak level at ``key`` and ``velocity`` in DX7 level units (as the engine scales it:
    velocity, slope and key points, capped at the schema's ceiling)."""
    operator = patch.operators[index]
    scale_db = min(40.0 * operator.velocity_sensitivity * math.log10(velocity / patch.pitch.reference_velocity)
                   + operator.key_level_db_per_octave * (key - patch.pitch.reference_note) / 12.0
                   + key_points_db(patch_row(patch)[None, :], 0, index, float(key)), SCALING_GAIN_CEILING_DB)
    amplitude = operator.level / (dx7.CARRIER_GAIN if carrier else 2.0 * math.pi) * 10.0 ** (scale_db / 20.0)
    return dx7.UNITS_PER_OCTAVE * (math.log2(max(amplitude, _SILENT_AMPLITUDE)) + dx7.FULL_SCALE_EXPONENT)


class _ScalingTable:
    """Key scaling steps of every (break point, curve, depth) at the zones' root keys, computed once with
    ``dx7.key_scaling_steps``; index [zone, break point, curve × 100 + depth], and the side each key is on."""

    def __init__(self, keys: list[int]):
        self.steps = np.zeros((len(keys), len(_BREAK_POINTS), len(_CURVES) * len(_DEPTHS)), dtype=np.int64)
        self.right = np.zeros((len(keys), len(_BREAK_POINTS)), dtype=bool)
        for zone, key in enumerate(keys):
            for break_point in _BREAK_POINTS:
                self.right[zone, break_point] = key - break_point - 17 >= 0
                for curve in _CURVES:
                    for depth in _DEPTHS:
                        both = {"level_scaling_break_point": break_point, "level_scaling_left_depth": depth,
                                "level_scaling_right_depth": depth, "level_scaling_left_curve": curve,
                                "level_scaling_right_curve": curve}
                        self.steps[zone, break_point, curve * len(_DEPTHS) + depth] = dx7.key_scaling_steps(key, both)


def fit_level_scaling(values: dict[str, int], keys: list[int], goals: np.ndarray, velocity: int,
                      table: _ScalingTable) -> dict[str, int]:
    """Output level, break point, depths and curves whose level at each key is closest (squared dB) to ``goals``
    (level units, one per key): every break point and output level, each side's best curve and depth."""
    velocity_change = dx7.velocity_units(velocity, values["key_velocity_sensitivity"])
    span = int(np.abs(table.steps).max()) + 128
    # level units of every possible total of output level and key scaling steps (index: steps + span)
    units_of_steps = np.array([dx7.eg_level_units(99, dx7.output_units_of_steps(steps, velocity_change))
                               for steps in range(-span, span)], dtype=float)
    scaled = np.array([dx7.scaled_output_level(level) for level in _OUTPUT_LEVELS])
    penalty = _DEPTH_PENALTY_DB2 * np.tile(np.asarray(_DEPTHS, float), len(_CURVES))
    best = (math.inf, None)
    for break_point in _BREAK_POINTS:
        totals = scaled[:, None, None] + table.steps[None, :, break_point, :] + span  # [level, zone, candidate]
        errors = ((units_of_steps[totals] - goals[None, :, None]) * dx7.DB_PER_UNIT) ** 2
        right = table.right[:, break_point]
        left_cost = errors[:, ~right, :].sum(axis=1) + penalty
        right_cost = errors[:, right, :].sum(axis=1) + penalty
        left, right_pick = left_cost.argmin(axis=1), right_cost.argmin(axis=1)
        rows = np.arange(len(scaled))
        cost = left_cost[rows, left] + right_cost[rows, right_pick]
        level = int(cost.argmin())
        if cost[level] < best[0] - 1e-12:
            best = (float(cost[level]), (level, break_point, int(left[level]), int(right_pick[level])))
    level, break_point, left, right_pick = best[1]
    return {"output_level": level, "level_scaling_break_point": break_point,
            "level_scaling_left_curve": left // len(_DEPTHS), "level_scaling_left_depth": left % len(_DEPTHS),
            "level_scaling_right_curve": right_pick // len(_DEPTHS), "level_scaling_right_depth": right_pick % len(_DEPTHS)}


def fit_rate_scaling(values: dict[str, int], keys: list[int], envelopes: list, velocity: int) -> dict[str, int]:
    """Rate scaling 0–7 and EG rates 1–3 whose held EG at each zone's root key is closest (``eg_distance_db``,
    summed over the zones) to that zone's envelope: for each rate scaling the rates are refitted by coordinate
    descent from the exported ones; the exported values stay unless another rate scaling is strictly closer."""
    distances = [eg_distance_db(envelope.segments) for envelope in envelopes]
    outputs = [dx7.output_units(values, key, velocity) for key in keys]

    def cost(trial: dict[str, int]) -> float:
        return sum(distance(trial, output, dx7.rate_scaling_steps(key, trial["rate_scaling"]),
                            dx7.eg_level_units(99, output))
                   for key, output, distance in zip(keys, outputs, distances, strict=True))

    best, best_cost = values, cost(values)
    for rate_scaling in range(8):
        trial, trial_cost = descend(values | {"rate_scaling": rate_scaling}, _EG_RATES, cost)
        if trial_cost < best_cost - 1e-9:
            best, best_cost = trial, trial_cost
    return {name: best[name] for name in ("rate_scaling", *_EG_RATES)}


def one_voice(program: Program, patches: list[Patch], labels: list[str], source,
              velocity: int = dx7.REFERENCE_VELOCITY) -> tuple[Dx7Voice, list[str]]:
    """One DX7 voice for all of ``program``'s zones (``patches`` in zone order) and what it does not keep."""
    algorithm, slots = check_same_routing(patches, labels, source)
    base = base_zone(program)
    voice, losses = export_voice(patches[base])
    if len(patches) == 1:  # nothing to fit: the plain export (a DX7 voice's own scaling, byte for byte)
        return voice, losses
    topology = Topology.from_algorithm(algorithm)
    keys = [zone.root_key for zone in program.zones]
    table = _ScalingTable(keys)
    for index, slot in enumerate(slots):
        if slot is None:
            continue
        carrier = topology.carriers[slot]
        goals = np.array([zone_level_units(patch, index, key, velocity, carrier) for patch, key in zip(patches, keys,
                                                                                                       strict=True)])
        values = voice.operator(slot + 1)
        values |= fit_level_scaling(values, keys, goals, velocity, table)
        values |= fit_rate_scaling(values, keys, [patch.operators[index].envelope for patch in patches], velocity)
        voice = voice.with_operator(slot + 1, **{name: values[name] for name in (*_LEVEL_SCALING, "rate_scaling",
                                                                                 *_EG_RATES)})
    return voice, [*losses, "zones other than the one nearest the reference key (kept only as level and rate scaling)"]
