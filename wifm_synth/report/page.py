"""The report page: every figure and sound is a data URI (the file works offline alone), or a link into the
page's media folder for a page that would be too large (:mod:`wifm_synth.report.media`)."""

from __future__ import annotations

from html import escape

import numpy as np
from matplotlib.colors import to_rgb

from wifm_synth import __version__
from wifm_synth.library.naming import note_name
from wifm_synth.report.figures import (
    MapZone,
    Track,
    harmonic_trajectories_figure,
    keyboard_map_figure,
    note_figure,
    quality_colour,
)
from wifm_synth.report.media import MAX_PLAYER_SECONDS, MediaStore, is_cut_for_player
from wifm_synth.report.notes import Instrument
from wifm_synth.report.operators import operators_part, operators_table
from wifm_synth.report.scoring import NoteEvaluation, NoteSummary
from wifm_synth.report.settings import Row, SharedSettings

STYLE = """
:root { --ink: #1d2330; --muted: #5d6677; --line: #dde1e8; --target: #1f3b73; --render: #e0701b; }
* { box-sizing: border-box; }
body { margin: 0; background: #f3f4f7; color: var(--ink);
       font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 20px 48px; }
header h1 { margin: 0 0 4px; font-size: 26px; }
.meta, .where { color: var(--muted); font-size: 13px; margin: 0; }
.where code { font-size: 12px; }
section { background: white; border: 1px solid var(--line); border-radius: 10px; padding: 18px 22px;
          margin-top: 22px; box-shadow: 0 1px 3px rgba(20, 30, 50, 0.06); }
h2 { margin: 0 0 4px; font-size: 20px; display: flex; align-items: center; gap: 12px; flex-wrap: wrap; }
h3 { margin: 18px 0 6px; font-size: 15px; }
.badge { font-size: 12px; font-weight: 600; padding: 2px 9px; border-radius: 999px; color: #1d2330;
         border: 1px solid rgba(0, 0, 0, 0.15); }
.notice { background: #fff6e0; border: 1px solid #f0d48a; border-radius: 6px; padding: 8px 12px; margin: 12px 0; }
.ab { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; margin: 14px 0 6px; padding: 10px 12px;
      border-radius: 8px; border: 1px solid var(--line); border-left: 5px solid var(--target); }
.ab.showing-render { border-left-color: var(--render); }
.ab audio { flex: 1 1 320px; }
.ab button { font: inherit; font-weight: 600; padding: 4px 12px; border-radius: 6px; cursor: pointer;
             border: 1px solid var(--line); background: white; color: var(--ink); }
.ab button[data-side="target"][aria-pressed="true"] { background: var(--target); color: white; }
.ab button[data-side="render"][aria-pressed="true"] { background: var(--render); color: white; }
.ab .caption { font-weight: 600; }
.zone-renders { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 8px 16px; }
.zone-renders figure { margin: 0; font-size: 12px; color: var(--muted); }
.zone-renders audio { width: 100%; height: 32px; }
.absent { color: var(--muted); font-style: italic; margin: 10px 0; }
.columns { display: grid; grid-template-columns: minmax(0, 1.15fr) minmax(0, 1fr); gap: 22px; align-items: start; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
table.settings { table-layout: fixed; }
table.settings th { width: 40%; }
table.settings th, table.settings td { overflow-wrap: anywhere; }
th { color: var(--muted); font-weight: 600; }
td.number, th.number { text-align: right; font-variant-numeric: tabular-nums; }
.scale { position: relative; height: 10px; border-radius: 5px; margin: 18px 0 4px;
         background: linear-gradient(to right, #d73027, #fee08b 50%, #1a9850); }
.scale span { position: absolute; top: -5px; width: 4px; height: 20px; margin-left: -2px; background: var(--ink);
              border-radius: 2px; }
.scale-labels { display: flex; justify-content: space-between; color: var(--muted); font-size: 12px; }
img.plot { width: 100%; height: auto; margin-top: 14px; border-radius: 6px; }
details { margin-top: 12px; }
summary { cursor: pointer; color: var(--muted); font-weight: 600; }
a { color: #2457b3; }
.voice { display: flex; gap: 18px; align-items: flex-start; margin-top: 8px; }
figure.algorithm { margin: 0; flex: none; text-align: center; width: min-content; min-width: 120px; }
figure.algorithm figcaption { color: var(--muted); font-size: 12px; }
.voice-tables { flex: 1; min-width: 0; overflow-x: auto; }
table.operators th.silent { color: #a3a9b4; }
table.operators, table.lfo { width: auto; }
table.operators td { text-align: right; }
table.operators svg.envelope { display: block; margin-left: auto; }
.envelope-text { color: var(--muted); font-size: 11px; line-height: 1.25; }
table.lfo { margin-top: 10px; }
footer { color: var(--muted); font-size: 12px; margin-top: 28px; }
"""

# One player per note: A (target) and B (fit) swap in place at the same position, looping by default.
AB_SCRIPT = """
document.querySelectorAll('div.ab[data-render]').forEach(box => {
  const audio = box.querySelector('audio');
  const sources = {target: audio.getAttribute('src'), render: box.dataset.render};
  const buttons = box.querySelectorAll('button[data-side]');
  buttons.forEach(button => button.addEventListener('click', () => {
    const side = button.dataset.side;
    if (audio.getAttribute('src') === sources[side]) return;
    const time = audio.currentTime, playing = !audio.paused;
    audio.addEventListener('loadedmetadata', () => {
      audio.currentTime = Math.min(time, Math.max(audio.duration - 0.05, 0));
      if (playing) audio.play();
    }, {once: true});
    audio.src = sources[side];
    box.classList.toggle('showing-render', side === 'render');
    buttons.forEach(other => other.setAttribute('aria-pressed', String(other === button)));
  }));
  box.querySelector('input[data-loop]').addEventListener('change', event => { audio.loop = event.target.checked; });
});
"""
METRIC_DIRECTIONS = (
    "fit, floor and limit are distances from the target: lower is better. Position places the fit from the "
    "floor (0) to the limit (1): higher is better."
)
QUALITY_EXPLAINED = (
    "Quality is where the fit sits between two references scored in the same run: 0 = the floor "
    "(a sine at f0 carrying the target's RMS envelope), 1 = the limit (the target resynthesised from its "
    "own measured harmonics), on the multi-resolution log-spectral distance."
)


def _number(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def _quality_text(quality: float | None) -> str:
    return "not scored" if quality is None else f"quality {quality:.2f}"


def _badge(quality: float | None) -> str:
    background = quality_colour(quality)
    red, green, blue = to_rgb(background)
    ink = "#1d2330" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"  # readable on either end
    return (f'<span class="badge" style="background:{background};color:{ink}">'
            f"{escape(_quality_text(quality))}</span>")


def _cut_note(track: Track) -> str:
    return f" (first {MAX_PLAYER_SECONDS:g} s)" if is_cut_for_player(track.audio, track.sample_rate) else ""


def _ab_player(evaluation: NoteEvaluation, media: MediaStore) -> str:
    """One player that switches between the target (A) and the fit (B) at the same position, with loop."""
    anchor, rendered = evaluation.note.anchor, evaluation.rendered
    render_source = media.audio(f"{anchor}-render", rendered.audio, rendered.sample_rate)
    if evaluation.target is None:
        return (f'<div class="ab showing-render"><span class="caption">B · fitted render{_cut_note(rendered)}</span>'
                f'<audio controls loop preload="metadata" src="{render_source}"></audio></div>')
    target = evaluation.target
    target_source = media.audio(f"{anchor}-target", target.audio, target.sample_rate)
    return (
        f'<div class="ab" data-render="{render_source}">'
        '<button type="button" data-side="target" aria-pressed="true" title="the target sample">A · target</button>'
        '<button type="button" data-side="render" aria-pressed="false" title="the fitted patch">B · fit</button>'
        f'<audio controls loop preload="metadata" src="{target_source}"></audio>'
        f'<label><input type="checkbox" data-loop checked> loop</label>{escape(_cut_note(target))}</div>'
    )


def _zone_renders(evaluation: NoteEvaluation, media: MediaStore) -> str:
    if not evaluation.zone_renders:
        return ""
    figures = []
    for number, render in enumerate(evaluation.zone_renders, start=1):
        source = media.audio(f"{evaluation.note.anchor}-zone-{number}", render.track.audio, render.track.sample_rate)
        figures.append(f'<figure><figcaption>{escape(render.label)}</figcaption>'
                       f'<audio controls preload="none" src="{source}"></audio></figure>')
    return ('<details class="zones"><summary>Across its zones: the bank at zone edges and velocity layers '
            f'({len(figures)})</summary><div class="zone-renders">' + "".join(figures) + "</div></details>")


def _metrics_table(evaluation: NoteEvaluation) -> str:
    if not evaluation.scores:
        reason = (evaluation.missing_target and "no target sample to compare with") or \
            "the render has no measurable pitch, so it cannot be compared"
        return f"<h3>Metrics</h3><p class='absent'>Not scored: {escape(reason)}.</p>"
    rows = []
    for score in evaluation.scores:
        position = score.position
        rows.append(
            f"<tr><td>{escape(score.name)} ({escape(score.unit)})</td>"
            f"<td class='number'><b>{_number(score.fit)}</b></td><td class='number'>{_number(score.floor)}</td>"
            f"<td class='number'>{_number(score.limit)}</td>"
            f"<td class='number'>{'—' if position is None else _number(position)}</td></tr>"
        )
    quality = evaluation.quality
    marker = "" if quality is None else f'<span style="left:{100 * min(max(quality, 0.0), 1.0):.1f}%"></span>'
    return (
        f"<h3>Metrics</h3><p class='where'>{escape(METRIC_DIRECTIONS)}</p><table><thead><tr><th>metric</th>"
        "<th class='number' title='lower is better'>fit ↓</th><th class='number' title='lower is better'>floor ↓</th>"
        "<th class='number' title='lower is better'>limit ↓</th>"
        "<th class='number' title='higher is better'>position ↑</th></tr></thead><tbody>"
        + "".join(rows) + "</tbody></table>"
        f"<div class='scale' title='{escape(QUALITY_EXPLAINED)}'>{marker}</div>"
        "<div class='scale-labels'><span>0 floor: sine at f0</span>"
        f"<span>{escape(_quality_text(quality))}</span><span>limit: harmonic resynthesis 1</span></div>"
    )


def _settings_rows_table(rows: list[Row]) -> str:
    body = "".join(f"<tr><th>{escape(key)}</th><td>{escape(value)}</td></tr>" for key, value in rows)
    return f"<table class='settings'><tbody>{body}</tbody></table>"


def _settings_table(rows: list[Row], shared: bool) -> str:
    if not rows:
        reason = "all its settings are shown once for the bank above" if shared else \
            "the patch carries no fit metadata"
        return f"<h3>Fit settings</h3><p class='absent'>Nothing of its own: {reason}.</p>"
    heading = "Fit settings <small>(beyond those shared above)</small>" if shared else "Fit settings"
    return f"<h3>{heading}</h3>" + _settings_rows_table(rows)


# tests/voice/test_schema.py checks through this name that a parameter added to the schema reaches the report.
_operators_table = operators_table


def _trajectories_image(evaluation: NoteEvaluation, media: MediaStore) -> str:
    figure = harmonic_trajectories_figure(evaluation.target, evaluation.rendered)
    if figure is None:
        return ""
    source = media.figure(f"{evaluation.note.anchor}-harmonics", figure)
    return (f'<img class="plot trajectories" alt="{escape(evaluation.note.title)}: strongest harmonics over time, '
            f'target and render" src="{source}">')


def note_section(evaluation: NoteEvaluation, media: MediaStore, shared: SharedSettings) -> str:
    """One note's section: the A/B player, renders across its zones, metrics, its own fit settings, operators,
    the comparison figure and the strongest harmonics' trajectories."""
    note = evaluation.note
    key = note.midi_note
    where = [f"patch <code>{escape(str(note.patch_file))}</code>"]
    if evaluation.target is not None:
        where.append(f"source <code>{escape(str(evaluation.target.analysis.source))}</code>")
    where.append(f"rendered at {note_name(key)} (key {key}), velocity {note.velocity}")
    notices = []
    if evaluation.missing_target:
        notices.append(f"Target sample unavailable — showing the render only. {evaluation.missing_target}")
    if evaluation.target is not None:
        notices.extend(f"Target analysis: {warning}." for warning in evaluation.target.analysis.warnings)
    if evaluation.rendered.analysis is None:
        notices.append("The render has no measurable pitch (silent or unpitched), so its harmonics are not shown.")
    figure = note_figure(evaluation.target, evaluation.rendered, "target sample unavailable (see above)")
    return (
        f'<section class="note" id="{note.anchor}"><h2>{escape(note.title)} {_badge(evaluation.quality)}</h2>'
        f'<p class="where">{" · ".join(where)}</p>'
        + "".join(f'<p class="notice">{escape(text)}</p>' for text in notices)
        + _ab_player(evaluation, media)
        + _zone_renders(evaluation, media)
        + f'<div class="columns"><div>{_metrics_table(evaluation)}</div>'
          f'<div>{_settings_table(shared.own_rows(note), bool(shared.common))}</div></div>'
        + operators_part(note.patch)
        + f'<img class="plot" alt="{escape(note.title)}: spectrograms, harmonic levels and envelopes" '
          f'src="{media.figure(f"{note.anchor}-comparison", figure)}">'
        + _trajectories_image(evaluation, media)
        + "</section>"
    )


def _quality_summary(evaluations: list[NoteSummary]) -> str:
    qualities = [evaluation.quality for evaluation in evaluations if evaluation.quality is not None]
    parts = [f"{len(qualities)} of {len(evaluations)} fitted notes scored"]
    if qualities:
        below_floor = sum(quality < 0.0 for quality in qualities)
        parts.append(f"median quality {float(np.median(qualities)):.2f} "
                     f"(worst {min(qualities):.2f}, best {max(qualities):.2f})")
        parts.append(f"{below_floor} below the floor")
    return "; ".join(parts) + "."


def _shared_settings_section(instrument: Instrument, shared: SharedSettings) -> str:
    if not shared.common and not shared.per_program:
        return ""
    parts = ['<section id="settings"><h2>Fit settings</h2>']
    if shared.common:
        parts.append(f"<h3>Shared by every note</h3>{_settings_rows_table(shared.common)}")
    names = {(program.bank, program.program): program.name for program in instrument.bank.programs}
    programs_by_rows: dict[tuple[Row, ...], list[str]] = {}  # programs with the same rows share one table
    for (bank, program), rows in shared.per_program.items():
        programs_by_rows.setdefault(tuple(rows), []).append(f"{bank}:{program} {names.get((bank, program), '')}".strip())
    for rows, programs in programs_by_rows.items():
        parts.append(f"<h3>Shared by every note of {escape(', '.join(programs))}</h3>" + _settings_rows_table(list(rows)))
    return "".join(parts) + "</section>"


def _overview_section(instrument: Instrument, evaluations: list[NoteSummary], media: MediaStore) -> str:
    """Bank overview: a keyboard map per program coloured by fit quality, and the zone table."""
    evaluation_of_zone = {id(zone): evaluation for evaluation in evaluations for _, zone in evaluation.note.zones}
    rows = []
    programs = []
    for program in instrument.bank.programs:
        map_zones = []
        for zone in sorted(program.zones, key=lambda z: (z.vel_lo, z.key_lo)):
            evaluation = evaluation_of_zone[id(zone)]
            quality = evaluation.quality
            map_zones.append(MapZone(zone.key_lo, zone.key_hi, zone.vel_lo, zone.vel_hi, zone.root_key, quality))
            rows.append(
                f"<tr><td>{program.bank}:{program.program}</td><td>{escape(program.name)}</td>"
                f"<td>{note_name(zone.key_lo)}–{note_name(zone.key_hi)}</td>"
                f"<td>{zone.vel_lo}–{zone.vel_hi}</td><td>{note_name(zone.root_key)} ({zone.root_key})</td>"
                f'<td><a href="#{evaluation.note.anchor}">{escape(evaluation.note.title)}</a></td>'
                f"<td>{_badge(quality)}</td></tr>"
            )
        programs.append((f"{program.bank}:{program.program} {program.name}".strip(), map_zones))
    figure = keyboard_map_figure(programs)
    return (
        f'<section id="overview"><h2>Keyboard map</h2><p>{escape(_quality_summary(evaluations))}</p>'
        f'<p class="where">{escape(QUALITY_EXPLAINED)} Hatched grey: not scored (no target sample).</p>'
        f'<img class="plot" alt="keyboard map of zones by fit quality" src="{media.figure("overview-keyboard", figure)}">'
        "<table><thead><tr><th>program</th><th>name</th><th>keys</th><th>velocities</th><th>root</th>"
        "<th>patch</th><th title='higher is better'>quality ↑</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></section>"
    )


def render_page(instrument: Instrument, evaluations: list[NoteSummary], note_sections: list[str],
                generated: str, media: MediaStore, shared: SharedSettings) -> str:
    """The whole page, media still as placeholders (:class:`MediaStore`); ``note_sections`` are
    ``note_section(evaluation, media, shared)`` of each evaluation, ``evaluations`` their summaries, in order."""
    kind = "bank" if instrument.bank is not None else "patch"
    title = f"wifm report — {instrument.name}"
    overview = ""
    if instrument.bank is not None:
        overview = _overview_section(instrument, evaluations, media) + _shared_settings_section(instrument, shared)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>"
        f"<header><h1>{escape(title)}</h1><p class='meta'>{kind} <code>{escape(str(instrument.path))}</code> · "
        f"{len(evaluations)} fitted note{'s' if len(evaluations) != 1 else ''} · generated {escape(generated)} "
        f"by wifm_synth {escape(__version__)}</p></header>"
        + overview
        + "".join(note_sections)
        + f"<footer>{escape(QUALITY_EXPLAINED)}</footer></main><script>{AB_SCRIPT}</script></body></html>\n"
    )
