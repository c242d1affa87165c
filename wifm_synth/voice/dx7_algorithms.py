"""The 32 DX7 algorithms as data: which operators are carriers, who modulates whom, and feedback.

Operators are numbered as on the DX7 front panel (1…6) here; ``voice.topology.Topology.from_algorithm``
turns an entry into the 0-based operator graph every other stage uses. Algorithms 4 and 6 feed
operator 4 (resp. 5) back into operator 6 on a DX7; like msfa and Dexed, the engine models this as
operator 6's self-feedback (``feedback_source`` records the hardware's loop).
"""

from __future__ import annotations

from dataclasses import dataclass

DX7_OPERATOR_COUNT = 6


@dataclass(frozen=True)
class Dx7Algorithm:
    carriers: tuple[int, ...]
    edges: tuple[tuple[int, int], ...]  # (modulator, modulated), DX7 operator numbers
    feedback: int  # the operator whose self-feedback the voice's feedback setting drives
    feedback_source: int | None = None  # where a DX7 takes that feedback from, when not ``feedback`` itself


DX7_ALGORITHMS: dict[int, Dx7Algorithm] = {
    1: Dx7Algorithm(carriers=(1, 3), edges=((6, 5), (5, 4), (4, 3), (2, 1)), feedback=6),
    2: Dx7Algorithm(carriers=(1, 3), edges=((6, 5), (5, 4), (4, 3), (2, 1)), feedback=2),
    3: Dx7Algorithm(carriers=(1, 4), edges=((6, 5), (5, 4), (3, 2), (2, 1)), feedback=6),
    4: Dx7Algorithm(carriers=(1, 4), edges=((6, 5), (5, 4), (3, 2), (2, 1)), feedback=6, feedback_source=4),
    5: Dx7Algorithm(carriers=(1, 3, 5), edges=((6, 5), (4, 3), (2, 1)), feedback=6),
    6: Dx7Algorithm(carriers=(1, 3, 5), edges=((6, 5), (4, 3), (2, 1)), feedback=6, feedback_source=5),
    7: Dx7Algorithm(carriers=(1, 3), edges=((6, 5), (5, 3), (4, 3), (2, 1)), feedback=6),
    8: Dx7Algorithm(carriers=(1, 3), edges=((6, 5), (5, 3), (4, 3), (2, 1)), feedback=4),
    9: Dx7Algorithm(carriers=(1, 3), edges=((6, 5), (5, 3), (4, 3), (2, 1)), feedback=2),
    10: Dx7Algorithm(carriers=(1, 4), edges=((6, 4), (5, 4), (3, 2), (2, 1)), feedback=3),
    11: Dx7Algorithm(carriers=(1, 4), edges=((6, 4), (5, 4), (3, 2), (2, 1)), feedback=6),
    12: Dx7Algorithm(carriers=(1, 3), edges=((6, 3), (5, 3), (4, 3), (2, 1)), feedback=2),
    13: Dx7Algorithm(carriers=(1, 3), edges=((6, 3), (5, 3), (4, 3), (2, 1)), feedback=6),
    14: Dx7Algorithm(carriers=(1, 3), edges=((6, 4), (5, 4), (4, 3), (2, 1)), feedback=6),
    15: Dx7Algorithm(carriers=(1, 3), edges=((6, 4), (5, 4), (4, 3), (2, 1)), feedback=2),
    16: Dx7Algorithm(carriers=(1,), edges=((6, 5), (5, 1), (4, 3), (3, 1), (2, 1)), feedback=6),
    17: Dx7Algorithm(carriers=(1,), edges=((6, 5), (5, 1), (4, 3), (3, 1), (2, 1)), feedback=2),
    18: Dx7Algorithm(carriers=(1,), edges=((6, 5), (5, 4), (4, 1), (3, 1), (2, 1)), feedback=3),
    19: Dx7Algorithm(carriers=(1, 4, 5), edges=((6, 5), (6, 4), (3, 2), (2, 1)), feedback=6),
    20: Dx7Algorithm(carriers=(1, 2, 4), edges=((6, 4), (5, 4), (3, 2), (3, 1)), feedback=3),
    21: Dx7Algorithm(carriers=(1, 2, 4, 5), edges=((6, 5), (6, 4), (3, 2), (3, 1)), feedback=3),
    22: Dx7Algorithm(carriers=(1, 3, 4, 5), edges=((6, 5), (6, 4), (6, 3), (2, 1)), feedback=6),
    23: Dx7Algorithm(carriers=(1, 2, 4, 5), edges=((6, 5), (6, 4), (3, 2)), feedback=6),
    24: Dx7Algorithm(carriers=(1, 2, 3, 4, 5), edges=((6, 5), (6, 4), (6, 3)), feedback=6),
    25: Dx7Algorithm(carriers=(1, 2, 3, 4, 5), edges=((6, 5), (6, 4)), feedback=6),
    26: Dx7Algorithm(carriers=(1, 2, 4), edges=((6, 4), (5, 4), (3, 2)), feedback=6),
    27: Dx7Algorithm(carriers=(1, 2, 4), edges=((6, 4), (5, 4), (3, 2)), feedback=3),
    28: Dx7Algorithm(carriers=(1, 3, 6), edges=((5, 4), (4, 3), (2, 1)), feedback=5),
    29: Dx7Algorithm(carriers=(1, 2, 3, 5), edges=((6, 5), (4, 3)), feedback=6),
    30: Dx7Algorithm(carriers=(1, 2, 3, 6), edges=((5, 4), (4, 3)), feedback=5),
    31: Dx7Algorithm(carriers=(1, 2, 3, 4, 5), edges=((6, 5),), feedback=6),
    32: Dx7Algorithm(carriers=(1, 2, 3, 4, 5, 6), edges=(), feedback=6),
}
