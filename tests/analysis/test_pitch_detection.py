import csv

import numpy as np
import pytest
import scipy.signal
from analysis_signals import BUNDLED_NOTES, RATE, harmonic_tone

from wifm_synth.analysis import analyze, hz_to_midi, midi_to_hz
from wifm_synth.analysis.pitch import VOICED_APERIODICITY, spectral_f0, yin_f0
from wifm_synth.errors import AnalysisError, InputError


def _cents(a, b):
    return 1200.0 * np.log2(a / b)


def _manifest():
    with open(BUNDLED_NOTES / "MANIFEST.tsv", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@pytest.mark.parametrize("row", _manifest(), ids=lambda row: row["file"])
def test_bundled_notes_pitch_within_25_cents_of_manifest(row):
    path = next(BUNDLED_NOTES.rglob(row["file"]))
    analysis = analyze(path, note_hint=int(row["midi_note"]))
    assert abs(_cents(analysis.f0_hz, float(row["f0_est_hz"]))) < 25.0
    assert analysis.midi_note == pytest.approx(hz_to_midi(analysis.f0_hz))
    assert analysis.warnings == []


@pytest.mark.parametrize(
    "f0_hz, amplitudes",
    [
        (41.2, [1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]),  # low E of a bass
        (110.0, [0.0, 1.0, 1.0, 0.8, 0.6, 0.4]),  # missing fundamental: not an octave up
        (220.0, [0.05, 1.0, 0.7, 0.5, 0.3]),  # weak fundamental
        (196.0, [1.0, 0.0, 0.5, 0.0, 0.3, 0.0, 0.2]),  # odd harmonics only (clarinet-like)
        (300.0, [0.3, 1.0, 0.1, 0.3]),  # dominant second harmonic
        (1000.0, [1.0]),
        (3000.0, [1.0, 0.3]),
    ],
)
def test_no_octave_errors_on_hard_spectra(f0_hz, amplitudes):
    analysis = analyze((harmonic_tone(f0_hz, amplitudes, decay_s=1.5), RATE))
    assert abs(_cents(analysis.f0_hz, f0_hz)) < 2.0


def test_stretched_partials_give_first_partial_and_inharmonicity():
    stretch = 4e-4
    tone = harmonic_tone(55.0, [1.0 / k for k in range(1, 60)], decay_s=1.5, stretch=stretch)
    analysis = analyze((tone, RATE))
    assert analysis.inharmonicity == pytest.approx(stretch, rel=0.02)
    assert analysis.f0_hz == pytest.approx(55.0 * np.sqrt(1 + stretch), rel=1e-4)
    # High partials are measured where they are, more than a harmonic spacing above k·f0.
    expected_30 = 30 * 55.0 * np.sqrt(1 + stretch * 900)
    assert expected_30 - 30 * 55.0 > 55.0
    assert np.median(analysis.harmonic_freqs[10:100, 29]) == pytest.approx(expected_30, abs=0.5)


def test_period_between_integer_lags_is_not_taken_an_octave_low():
    tone = harmonic_tone(2912.8, [0.4, 0.9, 0.5, 0.7, 0.3, 0.6], seconds=1.0)
    yin, _ = yin_f0(tone, RATE, np.array([12000, 24000]))
    np.testing.assert_allclose(yin, 2912.8 / 2, rtol=1e-3)  # YIN alone misses the 16.5-sample period
    assert analyze((tone, RATE)).f0_hz == pytest.approx(2912.8, rel=1e-4)


def test_strongly_stretched_partials_fall_back_to_the_spectrum():
    stretch = 4e-4
    rng = np.random.default_rng(0)
    amplitudes = rng.uniform(0.2, 1.0, 40) / np.sqrt(np.arange(1, 41))
    amplitudes[0] = 0.1
    tone = harmonic_tone(91.3, amplitudes, seconds=1.5, decay_s=1.0, stretch=stretch)
    _, aperiodicity = yin_f0(tone, RATE, np.arange(2000, 40000, 4000))
    assert np.all(aperiodicity > VOICED_APERIODICITY)  # no clear period for YIN
    analysis = analyze((tone, RATE))
    assert analysis.f0_hz == pytest.approx(91.3 * np.sqrt(1 + stretch), rel=1e-4)
    assert analysis.inharmonicity == pytest.approx(stretch, rel=0.02)


def test_spectral_f0_finds_nothing_in_noise():
    power_db = 10 * np.log10(np.random.default_rng(1).chisquare(64, 8193) / 64)
    assert spectral_f0(power_db, 48000 / 16384) is None


def test_yin_finds_the_period_of_each_frame():
    tone = harmonic_tone(150.0, [1.0, 0.5, 0.25], seconds=0.5)
    f0, aperiodicity = yin_f0(tone, RATE, np.array([6000, 12000]))
    np.testing.assert_allclose(f0, 150.0, rtol=1e-3)
    assert np.all(aperiodicity < 0.05)


def test_matching_hint_gives_no_warning():
    analysis = analyze((harmonic_tone(220.0, [1.0, 0.5]), RATE), note_hint=57)
    assert analysis.warnings == [] and analysis.note_hint == 57


def test_octave_error_is_resolved_in_favour_of_the_hint():
    # A 110 Hz note whose fundamental and odd partials are nearly gone reads as 220 Hz.
    tone = harmonic_tone(110.0, [0.002, 1.0, 0.002, 0.6, 0.002, 0.4])
    assert abs(_cents(analyze((tone, RATE)).f0_hz, 220.0)) < 5.0
    analysis = analyze((tone, RATE), note_hint=45)
    assert abs(_cents(analysis.f0_hz, 110.0)) < 5.0
    assert len(analysis.warnings) == 1 and "octave" in analysis.warnings[0]
    assert analysis.harmonic_amps[100, 1] == pytest.approx(1.0, rel=0.02)


def test_hint_a_semitone_away_warns_but_keeps_the_detection():
    analysis = analyze((harmonic_tone(220.0, [1.0, 0.5]), RATE), note_hint=58)
    assert analysis.f0_hz == pytest.approx(220.0, rel=1e-4)
    assert len(analysis.warnings) == 1 and "-100 cents from note hint 58" in analysis.warnings[0]


def test_given_f0_skips_detection():
    analysis = analyze((harmonic_tone(220.0, [1.0, 0.5]), RATE), f0_hz=110.0)
    assert analysis.f0_hz == 110.0
    assert analysis.harmonic_amps[100, 1] == pytest.approx(1.0, rel=0.02)
    assert analysis.harmonic_amps[100, 0] < 1e-3


@pytest.mark.parametrize("colour", ["white", "pink", "brown"])
def test_noise_has_no_clear_pitch(colour):
    noise = np.random.default_rng(7).standard_normal(RATE)
    if colour == "pink":
        noise = scipy.signal.lfilter([0.0499, -0.0960, 0.0506, -0.0044], [1.0, -2.4950, 2.0173, -0.5222], noise)
    elif colour == "brown":
        noise = scipy.signal.lfilter(*scipy.signal.butter(1, 200 / (RATE / 2)), noise)
    with pytest.raises(AnalysisError, match="no clear pitch \\(unpitched or noise\\)"):
        analyze((noise, RATE))


@pytest.mark.parametrize("hint", [-1, 128, 60.5, True])
def test_invalid_note_hint_is_rejected(hint):
    with pytest.raises(InputError, match="note hint"):
        analyze((harmonic_tone(220.0, [1.0]), RATE), note_hint=hint)


def test_midi_conversions_round_trip():
    assert midi_to_hz(69) == 440.0
    assert hz_to_midi(midi_to_hz(40.25)) == pytest.approx(40.25)


def test_given_f0_measures_even_a_render_without_partials_there():
    noise = 0.1 * np.random.default_rng(4).standard_normal(RATE)
    analysis = analyze((noise, RATE), f0_hz=220.0)
    assert analysis.f0_hz == 220.0
    assert np.all(np.isfinite(analysis.harmonic_amps)) and analysis.harmonic_amps.max() < 0.05


@pytest.mark.parametrize(
    "file, hint", [("bass_40_100.wav", 28), ("bass_40_100.wav", 52), ("piano_55_100.wav", 67), ("piano_55_100.wav", 43)]
)
def test_hint_an_octave_off_does_not_override_the_audio(file, hint):
    # A wrong hint (or file name) an octave up would drop the real fundamental and odd partials; an
    # octave down would invent partials the recording does not have. The detection stands, with a warning.
    path = next(BUNDLED_NOTES.rglob(file))
    detected = analyze(path).f0_hz
    analysis = analyze(path, note_hint=hint)
    assert analysis.f0_hz == pytest.approx(detected, rel=1e-6)
    assert len(analysis.warnings) == 1 and "partials do not support it" in analysis.warnings[0]
