"""End-to-end fitting: engine-rendered synthetic patches are recovered; real notes fit; settings checked."""

import numpy as np
import pytest

from wifm_synth.analysis import analyze
from wifm_synth.analysis.metrics import harmonic_level_error_db
from wifm_synth.engine import render_note
from wifm_synth.errors import InputError, WifmError
from wifm_synth.fit.fitter import FitSettings, fit_analysis, fit_file
from wifm_synth.formats.patch_json import load_patch, save_patch
from wifm_synth.voice.patch import Envelope, Operator, Patch, Pitch

RATE = 48000
HOLD_S = 1.2
SYNTHETIC_CASES = 40


def envelope_db(times, segments):
    """Reference envelope of docs/FORMATS.md in dB: linear-amplitude attack, then dB-linear segments."""
    attack_s, attack_db = segments[0]
    knot_times = np.cumsum([d for d, _ in segments])
    decay = np.interp(times, knot_times, [level for _, level in segments])
    attack = attack_db + 20.0 * np.log10(np.clip(times / attack_s, 1e-6, 1.0))
    return np.where(times <= attack_s, attack, decay)


def random_patch(rng):
    note = int(rng.integers(40, 56))
    carrier_segments = [(0.01, 0.0), (float(rng.uniform(0.2, 1.0)), float(rng.uniform(-12.0, -2.0))), (2.0, -20.0)]
    modulator_segments = [(0.01, 0.0), (float(rng.uniform(0.3, 1.5)), float(rng.uniform(-10.0, -2.0)))]
    patch = Patch(
        operators=[
            Operator(ratio=1.0, level=0.3, carrier=True, modulators=[1], envelope=Envelope(carrier_segments, 0.2)),
            Operator(ratio=float(rng.integers(1, 13)), level=float(rng.uniform(0.5, 6.0)), carrier=False,
                     envelope=Envelope(modulator_segments, 0.2)),
        ],
        pitch=Pitch(reference_note=note),
    )
    return patch, note


def recovery_error(patch, result):
    """Relative RMS error of β(t) over held frames where the carrier is above −40 dB (attack excluded)."""
    carrier, modulator = patch.operators
    times = result.frame_times
    true_betas = modulator.level * 10.0 ** (envelope_db(times, modulator.envelope.segments) / 20.0)
    audible = (envelope_db(times, carrier.envelope.segments) > -40.0) & (times >= 0.05) & (times < HOLD_S - 0.05)
    return float(np.sqrt(np.mean(((result.betas[audible] - true_betas[audible]) / true_betas[audible]) ** 2)))


def test_engine_rendered_patches_are_recovered():
    rng = np.random.default_rng(2024)
    recovered = 0
    misses = []
    for _ in range(SYNTHETIC_CASES):
        patch, note = random_patch(rng)
        audio = render_note(patch, note, hold_s=HOLD_S, tail_s=0.3)
        result = fit_analysis(analyze((audio, RATE)))
        error = recovery_error(patch, result)
        if result.ratios == [1.0, patch.operators[1].ratio] and error < 0.05:
            recovered += 1
        else:
            misses.append((patch.operators[1].ratio, round(patch.operators[1].level, 2), result.ratios, error))
    assert recovered >= 0.95 * SYNTHETIC_CASES, misses


def test_fitted_patch_renders_like_the_synthetic_target():
    rng = np.random.default_rng(5)
    patch, note = random_patch(rng)
    audio = render_note(patch, note, hold_s=HOLD_S, tail_s=0.5)
    target = analyze((audio, RATE))
    result = fit_analysis(target)
    assert result.patch.pitch.reference_note == note and abs(result.patch.pitch.tune_cents) < 1.0
    assert result.patch.operators[0].level == pytest.approx(0.3, rel=0.05)
    rendered = analyze((render_note(result.patch, note, hold_s=HOLD_S, tail_s=0.5), RATE), f0_hz=target.f0_hz)
    assert harmonic_level_error_db(target, rendered) < 1.5


@pytest.mark.parametrize("loss", ["mse", "sinkhorn"])
def test_other_losses_recover_the_ratio(loss):
    patch, note = random_patch(np.random.default_rng(8))
    analysis = analyze((render_note(patch, note, hold_s=HOLD_S, tail_s=0.3), RATE))
    result = fit_analysis(analysis, FitSettings(loss=loss))
    assert result.ratios == [1.0, patch.operators[1].ratio]
    assert result.patch.metadata["loss_kind"] == loss and np.isfinite(result.loss)


def test_seed_method_is_worse_on_an_integer_ratio():
    patch = Patch(
        operators=[
            Operator(ratio=1.0, level=0.3, carrier=True, modulators=[1], envelope=Envelope([(0.01, 0.0), (1.0, -6.0)])),
            Operator(ratio=9.0, level=2.5, carrier=False, envelope=Envelope([(0.01, 0.0), (1.0, -4.0)])),
        ],
        pitch=Pitch(reference_note=45),
    )
    analysis = analyze((render_note(patch, 45, hold_s=HOLD_S, tail_s=0.3), RATE))
    wifm = fit_analysis(analysis)
    seed = fit_analysis(analysis, FitSettings(method="seed"))
    assert seed.patch.metadata["method"] == "seed" and len(seed.patch.operators[0].envelope.segments) == 3
    assert wifm.ratios == [1.0, 9.0]
    assert seed.loss > wifm.loss + 0.1


def test_bundled_real_notes_fit(bundled_notes, tmp_path):
    assert bundled_notes
    for path in bundled_notes:
        result = fit_file(path)
        assert np.isfinite(result.loss) and result.patch.operators[0].level > 0.0
        assert result.ratios[0] in (1.0, 2.0, 3.0) and float(result.ratios[1]).is_integer()
        assert result.patch.metadata["source"] == path.name and result.seconds > 0.0
        output = tmp_path / f"{path.stem}.json"
        save_patch(result.patch, output)
        assert load_patch(output).operators[1].ratio == result.ratios[1]


def test_log_axis_matches_real_harmonic_levels_better(bundled_notes):
    """The axis choice, measured: mean harmonic-level error of renders of the fits on the real notes."""
    errors = {"harmonic": [], "log": []}
    for path in bundled_notes:
        target = analyze(path)
        hold_s = target.release_start_s or 2.0
        for axis in errors:
            patch = fit_analysis(target, FitSettings(axis=axis)).patch
            audio = render_note(patch, patch.pitch.reference_note, hold_s=hold_s, tail_s=0.5)
            errors[axis].append(harmonic_level_error_db(target, analyze((audio, RATE), f0_hz=target.f0_hz)))
    assert np.mean(errors["log"]) <= np.mean(errors["harmonic"]), errors


def test_note_hint_sets_the_reference_note(bundled_notes):
    path = next(p for p in bundled_notes if p.name == "flute_67_100.wav")
    result = fit_file(path, note=67, settings=FitSettings(reference_velocity=90))
    assert result.patch.pitch.reference_note == 67 and result.patch.pitch.reference_velocity == 90
    assert abs(result.patch.pitch.tune_cents) < 50.0


@pytest.mark.parametrize("options, message", [
    ({"ops": 5}, "--ops 5"),
    ({"ops": 0}, "--ops 0"),
    ({"ops": True}, "--ops True"),
    ({"loss": "l2"}, "--loss l2"),
    ({"method": "adam"}, "--method adam"),
    ({"axis": "mel"}, "axis mel"),
    ({"reference_velocity": 0}, "velocity"),
])
def test_settings_are_validated(options, message):
    with pytest.raises(InputError, match=message):
        FitSettings(**options)


def test_seed_method_rejects_mse():
    analysis = analyze((0.3 * np.sin(2 * np.pi * 220.0 * np.arange(RATE) / RATE), RATE))
    with pytest.raises(WifmError, match="seed method"):
        fit_analysis(analysis, FitSettings(method="seed", loss="mse"))


def test_settings_round_trip_and_bad_inputs(tmp_path):
    settings = FitSettings(loss="mse")
    assert FitSettings(**settings.to_dict()) == settings
    with pytest.raises(InputError):
        fit_analysis("not an analysis")
    with pytest.raises(InputError, match="no such file|not"):
        fit_file(tmp_path / "missing.wav")


def test_short_and_quiet_edges():
    time = np.arange(int(0.06 * RATE)) / RATE
    short = fit_analysis(analyze((0.3 * np.sin(2 * np.pi * 220.0 * time), RATE)))
    assert short.patch.operators[0].level == pytest.approx(0.3, rel=0.05)
    one_frame = analyze((0.3 * np.sin(2 * np.pi * 220.0 * time), RATE))
    one_frame.rms_env[1:] = 0.0  # audible only at the onset frame
    with pytest.raises(InputError, match="too short"):
        fit_analysis(one_frame)
