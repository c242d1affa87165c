"""Drum kits from sample folders and SFZ files: which program is a kit, and which key each drum sample gets.

A program is a drum kit when ``--drums`` says so (then the source must be one instrument) or when its
folder or SFZ is named as one (``drums/``, ``Drum Kit``, ``percussion``). General MIDI name matching would
take "drums" for program 114, Steel Drums, a pitched instrument; a kit instead becomes bank 128 program 0,
the program MIDI channel 10 plays, and each of its samples is fitted unpitched at its own key
(:mod:`wifm_synth.fit.drums`). A drum sample whose name gives no key takes the next free key of the
General MIDI percussion map, in name order, from the bass drum (35) on.
"""

from __future__ import annotations

import re
from pathlib import Path

from wifm_synth.errors import InputError
from wifm_synth.formats.sf2 import DRUM_BANK
from wifm_synth.library.discover import ProgramPlan, skip_duplicate_keys

# Names (their letters, lower case, spaces and punctuation removed) that make a program a drum kit.
KIT_NAMES = {"drum", "drums", "drumkit", "drumkits", "drumset", "kit", "percussion", "standardkit", "gmdrums"}
FIRST_GM_DRUM_KEY = 35
KIT_PROGRAM = 0


def is_kit_name(name: str) -> bool:
    return "".join(re.findall(r"[a-z]+", name.lower())) in KIT_NAMES


def mark_drum_kits(plans: list[ProgramPlan], source: Path, drums: bool) -> None:
    """Make the kits among ``plans`` drum programs (bank 128); ``drums`` forces it for a single instrument."""
    if drums and len(plans) != 1:
        raise InputError(f"--drums needs a single-instrument source; this one has {len(plans)} instruments "
                         f"({', '.join(plan.name for plan in plans)})", source)
    kits = [plan for plan in plans if drums or is_kit_name(plan.name)]
    for number, plan in enumerate(kits):
        plan.bank, plan.program, plan.is_drums = DRUM_BANK, KIT_PROGRAM + number, True
        _assign_drum_keys(plan)


def _assign_drum_keys(plan: ProgramPlan) -> None:
    """Give key-less samples the next free GM percussion keys; an SFZ region's own key range comes first."""
    for entry in plan.entries:
        # A drum region mapped to one key plays there, whatever key centre its sample was given.
        if entry.regions and (entry.note is None or entry.regions[0].key_lo == entry.regions[0].key_hi):
            entry.note = entry.regions[0].key_lo
    taken = {entry.note for entry in plan.entries if entry.note is not None}
    free = (key for key in range(FIRST_GM_DRUM_KEY, 128) if key not in taken)
    for entry in sorted((entry for entry in plan.entries if entry.note is None), key=lambda entry: entry.label):
        entry.note = next(free, None)
        if entry.note is None:
            entry.status, entry.detail = "skipped", "no free key left in the drum kit"
    skip_duplicate_keys(plan.entries, lambda entry: entry.note)
