"""Drum fits keep their key, reach noise through feedback, and drum folders become the channel-10 kit."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from wifm_synth.bank.build import build_bank
from wifm_synth.errors import InputError
from wifm_synth.fit.drums import (
    SAMPLE_RATE,
    band_levels_db,
    fit_drum,
    fit_drum_file,
    search_timbre,
)
from wifm_synth.library.drums import is_kit_name
from wifm_synth.library.naming import gm_program_for

TIME = np.arange(round(0.4 * SAMPLE_RATE)) / SAMPLE_RATE


def noise_hit(seed: int = 3) -> np.ndarray:
    """A hi-hat-like burst: white noise, high-passed by differencing, decaying in 50 ms."""
    noise = np.random.default_rng(seed).standard_normal(TIME.size + 1)
    return 0.3 * np.diff(noise) * np.exp(-TIME / 0.05)


def tom(hz: float = 110.0) -> np.ndarray:
    return 0.8 * np.sin(2 * np.pi * hz * TIME) * np.exp(-TIME / 0.15)


def test_a_noise_burst_is_fitted_with_feedback_at_its_own_key():
    fit = fit_drum(noise_hit(), 42)
    assert fit.patch.pitch.reference_note == 42 and fit.patch.pitch.tune_cents == 0.0
    assert fit.timbre.feedback > 0.0  # noise needs a noisy modulator
    _, harmonic_only = search_timbre(band_levels_db(noise_hit(), SAMPLE_RATE, 0), 42, harmonic_only=True)
    assert fit.loss < harmonic_only - 2.0  # free ratios and feedback beat what a pitched fit can reach


def test_a_tom_keeps_the_mapped_key_whatever_its_pitch():
    # 110 Hz is A2 (45); mapped to key 41, the patch still sounds at key 41's reference and puts its energy near
    # 110 Hz through a non-integer carrier ratio rather than moving the key.
    fit = fit_drum(tom(110.0), 41)
    assert fit.patch.pitch.reference_note == 41
    carrier_hz = fit.timbre.carrier_ratio * 440.0 * 2 ** ((41 - 69) / 12)
    assert 70.0 < carrier_hz < 180.0
    assert fit.loss < 6.0


def test_a_drum_sample_without_a_key_is_an_input_error(tmp_path):
    path = tmp_path / "hit.wav"
    soundfile.write(path, noise_hit(), SAMPLE_RATE)
    with pytest.raises(InputError, match="needs its key"):
        fit_drum_file(path, None)


def test_drum_names_are_kits_not_steel_drums():
    assert gm_program_for("drums") == 114  # General MIDI matching alone would take Steel Drums
    assert all(is_kit_name(name) for name in ("drums", "Drum Kit", "percussion", "drum_set"))
    assert not any(is_kit_name(name) for name in ("steel drums", "Steel_Drums", "taiko drum", "piano"))


def _write(path: Path, audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, audio, SAMPLE_RATE)


def test_a_drums_folder_becomes_the_channel_10_kit(tmp_path):
    library = tmp_path / "library"
    _write(library / "drums" / "kick_36.wav", tom(60.0))
    _write(library / "drums" / "hat_42.wav", noise_hit())
    _write(library / "drums" / "clap.wav", noise_hit(5))  # no key in the name: the next free GM drum key
    build = build_bank(library, tmp_path / "bank", jobs=1, progress=False)
    assert not build.failed
    document = json.loads((tmp_path / "bank" / "bank.json").read_text())
    assert document["drums"] == {"bank": 128, "program": 0}
    (kit,) = document["programs"]
    assert (kit["bank"], kit["program"], kit["name"]) == (128, 0, "drums")
    assert sorted(zone["root_key"] for zone in kit["zones"]) == [35, 36, 42]


def test_the_drums_flag_makes_a_single_instrument_a_kit(tmp_path):
    _write(tmp_path / "hits" / "snare_38.wav", noise_hit())
    build_bank(tmp_path / "hits", tmp_path / "bank", jobs=1, progress=False, drums=True)
    document = json.loads((tmp_path / "bank" / "bank.json").read_text())
    assert document["drums"] == {"bank": 128, "program": 0}
    _write(tmp_path / "two" / "a" / "x_38.wav", noise_hit())
    _write(tmp_path / "two" / "b" / "y_40.wav", noise_hit())
    with pytest.raises(InputError, match="--drums needs a single-instrument source"):
        build_bank(tmp_path / "two", tmp_path / "bank2", jobs=1, progress=False, drums=True)
    assert not (tmp_path / "bank2").exists()


def test_a_keyed_note_without_pitch_is_fitted_unpitched_at_its_key(tmp_path):
    # A sound effect in a melodic program (a SoundFont's fret noise, a named noise sample): not a failure.
    library = tmp_path / "effects"
    _write(library / "noise_60.wav", np.concatenate([noise_hit(), noise_hit(9)]))
    _write(library / "noise.wav", noise_hit(11))  # no key to keep: still the pitched fit's failure
    build = build_bank(library, tmp_path / "bank", jobs=1, progress=False)
    by_label = {entry.label: entry for entry in build.entries}
    keyed, unkeyed = by_label["effects/noise_60.wav"], by_label["effects/noise.wav"]
    assert keyed.status == "fitted" and "fitted unpitched at key 60" in keyed.detail
    assert keyed.outcome.patch["pitch"]["reference_note"] == 60
    assert unkeyed.status == "failed" and "no clear pitch" in unkeyed.detail
