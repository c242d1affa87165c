"""The DX7 algorithm table and the topologies built from it, cross-checked against msfa.

msfa (google/music-synthesizer-for-android, ``app/src/main/jni/fm_core.cc``) describes each algorithm
as six flag bytes, one per operator from DX7 operator 6 down to operator 1, for a bus machine: bits 0–1
choose the output bus (0 = the voice output, 1 or 2 = a modulation bus), bit 2 adds to the bus instead
of overwriting it, bits 4–5 choose the input bus, bit 6 marks the operator feedback enters and bit 7
the one it is taken from. The bytes below are those figures; ``_msfa_topology`` runs the bus machine
to recover carriers, edges and feedback, and the test compares them with our own table.
"""

import pytest

from wifm_synth.errors import PatchError
from wifm_synth.voice.dx7_algorithms import DX7_ALGORITHMS
from wifm_synth.voice.topology import CARRIER_MODULATOR_PAIR, Topology

MSFA_ALGORITHM_FLAGS = [
    (0xC1, 0x11, 0x11, 0x14, 0x01, 0x14), (0x01, 0x11, 0x11, 0x14, 0xC1, 0x14),
    (0xC1, 0x11, 0x14, 0x01, 0x11, 0x14), (0x41, 0x11, 0x94, 0x01, 0x11, 0x14),
    (0xC1, 0x14, 0x01, 0x14, 0x01, 0x14), (0x41, 0x94, 0x01, 0x14, 0x01, 0x14),
    (0xC1, 0x11, 0x05, 0x14, 0x01, 0x14), (0x01, 0x11, 0xC5, 0x14, 0x01, 0x14),
    (0x01, 0x11, 0x05, 0x14, 0xC1, 0x14), (0x01, 0x05, 0x14, 0xC1, 0x11, 0x14),
    (0xC1, 0x05, 0x14, 0x01, 0x11, 0x14), (0x01, 0x05, 0x05, 0x14, 0xC1, 0x14),
    (0xC1, 0x05, 0x05, 0x14, 0x01, 0x14), (0xC1, 0x05, 0x11, 0x14, 0x01, 0x14),
    (0x01, 0x05, 0x11, 0x14, 0xC1, 0x14), (0xC1, 0x11, 0x02, 0x25, 0x05, 0x14),
    (0x01, 0x11, 0x02, 0x25, 0xC5, 0x14), (0x01, 0x11, 0x11, 0xC5, 0x05, 0x14),
    (0xC1, 0x14, 0x14, 0x01, 0x11, 0x14), (0x01, 0x05, 0x14, 0xC1, 0x14, 0x14),
    (0x01, 0x14, 0x14, 0xC1, 0x14, 0x14), (0xC1, 0x14, 0x14, 0x14, 0x01, 0x14),
    (0xC1, 0x14, 0x14, 0x01, 0x14, 0x04), (0xC1, 0x14, 0x14, 0x14, 0x04, 0x04),
    (0xC1, 0x14, 0x14, 0x04, 0x04, 0x04), (0xC1, 0x05, 0x14, 0x01, 0x14, 0x04),
    (0x01, 0x05, 0x14, 0xC1, 0x14, 0x04), (0x04, 0xC1, 0x11, 0x14, 0x01, 0x14),
    (0xC1, 0x14, 0x01, 0x14, 0x04, 0x04), (0x04, 0xC1, 0x11, 0x14, 0x04, 0x04),
    (0xC1, 0x14, 0x04, 0x04, 0x04, 0x04), (0xC4, 0x04, 0x04, 0x04, 0x04, 0x04),
]
FB_IN, FB_OUT = 0x40, 0x80

# Number of carriers of algorithms 1..32 (DX7 operating manual).
CARRIER_COUNTS = [2, 2, 2, 2, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 3, 3, 4, 4, 4, 5, 5, 3, 3, 3, 4, 4, 5, 6]


def _msfa_topology(flags):
    """(carriers, edges, feedback-in operator, feedback-out operator), 0-based, from msfa's flag bytes."""
    buses = {1: set(), 2: set()}
    carriers, edges = set(), set()
    feedback_in = feedback_out = None
    for position, byte in enumerate(flags):
        operator = 5 - position  # msfa runs DX7 operator 6 first
        in_bus, out_bus, add = (byte >> 4) & 3, byte & 3, bool(byte & 4)
        if in_bus:
            edges |= {(source, operator) for source in buses[in_bus]}
        if out_bus == 0:
            carriers.add(operator)
        else:
            buses[out_bus] = (buses[out_bus] | {operator}) if add else {operator}
        if byte & FB_IN:
            feedback_in = operator
        if byte & FB_OUT:
            feedback_out = operator
    return carriers, edges, feedback_in, feedback_out


@pytest.mark.parametrize("number", range(1, 33))
def test_topology_matches_msfa(number):
    carriers, edges, feedback_in, feedback_out = _msfa_topology(MSFA_ALGORITHM_FLAGS[number - 1])
    topology = Topology.from_algorithm(number)
    assert set(topology.carrier_indices) == carriers
    assert set(topology.edges()) == edges
    assert topology.feedback_operators == (feedback_in,)
    expected_source = None if feedback_out == feedback_in else feedback_out
    assert topology.feedback_source == expected_source


def test_carrier_counts_match_the_dx7():
    assert [len(Topology.from_algorithm(number).carrier_indices) for number in range(1, 33)] == CARRIER_COUNTS


@pytest.mark.parametrize("number", range(1, 33))
def test_topology_is_acyclic_and_carriers_modulate_nothing(number):
    topology = Topology.from_algorithm(number)
    order = topology.order
    assert sorted(order) == list(range(6))
    for target, sources in enumerate(topology.modulators):
        for source in sources:
            assert order.index(source) < order.index(target)
            assert not topology.carriers[source]
    modulating = {source for sources in topology.modulators for source in sources}
    assert all(topology.carriers[index] or index in modulating for index in range(6))  # nothing dangles


def test_well_known_algorithms():
    one = Topology.from_algorithm(1)  # 2→1, 6→5→4→3, feedback on 6
    assert one.modulators == ((1,), (), (3,), (4,), (5,), ()) and one.feedback_operators == (5,)
    assert Topology.from_algorithm(32).carriers == (True,) * 6
    assert Topology.from_algorithm(16).modulators[0] == (1, 2, 4)  # three modulators into operator 1
    assert DX7_ALGORITHMS[2].feedback == 2
    assert CARRIER_MODULATOR_PAIR.modulators == ((1,), ()) and CARRIER_MODULATOR_PAIR.carriers == (True, False)


@pytest.mark.parametrize("bad", [0, 33, 1.5, True, "1"])
def test_unknown_algorithm_is_a_patch_error(bad):
    with pytest.raises(PatchError, match="algorithm"):
        Topology.from_algorithm(bad)


def test_explicit_routing_cycle_names_the_operator():
    with pytest.raises(PatchError, match=r"operators\[\d\]\.modulators: modulation routing has a cycle"):
        Topology.from_routing([True, False, False], [[1], [2], [1]])
    with pytest.raises(PatchError, match="at least one operator must be a carrier"):
        Topology.from_routing([False, False], [[1], []])
