"""``wifm report``: an HTML page comparing each fitted note with its source sample.

The page holds its audio and figures as data URIs, so the file works offline alone; when that page would
exceed ``max_inline_bytes`` (a large bank), it links them from a folder beside it instead (``NAME_media/``).

It sits after fitting in the pipeline (imports analysis, fit, engine, patch and matplotlib); only the CLI
imports it.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from wifm_synth.formats.atomic import atomic_output
from wifm_synth.report.media import (
    MAX_INLINE_PAGE_BYTES,
    MediaStore,
    media_folder_for,
    place_media_folder,
    temporary_media_folder,
)
from wifm_synth.report.notes import load_report_instrument
from wifm_synth.report.page import note_section, render_page
from wifm_synth.report.scoring import evaluate_note
from wifm_synth.report.settings import shared_settings

PROGRESS_DELAY_S = 2.0  # short reports show no progress bar


def report_command(instrument_path: str | os.PathLike, out_html: str | os.PathLike,
                   max_inline_bytes: int = MAX_INLINE_PAGE_BYTES) -> int:
    """Write the report for a patch or bank file to ``out_html`` atomically; prints one summary line.

    Media go inline when the whole page stays within ``max_inline_bytes``, else into ``NAME_media/`` beside it
    (replacing an older one; an inline page leaves an older folder alone). A missing or invalid instrument
    (PatchError/InputError) or an unwritable output (OutputError) is reported before any note is rendered.
    """
    instrument = load_report_instrument(instrument_path)
    shared = shared_settings(instrument)
    out_html = Path(out_html)
    with atomic_output(out_html) as temp, temporary_media_folder(out_html) as media_folder:
        media = MediaStore(Path(media_folder))
        evaluations, sections = [], []
        for note in tqdm(instrument.notes, unit="note", desc="wifm report", file=sys.stderr, delay=PROGRESS_DELAY_S,
                         dynamic_ncols=True, disable=None):  # no bar when stderr is not a terminal
            evaluation = evaluate_note(note, instrument.bank)
            sections.append(note_section(evaluation, media, shared))
            evaluations.append(evaluation.summary())  # its audio is in the media folder now
        generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        text = render_page(instrument, evaluations, sections, generated, media, shared)
        linked = media.is_linked(text, max_inline_bytes)
        page = media.resolve(text, media_folder_for(out_html).name if linked else None).encode("utf-8")
        temp.write_bytes(page)
        if linked:
            place_media_folder(media, out_html)
    count = len(instrument.notes)
    where = f"; media in {media_folder_for(out_html).name}/ ({media.payload_bytes / 1e6:.1f} MB)" if linked else ""
    print(f"{out_html}: report of {instrument_path}, {count} note{'s' if count != 1 else ''} "
          f"({len(page) / 1e6:.1f} MB{where})")
    return 0
