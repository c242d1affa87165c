"""Sample library → patch bank (``wifm bank SOURCE -o BANK_DIR``).

SOURCE is an ``.sfz`` file or a folder. A folder of audio files is one instrument; a folder of
subfolders is one program per subfolder (subfolders named only by a dynamic or velocity, such as
``ff/`` or ``vel64/``, are velocity layers of one instrument instead). Keys and velocities come from the
file names (:mod:`wifm_synth.library.naming`), or for SFZ from the regions (whose ``tune`` is added to the
patch's ``tune_cents``); samples whose name gives no key are pitch-detected by the fitter. Program
numbers come from General MIDI names when the match is obvious, else they are assigned in order.

Each sample is one fit, run on ``--jobs`` processes (this one plus spawned workers) or on a Dask cluster
whose workers see the samples at the same paths; its quality metrics come from :mod:`wifm_synth.fit.verify`. A
finished fit is cached in ``BANK_DIR/.cache/`` under a hash of the sample's bytes, the fit settings
and the tool version, and its patch is written at once, atomically; ``bank.json`` is written last. A
re-run, also after a crash or kill, fits only what is missing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import multiprocessing
import os
import re
import sys
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from wifm_synth import __version__
from wifm_synth.errors import InputError, OutputError, PatchError, WifmError
from wifm_synth.fit.fitter import FitSettings, fit_file
from wifm_synth.fit.verify import verify_fit
from wifm_synth.formats.atomic import atomic_write_json, read_json, source_reference
from wifm_synth.formats.bank_json import (
    Bank,
    Program,
    Zone,
    save_bank,
    zones_from_root_keys,
)
from wifm_synth.formats.patch_json import Patch, patch_from_dict, save_patch
from wifm_synth.formats.sfz import SfzRegion, read_sfz
from wifm_synth.library.naming import (
    gm_program_for,
    layer_velocity,
    note_name,
    parse_sample_name,
)

AUDIO_SUFFIXES = (".wav", ".wave", ".flac", ".aif", ".aiff", ".aifc", ".ogg", ".oga", ".mp3")
BANK_FILE = "bank.json"
CACHE_FOLDER = ".cache"
CACHE_FORMAT = "wifm-bank-cache"
TUNE_CENTS_LIMIT = 100.0  # docs/FORMATS.md: pitch.tune_cents is -100..100
# Velocity layer of samples whose name gives none: the velocity the fitter takes as reference.
DEFAULT_VELOCITY = 100
# Worker processes run one fit each at a time; more threads per process would only oversubscribe.
SINGLE_THREAD_ENVIRONMENT = {
    "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
}
# Jobs in flight per worker process: the one it fits and the next, so it never waits for the parent.
PREFETCH = 2
# atomic_output's temporary files: ".<target name>.<8 random characters><suffix>".
# Short summary-table names for the verification metrics.
METRIC_KEYS = {
    "multi-resolution log-spectral distance": "stft_db", "harmonic-level error": "harmonic_db",
    "envelope error": "envelope_db", "f0 error": "f0_cents",
}
_TEMPORARY_JSON = re.compile(r"^\..+\.json\.[a-z0-9_]{8}\.json$")
_UNSAFE_FILE_CHARACTERS = re.compile(r"[^A-Za-z0-9#._-]+")


@dataclass(frozen=True)
class FitJob:
    """One fit as sent to a worker process or Dask worker (picklable, self-contained)."""

    sample: str
    note: int | None
    settings: FitSettings
    cache_key: str


@dataclass
class FitOutcome:
    """What a fit job returns: the fitted patch document, or the one-line reason it failed."""

    cache_key: str
    patch: dict | None = None
    loss: float | None = None
    seconds: float = 0.0
    detected_note: float | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    def to_cache(self) -> dict:
        return {"format": CACHE_FORMAT, "version": 1, "key": self.cache_key, "patch": self.patch, "loss": self.loss,
                "seconds": self.seconds, "detected_note": self.detected_note, "warnings": self.warnings}

    @classmethod
    def from_cache(cls, document: object, cache_key: str) -> FitOutcome | None:
        """The cached outcome, or None when the entry is not a complete, valid one for ``cache_key``."""
        if not isinstance(document, dict) or document.get("format") != CACHE_FORMAT:
            return None
        if document.get("key") != cache_key or not isinstance(document.get("patch"), dict):
            return None
        try:
            patch_from_dict(document["patch"])
        except PatchError:
            return None
        return cls(cache_key=cache_key, patch=document["patch"], loss=document.get("loss"),
                   seconds=float(document.get("seconds") or 0.0), detected_note=document.get("detected_note"),
                   warnings=list(document.get("warnings") or []))


def quality_metrics(patch: Patch, sample: str | os.PathLike) -> dict[str, float]:
    """The fit's scores against its sample (as in ``wifm report``): ``quality`` is where it sits between the
    sine floor (0) and the harmonic resynthesis limit (1); the others are the fit's raw metrics. Empty when the
    render has no measurable pitch; InputError when the sample cannot be read or analysed."""
    verification = verify_fit(patch, sample, midi_note=patch.pitch.reference_note,
                              velocity=patch.pitch.reference_velocity)
    metrics = {} if verification.quality is None else {"quality": round(verification.quality, 4)}
    metrics.update({METRIC_KEYS.get(score.name, score.name): round(score.fit, 4) for score in verification.scores})
    return metrics


def fit_job(job: FitJob) -> FitOutcome:
    """Fit and score one sample; every failure becomes an outcome with a one-line reason so the others go on."""
    started = time.perf_counter()
    try:
        result = fit_file(job.sample, note=job.note, settings=job.settings)
        result.patch.metadata["metrics"] = quality_metrics(result.patch, job.sample)
        document = result.patch.to_dict()
        patch_from_dict(document, job.sample)  # a patch the format rejects is this sample's failure, not the bank's
    except WifmError as error:
        return FitOutcome(job.cache_key, error=str(error), seconds=time.perf_counter() - started)
    except Exception as error:  # noqa: BLE001 - a bug on one sample must not stop the bank
        return FitOutcome(job.cache_key, seconds=time.perf_counter() - started,
                          error=f"{job.sample}: fit failed ({type(error).__name__}: {error})")
    return FitOutcome(job.cache_key, patch=document, loss=float(result.loss),
                      seconds=time.perf_counter() - started, detected_note=float(result.analysis.midi_note),
                      warnings=list(result.analysis.warnings))


@dataclass
class SampleEntry:
    """One sample of one program, from planning to its row in the summary."""

    label: str  # the sample's path relative to SOURCE's folder
    path: Path
    patch_file: str  # relative to the bank folder
    note: int | None  # key from the name or the SFZ region; None = pitch-detected
    velocity: int | None  # velocity from the name; None = not given
    layer_velocity: int = DEFAULT_VELOCITY
    round_robin: int = 0
    regions: list[SfzRegion] = field(default_factory=list)
    tune_cents: int = 0  # the SFZ regions' tune, added to the fitted tuning when the patch is saved
    cache_key: str = ""
    status: str = "pending"  # fitted, cached, failed or skipped
    detail: str = ""
    outcome: FitOutcome | None = None


@dataclass
class ProgramPlan:
    name: str
    program: int
    folder: str  # sub-folder of the bank folder that holds this program's patches
    entries: list[SampleEntry]
    is_sfz: bool = False


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


# --- planning: which samples, which keys, which programs ---------------------------------------------------


def _is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_SUFFIXES and not path.name.startswith(".")


def _audio_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*")
                  if path.is_file() and _is_audio(path)
                  and not any(part.startswith(".") for part in path.relative_to(folder).parts))


def _is_layer_folder(name: str) -> bool:
    info = parse_sample_name(name)
    return info.note is None and (info.velocity is not None or info.velocity_layer is not None)


def _folder_instruments(source: Path) -> list[tuple[str, Path, list[Path]]]:
    """``(instrument name, instrument folder, audio files)`` for each instrument in a sample folder."""
    try:
        children = sorted(child for child in source.iterdir() if not child.name.startswith("."))
    except PermissionError:
        raise InputError("permission denied", source) from None
    if not children:
        raise InputError("folder is empty", source)
    top_audio = [child for child in children if child.is_file() and _is_audio(child)]
    subfolders = [(child, _audio_under(child)) for child in children if child.is_dir()]
    subfolders = [(folder, files) for folder, files in subfolders if files]
    if subfolders and all(_is_layer_folder(folder.name) for folder, _ in subfolders):
        return [(source.name, source, sorted(top_audio + [f for _, files in subfolders for f in files]))]
    instruments = [(source.name, source, top_audio)] if top_audio else []
    instruments += [(folder.name, folder, files) for folder, files in subfolders]
    if not instruments:
        raise InputError(f"no audio files here (looked for {', '.join(AUDIO_SUFFIXES)})", source)
    return instruments


def _safe_name(text: str) -> str:
    return _UNSAFE_FILE_CHARACTERS.sub("_", text).strip("._") or "sample"


def _unique(name: str, taken: set[str]) -> str:
    candidate, counter = name, 2
    while candidate.lower() in taken:
        candidate, counter = f"{name}-{counter}", counter + 1
    taken.add(candidate.lower())
    return candidate


def _entries_from_files(instrument_folder: Path, files: list[Path], program_folder: str) -> list[SampleEntry]:
    """Entries for one instrument's files; duplicates of a (key, velocity) pair keep the first round robin."""
    parsed = []
    for path in files:
        relative = path.relative_to(instrument_folder)
        info = parse_sample_name(path.name)
        velocity, layer = info.velocity, info.velocity_layer
        for folder in reversed(relative.parts[:-1]):  # a layer folder ("ff/", "v2/") gives the velocity
            if velocity is None and layer is None:
                folder_info = parse_sample_name(folder)
                velocity, layer = folder_info.velocity, folder_info.velocity_layer
        parsed.append((path, relative, info, velocity, layer))
    layer_count = max((layer for *_, layer in parsed if layer is not None), default=1)
    taken: set[str] = set()
    entries = []
    for path, relative, info, velocity, layer in parsed:
        if velocity is None and layer is not None:
            velocity = layer_velocity(layer, layer_count)
        stem = _safe_name("_".join(relative.with_suffix("").parts))
        entry = SampleEntry(
            label=str(Path(instrument_folder.name) / relative), path=path,
            patch_file=f"{program_folder}/{_unique(stem, taken)}.json", note=info.note, velocity=velocity,
            layer_velocity=velocity if velocity is not None else DEFAULT_VELOCITY, round_robin=info.round_robin or 0,
        )
        if info.ambiguity:
            entry.detail = f"{info.ambiguity} in the name; key detected from the audio"
        entries.append(entry)
    _skip_duplicate_keys(entries, lambda entry: entry.note)
    return entries


def _skip_duplicate_keys(entries: list[SampleEntry], key_of) -> None:
    """Keep one sample per (velocity layer, key): the lowest round robin, then the first by name."""
    kept: dict[tuple[int, int], SampleEntry] = {}
    live = [entry for entry in entries if entry.status not in ("skipped", "failed") and key_of(entry) is not None]
    for entry in sorted(live, key=lambda entry: (entry.round_robin, entry.label)):
        slot = (entry.layer_velocity, key_of(entry))
        if slot in kept:
            entry.status = "skipped"
            entry.detail = f"same key {slot[1]} and velocity layer {slot[0]} as {kept[slot].label}"
        else:
            kept[slot] = entry


def _assign_program_numbers(names: list[str], requested: int | None) -> list[int]:
    if requested is not None:
        return [requested]
    numbers: list[int | None] = []
    for name in names:
        program = gm_program_for(name)
        numbers.append(program if program is not None and program not in numbers else None)
    free = (program for program in range(128) if program not in numbers)
    return [program if program is not None else next(free) for program in numbers]


def _plan_folder(source: Path, requested_program: int | None) -> list[ProgramPlan]:
    instruments = _folder_instruments(source)
    if len(instruments) > 128:
        raise InputError(f"has {len(instruments)} instruments; a bank holds at most 128 programs", source)
    if requested_program is not None and len(instruments) > 1:
        raise InputError(f"--program needs a single-instrument source; this folder has {len(instruments)} "
                         f"instruments ({', '.join(name for name, _, _ in instruments)})", source)
    numbers = _assign_program_numbers([name for name, _, _ in instruments], requested_program)
    taken: set[str] = set()
    plans = []
    for (name, folder, files), number in zip(instruments, numbers):
        program_folder = _unique(_safe_name(name), taken)
        plans.append(ProgramPlan(name=name, program=number, folder=program_folder,
                                 entries=_entries_from_files(folder, files, program_folder)))
    return plans


def _plan_sfz(source: Path, requested_program: int | None) -> tuple[ProgramPlan, list[str]]:
    instrument = read_sfz(source)
    # Where regions overlap (later round robins, layered samples) the first one plays; the first round robin
    # comes first.
    regions = sorted(instrument.regions, key=lambda region: region.seq_position)
    owning = set(np.unique(_region_owner_grid(regions)).tolist())
    skipped = [f"{source}: line {region.line}: {region.sample.name} skipped (its keys and velocities are "
               f"covered by earlier regions)" for index, region in enumerate(regions) if index not in owning]
    program_folder = _safe_name(source.stem)
    by_sample: dict[tuple[Path, int | None, int], SampleEntry] = {}
    taken: set[str] = set()
    for index, region in enumerate(regions):
        if index not in owning:
            continue
        slot = (region.sample, region.pitch_keycenter, region.tune_cents)
        if slot not in by_sample:
            stem = _safe_name(region.sample.stem)
            label = os.path.relpath(region.sample, source.parent)
            by_sample[slot] = SampleEntry(label=label, path=region.sample, note=region.pitch_keycenter, velocity=None,
                                          patch_file=f"{program_folder}/{_unique(stem, taken)}.json",
                                          tune_cents=region.tune_cents)
        by_sample[slot].regions.append(region)
    program = requested_program if requested_program is not None else gm_program_for(source.stem)
    plan = ProgramPlan(name=source.stem, program=0 if program is None else program, folder=program_folder,
                       entries=list(by_sample.values()), is_sfz=True)
    return plan, instrument.skipped + skipped


def _region_owner_grid(regions: list[SfzRegion]) -> np.ndarray:
    """``owner[key, velocity]`` = index of the first region covering that cell, -1 where none does."""
    owner = np.full((128, 128), -1, dtype=np.int64)
    for index, region in enumerate(regions):
        cells = owner[region.key_lo:region.key_hi + 1, region.vel_lo:region.vel_hi + 1]
        cells[cells < 0] = index
    owner[:, 0] = -2  # velocity 0 is a note-off and needs no zone
    return owner


def tile_sfz_zones(entries: list[SampleEntry]) -> list[Zone]:
    """Zones for the fitted SFZ regions as given; cells no region covers play the nearest region.

    Gaps are filled along the keys of each velocity first, then from the nearest covered velocity,
    and the result is cut into rectangles (a region may need several zones).
    """
    regions = [(entry, region) for entry in entries for region in entry.regions]
    regions.sort(key=lambda pair: (pair[1].seq_position, pair[1].line))
    owner = _region_owner_grid([region for _, region in regions])[:, 1:]
    keys = np.arange(128)
    for column in owner.T:
        covered = np.flatnonzero(column >= 0)
        if covered.size:
            column[:] = column[covered[np.abs(keys[:, None] - covered[None, :]).argmin(axis=1)]]
    covered_columns = np.flatnonzero((owner >= 0).all(axis=0))
    for velocity_index in range(owner.shape[1]):
        if owner[0, velocity_index] < 0:
            owner[:, velocity_index] = owner[:, covered_columns[np.abs(covered_columns - velocity_index).argmin()]]
    # Each velocity's column is a set of key runs of one region; a run that repeats over consecutive
    # velocities grows into one rectangle.
    zones, open_runs = [], {}  # (region index, key_lo, key_hi) → velocity index where the run began
    for velocity_index in range(owner.shape[1] + 1):
        runs = _key_runs(owner[:, velocity_index]) if velocity_index < owner.shape[1] else set()
        for run in [run for run in open_runs if run not in runs]:
            region_index, key_lo, key_hi = run
            entry = regions[region_index][0]
            zones.append(Zone(patch=entry.patch_file, root_key=_root_key(entry), key_lo=key_lo, key_hi=key_hi,
                              vel_lo=open_runs.pop(run) + 1, vel_hi=velocity_index))
        for run in runs - open_runs.keys():
            open_runs[run] = velocity_index
    return sorted(zones, key=lambda zone: (zone.vel_lo, zone.key_lo))


def _key_runs(column: np.ndarray) -> set[tuple[int, int, int]]:
    """``(value, first key, last key)`` of each run of equal values in ``column``."""
    starts = np.flatnonzero(np.diff(column, prepend=column[0] - 1))
    ends = np.append(starts[1:] - 1, len(column) - 1)
    return {(int(column[start]), int(start), int(end)) for start, end in zip(starts, ends)}


def _root_key(entry: SampleEntry) -> int:
    return int(entry.outcome.patch["pitch"]["reference_note"])


def _folder_zones(entries: list[SampleEntry]) -> list[Zone]:
    fitted = [entry for entry in entries if entry.status in ("fitted", "cached")]
    _skip_duplicate_keys(fitted, _root_key)  # pitch-detected samples can land on a key already taken
    fitted = [entry for entry in fitted if entry.status != "skipped"]
    layers: dict[int, list[int]] = {}
    by_slot = {}
    for entry in fitted:
        layers.setdefault(entry.layer_velocity, []).append(_root_key(entry))
        by_slot[(entry.layer_velocity, _root_key(entry))] = entry
    return [Zone.from_span(span, by_slot[(span.layer_velocity, span.root_key)].patch_file)
            for span in zones_from_root_keys(layers)]


def plan_bank(source: str | os.PathLike, program: int | None = None) -> tuple[list[ProgramPlan], list[str]]:
    """Programs and samples of a folder or SFZ file, in program order, and notes on SFZ regions left out.

    Samples that duplicate another's key and velocity layer are already marked "skipped".
    """
    source = Path(source)
    if not source.exists():
        raise InputError("no such file or folder", source)
    if source.is_dir():
        return sorted(_plan_folder(source, program), key=lambda plan: plan.program), []
    if source.suffix.lower() == ".sfz":
        plan, skipped_regions = _plan_sfz(source, program)
        return [plan], skipped_regions
    raise InputError("expected a folder of samples or an .sfz file", source)


# --- cache, output folder, execution -----------------------------------------------------------------------


def _entry_settings(entry: SampleEntry, settings: FitSettings) -> FitSettings:
    # A sample named with a velocity plays its recorded level when struck at that velocity.
    if entry.velocity is None:
        return settings
    return dataclasses.replace(settings, reference_velocity=entry.velocity)


def _cache_key(entry: SampleEntry, settings: FitSettings) -> str:
    digest = hashlib.sha256()
    header = {"tool_version": __version__, "settings": settings.to_dict(), "note": entry.note}
    digest.update(json.dumps(header, sort_keys=True).encode())
    with open(entry.path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _output_folder(out_dir: Path, program_folders: list[str]) -> Iterator[Path]:
    """Create the bank folder, hold its lock, clear temporaries a killed run left; yield the cache folder."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError("exists and is not a folder", out_dir)
    cache = out_dir / CACHE_FOLDER
    with contextlib.ExitStack() as stack:
        try:
            for folder in [cache] + [out_dir / name for name in program_folders]:
                folder.mkdir(parents=True, exist_ok=True)
            lock = stack.enter_context(open(cache / "lock", "w"))
        except OSError as exc:
            raise OutputError(f"cannot write here ({exc.strerror})", out_dir) from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError("another `wifm bank` is writing this folder", out_dir) from None
        for folder in [out_dir, cache] + [out_dir / name for name in program_folders]:
            for stale in folder.iterdir():
                if _TEMPORARY_JSON.match(stale.name) and stale.is_file():
                    stale.unlink()
        yield cache


@contextlib.contextmanager
def _single_thread_environment() -> Iterator[None]:
    """Set thread limits for processes started inside the block (they read them when importing)."""
    saved = {name: os.environ.get(name) for name in SINGLE_THREAD_ENVIRONMENT}
    os.environ.update(SINGLE_THREAD_ENVIRONMENT)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _pool_outcomes(jobs: list[FitJob], workers: int) -> Iterator[FitOutcome]:
    """Fit on ``workers - 1`` worker processes plus this one.

    This process has already imported the fitter, so it starts fitting at once while the workers
    start up; each worker holds ``PREFETCH`` jobs so that it never waits for this process to come
    back from a fit of its own.
    """
    # "spawn": workers start clean (no copies of this process's threads or locks) and warm their own JIT cache.
    executor = ProcessPoolExecutor(max_workers=workers - 1, mp_context=multiprocessing.get_context("spawn"))
    queue = deque(jobs)
    in_flight: dict[Future, FitJob] = {}

    def top_up() -> None:
        while queue and len(in_flight) < PREFETCH * (workers - 1):
            job = queue.popleft()
            in_flight[executor.submit(fit_job, job)] = job

    try:
        with _single_thread_environment():  # submit() starts the workers
            top_up()
        while queue or in_flight:
            finished = [future for future in in_flight if future.done()]
            for future in finished:
                yield _future_outcome(future, in_flight.pop(future))
            top_up()
            if finished:
                continue
            if queue:
                yield fit_job(queue.popleft())
            else:
                wait(in_flight, return_when=FIRST_COMPLETED)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _future_outcome(future: Future, job: FitJob) -> FitOutcome:
    try:
        return future.result()
    except Exception as error:  # noqa: BLE001 - a worker that died takes only its own fit
        return FitOutcome(job.cache_key, error=f"{job.sample}: worker process failed ({error})")


def _dask_client(address: str):
    """A client of the Dask scheduler at ``address``; its workers must see the samples at the same paths."""
    try:
        from distributed import Client
    except ImportError:
        raise WifmError("--dask-scheduler needs Dask: pip install 'wifm_synth[dask]'") from None
    try:
        return Client(address, set_as_default=False)  # connect timeout: Dask's own setting
    except (OSError, TimeoutError, ValueError) as exc:
        raise WifmError(f"cannot connect to the Dask scheduler at {address} ({exc})") from None


def _dask_outcomes(jobs: list[FitJob], client) -> Iterator[FitOutcome]:
    from distributed import as_completed

    futures = client.map(fit_job, jobs, pure=False)
    jobs_by_key = {future.key: job for future, job in zip(futures, jobs)}
    for future in as_completed(futures, loop=client.loop):
        try:
            yield future.result()
        except Exception as error:  # noqa: BLE001 - a lost worker takes only its own fit
            job = jobs_by_key[future.key]
            yield FitOutcome(job.cache_key, error=f"{job.sample}: Dask task failed ({error})")


def _outcomes(jobs: list[FitJob], workers: int, dask_client) -> Iterator[FitOutcome]:
    if dask_client is not None:
        return _dask_outcomes(jobs, dask_client)
    if workers == 1 or len(jobs) == 1:
        return map(fit_job, jobs)
    return _pool_outcomes(jobs, min(workers, len(jobs)))


def _save_entry_patch(entry: SampleEntry, out_dir: Path) -> list[str]:
    """Write the entry's patch, with its SFZ tune applied after the (cached, unshifted) fit; returns warnings."""
    patch_path = out_dir / entry.patch_file
    patch = patch_from_dict(entry.outcome.patch, entry.path)
    patch.name = patch_path.stem
    patch.metadata["source"] = source_reference(entry.path, patch_path)
    warnings = []
    if entry.tune_cents:
        tuned = patch.pitch.tune_cents + entry.tune_cents
        patch.pitch.tune_cents = float(np.clip(tuned, -TUNE_CENTS_LIMIT, TUNE_CENTS_LIMIT))
        if patch.pitch.tune_cents != tuned:
            warnings.append(f"tune={entry.tune_cents} gives tune_cents {tuned:.1f}, clamped to "
                            f"{patch.pitch.tune_cents:.0f} (the patch format allows ±{TUNE_CENTS_LIMIT:.0f})")
    save_patch(patch, patch_path)
    return warnings


def _settle(entry: SampleEntry, outcome: FitOutcome, status: str, out_dir: Path) -> list[str]:
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


def _default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


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
) -> BankBuild:
    """Fit every sample of ``source`` into ``out_dir`` (patches, ``bank.json``, ``.cache/``).

    Input and output problems raise WifmError before anything is written; a sample that fails is
    recorded on its entry (status "failed") and the others go on.
    """
    started = time.perf_counter()
    source, out_dir = Path(source), Path(out_dir)
    settings = settings if settings is not None else FitSettings()
    if program is not None and not 0 <= program <= 127:
        raise WifmError(f"--program must be 0..127, got {program}")
    if jobs is not None and jobs < 1:
        raise WifmError(f"--jobs must be at least 1, got {jobs}")
    plans, skipped_regions = plan_bank(source, program)
    entries = [entry for plan in plans for entry in plan.entries if entry.status == "pending"]
    for entry in entries:
        try:
            entry.cache_key = _cache_key(entry, _entry_settings(entry, settings))
        except OSError as exc:
            entry.status, entry.detail = "failed", f"{entry.path}: cannot read file ({exc.strerror})"

    # Connect before writing anything, so that a wrong address leaves no output behind.
    dask_client = _dask_client(dask_scheduler) if dask_scheduler else None
    with dask_client if dask_client is not None else contextlib.nullcontext(), \
            _output_folder(out_dir, [plan.folder for plan in plans]) as cache:
        _fit_entries(entries, settings, out_dir, cache, jobs or _default_jobs(), dask_client, progress)
        bank_path = _write_bank(plans, out_dir, name or source.stem)
    return BankBuild(programs=plans, bank_path=bank_path, seconds=time.perf_counter() - started,
                     skipped_regions=skipped_regions)


def _fit_entries(entries: list[SampleEntry], settings: FitSettings, out_dir: Path, cache: Path, workers: int,
                 dask_client, progress: bool) -> None:
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
                for line in _settle(entry, outcome, status, out_dir):
                    tqdm.write(f"wifm: {line}", file=sys.stderr)
                bar.set_postfix_str(f"{entry.label}: {entry.status}", refresh=False)
                bar.update(1)

        for key in list(pending):
            cache_file = cache / f"{key}.json"
            cached = FitOutcome.from_cache(_read_cache(cache_file), key) if cache_file.is_file() else None
            if cached is not None:
                settle_all(cached, "cached")
        # Longest files first, so that no worker is left with a long fit at the end.
        todo = sorted(pending.values(), key=lambda group: -group[0].path.stat().st_size)
        fit_jobs = [FitJob(str(group[0].path), group[0].note, _entry_settings(group[0], settings),
                           group[0].cache_key) for group in todo]
        if fit_jobs:
            for outcome in _outcomes(fit_jobs, workers, dask_client):
                if outcome.error is None:
                    atomic_write_json(cache / f"{outcome.cache_key}.json", outcome.to_cache())
                settle_all(outcome, "fitted")


def _read_cache(path: Path) -> object:
    try:
        return read_json(path)
    except InputError:
        return None  # unreadable entry: fit again


def _write_bank(plans: list[ProgramPlan], out_dir: Path, name: str) -> Path | None:
    programs = []
    for plan in plans:
        fitted = [entry for entry in plan.entries if entry.status in ("fitted", "cached")]
        if fitted:
            zones = tile_sfz_zones(fitted) if plan.is_sfz else _folder_zones(fitted)
            programs.append(Program(program=plan.program, zones=zones, name=plan.name))
    if not programs:
        return None
    bank_path = out_dir / BANK_FILE
    save_bank(Bank(programs=programs, name=name), bank_path)
    return bank_path


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
                "note": _root_key(entry) if fitted else entry.note,
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
            "counts": counts, "samples": rows, "skipped_regions": build.skipped_regions}


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
) -> int:
    """``wifm bank``: build the bank, print a summary table (or JSON); 1 if any sample failed, else 0."""
    build = build_bank(source, out_dir, name=name, program=program, jobs=jobs, dask_scheduler=dask_scheduler,
                       settings=FitSettings(ops=ops))
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
