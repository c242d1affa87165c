"""``wifm report``: a self-contained HTML page comparing each fitted note with its source sample.

It sits after fitting in the pipeline (imports analysis, fit, engine, patch and matplotlib); only the CLI
imports it.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone

from tqdm import tqdm

from wifm_synth.formats.atomic import atomic_output
from wifm_synth.report.notes import load_report_instrument
from wifm_synth.report.page import note_section, render_page
from wifm_synth.report.scoring import evaluate_note

PROGRESS_DELAY_S = 2.0  # short reports show no progress bar


def report_command(instrument_path: str | os.PathLike, out_html: str | os.PathLike) -> int:
    """Write the report for a patch or bank file to ``out_html`` atomically; prints one summary line.

    A missing or invalid instrument (PatchError/InputError) or an unwritable output (OutputError) is
    reported before any note is rendered.
    """
    instrument = load_report_instrument(instrument_path)
    with atomic_output(out_html) as temp:
        evaluations, sections = [], []
        for note in tqdm(instrument.notes, unit="note", desc="wifm report", file=sys.stderr, delay=PROGRESS_DELAY_S,
                         dynamic_ncols=True, disable=None):  # no bar when stderr is not a terminal
            evaluations.append(evaluate_note(note))
            sections.append(note_section(evaluations[-1]))
        generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        page = render_page(instrument, evaluations, sections, generated).encode("utf-8")
        temp.write_bytes(page)
    count = len(instrument.notes)
    print(f"{out_html}: report of {instrument_path}, {count} note{'s' if count != 1 else ''} ({len(page) / 1e6:.1f} MB)")
    return 0
