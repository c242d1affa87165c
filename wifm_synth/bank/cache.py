"""The bank folder's fit cache and run lock: finished fits keyed by content hash, so a re-run fits only what is missing.

A fit is cached in ``BANK_DIR/.cache/`` under a hash of the sample's bytes, the fit settings and the tool
version, as soon as it finishes. An entry that is unreadable or not a complete, valid one is fitted
again; temporaries a killed run left behind are cleared at the next start. One run at a time holds the
folder's lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

from filelock import lock_descriptor

from wifm_synth import __version__
from wifm_synth.bank.executors import FitOutcome
from wifm_synth.errors import InputError, OutputError, PatchError
from wifm_synth.fit.fitter import FitSettings
from wifm_synth.formats.atomic import atomic_write_json, read_json
from wifm_synth.formats.inputs import open_input
from wifm_synth.formats.patch_json import patch_from_dict
from wifm_synth.formats.sfz import RegionSound

CACHE_FOLDER = ".cache"
CACHE_FORMAT = "wifm-bank-cache"
LOCK_FILE = "lock"
# atomic_output's temporary files: ".<target name>.<8 random characters><suffix>".
_TEMPORARY_JSON = re.compile(r"^\..+\.json\.[a-z0-9_]{8}\.json$")


def cache_key(sample: Path, note: int | None, settings: FitSettings, sound: RegionSound | None = None, *,
              unpitched: bool = False, sample_identity: dict | None = None) -> str:
    """Hash of what decides a fit: the tool version, the settings, the given key, an SFZ region's sound, the
    fit mode (a drum's is unpitched) and the sample's bytes; InputError when the sample cannot be read.

    ``sample_identity`` stands in for the bytes of a sample not yet made (a SoundFont note: the font's hash,
    preset, key, velocity and render settings), so that a cached fit needs no render."""
    digest = hashlib.sha256()
    header = {"tool_version": __version__, "settings": settings.to_dict(), "note": note}
    # Each is absent when not used, so that fits cached before it existed keep their keys.
    if sound is not None:
        header["sfz_sound"] = dataclasses.asdict(sound)
    if unpitched:
        header["unpitched"] = True
    if sample_identity is not None:
        header["sample"] = sample_identity
        digest.update(json.dumps(header, sort_keys=True).encode())
        return digest.hexdigest()
    digest.update(json.dumps(header, sort_keys=True).encode())
    with open_input(sample, "an audio file") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def store_outcome(cache: Path, outcome: FitOutcome) -> None:
    atomic_write_json(cache / f"{outcome.cache_key}.json", {
        "format": CACHE_FORMAT, "version": 1, "key": outcome.cache_key, "patch": outcome.patch, "loss": outcome.loss,
        "seconds": outcome.seconds, "detected_note": outcome.detected_note, "warnings": outcome.warnings})


def cached_outcome(cache: Path, key: str) -> FitOutcome | None:
    """The cached outcome of ``key``, or None when there is no complete, valid entry for it (fit again)."""
    path = cache / f"{key}.json"
    if not path.is_file():
        return None
    try:
        document = read_json(path)
    except InputError:
        return None
    if not isinstance(document, dict) or document.get("format") != CACHE_FORMAT:
        return None
    if document.get("key") != key or not isinstance(document.get("patch"), dict):
        return None
    try:
        patch_from_dict(document["patch"])
    except PatchError:
        return None
    return FitOutcome(cache_key=key, patch=document["patch"], loss=document.get("loss"),
                      seconds=float(document.get("seconds") or 0.0), detected_note=document.get("detected_note"),
                      warnings=list(document.get("warnings") or []))


@contextlib.contextmanager
def run_lock(out_dir: Path) -> Iterator[None]:
    """Hold the bank folder's lock (its cache folder must exist), or OutputError at once if another run holds
    it. The system releases it when the holder exits, so a killed run never leaves the folder locked."""
    try:
        lock = open(out_dir / CACHE_FOLDER / LOCK_FILE, "w")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise OutputError(f"cannot write here ({exc.strerror})", out_dir) from None
    with lock:
        if not lock_descriptor(lock.fileno(), blocking=False):  # flock, or LockFileEx on Windows
            raise OutputError("another `wifm bank` is writing this folder", out_dir)
        yield


@contextlib.contextmanager
def output_folder(out_dir: Path, program_folders: list[str]) -> Iterator[Path]:
    """Create the bank folder, hold its lock, clear temporaries a killed run left; yield the cache folder."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError("exists and is not a folder", out_dir)
    cache = out_dir / CACHE_FOLDER
    try:
        for folder in [cache] + [out_dir / name for name in program_folders]:
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write here ({exc.strerror})", out_dir) from None
    with run_lock(out_dir):
        for folder in [out_dir, cache] + [out_dir / name for name in program_folders]:
            for stale in folder.iterdir():
                if _TEMPORARY_JSON.match(stale.name) and stale.is_file():
                    stale.unlink()
        yield cache
