"""``wifm report``: a self-contained HTML page comparing each fitted note with its source sample.

It sits after fitting in the pipeline (imports analysis, engine, patch and matplotlib); only the CLI
imports it.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

from wifm_synth.patch.io import atomic_write_bytes
from wifm_synth.report.notes import load_report_instrument
from wifm_synth.report.page import render_page
from wifm_synth.report.scoring import evaluate_note


def build_report(instrument_path: str | os.PathLike) -> str:
    """The report page for a patch or bank file (PatchError/InputError when it is missing or invalid)."""
    instrument = load_report_instrument(instrument_path)
    evaluations = [evaluate_note(note) for note in instrument.notes]
    return render_page(instrument, evaluations, generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


def report_command(instrument_path: str | os.PathLike, out_html: str | os.PathLike) -> int:
    """Write the report for ``instrument_path`` to ``out_html`` atomically; prints one summary line."""
    page = build_report(instrument_path).encode("utf-8")
    atomic_write_bytes(out_html, page)
    print(f"{out_html}: report of {instrument_path} ({len(page) / 1e6:.1f} MB)")
    return 0
