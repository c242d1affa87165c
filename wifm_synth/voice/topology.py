"""The routing of an FM voice: which operators are heard, who modulates whom, who feeds back.

This is the one definition of an operator graph. The patch reader builds it (from a DX7 algorithm
number or from explicit ``carrier``/``modulators`` fields) and checks the patch against it at load
time; the engine's routing table, the fitter's operator roles and the spectrum of a graph are all
derived from it.

Operators are 0-based (operator 0 = DX7 operator 1). A modulator adds its output to the phase of the
operators it modulates; the graph without feedback must be acyclic. Feedback is an operator's own
output (the mean of its last two samples) added to its phase: ``feedback_operators`` lists the
operators allowed to have it (every operator for explicit routing, the algorithm's one for a DX7
algorithm).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wifm_synth.errors import PatchError
from wifm_synth.voice.dx7_algorithms import DX7_ALGORITHMS, DX7_OPERATOR_COUNT

MAX_OPERATORS = DX7_OPERATOR_COUNT


@dataclass(frozen=True)
class Topology:
    """An acyclic operator graph plus the operators that may feed back on themselves.

    ``modulators[k]`` are the operators whose outputs modulate operator ``k`` (sorted, unique);
    ``order`` lists every operator after all of its modulators (the evaluation order).
    ``feedback_source`` is, for a DX7 algorithm whose feedback loop spans a chain (4 and 6), the
    operator the hardware takes the feedback from; this engine models it as ``feedback_operators[0]``'s
    self-feedback, as msfa and Dexed do.
    """

    carriers: tuple[bool, ...]
    modulators: tuple[tuple[int, ...], ...]
    feedback_operators: tuple[int, ...]
    order: tuple[int, ...]
    algorithm: int | None = None
    feedback_source: int | None = None

    @property
    def operator_count(self) -> int:
        return len(self.carriers)

    @property
    def carrier_indices(self) -> tuple[int, ...]:
        return tuple(index for index, carrier in enumerate(self.carriers) if carrier)

    def modulated_by(self, source: int) -> tuple[int, ...]:
        """The operators that ``source`` modulates."""
        return tuple(index for index, sources in enumerate(self.modulators) if source in sources)

    def edges(self) -> tuple[tuple[int, int], ...]:
        """(modulator, modulated) pairs, 0-based, sorted."""
        return tuple(sorted((source, target) for target, sources in enumerate(self.modulators) for source in sources))

    def allows_feedback(self, operator: int) -> bool:
        return operator in self.feedback_operators

    @classmethod
    def from_algorithm(cls, number: int) -> Topology:
        """DX7 algorithm ``number`` (1…32)."""
        if isinstance(number, bool) or not isinstance(number, int) or number not in DX7_ALGORITHMS:
            raise PatchError(f"algorithm: must be an integer 1..{len(DX7_ALGORITHMS)}, got {number!r}")
        algorithm = DX7_ALGORITHMS[number]
        modulators = [
            tuple(sorted(source - 1 for source, target in algorithm.edges if target == operator))
            for operator in range(1, DX7_OPERATOR_COUNT + 1)
        ]
        carriers = [operator in algorithm.carriers for operator in range(1, DX7_OPERATOR_COUNT + 1)]
        source = None if algorithm.feedback_source is None else algorithm.feedback_source - 1
        return cls._checked(carriers, modulators, (algorithm.feedback - 1,), number, source)

    @classmethod
    def from_routing(cls, carriers: Sequence[bool], modulators: Sequence[Sequence[int]],
                     feedback_operators: Sequence[int] | None = None) -> Topology:
        """Explicit routing; every operator may feed back unless ``feedback_operators`` says which."""
        count = len(carriers)
        if feedback_operators is None:
            feedback_operators = range(count)
        return cls._checked(carriers, modulators, tuple(feedback_operators), None, None)

    @classmethod
    def _checked(cls, carriers, modulators, feedback_operators, algorithm, feedback_source) -> Topology:
        count = len(carriers)
        if not 1 <= count <= MAX_OPERATORS or len(modulators) != count:
            raise PatchError(f"operators: must have 1 to {MAX_OPERATORS} operators")
        clean = []
        for index, sources in enumerate(modulators):
            for position, source in enumerate(sources):
                if isinstance(source, bool) or not isinstance(source, int) or not 0 <= source < count:
                    raise PatchError(f"operators[{index}].modulators[{position}]: must be an operator index "
                                     f"0..{count - 1}")
            clean.append(tuple(sorted(set(sources))))
        if not any(carriers):
            raise PatchError("operators: at least one operator must be a carrier")
        return cls(carriers=tuple(bool(carrier) for carrier in carriers), modulators=tuple(clean),
                   feedback_operators=tuple(feedback_operators), order=_evaluation_order(clean),
                   algorithm=algorithm, feedback_source=feedback_source)


def _evaluation_order(modulators: Sequence[Sequence[int]]) -> tuple[int, ...]:
    """Operators ordered so that every modulator comes before the operators it modulates; a cycle is an
    error naming the first operator found on it (feedback is a separate, explicit field)."""
    order: list[int] = []
    state = [0] * len(modulators)  # 0 unseen, 1 on the current path, 2 placed

    def place(index: int) -> None:
        state[index] = 1
        for source in modulators[index]:
            if state[source] == 1:
                raise PatchError(f"operators[{index}].modulators: modulation routing has a cycle (use feedback)")
            if state[source] == 0:
                place(source)
        state[index] = 2
        order.append(index)

    for index in range(len(modulators)):
        if state[index] == 0:
            place(index)
    return tuple(order)


# The fitter's 2-operator voice: operator 0 is heard, operator 1 modulates it.
CARRIER_MODULATOR_PAIR = Topology.from_routing([True, False], [[1], []])
CARRIER = 0
MODULATOR = 1
