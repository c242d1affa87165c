"""The operator-graph SVG: well-formed for every DX7 algorithm and for explicit routings of 1–6 operators,
one line per modulation edge, feedback on the right operator, no overlapping boxes."""

import itertools
from xml.etree import ElementTree

import pytest

from wifm_synth.report.operator_graph import (
    BOX_HEIGHT,
    BOX_WIDTH,
    layout_operators,
    operator_depths,
    operator_graph_svg,
)
from wifm_synth.voice.dx7_algorithms import DX7_ALGORITHMS
from wifm_synth.voice.topology import CARRIER_MODULATOR_PAIR, Topology

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ElementTree.Element:
    root = ElementTree.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def boxes(root: ElementTree.Element) -> dict[int, tuple[float, float, float, float]]:
    """Operator number → (x, y, width, height) of its box."""
    found = {}
    for group in root.iter(f"{SVG}g"):
        if "operator" in group.get("class", "").split():
            rect = group.find(f"{SVG}rect")
            found[int(group.get("data-operator"))] = tuple(float(rect.get(key)) for key in ("x", "y", "width", "height"))
    return found


def elements(root: ElementTree.Element, kind: str) -> list[ElementTree.Element]:
    return [element for element in root.iter(f"{SVG}polyline") if element.get("class") == kind]


def assert_no_overlap(found: dict[int, tuple[float, float, float, float]]) -> None:
    for (first, (x1, y1, w1, h1)), (second, (x2, y2, w2, h2)) in itertools.combinations(found.items(), 2):
        apart = x1 + w1 <= x2 or x2 + w2 <= x1 or y1 + h1 <= y2 or y2 + h2 <= y1
        assert apart, f"operators {first} and {second} overlap"


@pytest.mark.parametrize("number", sorted(DX7_ALGORITHMS))
def test_every_dx7_algorithm_draws_six_boxes_its_edges_and_its_feedback_loop(number):
    topology = Topology.from_algorithm(number)
    root = parse(operator_graph_svg(topology))
    found = boxes(root)
    assert sorted(found) == [1, 2, 3, 4, 5, 6]
    assert_no_overlap(found)
    drawn = sorted((int(line.get("data-from")), int(line.get("data-to"))) for line in elements(root, "modulation"))
    assert drawn == sorted(DX7_ALGORITHMS[number].edges)
    assert [loop.get("data-operator") for loop in elements(root, "feedback")] == [str(DX7_ALGORITHMS[number].feedback)]
    assert root.get("aria-label") == f"DX7 algorithm {number}"


@pytest.mark.parametrize("number", sorted(DX7_ALGORITHMS))
def test_carriers_sit_on_the_bottom_row_and_modulators_above_their_targets(number):
    topology = Topology.from_algorithm(number)
    places = layout_operators(topology)
    for carrier in topology.carrier_indices:
        assert places[carrier].row == 0
    for source, target in topology.edges():
        assert places[source].row > places[target].row
    found = boxes(parse(operator_graph_svg(topology)))
    bottom = max(y for _, y, _, _ in found.values())
    assert all(found[carrier + 1][1] == bottom for carrier in topology.carrier_indices)


def test_a_shared_modulator_is_centred_over_its_targets():
    places = layout_operators(Topology.from_algorithm(22))  # operator 6 modulates carriers 3, 4 and 5
    assert places[5].column == places[3].column and places[5].row == 1
    places = layout_operators(Topology.from_algorithm(19))  # operator 6 modulates carriers 4 and 5
    assert places[5].column == (places[3].column + places[4].column) / 2


def test_the_longest_path_sets_the_row():
    assert operator_depths(Topology.from_algorithm(18)) == [0, 1, 1, 1, 2, 3]
    assert operator_depths(Topology.from_algorithm(32)) == [0] * 6


def test_the_two_operator_fit_stacks_operator_2_on_operator_1():
    root = parse(operator_graph_svg(CARRIER_MODULATOR_PAIR, levels=[0.3, 1.2], feedback=[0.0, 0.7]))
    found = boxes(root)
    assert sorted(found) == [1, 2]
    assert found[2][0] == found[1][0] and found[2][1] < found[1][1]
    assert [(line.get("data-from"), line.get("data-to")) for line in elements(root, "modulation")] == [("2", "1")]
    assert [loop.get("data-operator") for loop in elements(root, "feedback")] == ["2"]
    assert root.get("aria-label") == "operator routing"


def test_explicit_routing_draws_loops_only_where_there_is_feedback_and_greys_silent_operators():
    topology = Topology.from_routing([True, False, False], [[1, 2], [], []])
    root = parse(operator_graph_svg(topology, levels=[1.0, 0.0, 2.0], feedback=[0.0, 0.0, 0.0]))
    assert elements(root, "feedback") == []
    silent = [group.get("data-operator") for group in root.iter(f"{SVG}g") if "silent" in group.get("class", "")]
    assert silent == ["2"]


@pytest.mark.parametrize("count", range(1, 7))
def test_explicit_routings_of_one_to_six_operators(count):
    """A chain, a row of carriers and a fan-in of ``count`` operators, each drawn without overlaps."""
    routings = [
        ([index == 0 for index in range(count)], [[index + 1] if index + 1 < count else [] for index in range(count)]),
        ([True] * count, [[] for _ in range(count)]),
        ([index == 0 for index in range(count)], [list(range(1, count))] + [[] for _ in range(count - 1)]),
    ]
    for carriers, modulators in routings:
        topology = Topology.from_routing(carriers, modulators)
        root = parse(operator_graph_svg(topology))
        found = boxes(root)
        assert sorted(found) == list(range(1, count + 1))
        assert all((width, height) == (BOX_WIDTH, BOX_HEIGHT) for _, _, width, height in found.values())
        assert_no_overlap(found)
        assert len(elements(root, "modulation")) == len(topology.edges())


def test_a_modulator_shared_across_rows_keeps_boxes_apart():
    # Operator 3 modulates carrier 1 directly and through operator 2: it goes above operator 2.
    topology = Topology.from_routing([True, False, False, True], [[1, 2], [2], [], [2]])
    places = layout_operators(topology)
    assert [place.row for place in places] == [0, 1, 2, 0]
    assert_no_overlap(boxes(parse(operator_graph_svg(topology))))
