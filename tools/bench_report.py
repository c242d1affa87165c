"""Benchmark: what `wifm report` costs per note, and how big the page gets.

*evaluate* is rendering the patch and analysing and scoring target, render, floor and limit; *page*
is drawing the figures and encoding figures and audio as data URIs. Without ``--instrument`` the
report covers a temporary bank of hand-made 2-operator patches over the bundled samples (no fitting,
so only the report is measured). The first note is evaluated once beforehand to warm the JIT caches.

    python tools/bench_report.py [--instrument BANK_OR_PATCH]
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

from benchmark_info import machine_info

from wifm_synth.formats.bank_json import Bank, Program, Zone, save_bank
from wifm_synth.library.naming import parse_sample_name
from wifm_synth.report.media import MediaStore
from wifm_synth.report.notes import load_report_instrument
from wifm_synth.report.page import note_section, render_page
from wifm_synth.report.scoring import evaluate_note
from wifm_synth.report.settings import shared_settings
from wifm_synth.voice.patch import Envelope, Operator, Patch, Pitch

BUNDLED_NOTES = Path(__file__).resolve().parent.parent / "samples" / "freepats"
DATA_URI = re.compile(r'src="data:(\w+)/[\w.+-]+;base64,([^"]*)"')


def bundled_bank(folder: Path) -> Path:
    """One program per bundled sample, each a plucked 2-operator patch at the sample's key."""
    programs, patches = [], {}
    for number, sample in enumerate(sorted(BUNDLED_NOTES.rglob("*.wav"))):
        key = parse_sample_name(sample.name).note
        patch_file = f"{sample.stem}.json"
        patches[patch_file] = Patch(
            name=sample.stem,
            pitch=Pitch(reference_note=key),
            operators=[
                Operator(level=0.2, modulators=[1], envelope=Envelope([(0.005, 0.0), (3.0, -30.0)], 0.2)),
                Operator(level=1.0, carrier=False, envelope=Envelope([(0.005, 0.0), (1.0, -15.0)], 0.2)),
            ],
            metadata={"source": str(sample)},
        )
        programs.append(Program(program=number, name=sample.stem, zones=[Zone(patch_file, key)]))
    save_bank(Bank(programs=programs, name="bundled", patches=patches), folder / "bank.json")
    return folder / "bank.json"


def measure(instrument_path: Path) -> dict:
    instrument = load_report_instrument(instrument_path)
    shared = shared_settings(instrument)
    evaluate_note(instrument.notes[0], instrument.bank)
    started = time.perf_counter()
    evaluations = [evaluate_note(note, instrument.bank) for note in instrument.notes]
    evaluated = time.perf_counter()
    with tempfile.TemporaryDirectory() as media_folder:
        media = MediaStore(Path(media_folder))
        sections = [note_section(evaluation, media, shared) for evaluation in evaluations]
        text = render_page(instrument, [evaluation.summary() for evaluation in evaluations], sections,
                           generated="benchmark", media=media, shared=shared)
        page = media.resolve(text, None)  # measured inline, whatever its size
    paged = time.perf_counter()
    embedded: dict[str, int] = {}
    for kind, payload in DATA_URI.findall(page):
        embedded[kind] = embedded.get(kind, 0) + len(payload)
    notes = len(instrument.notes)
    return {
        "instrument": str(instrument_path),
        "notes": notes,
        "scored_notes": sum(evaluation.quality is not None for evaluation in evaluations),
        "evaluate_seconds_per_note": round((evaluated - started) / notes, 3),
        "page_seconds_per_note": round((paged - evaluated) / notes, 3),
        "total_seconds": round(paged - started, 2),
        "page_bytes": len(page.encode("utf-8")),
        "page_bytes_per_note": len(page.encode("utf-8")) // notes,
        "embedded_base64_bytes": {"audio": embedded.get("audio", 0), "image": embedded.get("image", 0)},
        "machine": machine_info("matplotlib"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instrument", type=Path, help="patch or bank to report (default: bundled samples)")
    instrument = parser.parse_args().instrument
    if instrument is not None:
        print(json.dumps(measure(instrument), indent=2))
        return
    with tempfile.TemporaryDirectory() as folder:
        print(json.dumps(measure(bundled_bank(Path(folder))), indent=2))


if __name__ == "__main__":
    main()
