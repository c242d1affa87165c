"""A note's operator graph drawn like the DX7's front-panel algorithm diagrams, as a small inline SVG.

Hand-written SVG rather than a matplotlib figure: the drawing is a few boxes and lines, and as vector
markup inside the page it stays crisp at any zoom, costs a couple of kilobytes instead of a PNG, and its
elements can be checked by a test.

Layout (:func:`layout_operators`):

- **Rows.** An operator's row is its depth: the longest modulation path from it to the output. Carriers
  sit on the bottom row (depth 0); a modulator sits one row above the deepest operator it modulates, so
  every modulation line runs downwards.
- **Columns.** Each modulator is stacked above one *primary* target: the deepest operator it modulates
  (the lowest-numbered on a tie). That makes the graph a forest whose roots are the bottom-row
  operators. Each tree gets as many columns as it has leaves, trees placed left to right by operator
  number, and every operator is centred over the columns of the operators stacked on it. Different
  subtrees own disjoint column ranges, and an operator is always on a higher row than what it is stacked
  on, so no two boxes overlap and stacks do not cross.
- **Shared modulators.** A modulator with several targets on one row (DX7 algorithms 19–25: operator 6
  over several carriers) is moved, with everything stacked on it, to the middle of its targets when that
  spot is free, and its lines fan out along a bar just above the targets' row. A line that has to pass
  rows on its way down (explicit routings only) takes the gutter half a column to the right.

Every modulation edge is one ``<polyline class="modulation">`` (down from the modulator, along the gap
above the target's row, down into the target), so a fan-out's lines overlap into the DX7's bar. Feedback
is a loop around the right side of its operator; carriers join an output bus under the bottom row;
silent operators (level 0) are grey.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from wifm_synth.voice.topology import Topology

BOX_WIDTH = 26.0
BOX_HEIGHT = 20.0
COLUMN_PITCH = 40.0  # box centre to box centre; leaves room for the feedback loop on a box's right
ROW_PITCH = 42.0
MARGIN = 14.0
OUTPUT_DROP = 12.0  # from a carrier's bottom down to the output bus
FEEDBACK_REACH = 6.0  # how far the feedback loop stands off its box
INK = "#1d2330"
SILENT_INK = "#a3a9b4"
CARRIER_FILL = "#dfe8f7"
MODULATOR_FILL = "#ffffff"
SILENT_FILL = "#eceef2"


@dataclass(frozen=True)
class OperatorPlace:
    """Where an operator's box goes: ``column`` in box pitches from the left (may be a half), ``row`` from the
    bottom (its depth)."""

    column: float
    row: int


def operator_depths(topology: Topology) -> list[int]:
    """Longest modulation path from each operator to the output (0 for carriers and for operators that
    modulate nothing)."""
    depth = [0] * topology.operator_count
    for operator in reversed(topology.order):  # targets come after their modulators in ``order``
        targets = topology.modulated_by(operator)
        if targets:
            depth[operator] = max(depth[operator], 1 + max(depth[target] for target in targets))
    return depth


def layout_operators(topology: Topology) -> list[OperatorPlace]:
    """Each operator's place in the diagram; see the module docstring for the rules."""
    count = topology.operator_count
    depth = operator_depths(topology)
    stacked_on: list[int | None] = [None] * count
    for operator in range(count):
        targets = topology.modulated_by(operator)
        if targets:
            stacked_on[operator] = min(targets, key=lambda target: (-depth[target], target))
    stacked = [[child for child in range(count) if stacked_on[child] == operator] for operator in range(count)]

    column = [0.0] * count
    next_free_column = 0

    def place(operator: int) -> None:
        nonlocal next_free_column
        if not stacked[operator]:
            column[operator] = float(next_free_column)
            next_free_column += 1
            return
        for child in stacked[operator]:
            place(child)
        column[operator] = (column[stacked[operator][0]] + column[stacked[operator][-1]]) / 2.0

    for root in range(count):
        if stacked_on[root] is None:
            place(root)

    def subtree(operator: int) -> list[int]:
        return [operator] + [member for child in stacked[operator] for member in subtree(child)]

    for operator in range(count):
        targets = topology.modulated_by(operator)
        if len(targets) < 2 or len({depth[target] for target in targets}) > 1:
            continue
        shift = sum(column[target] for target in targets) / len(targets) - column[operator]
        moved = subtree(operator)
        others = [other for other in range(count) if other not in moved]
        if all(abs(column[member] + shift - column[other]) >= 1.0
               for member in moved for other in others if depth[other] == depth[member]):
            for member in moved:
                column[member] += shift

    leftmost = min(column)
    return [OperatorPlace(column[operator] - leftmost, depth[operator]) for operator in range(count)]


def feedback_loops(topology: Topology, feedback: Sequence[float]) -> tuple[int, ...]:
    """The operators drawn with a feedback loop: a DX7 algorithm's loop is part of its diagram, so it is
    always drawn; with explicit routing every operator may feed back, so only those that do are."""
    if topology.algorithm is not None:
        return topology.feedback_operators
    return tuple(operator for operator, amount in enumerate(feedback) if amount > 0.0)


def _box_centre(place: OperatorPlace, top_row: int) -> tuple[float, float]:
    x = MARGIN + FEEDBACK_REACH + BOX_WIDTH / 2 + place.column * COLUMN_PITCH
    y = MARGIN + FEEDBACK_REACH + BOX_HEIGHT / 2 + (top_row - place.row) * ROW_PITCH
    return x, y


def _points(*points: tuple[float, float]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def operator_graph_svg(topology: Topology, levels: Sequence[float] | None = None,
                       feedback: Sequence[float] | None = None) -> str:
    """The diagram as an ``<svg>`` element; operators are numbered 1… as on the DX7.

    ``levels`` greys out silent operators (level 0); ``feedback`` (per operator) says which operators of an
    explicit routing get a loop. Both default to "all sounding, no feedback".
    """
    count = topology.operator_count
    levels = [1.0] * count if levels is None else list(levels)
    feedback = [0.0] * count if feedback is None else list(feedback)
    places = layout_operators(topology)
    top_row = max(place.row for place in places)
    centres = [_box_centre(place, top_row) for place in places]
    half_width, half_height = BOX_WIDTH / 2, BOX_HEIGHT / 2
    width = max(x for x, _ in centres) + half_width + FEEDBACK_REACH + MARGIN
    bus_y = max(y for _, y in centres) + half_height + OUTPUT_DROP
    height = bus_y + MARGIN

    lines = []
    for source, target in topology.edges():
        (source_x, source_y), (target_x, target_y) = centres[source], centres[target]
        gap = (ROW_PITCH - BOX_HEIGHT) / 2
        bar_y = target_y - half_height - gap  # the gap just above the target's row
        route = [(source_x, source_y + half_height)]
        if places[source].row - places[target].row > 1:  # past the rows between: down the gutter beside them
            gutter_x = source_x + COLUMN_PITCH / 2
            route += [(source_x, source_y + half_height + gap), (gutter_x, source_y + half_height + gap),
                      (gutter_x, bar_y)]
        else:
            route.append((source_x, bar_y))
        route += [(target_x, bar_y), (target_x, target_y - half_height)]
        lines.append(f'<polyline class="modulation" data-from="{source + 1}" data-to="{target + 1}" '
                     f'points="{_points(*route)}"/>')
    carriers = topology.carrier_indices
    bus_xs = [centres[carrier][0] for carrier in carriers]
    lines.append(f'<polyline class="output" points="{_points((min(bus_xs), bus_y), (max(bus_xs), bus_y))}"/>')
    for carrier in carriers:
        x, y = centres[carrier]
        lines.append(f'<polyline class="output" points="{_points((x, y + half_height), (x, bus_y))}"/>')
    for operator in feedback_loops(topology, feedback):
        x, y = centres[operator]
        right, top, bottom = x + half_width + FEEDBACK_REACH, y - half_height - FEEDBACK_REACH, y + half_height
        lines.append(
            f'<polyline class="feedback" data-operator="{operator + 1}" points="'
            + _points((x + half_width / 2, bottom), (x + half_width / 2, bottom + FEEDBACK_REACH / 2),
                      (right, bottom + FEEDBACK_REACH / 2), (right, top), (x + half_width / 2, top),
                      (x + half_width / 2, y - half_height))
            + '"/>'
        )

    boxes = []
    for operator, (x, y) in enumerate(centres):
        silent = levels[operator] == 0.0
        role = "carrier" if topology.carriers[operator] else "modulator"
        fill = SILENT_FILL if silent else CARRIER_FILL if topology.carriers[operator] else MODULATOR_FILL
        ink = SILENT_INK if silent else INK
        boxes.append(
            f'<g class="operator{" silent" if silent else ""}" data-operator="{operator + 1}">'
            f'<title>operator {operator + 1}: {role}{", silent (level 0)" if silent else ""}</title>'
            f'<rect x="{x - half_width:.1f}" y="{y - half_height:.1f}" width="{BOX_WIDTH:g}" '
            f'height="{BOX_HEIGHT:g}" rx="3" fill="{fill}" stroke="{ink}"/>'
            f'<text x="{x:.1f}" y="{y + 4.5:.1f}" text-anchor="middle" fill="{ink}">{operator + 1}</text></g>'
        )
    label = f"DX7 algorithm {topology.algorithm}" if topology.algorithm is not None else "operator routing"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="operator-graph" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.1f} {height:.1f}" role="img" aria-label="{escape(label)}">'
        f'<g fill="none" stroke="{INK}" stroke-width="1.4" stroke-linejoin="round">{"".join(lines)}</g>'
        f'<g font-family="sans-serif" font-size="12" font-weight="600" stroke-width="1.2">{"".join(boxes)}</g></svg>'
    )
