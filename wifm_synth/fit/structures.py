"""Operator structures the multi-operator fitter searches, and the DX7 algorithm that realises each.

A *structure* is a forest of operators: carriers are roots, every other operator modulates exactly
one operator, and at most one operator feeds back on itself. Each operator has an integer ratio.

Why forests, and which algorithms are equivalent. The fitter predicts harmonic magnitudes from the
active operators only: a DX7 algorithm with some operators at level 0 behaves exactly like the graph
of its remaining operators (a silent modulator adds no phase, a silent carrier adds no output). So
for the fitting model two (algorithm, active operators) choices are *equivalent* when their active
subgraphs are isomorphic, with the feedback operator marked when its feedback is used. The canonical
form below (a sorted, bracketed string of the carrier subtrees) names each class; ``realisations()``
lists every class reachable from the 32 algorithms by silencing operators, each with the lowest
algorithm number that realises it and where its operators go. Only forests are kept: an active
operator that modulates two active operators (op 6 in algorithms 19 and 21–25, op 3 in 20 and 21)
ties the two subtrees to one level trajectory, which the greedy growth does not propose; the same
spectra are reachable, one level each, through the forest classes of other algorithms.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

from wifm_synth.voice.dx7_algorithms import DX7_ALGORITHMS, DX7_OPERATOR_COUNT
from wifm_synth.voice.topology import Topology

CARRIER_ROOT = -1  # parent of a carrier


@dataclass(frozen=True)
class Structure:
    """Operators 0..K-1: ``parents[k]`` is the operator k modulates (CARRIER_ROOT for a carrier)."""

    parents: tuple[int, ...]
    ratios: tuple[int, ...]
    feedback_operator: int | None = None

    @property
    def operator_count(self) -> int:
        return len(self.parents)

    @property
    def carriers(self) -> tuple[bool, ...]:
        return tuple(parent == CARRIER_ROOT for parent in self.parents)

    def children(self, operator: int) -> list[int]:
        return [k for k, parent in enumerate(self.parents) if parent == operator]

    def topology(self) -> Topology:
        feedback = () if self.feedback_operator is None else (self.feedback_operator,)
        return Topology.from_routing(list(self.carriers), [self.children(k) for k in range(self.operator_count)],
                                     feedback)

    def with_operator(self, parent: int, ratio: int) -> Structure:
        return Structure(self.parents + (parent,), self.ratios + (ratio,), self.feedback_operator)

    def with_feedback(self, operator: int | None) -> Structure:
        return Structure(self.parents, self.ratios, operator)

    def key(self) -> str:
        """Canonical form including ratios: equal keys are the same voice up to operator numbering."""
        return canonical_form(self.parents, self.feedback_operator, self.ratios)[0]

    def describe(self) -> str:
        """Readable routing, e.g. ``1←(3←7*), 2←5`` (carrier ratio ← modulator ratios, * = feedback)."""
        def node(k: int) -> str:
            mark = "*" if k == self.feedback_operator else ""
            kids = self.children(k)
            inner = ", ".join(node(c) for c in kids)
            return f"{self.ratios[k]}{mark}" + (f"←({inner})" if len(kids) > 1 else f"←{inner}" if kids else "")
        return ", ".join(node(k) for k in range(self.operator_count) if self.parents[k] == CARRIER_ROOT)


def canonical_form(parents, feedback_operator, labels=None) -> tuple[str, list[int]]:
    """(form, order): isomorphic forests (with the feedback mark, and ``labels`` when given) have equal
    forms, and their ``order`` lists pair corresponding operators."""
    children = {k: [c for c, parent in enumerate(parents) if parent == k] for k in range(len(parents))}

    def node(k: int) -> tuple[str, list[int]]:
        subtrees = sorted((node(child) for child in children[k]), key=lambda item: item[0])
        label = "" if labels is None else str(labels[k])
        mark = "*" if k == feedback_operator else ""
        return "(" + label + mark + "".join(s for s, _ in subtrees) + ")", [k] + [o for _, sub in subtrees for o in sub]

    roots = sorted((node(k) for k, parent in enumerate(parents) if parent == CARRIER_ROOT), key=lambda item: item[0])
    return "".join(form for form, _ in roots), [o for _, order in roots for o in order]


@dataclass(frozen=True)
class Realisation:
    """A DX7 algorithm and, in canonical order, the (0-based) operators that play a class's operators."""

    algorithm: int
    operators: tuple[int, ...]


def active_forest(topology: Topology, active: tuple[int, ...]) -> list[int] | None:
    """Parents of the active operators inside the active set, or None when they are not a forest in
    which every operator is heard (a modulator of no active operator, or of two)."""
    parents = []
    for operator in active:
        if topology.carriers[operator]:
            parents.append(CARRIER_ROOT)
            continue
        targets = [active.index(t) for t in topology.modulated_by(operator) if t in active]
        if len(targets) != 1:
            return None
        parents.append(targets[0])
    return parents


def forest_placements():
    """(algorithm, active operators, their forest parents) for every algorithm and every set of its
    operators that, with the others silent, is a forest in which every operator is heard."""
    for number in sorted(DX7_ALGORITHMS):
        topology = Topology.from_algorithm(number)
        for size in range(1, DX7_OPERATOR_COUNT + 1):
            for active in itertools.combinations(range(DX7_OPERATOR_COUNT), size):
                parents = active_forest(topology, active)
                if parents is not None:
                    yield number, active, parents


@functools.cache
def realisations() -> dict[str, Realisation]:
    """Every forest class reachable by silencing operators of a DX7 algorithm → its lowest algorithm."""
    table: dict[str, Realisation] = {}
    for number, active, parents in forest_placements():
        feedback = Topology.from_algorithm(number).feedback_operators[0]
        marks = [None] + ([active.index(feedback)] if feedback in active else [])
        for mark in marks:
            form, order = canonical_form(parents, mark)
            table.setdefault(form, Realisation(number, tuple(active[k] for k in order)))
    return table


def realise(structure: Structure) -> tuple[int, list[int]] | None:
    """(algorithm, dx7_operator_of[k] for each structure operator k), or None if no algorithm has it."""
    form, order = canonical_form(structure.parents, structure.feedback_operator)
    found = realisations().get(form)
    if found is None:
        return None
    placement = [0] * structure.operator_count
    for operator, dx7_operator in zip(order, found.operators):
        placement[operator] = dx7_operator
    return found.algorithm, placement


def is_realisable(structure: Structure) -> bool:
    return canonical_form(structure.parents, structure.feedback_operator)[0] in realisations()


def class_counts() -> dict[int, int]:
    """How many equivalence classes (with and without feedback) the algorithms give per operator count."""
    counts: dict[int, int] = {}
    for form in realisations():
        size = form.count("(")
        counts[size] = counts.get(size, 0) + 1
    return counts
