"""The report's voice block: operator graph, operator table (one column per operator), envelope sparklines
and the LFO row."""

from xml.etree import ElementTree

from wifm_synth.report.operators import (
    SPARKLINE_HEIGHT,
    SPARKLINE_WIDTH,
    envelope_sparkline_svg,
    lfo_table,
    operators_part,
    operators_table,
)
from wifm_synth.voice.patch import Envelope, Lfo, Operator, Patch

SVG = "{http://www.w3.org/2000/svg}"


def two_operator_patch() -> Patch:
    return Patch(
        name="pair",
        operators=[Operator(level=0.25, modulators=[1], envelope=Envelope([(0.005, 0.0), (2.5, -30.0)], 0.2)),
                   Operator(level=1.2, ratio=3.0, carrier=False, feedback=0.4)],
        lfo=Lfo(rate_hz=4.5, delay_s=0.25, pitch_depth_cents=12.0, amp_depth_db=1.5),
    )


def dx7_patch(algorithm: int) -> Patch:
    return Patch(name="dx", algorithm=algorithm,
                 operators=[Operator(level=0.0 if index == 3 else 1.0, ratio=index + 1.0) for index in range(6)])


def test_operator_table_has_a_column_per_operator_numbered_from_one():
    table = operators_table(two_operator_patch())
    assert "op 1" in table and "op 2" in table and "op 3" not in table
    assert "carrier ← 2" in table and "modulator" in table
    assert "ratio (× f(n))" in table and "<td class='number'>3</td>" in table
    assert table.count("<svg") == 2 and "2 segments, 2.5 s to -30 dB; release 0.2 s" in table


def test_silent_operators_are_marked_in_the_table_and_the_caption():
    part = operators_part(dx7_patch(5))
    assert "op 4 (silent)" in part and "grey: silent (level 0)" in part
    assert "DX7 algorithm 5" in part and 'class="operator-graph"' in part
    graph = part[part.index("<svg"):part.index("</svg>") + len("</svg>")]
    root = ElementTree.fromstring(graph)
    silent = [group.get("data-operator") for group in root.iter(f"{SVG}g") if "silent" in group.get("class", "")]
    assert silent == ["4"]


def test_the_caption_tells_where_a_dx7_takes_a_chained_feedback_from():
    assert "a DX7 feeds operator 4 back into operator 6" in operators_part(dx7_patch(4))
    assert "feeds operator" not in operators_part(dx7_patch(5))


def test_the_two_operator_fit_shows_its_routing_and_feedback_loop():
    part = operators_part(two_operator_patch())
    assert "2-operator routing" in part
    assert 'class="feedback" data-operator="2"' in part and 'data-from="2" data-to="1"' in part


def test_lfo_row_lists_rate_delay_and_both_depths():
    table = lfo_table(two_operator_patch())
    for label, value in [("rate_hz (Hz)", "4.5"), ("delay_s (s)", "0.25"), ("pitch_depth_cents (cents)", "12"),
                         ("amp_depth_db (dB)", "1.5")]:
        assert label in table and f"<td class='number'>{value}</td>" in table


def sparkline_points(svg: str) -> list[tuple[float, float]]:
    root = ElementTree.fromstring(svg)
    assert float(root.get("width")) == SPARKLINE_WIDTH
    text = root.find(f"{SVG}polyline").get("points")
    return [tuple(map(float, point.split(","))) for point in text.split()]


def test_sparkline_rises_from_silence_follows_the_segments_and_releases_to_silence():
    points = sparkline_points(envelope_sparkline_svg([(0.01, 0.0), (1.0, -20.0), (1.0, -20.0)], 0.5))
    xs, ys = zip(*points)
    assert list(xs) == sorted(xs) and xs[-1] <= SPARKLINE_WIDTH
    assert ys[0] == ys[-1] and max(ys) == ys[0] and ys[0] <= SPARKLINE_HEIGHT  # floor at both ends (SVG y is down)
    assert ys[1] == min(ys)  # the attack reaches the top (0 dB)
    assert ys[2] == ys[3] == ys[4]  # -20 dB held to note-off
    assert min(ys) >= 0.0


def test_sparkline_of_a_single_instant_segment_is_drawable():
    points = sparkline_points(envelope_sparkline_svg([(0.0, 0.0)], 0.3))
    assert all(0.0 <= x <= SPARKLINE_WIDTH for x, _ in points)
