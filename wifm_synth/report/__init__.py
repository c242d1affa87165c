"""``wifm report``: a self-contained HTML page comparing each fitted note with its source sample.

It sits after fitting in the pipeline (imports analysis, engine, patch and matplotlib); only the CLI
imports it.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

from wifm_synth.patch.io import atomic_output
from wifm_synth.report.notes import load_report_instrument
from wifm_synth.report.page import render_page
from wifm_synth.report.scoring import evaluate_note


def report_command(instrument_path: str | os.PathLike, out_html: str | os.PathLike) -> int:
    """Write the report for a patch or bank file to ``out_html`` atomically; prints one summary line.

    A missing or invalid instrument (PatchError/InputError) or an unwritable output (OutputError) is
    reported before any note is rendered.
    """
    instrument = load_report_instrument(instrument_path)
    with atomic_output(out_html) as temp:
        evaluations = [evaluate_note(note) for note in instrument.notes]
        generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        page = render_page(instrument, evaluations, generated).encode("utf-8")
        temp.write_bytes(page)
    count = len(instrument.notes)
    print(f"{out_html}: report of {instrument_path}, {count} note{'s' if count != 1 else ''} ({len(page) / 1e6:.1f} MB)")
    return 0
