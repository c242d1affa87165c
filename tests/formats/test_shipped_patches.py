"""The bank shipped in patches/ loads, covers the keyboard, and plays the demo song's programs."""

from pathlib import Path

import numpy as np

from wifm_synth.engine import render_note
from wifm_synth.formats.bank_json import load_bank

SHIPPED_BANK = Path(__file__).resolve().parents[2] / "patches" / "freepats" / "bank.json"


def test_shipped_bank_loads_and_every_patch_sounds_at_its_key():
    bank = load_bank(SHIPPED_BANK)
    assert sorted(program.program for program in bank.programs) == [0, 4, 33, 56, 73]
    for program in bank.programs:
        for zone in program.zones:
            patch = bank.patch_for(zone)
            audio = render_note(patch, zone.root_key, hold_s=0.3, tail_s=0.2)
            assert np.all(np.isfinite(audio))
            assert 20 * np.log10(np.sqrt(np.mean(audio**2))) > -50, zone.patch


def test_rendering_a_bank_note_plays_the_zone_patch_of_the_chosen_program():
    bank = load_bank(SHIPPED_BANK)
    flute = next(program for program in bank.programs if program.program == 73)
    zone_patch = bank.patch_for(flute.zone_for(60, 100))
    through_bank = render_note(bank, 60, hold_s=0.3, tail_s=0.1, program=(flute.bank, flute.program))
    assert np.array_equal(through_bank, render_note(zone_patch, 60, hold_s=0.3, tail_s=0.1))
    first_program = render_note(bank, 60, hold_s=0.3, tail_s=0.1)
    assert np.array_equal(first_program, render_note(bank.patch_for(bank.programs[0].zone_for(60, 100)), 60,
                                                      hold_s=0.3, tail_s=0.1))
