"""Random DX7-algorithm patches with a known structure, for recovery tests of the multi-operator fitter.

A patch draws an algorithm, a set of active operators whose routing is a forest (``fit.structures``),
integer ratios (carriers 1–3, modulators 1–12 with the first modulator coprime to its carrier, as the
2-operator search assumes), decaying index envelopes and, when the algorithm's feedback operator is
active, sometimes feedback. ``recovered`` says whether a fit found the same structure up to operator
numbering (the canonical form with ratios), with or without the feedback mark.
"""

from __future__ import annotations

import math

import numpy as np

from wifm_synth.fit.structures import (
    CARRIER_ROOT,
    Structure,
    canonical_form,
    forest_placements,
)
from wifm_synth.voice.dx7_algorithms import DX7_OPERATOR_COUNT
from wifm_synth.voice.patch import Envelope, Operator, Patch, Pitch
from wifm_synth.voice.topology import Topology

CARRIER_RATIOS = (1, 2, 3)
MODULATOR_RATIOS = tuple(range(1, 13))


def _choices(operator_count: int):
    """(algorithm, active operators, forest parents) with this many heard operators, at most two carriers."""
    return [(number, active, parents) for number, active, parents in forest_placements()
            if len(active) == operator_count and sum(p == CARRIER_ROOT for p in parents) <= 2]


def random_patch(rng: np.random.Generator, operator_count: int, note: int = 57) -> tuple[Patch, Structure]:
    """A patch with ``operator_count`` heard operators (at most two carriers) and its true structure."""
    choices = _choices(operator_count)
    number, active, parents = choices[rng.integers(len(choices))]
    topology = Topology.from_algorithm(number)
    ratios = []
    for k, parent in enumerate(parents):
        if parent == CARRIER_ROOT:
            ratios.append(int(rng.choice(CARRIER_RATIOS)))
            continue
        ratio = int(rng.choice(MODULATOR_RATIOS))
        while parents[parent] == CARRIER_ROOT and math.gcd(ratio, ratios[parent]) != 1:
            ratio = int(rng.choice(MODULATOR_RATIOS))
        ratios.append(ratio)
    feedback_operator = topology.feedback_operators[0]
    feedback = float(rng.uniform(0.2, 0.6)) if feedback_operator in active and rng.random() < 0.5 else 0.0
    operators = []
    for dx7 in range(DX7_OPERATOR_COUNT):
        carrier, sources = topology.carriers[dx7], list(topology.modulators[dx7])
        if dx7 not in active:
            operators.append(Operator(ratio=1.0, level=0.0, carrier=carrier, modulators=sources))
            continue
        k = active.index(dx7)
        level = float(rng.uniform(0.3, 0.8)) if carrier else float(rng.uniform(0.4, 2.5))
        decay_db = float(rng.uniform(-12.0, -3.0)) if not carrier else float(rng.uniform(-6.0, 0.0))
        operators.append(Operator(
            ratio=float(ratios[k]), level=level, carrier=carrier, modulators=sources,
            feedback=feedback if dx7 == feedback_operator else 0.0,
            envelope=Envelope(segments=[(0.01, 0.0), (1.0, decay_db)], release_s=0.2)))
    structure = Structure(tuple(parents), tuple(ratios),
                          active.index(feedback_operator) if feedback > 0.0 else None)
    patch = Patch(name=f"synthetic-{number}", pitch=Pitch(reference_note=note), algorithm=number, operators=operators)
    return patch, structure


def recovered(truth: Structure, fitted: Structure | None, *, with_feedback: bool) -> bool:
    """Same forest and ratios up to operator numbering (and the same feedback operator, if asked)."""
    if fitted is None:
        return False
    def form(structure: Structure) -> str:
        mark = structure.feedback_operator if with_feedback else None
        return canonical_form(structure.parents, mark, structure.ratios)[0]
    return form(truth) == form(fitted)
