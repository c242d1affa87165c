"""The DX7 algorithm table: carrier counts and structure as printed on the DX7 panel."""

import pytest

from wifm_synth.errors import PatchError
from wifm_synth.fm.algorithms import DX7_ALGORITHMS, algorithm_routing
from wifm_synth.patch.compile import evaluation_order

# Number of carriers of algorithms 1..32 (DX7 operating manual).
CARRIER_COUNTS = [2, 2, 2, 2, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 3, 3, 4, 4, 4, 5, 5, 3, 3, 3, 4, 4, 5, 6]


def test_carrier_counts_match_the_dx7():
    assert [sum(algorithm_routing(number).carriers) for number in range(1, 33)] == CARRIER_COUNTS


@pytest.mark.parametrize("number", range(1, 33))
def test_routing_is_acyclic_and_carriers_modulate_nothing(number):
    routing = algorithm_routing(number)
    order = evaluation_order([list(sources) for sources in routing.modulators])
    assert sorted(order) == list(range(6))
    for target, sources in enumerate(routing.modulators):
        for source in sources:
            assert order.index(source) < order.index(target)
            assert not routing.carriers[source]
    modulating = {source for sources in routing.modulators for source in sources}
    assert all(routing.carriers[index] or index in modulating for index in range(6))  # nothing dangles


def test_well_known_algorithms():
    one = algorithm_routing(1)  # 2→1, 6→5→4→3, feedback on 6
    assert one.modulators == ((1,), (), (3,), (4,), (5,), ()) and one.feedback_operator == 5
    assert algorithm_routing(32).carriers == (True,) * 6
    assert algorithm_routing(16).modulators[0] == (1, 2, 4)  # three modulators into operator 1
    assert DX7_ALGORITHMS[2].feedback == 2


@pytest.mark.parametrize("bad", [0, 33, 1.5, True, "1"])
def test_unknown_algorithm_is_a_patch_error(bad):
    with pytest.raises(PatchError, match="algorithm"):
        algorithm_routing(bad)
