"""Fit settings as the report shows them: each patch's metadata as rows, with what every note shares shown
once for the whole page, what every note of a program shares once for that program, and only the rest
beside each note."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from wifm_synth.report.notes import Instrument, ReportNote
from wifm_synth.voice.patch import Patch

MAX_SETTING_CHARS = 160

Row = tuple[str, str]


def _flatten(prefix: str, value, rows: list[Row]) -> None:
    """Metadata as (dotted key, text) rows; long values (e.g. per-frame arrays) are cut to keep the table readable."""
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, rows)
        return
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value)
    rows.append((prefix, text if len(text) <= MAX_SETTING_CHARS else text[: MAX_SETTING_CHARS - 1] + "…"))


def settings_rows(patch: Patch) -> list[Row]:
    rows: list[Row] = []
    _flatten("", patch.metadata, rows)
    return rows


def _program_key(note: ReportNote) -> tuple[int, int] | None:
    return (note.zones[0][0].bank, note.zones[0][0].program) if note.zones else None


@dataclass
class SharedSettings:
    """Rows every note has alike (``common``) and, per (bank, program), rows its notes have alike beyond those."""

    common: list[Row] = field(default_factory=list)
    per_program: dict[tuple[int, int], list[Row]] = field(default_factory=dict)

    def own_rows(self, note: ReportNote) -> list[Row]:
        """The note's rows that neither the page nor its (first) program already shows."""
        shown = set(self.common) | set(self.per_program.get(_program_key(note), []))
        return [row for row in settings_rows(note.patch) if row not in shown]


def _shared(row_lists: list[list[Row]]) -> list[Row]:
    """Rows present in every list, in the first list's order."""
    others = [set(rows) for rows in row_lists[1:]]
    return [row for row in row_lists[0] if all(row in rows for rows in others)]


def shared_settings(instrument: Instrument) -> SharedSettings:
    """Nothing is shared in a one-note report: its settings stay beside the note."""
    if len(instrument.notes) < 2:
        return SharedSettings()
    rows = {id(note): settings_rows(note.patch) for note in instrument.notes}
    common = _shared(list(rows.values()))
    by_program: dict[tuple[int, int], list[list[Row]]] = {}
    for note in instrument.notes:
        if _program_key(note) is not None:
            by_program.setdefault(_program_key(note), []).append(rows[id(note)])
    per_program = {}
    for key, lists in by_program.items():
        extra = [row for row in _shared(lists) if row not in set(common)] if len(lists) > 1 else []
        if extra:
            per_program[key] = extra
    return SharedSettings(common, per_program)
