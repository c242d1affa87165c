"""A note's voice as the report shows it: the operator graph beside a table of the operators (every
numeric schema field, with an envelope sparkline) and the voice's LFO.

The columns come from the patch's schema (``voice.schema``), so a parameter added there shows up here
without touching this module. Operators are numbered from 1, as in the graph and on the DX7.
"""

from __future__ import annotations

import math
from html import escape

from wifm_synth.report.operator_graph import operator_graph_svg
from wifm_synth.voice.patch import Patch
from wifm_synth.voice.schema import LFO, OPERATOR, Parameter

SPARKLINE_WIDTH = 84.0
SPARKLINE_HEIGHT = 22.0
SPARKLINE_FLOOR_DB = -60.0  # the bottom of the sparkline: an envelope starts (and its release ends) here
SPARKLINE_RELEASE_SHARE = 0.2  # of the width, after the note-off mark
RELEASE_FALL_DB = 60.0  # release_s is the time to fall this far (voice.schema)


def envelope_text(segments: list[tuple[float, float]], release_s: float) -> str:
    steps = ", ".join(f"{duration:.3g} s → {level:.3g} dB" for duration, level in segments)
    return f"{steps}; release {release_s:.3g} s"


def envelope_sparkline_svg(segments: list[tuple[float, float]], release_s: float) -> str:
    """The envelope's shape as a tiny inline SVG: the segments from silence, a note-off mark, then the release.

    Time runs on a square-root axis so a 5 ms attack stays visible beside a 3 s decay; the tooltip gives
    the exact values.
    """
    sustain_width = SPARKLINE_WIDTH * (1.0 - SPARKLINE_RELEASE_SHARE)
    total_s = sum(duration for duration, _ in segments)
    top_db = max(0.0, *(level for _, level in segments))

    def y(level_db: float) -> float:
        share = (max(level_db, SPARKLINE_FLOOR_DB) - SPARKLINE_FLOOR_DB) / (top_db - SPARKLINE_FLOOR_DB)
        return 1.0 + (SPARKLINE_HEIGHT - 2.0) * (1.0 - share)

    points = [(0.0, y(SPARKLINE_FLOOR_DB))]
    elapsed_s = 0.0
    for duration, level in segments:
        elapsed_s += duration
        points.append((sustain_width * math.sqrt(elapsed_s / total_s) if total_s > 0 else 0.0, y(level)))
    held_db = segments[-1][1]
    points.append((sustain_width, y(held_db)))
    release_to_floor_s = release_s * max(held_db - SPARKLINE_FLOOR_DB, 0.0) / RELEASE_FALL_DB
    # The release gets its own strip; its slope shows how its time compares with the segments'.
    release_share = min(math.sqrt(release_to_floor_s / total_s) if total_s > 0 else 1.0, 1.0)
    points.append((sustain_width + SPARKLINE_WIDTH * SPARKLINE_RELEASE_SHARE * release_share, y(SPARKLINE_FLOOR_DB)))
    path = " ".join(f"{x:.1f},{level:.1f}" for x, level in points)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="envelope" width="{SPARKLINE_WIDTH:g}" '
        f'height="{SPARKLINE_HEIGHT:g}" viewBox="0 0 {SPARKLINE_WIDTH:g} {SPARKLINE_HEIGHT:g}">'
        f"<title>{escape(envelope_text(segments, release_s))}</title>"
        f'<line x1="{sustain_width:.1f}" y1="0" x2="{sustain_width:.1f}" y2="{SPARKLINE_HEIGHT:g}" '
        'stroke="#c5cad3" stroke-dasharray="2 2"/>'
        f'<polyline points="{path}" fill="none" stroke="#1f3b73" stroke-width="1.3" stroke-linejoin="round"/></svg>'
    )


def _numeric_fields(patch: Patch, scope: str) -> list[Parameter]:
    """The numeric fields of ``scope`` in the schema ``patch`` was made from: one table column each."""
    return [field for field in type(patch).schema.fields(scope) if field.numeric]


def _field_label(field: Parameter) -> str:
    return escape(field.name) + (f" ({escape(field.unit)})" if field.unit else "")


def _number_cell(value: float | None) -> str:
    return f"<td class='number'>{'—' if value is None else f'{value:.5g}'}</td>"


def envelope_summary(segments: list[tuple[float, float]], release_s: float) -> str:
    """Short enough for a table cell; the sparkline's tooltip has every segment."""
    count = len(segments)
    total_s = sum(duration for duration, _ in segments)
    return (f"{count} segment{'s' if count != 1 else ''}, {total_s:.3g} s to {segments[-1][1]:.3g} dB; "
            f"release {release_s:.3g} s")


def operators_table(patch: Patch) -> str:
    """One column per operator (as on a DX7 editor page) and one row per numeric operator field of the
    schema, after the operator's role and before its envelope: six operators fit the page's width where
    a row per operator with a dozen long field names does not."""
    topology = patch.topology
    operators = patch.operators
    silent = [operator.level == 0.0 for operator in operators]

    def row(label: str, cells: list[str]) -> str:
        return f"<tr><th>{label}</th>" + "".join(cells) + "</tr>"

    roles = []
    for index in range(len(operators)):
        role = "carrier" if topology.carriers[index] else "modulator"
        if topology.modulators[index]:
            role += " ← " + ", ".join(str(source + 1) for source in topology.modulators[index])
        roles.append(f"<td>{escape(role)}</td>")
    rows = [row("role", roles)]
    rows += [row(_field_label(field), [_number_cell(getattr(operator, field.name)) for operator in operators])
             for field in _numeric_fields(patch, OPERATOR)]
    envelopes = [
        f"<td>{envelope_sparkline_svg(operator.envelope.segments, operator.envelope.release_s)}"
        f"<div class='envelope-text'>{escape(envelope_summary(operator.envelope.segments, operator.envelope.release_s))}"
        "</div></td>"
        for operator in operators
    ]
    rows.append(row("envelope", envelopes))
    heads = "".join(f"<th class='number{' silent' if quiet else ''}'>op {index + 1}{' (silent)' if quiet else ''}</th>"
                    for index, quiet in enumerate(silent))
    return (f"<table class='operators'><thead><tr><th>operator</th>{heads}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def lfo_table(patch: Patch) -> str:
    """The voice's one LFO (it drives every operator): its numeric fields as one row."""
    fields = _numeric_fields(patch, LFO)
    return (
        "<table class='lfo'><thead><tr><th>voice LFO</th>"
        + "".join(f"<th class='number'>{_field_label(field)}</th>" for field in fields) + "</tr></thead>"
        "<tbody><tr><td>vibrato and tremolo</td>"
        + "".join(_number_cell(getattr(patch.lfo, field.name)) for field in fields) + "</tr></tbody></table>"
    )


def graph_caption(patch: Patch) -> str:
    topology = patch.topology
    if topology.algorithm is None:
        caption = f"{len(patch.operators)}-operator routing"
    else:
        caption = f"DX7 algorithm {topology.algorithm}"
        if topology.feedback_source is not None:
            caption += (f"; a DX7 feeds operator {topology.feedback_source + 1} back into operator "
                        f"{topology.feedback_operators[0] + 1}, played here as that operator's own feedback")
    if any(operator.level == 0.0 for operator in patch.operators):
        caption += "; grey: silent (level 0)"
    return caption


def operators_part(patch: Patch) -> str:
    """The collapsible "Operators" block of a note section: graph and tables."""
    graph = operator_graph_svg(patch.topology, levels=[operator.level for operator in patch.operators],
                               feedback=[operator.feedback for operator in patch.operators])
    return (
        "<details open><summary>Operators</summary><div class='voice'>"
        f"<figure class='algorithm'>{graph}<figcaption>{escape(graph_caption(patch))}</figcaption></figure>"
        f"<div class='voice-tables'>{operators_table(patch)}{lfo_table(patch)}</div></div></details>"
    )
