"""A program folder named like the bank file is refused before any fit, not after all of them."""

import time

import pytest

from tests.bank.test_bank_build import write_note
from wifm_synth.bank.build import build_bank
from wifm_synth.errors import WifmError


def test_program_folder_named_bank_json_is_refused_up_front(tmp_path):
    write_note(tmp_path / "src" / "bank.json" / "tone_60.wav", 60)
    write_note(tmp_path / "src" / "piano" / "tone_64.wav", 64)
    started = time.monotonic()
    with pytest.raises(WifmError, match="bank.json"):
        build_bank(tmp_path / "src", tmp_path / "bank", jobs=1, progress=False)
    assert time.monotonic() - started < 10  # no fit ran
    assert not (tmp_path / "bank").exists()
