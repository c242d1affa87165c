"""``wifm info PATCH_OR_BANK``: what an instrument holds, as text or JSON.

For a bank: its programs, each program's zones (keys, velocities, root key), and per zone the patch's
operator count, source sample and fit quality, read from the metadata ``wifm fit``/``wifm bank`` store
in every patch. A single patch is shown as one zone covering every key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from wifm_synth.formats.bank_json import load_instrument
from wifm_synth.library.naming import note_name
from wifm_synth.voice.patch import Patch


def _patch_summary(patch: Patch, patch_file: Path) -> dict:
    metadata = patch.metadata or {}
    metrics = metadata.get("metrics") or {}
    source = metadata.get("source")
    if source is not None:  # stored relative to the patch file; shown relative to where the user stands
        source = os.path.relpath(os.path.normpath(patch_file.parent / source))
    return {
        "name": patch.name,
        "operators": len(patch.operators),
        "algorithm": patch.algorithm,
        "reference_note": patch.pitch.reference_note,
        "source": source,
        "loss": metadata.get("loss"),
        "loss_kind": metadata.get("loss_kind"),
        "quality": metrics.get("quality"),
    }


def instrument_info(path: str | os.PathLike) -> dict:
    """A JSON-ready description of the patch or bank at ``path``."""
    instrument = load_instrument(path)
    if isinstance(instrument, Patch):
        zone = {"patch": Path(path).name, "root_key": instrument.pitch.reference_note, "keys": [0, 127],
                "velocities": [1, 127], **_patch_summary(instrument, Path(path))}
        return {"kind": "patch", "name": instrument.name, "file": os.fspath(path), "zones": [zone]}
    programs = []
    for program in instrument.programs:
        zones = [{"patch": zone.patch, "root_key": zone.root_key, "keys": [zone.key_lo, zone.key_hi],
                  "velocities": [zone.vel_lo, zone.vel_hi], **_patch_summary(instrument.patches[zone.patch], Path(path).parent / zone.patch)}
                 for zone in program.zones]
        programs.append({"bank": program.bank, "program": program.program, "name": program.name, "zones": zones})
    return {"kind": "bank", "name": instrument.name, "file": os.fspath(path),
            "drums": list(instrument.drums) if instrument.drums is not None else None, "programs": programs}


def _zone_line(zone: dict) -> str:
    low, high = zone["keys"]
    keys = f"{low}-{high} ({note_name(low)}..{note_name(high)})"
    quality = f"quality {zone['quality']:.2f}" if zone["quality"] is not None else "quality ?"
    loss = f", {zone['loss_kind']} loss {zone['loss']:.3g}" if zone["loss"] is not None else ""
    source = f", from {zone['source']}" if zone["source"] else ""
    return (f"    keys {keys:<18} vel {zone['velocities'][0]}-{zone['velocities'][1]:<4} root "
            f"{note_name(zone['root_key']):<4} {zone['operators']} ops  {quality}{loss}{source}")


def format_info(info: dict) -> str:
    """The description as the text ``wifm info`` prints."""
    if info["kind"] == "patch":
        return "\n".join([f"{info['file']}: patch {info['name']!r}", *map(_zone_line, info["zones"])])
    drums = info["drums"]
    lines = [f"{info['file']}: bank {info['name']!r}, {len(info['programs'])} programs, "
             f"{sum(len(program['zones']) for program in info['programs'])} zones; channel 10 plays "
             + (f"bank {drums[0]} program {drums[1]}" if drums else "nothing (no drum program)")]
    for program in info["programs"]:
        lines.append(f"  bank {program['bank']} program {program['program']:>3} {program['name']!r}: "
                     f"{len(program['zones'])} zone(s)")
        lines.extend(map(_zone_line, program["zones"]))
    return "\n".join(lines)


def info_command(path: str | os.PathLike, as_json: bool = False) -> int:
    info = instrument_info(path)
    print(json.dumps(info) if as_json else format_info(info))
    return 0
