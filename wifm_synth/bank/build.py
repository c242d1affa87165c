"""Sample library → patch bank (``wifm bank SOURCE -o BANK_DIR``): fit every sample, write patches and ``bank.json``.

SOURCE is an ``.sfz`` file or a folder (:mod:`wifm_synth.library.discover` says which samples make which
programs, :mod:`wifm_synth.library.drums` which of them are drum kits), or an ``.sf2`` SoundFont whose
presets FluidSynth plays into samples first (:mod:`wifm_synth.library.soundfont`). Each sample is one fit
(unpitched at its key for a drum kit), run on ``--jobs`` processes or on a Dask cluster
(:mod:`wifm_synth.bank.executors`); a finished fit is cached (:mod:`wifm_synth.bank.cache`) and its patch
written at once, atomically, with an SFZ region's ``tune`` and ``transpose`` applied; ``bank.json`` is
written last, its zones tiled by :mod:`wifm_synth.library.zones` (an SFZ program's keys outside every
region stay silent unless ``--fill-gaps``). A re-run, also after a crash, kill or Ctrl-C, fits only what
is missing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from wifm_synth.bank.cache import (
    cache_key,
    cached_outcome,
    output_folder,
    store_outcome,
)
from wifm_synth.bank.executors import (
    FitJob,
    FitOutcome,
    dask_client,
    default_jobs,
    outcomes,
)
from wifm_synth.errors import InputError, OutputError, WifmError
from wifm_synth.fit.fitter import FitSettings
from wifm_synth.formats.atomic import source_reference
from wifm_synth.formats.bank_json import (
    FILL_NEAREST,
    FILL_SILENT,
    Bank,
    Program,
    Zone,
    save_bank,
)
from wifm_synth.formats.patch_json import patch_from_dict, save_patch
from wifm_synth.library.discover import (
    ProgramPlan,
    SampleEntry,
    plan_bank,
    skip_duplicate_keys,
)
from wifm_synth.library.drums import mark_drum_kits
from wifm_synth.library.naming import note_name
from wifm_synth.library.region_sound import transpose_patch
from wifm_synth.library.soundfont import SoundFontEntry, plan_soundfont, render_entries
from wifm_synth.library.zones import first_gap, tile, zones_from_root_keys
from wifm_synth.voice.schema import SCHEMA

BANK_FILE = "bank.json"



@dataclass
class BankBuild:
    """The result of :func:`build_bank`: per-sample rows and the bank written (None if nothing fitted)."""

    programs: list[ProgramPlan]
    bank_path: Path | None
    seconds: float
    skipped_regions: list[str] = field(default_factory=list)

    @property
    def entries(self) -> list[SampleEntry]:
        return [entry for program in self.programs for entry in program.entries]

    @property
    def failed(self) -> list[SampleEntry]:
        return [entry for entry in self.entries if entry.status == "failed"]


def entry_settings(entry: SampleEntry, settings: FitSettings) -> FitSettings:
    # A sample named with a velocity plays its recorded level when struck at that velocity.
    if entry.velocity is None:
        return settings
    return dataclasses.replace(settings, reference_velocity=entry.velocity)


def _save_entry_patch(entry: SampleEntry, out_dir: Path) -> list[str]:
    """Write the entry's patch, with its SFZ tune applied after the (cached, unshifted) fit; returns warnings."""
    patch_path = out_dir / entry.patch_file
    patch = patch_from_dict(entry.outcome.patch, entry.path)
    patch.name = patch_path.stem
    patch.metadata["source"] = source_reference(entry.path, patch_path)
    warnings = []
    if entry.tune_cents:
        tuned = patch.pitch.tune_cents + entry.tune_cents
        allowed = SCHEMA["pitch.tune_cents"]
        patch.pitch.tune_cents = float(allowed.clip(tuned))
        if patch.pitch.tune_cents != tuned:
            warnings.append(f"tune={entry.tune_cents} gives tune_cents {tuned:.1f}, clamped to "
                            f"{patch.pitch.tune_cents:.0f} (the patch format allows {allowed.low:g}..{allowed.high:g})")
    warnings += transpose_patch(patch, entry.transpose)
    save_patch(patch, patch_path)
    return warnings


def settle(entry: SampleEntry, outcome: FitOutcome, status: str, out_dir: Path) -> list[str]:
    """Record a finished fit on its entry and write the patch; returns lines to show the user."""
    entry.outcome = outcome
    if outcome.error is not None:
        entry.status, entry.detail = "failed", outcome.error
        return [outcome.error]
    try:
        tune_warnings = _save_entry_patch(entry, out_dir)
    except WifmError as error:  # e.g. a cached or remote patch the format rejects: this entry fails, the bank goes on
        entry.status, entry.detail = "failed", str(error)
        return [str(error)]
    entry.status = status
    notes = [f"{entry.label}: {warning}" for warning in outcome.warnings + tune_warnings]
    if entry.note is not None and outcome.detected_note is not None and abs(outcome.detected_note - entry.note) > 0.5:
        notes.append(f"{entry.label}: the name says key {entry.note} but the audio sounds at "
                     f"{outcome.detected_note:.1f}")
    entry.detail = "; ".join(filter(None, [entry.detail] + notes))
    return notes


def _refuse_unwritable_bank_file(plans, out_dir: Path) -> None:
    """Before any fit: the bank file's name must not be taken by a program folder or an existing folder,
    or every fit would be done only for the last write to fail."""
    for plan in plans:
        if Path(plan.folder).parts[:1] == (BANK_FILE,):
            raise InputError(f"a program folder is named {BANK_FILE!r}, the bank file's name; rename it",
                             plan.folder)
    if (out_dir / BANK_FILE).is_dir():
        raise OutputError("is a folder; the bank file goes here", out_dir / BANK_FILE)


def build_bank(
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    name: str | None = None,
    program: int | None = None,
    jobs: int | None = None,
    dask_scheduler: str | None = None,
    settings: FitSettings | None = None,
    progress: bool = True,
    fill_gaps: bool = False,
    presets: str | None = None,
    keys_every: int | None = None,
    velocities: str | None = None,
    drums: bool = False,
) -> BankBuild:
    """Fit every sample of ``source`` into ``out_dir`` (patches, ``bank.json``, ``.cache/``).

    An SFZ's keys and velocities outside every region stay silent, as in SFZ players, unless ``fill_gaps``
    gives them to the nearest region. ``presets``, ``keys_every`` and ``velocities`` choose what of a
    SoundFont is played (see :func:`wifm_synth.library.soundfont.plan_soundfont`); ``drums`` makes a
    single-instrument folder or SFZ a drum kit. Input and output problems raise WifmError before anything
    is written; a sample that fails is
    recorded on its entry (status "failed") and the others go on.
    """
    started = time.perf_counter()
    source, out_dir = Path(source), Path(out_dir)
    settings = settings if settings is not None else FitSettings()
    if program is not None and not 0 <= program <= 127:
        raise WifmError(f"--program must be 0..127, got {program}")
    if jobs is not None and jobs < 1:
        raise WifmError(f"--jobs must be at least 1, got {jobs}")
    plans, skipped_regions = _plan(source, out_dir, program, presets, keys_every, velocities, drums)
    _refuse_unwritable_bank_file(plans, out_dir)
    entries = [entry for plan in plans for entry in plan.entries if entry.status == "pending"]
    unpitched = set()
    for plan in plans:
        for entry in (entry for entry in plan.entries if entry.status == "pending"):
            identity = entry.identity() if isinstance(entry, SoundFontEntry) else None
            try:
                entry.cache_key = cache_key(entry.path, entry.note, entry_settings(entry, settings), entry.sound,
                                            unpitched=plan.is_drums, sample_identity=identity)
            except InputError as error:
                entry.status, entry.detail = "failed", str(error)
                continue
            if plan.is_drums:
                unpitched.add(entry.cache_key)

    # Connect before writing anything, so that a wrong address leaves no output behind.
    client = dask_client(dask_scheduler) if dask_scheduler else None
    with client if client is not None else contextlib.nullcontext(), \
            output_folder(out_dir, [plan.folder for plan in plans]) as cache:
        _fit_entries(entries, settings, out_dir, cache, jobs or default_jobs(), client, progress, unpitched)
        bank_path = _write_bank(plans, out_dir, name or source.stem, fill_gaps)
    return BankBuild(programs=plans, bank_path=bank_path, seconds=time.perf_counter() - started,
                     skipped_regions=skipped_regions)


def _plan(source: Path, out_dir: Path, program: int | None, presets: str | None, keys_every: int | None,
          velocities: str | None, drums: bool) -> tuple[list[ProgramPlan], list[str]]:
    """The programs of a SoundFont, or of a folder or SFZ with its drum kits marked; notes on SFZ regions."""
    if source.suffix.lower() == ".sf2":
        if program is not None or drums:
            raise InputError("--program and --drums do not apply to a SoundFont (its presets give the programs "
                             "and bank 128 the drum kits)", source)
        return plan_soundfont(source, out_dir, presets=presets, keys_every=keys_every or 6,
                              velocities=velocities), []
    if presets is not None or keys_every is not None or velocities is not None:
        raise InputError("--presets, --keys and --velocities apply to SoundFont (.sf2) input", source)
    plans, skipped_regions = plan_bank(source, program)
    mark_drum_kits(plans, source, drums)
    return plans, skipped_regions


def _fit_entries(entries: list[SampleEntry], settings: FitSettings, out_dir: Path, cache: Path, workers: int,
                 client, progress: bool, unpitched: set[str]) -> None:
    """Settle every entry from the cache or a new fit, writing each patch as it comes, with a progress bar."""
    pending: dict[str, list[SampleEntry]] = {}  # cache key → entries of that sample (an SFZ may reuse one)
    for entry in entries:
        if entry.status == "pending":
            pending.setdefault(entry.cache_key, []).append(entry)
    with tqdm(total=len(entries), unit="note", desc="wifm bank", file=sys.stderr,
              disable=None if progress else True, dynamic_ncols=True) as bar:
        for entry in entries:
            if entry.status == "failed":
                bar.update(1)
                tqdm.write(f"wifm: {entry.detail}", file=sys.stderr)

        def settle_all(outcome: FitOutcome, status: str) -> None:
            for entry in pending.pop(outcome.cache_key):
                for line in settle(entry, outcome, status, out_dir):
                    tqdm.write(f"wifm: {line}", file=sys.stderr)
                bar.set_postfix_str(f"{entry.label}: {entry.status}", refresh=False)
                bar.update(1)

        for key in list(pending):
            cached = cached_outcome(cache, key)
            if cached is not None:
                settle_all(cached, "cached")
        # SoundFont notes are played only now, and only those not cached; silent ones are left out.
        to_render = [entry for group in pending.values() for entry in group if isinstance(entry, SoundFontEntry)]
        for entry in render_entries(to_render):
            pending[entry.cache_key].remove(entry)
            if not pending[entry.cache_key]:
                del pending[entry.cache_key]
            bar.update(1)
        # Longest files first, so that no worker is left with a long fit at the end.
        todo = sorted(pending.values(), key=lambda group: -group[0].path.stat().st_size)
        fit_jobs = [FitJob(str(group[0].path), group[0].note, entry_settings(group[0], settings),
                           group[0].cache_key, group[0].sound, unpitched=group[0].cache_key in unpitched)
                    for group in todo]
        if fit_jobs:
            for outcome in outcomes(fit_jobs, workers, client):
                if outcome.error is None:
                    store_outcome(cache, outcome)
                settle_all(outcome, "fitted")


def _write_bank(plans: list[ProgramPlan], out_dir: Path, name: str, fill_gaps: bool) -> Path | None:
    programs, kits = [], []
    for plan in plans:
        fitted = [entry for entry in plan.entries if entry.status in ("fitted", "cached")]
        if fitted:
            zones = sfz_zones(fitted, fill_gaps) if plan.is_sfz else folder_zones(fitted)
            fill = FILL_NEAREST if first_gap(zones) is None else FILL_SILENT
            programs.append(Program(program=plan.program, zones=zones, name=plan.name, fill=fill, bank=plan.bank))
            if plan.is_drums:
                kits.append((plan.bank, plan.program))
    if not programs:
        return None
    # Channel 10 plays the standard kit (bank 128 program 0) when there is one, else the first kit.
    kits.sort()
    bank_path = out_dir / BANK_FILE
    save_bank(Bank(programs=programs, name=name, drums=kits[0] if kits else None), bank_path)
    return bank_path


def sfz_zones(entries: list[SampleEntry], fill_gaps: bool = False) -> list[Zone]:
    """Zones for the fitted SFZ regions as given; where regions overlap the first one (by ``seq_position``,
    then order in the SFZ) plays. Cells no region covers stay silent, or with ``fill_gaps`` play the nearest region."""
    regions = [(entry, region) for entry in entries for region in entry.regions]
    regions.sort(key=lambda pair: (pair[1].seq_position, pair[1].order, pair[1].line))
    return [Zone(patch=regions[piece.owner][0].patch_file, root_key=regions[piece.owner][0].root_key,
                 key_lo=piece.key_lo, key_hi=piece.key_hi, vel_lo=piece.vel_lo, vel_hi=piece.vel_hi)
            for piece in tile([region for _, region in regions], fill_gaps=fill_gaps)]


def folder_zones(entries: list[SampleEntry]) -> list[Zone]:
    """Zones for the fitted samples of a folder: each key and velocity plays the nearest sample."""
    fitted = [entry for entry in entries if entry.status in ("fitted", "cached")]
    skip_duplicate_keys(fitted, lambda entry: entry.root_key)  # pitch-detected samples can land on a taken key
    fitted = [entry for entry in fitted if entry.status != "skipped"]
    layers: dict[int, list[int]] = {}
    by_slot = {}
    for entry in fitted:
        layers.setdefault(entry.layer_velocity, []).append(entry.root_key)
        by_slot[(entry.layer_velocity, entry.root_key)] = entry
    return [Zone.from_span(span, by_slot[(span.layer_velocity, span.root_key)].patch_file)
            for span in zones_from_root_keys(layers)]


# --- the command --------------------------------------------------------------------------------------------


def summary_rows(build: BankBuild) -> list[dict]:
    """One JSON-ready row per sample: program, key, velocity, loss, quality metrics, seconds, status."""
    rows = []
    for plan in build.programs:
        for entry in plan.entries:
            outcome = entry.outcome
            fitted = entry.status in ("fitted", "cached")
            metadata = outcome.patch.get("metadata", {}) if fitted else {}
            metrics = metadata.get("metrics") if isinstance(metadata.get("metrics"), dict) else {}
            rows.append({
                "program": plan.program, "instrument": plan.name, "sample": entry.label,
                "patch": entry.patch_file if fitted else None,
                "note": entry.root_key if fitted else entry.note,
                "velocity": entry.velocity,
                "loss": outcome.loss if fitted else None,
                "metrics": {key: value for key, value in metrics.items() if isinstance(value, (int, float))},
                "seconds": round(outcome.seconds, 3) if outcome is not None else None,
                "status": entry.status, "detail": entry.detail,
            })
    return rows


def _summary_document(build: BankBuild, rows: list[dict]) -> dict:
    counts = {status: sum(row["status"] == status for row in rows) for status in ("fitted", "cached", "failed", "skipped")}
    return {"bank": str(build.bank_path) if build.bank_path else None, "seconds": round(build.seconds, 3),
            "counts": counts, "samples": rows, "skipped_regions": build.skipped_regions,
            "notices": [notice for plan in build.programs for notice in plan.notices]}


def _format_table(rows: list[dict]) -> str:
    metric_names = list(dict.fromkeys(name for row in rows for name in row["metrics"]))
    header = ["prog", "sample", "key", "vel", "loss", *metric_names, "seconds", "status"]
    lines = []
    for row in rows:
        key = f"{note_name(row['note'])} {row['note']}" if row["note"] is not None else "?"
        cells = [str(row["program"]), row["sample"], key, str(row["velocity"] or "-"),
                 f"{row['loss']:.4g}" if row["loss"] is not None else "-",
                 *(f"{row['metrics'][name]:.3g}" if name in row["metrics"] else "-" for name in metric_names),
                 f"{row['seconds']:.2f}" if row["seconds"] is not None else "-", row["status"]]
        lines.append(cells)
    widths = [max(len(cells[column]) for cells in [header, *lines]) for column in range(len(header))]
    numeric = {0, 3, 4, *range(5, 5 + len(metric_names)), 5 + len(metric_names)}
    return "\n".join(
        "  ".join(cell.rjust(width) if column in numeric else cell.ljust(width)
                  for column, (cell, width) in enumerate(zip(cells, widths))).rstrip()
        for cells in [header, *lines]
    )


def bank_command(
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    name: str | None = None,
    program: int | None = None,
    jobs: int | None = None,
    dask_scheduler: str | None = None,
    ops: int = 2,
    as_json: bool = False,
    fill_gaps: bool = False,
    presets: str | None = None,
    keys_every: int | None = None,
    velocities: str | None = None,
    drums: bool = False,
) -> int:
    """``wifm bank``: build the bank, print a summary table (or JSON); 1 if any sample failed, else 0."""
    build = build_bank(source, out_dir, name=name, program=program, jobs=jobs, dask_scheduler=dask_scheduler,
                       settings=FitSettings(ops=ops), fill_gaps=fill_gaps, presets=presets, keys_every=keys_every,
                       velocities=velocities, drums=drums)
    for plan in build.programs:
        for notice in plan.notices:
            print(f"wifm: notice: {notice}", file=sys.stderr)
    rows = summary_rows(build)
    document = _summary_document(build, rows)
    if as_json:
        print(json.dumps(document))
    else:
        print(_format_table(rows))
        for row in rows:
            if row["detail"]:
                print(f"{row['sample']}: {row['status']}: {row['detail']}")
        for note in build.skipped_regions:
            print(note)
        counts = ", ".join(f"{count} {status}" for status, count in document["counts"].items() if count)
        written = f"wrote {build.bank_path}" if build.bank_path else "no bank written (nothing was fitted)"
        print(f"{counts} in {build.seconds:.1f} s; {written}")
    return 1 if build.failed or build.bank_path is None else 0
