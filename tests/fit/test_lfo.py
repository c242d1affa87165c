"""LFO fitting: engine-rendered vibrato and tremolo are recovered; unmodulated and bundled notes get none.

Tolerances on engine renders: rate within 0.2 Hz, depth within 20 %, delay within DELAY_TOLERANCE_S
(the fade-in is a ramp under per-frame noise; a tenth of a second is well below what one hears of it).
"""

import numpy as np
import pytest

from wifm_synth.analysis import analyze, midi_to_hz
from wifm_synth.engine import render_note
from wifm_synth.fit.fitter import fit_analysis
from wifm_synth.fit.lfo import fit_lfo, lfo_fade
from wifm_synth.voice.patch import Envelope, Lfo, Operator, Patch, Pitch

RATE = 48000
NOTE = 62
HOLD_S = 2.0
DELAY_TOLERANCE_S = 0.1


def sustained_patch(lfo: Lfo, modulator_ratio: float = 2.0) -> Patch:
    """A held 2-operator tone with a gentle decay, so the only fast level change is the tremolo."""
    carrier = Envelope(segments=[(0.02, 0.0), (2.0, -4.0)], release_s=0.2)
    modulator = Envelope(segments=[(0.02, 0.0), (2.0, -3.0)], release_s=0.2)
    return Patch(
        operators=[
            Operator(ratio=1.0, level=0.3, carrier=True, modulators=[1], envelope=carrier),
            Operator(ratio=modulator_ratio, level=1.5, carrier=False, envelope=modulator),
        ],
        pitch=Pitch(reference_note=NOTE),
        lfo=lfo,
    )


def analysed(lfo: Lfo, modulator_ratio: float = 2.0):
    audio = render_note(sustained_patch(lfo, modulator_ratio), NOTE, hold_s=HOLD_S, tail_s=0.3)
    return analyze((audio, RATE))


@pytest.mark.parametrize("rate_hz, depth_cents, delay_s", [
    (4.0, 10.0, 0.0), (5.0, 25.0, 0.3), (5.5, 50.0, 0.5), (6.3, 15.0, 0.2), (7.0, 40.0, 0.1),
])
def test_vibrato_is_recovered(rate_hz, depth_cents, delay_s):
    fitted = fit_lfo(analysed(Lfo(rate_hz=rate_hz, delay_s=delay_s, pitch_depth_cents=depth_cents)))
    assert fitted.found
    assert fitted.lfo.rate_hz == pytest.approx(rate_hz, abs=0.2)
    assert fitted.lfo.pitch_depth_cents == pytest.approx(depth_cents, rel=0.2)
    assert fitted.lfo.delay_s == pytest.approx(delay_s, abs=DELAY_TOLERANCE_S)
    assert fitted.lfo.amp_depth_db == 0.0 and not fitted.level_correction_db.any()


@pytest.mark.parametrize("depth_cents, depth_db", [(20.0, 0.0), (20.0, 6.0), (40.0, 6.0)])
def test_vibrato_centre_is_the_played_pitch(depth_cents, depth_db):
    """With tremolo in step, the analysis f0 leans 6–12 cents towards the loud half of the vibrato;
    f0 + pitch_offset_cents is the played pitch."""
    target = analysed(Lfo(rate_hz=5.5, delay_s=0.2, pitch_depth_cents=depth_cents, amp_depth_db=depth_db))
    fitted = fit_lfo(target)
    centre_cents = 1200.0 * np.log2(target.f0_hz / midi_to_hz(NOTE)) + fitted.pitch_offset_cents
    assert abs(centre_cents) < 1.0


@pytest.mark.parametrize("rate_hz, depth_db, delay_s", [(4.5, 2.0, 0.0), (5.5, 6.0, 0.4), (7.0, 3.0, 0.2)])
def test_tremolo_is_recovered(rate_hz, depth_db, delay_s):
    fitted = fit_lfo(analysed(Lfo(rate_hz=rate_hz, delay_s=delay_s, amp_depth_db=depth_db)))
    assert fitted.lfo.rate_hz == pytest.approx(rate_hz, abs=0.2)
    assert fitted.lfo.amp_depth_db == pytest.approx(depth_db, rel=0.2)
    assert fitted.lfo.delay_s == pytest.approx(delay_s, abs=DELAY_TOLERANCE_S)
    assert fitted.lfo.pitch_depth_cents == 0.0


def test_vibrato_and_tremolo_share_the_lfo():
    true = Lfo(rate_hz=5.2, delay_s=0.25, pitch_depth_cents=20.0, amp_depth_db=4.0)
    fitted = fit_lfo(analysed(true)).lfo
    assert fitted.rate_hz == pytest.approx(true.rate_hz, abs=0.2)
    assert fitted.pitch_depth_cents == pytest.approx(true.pitch_depth_cents, rel=0.2)
    assert fitted.amp_depth_db == pytest.approx(true.amp_depth_db, rel=0.2)
    assert fitted.delay_s == pytest.approx(true.delay_s, abs=DELAY_TOLERANCE_S)


@pytest.mark.parametrize("modulator_ratio", [1.0, 3.0])
def test_unmodulated_note_gets_no_lfo(modulator_ratio):
    fitted = fit_lfo(analysed(Lfo(), modulator_ratio))
    assert not fitted.found and fitted.lfo == Lfo()
    assert not fitted.level_correction_db.any()


def test_shallow_modulation_is_not_worth_an_lfo():
    assert not fit_lfo(analysed(Lfo(rate_hz=5.0, pitch_depth_cents=1.0, amp_depth_db=0.2))).found


def test_level_correction_restores_the_envelope_the_engine_swings_down_from():
    """Engine level = envelope − depth·fade·(1 − sin)/2; the corrected measured level is that envelope."""
    true = Lfo(rate_hz=5.5, delay_s=0.3, amp_depth_db=6.0)
    target = analysed(true)
    fitted = fit_lfo(target)
    times = target.frame_times
    tremolo_db = -true.amp_depth_db * lfo_fade(times, true.delay_s) * 0.5 * (1.0 - np.sin(2 * np.pi * true.rate_hz * times))
    steady = (times > 0.1) & (times < HOLD_S - 0.1)
    assert np.abs(fitted.level_correction_db - tremolo_db)[steady].max() < 0.6


def test_fitted_patch_carries_the_lfo_and_a_smooth_envelope():
    true = Lfo(rate_hz=5.5, delay_s=0.0, pitch_depth_cents=20.0, amp_depth_db=6.0)
    result = fit_analysis(analysed(true))
    assert result.patch.lfo.rate_hz == pytest.approx(true.rate_hz, abs=0.2)
    assert result.patch.lfo.amp_depth_db == pytest.approx(true.amp_depth_db, rel=0.2)
    assert result.patch.operators[0].level == pytest.approx(0.3, rel=0.1)
    assert result.patch.pitch.reference_note == NOTE and abs(result.patch.pitch.tune_cents) < 1.0
    # The held envelope is the patch's own 0 → −4 dB decay (the segments after HOLD_S are the release's).
    # Without the correction it would fit the wiggles or their mean, 3 dB below what the engine's
    # tremolo swings down from (−7 dB at the end here).
    segments = result.patch.operators[0].envelope.segments
    ends = np.cumsum([duration for duration, _ in segments])
    held_levels = [level for (_, level), end in zip(segments, ends) if end < HOLD_S - 0.1]
    assert len(held_levels) <= 3
    assert min(held_levels) > -4.5 and max(held_levels) < 0.5


def test_bundled_notes_get_no_lfo(bundled_notes):
    """None of the bundled notes (piano, bass, Rhodes, flute, trumpet) is played with vibrato or tremolo:
    their pitch tracks wobble by a cent or two without a steady rate, below every threshold."""
    for path in bundled_notes:
        fitted = fit_lfo(analyze(path))
        assert not fitted.found, (path.name, fitted.lfo)
