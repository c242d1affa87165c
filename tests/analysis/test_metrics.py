import numpy as np
import pytest
from analysis_signals import RATE, harmonic_tone

from wifm_synth.analysis import analyze, metrics
from wifm_synth.errors import InputError

TONE_AMPLITUDES = [0.4, 0.2, 0.15, 0.05, 0.02, 0.01]


@pytest.fixture(scope="module")
def tone():
    return harmonic_tone(220.0, TONE_AMPLITUDES, seconds=1.5, decay_s=0.8)


@pytest.fixture(scope="module")
def tone_analysis(tone):
    return analyze((tone, RATE))


def _db_gain(signal, gain_db):
    return signal * 10.0 ** (gain_db / 20.0)


def test_identical_signals_score_zero(tone, tone_analysis):
    assert metrics.multires_log_stft_distance_db(tone, tone.copy(), RATE) == 0.0
    assert metrics.harmonic_level_error_db(tone_analysis, tone_analysis) == 0.0
    assert metrics.envelope_error_db(tone_analysis, tone_analysis) == 0.0
    assert metrics.f0_error_cents(tone_analysis, tone_analysis) == 0.0


@pytest.mark.parametrize("perturb", ["gain", "noise", "lowpass"])
def test_metrics_grow_with_the_perturbation(tone, tone_analysis, perturb):
    rng = np.random.default_rng(2)
    noise = rng.standard_normal(tone.size)
    kernel = np.ones(9) / 9.0

    def perturbed(amount):
        if perturb == "gain":
            return _db_gain(tone, -6.0 * amount)
        if perturb == "noise":
            return tone + 0.003 * amount * noise
        return (1 - amount / 3) * tone + (amount / 3) * np.convolve(tone, kernel, mode="same")

    amounts = [0.0, 1.0, 2.0, 3.0]
    stft = [metrics.multires_log_stft_distance_db(tone, perturbed(a), RATE) for a in amounts]
    analyses = [analyze((perturbed(a), RATE), f0_hz=tone_analysis.f0_hz) for a in amounts]
    harmonic = [metrics.harmonic_level_error_db(tone_analysis, b) for b in analyses]
    assert stft[0] == 0.0 and np.all(np.diff(stft) > 0)
    assert harmonic[0] < 1e-9 and np.all(np.diff(harmonic) > 0)
    if perturb == "gain":
        envelope = [metrics.envelope_error_db(tone_analysis, b) for b in analyses]
        np.testing.assert_allclose(envelope, [0.0, 6.0, 12.0, 18.0], atol=0.05)
        np.testing.assert_allclose(harmonic, [0.0, 6.0, 12.0, 18.0], atol=0.05)


@pytest.mark.parametrize("cents", [-30.0, 10.0, 700.0])
def test_f0_error_measures_the_detuning(tone_analysis, cents):
    detuned = harmonic_tone(220.0 * 2 ** (cents / 1200), TONE_AMPLITUDES, seconds=1.5, decay_s=0.8)
    error = metrics.f0_error_cents(tone_analysis, analyze((detuned, RATE)))
    assert error == pytest.approx(cents, abs=0.5)


def test_silent_render_is_a_large_finite_error(tone, tone_analysis):
    quiet = analyze((1e-9 * tone, RATE), f0_hz=tone_analysis.f0_hz)
    error = metrics.harmonic_level_error_db(tone_analysis, quiet)
    assert np.isfinite(error) and error > 40.0
    assert metrics.multires_log_stft_distance_db(tone, np.zeros(tone.size), RATE) > 20.0


def test_missing_frames_and_partials_count_as_silence(tone_analysis):
    short = analyze((harmonic_tone(220.0, TONE_AMPLITUDES[:2], seconds=0.5, decay_s=0.8), RATE))
    assert metrics.harmonic_level_error_db(tone_analysis, short) > 10.0
    assert metrics.envelope_error_db(tone_analysis, short) > 10.0


def test_sine_floor_carries_the_target_envelope_at_f0(tone_analysis):
    floor = metrics.sine_floor(tone_analysis)
    assert floor.shape == tone_analysis.audio.shape
    floor_analysis = analyze((floor, RATE))
    assert metrics.envelope_error_db(tone_analysis, floor_analysis) < 0.2
    assert abs(metrics.f0_error_cents(tone_analysis, floor_analysis)) < 0.5
    assert floor_analysis.harmonic_amps[20:120, 1:].max() < 1e-3


def test_resynthesis_rebuilds_a_harmonic_tone(tone, tone_analysis):
    rebuilt = metrics.harmonic_resynthesis(tone_analysis)
    assert rebuilt.shape == tone.shape
    steady = slice(RATE // 10, RATE)
    error = rebuilt[steady] - tone[steady]
    snr_db = 10 * np.log10(np.sum(tone[steady] ** 2) / np.sum(error**2))
    assert snr_db > 40.0


def test_resynthesis_keeps_the_onset_position():
    note = harmonic_tone(330.0, [0.5, 0.2], seconds=1.0)
    fade = np.sin(0.5 * np.pi * np.arange(RATE // 50) / (RATE // 50)) ** 2  # 20 ms: no clicks at the edges
    note[: fade.size] *= fade
    note[-fade.size :] *= fade[::-1]
    delayed = np.concatenate((np.zeros(RATE // 4), note))
    analysis = analyze((delayed, RATE))
    rebuilt = metrics.harmonic_resynthesis(analysis)
    assert np.abs(rebuilt[: RATE // 4 - 2 * 480]).max() == 0.0
    assert metrics.multires_log_stft_distance_db(delayed, rebuilt, RATE) < 3.0


def test_limit_beats_floor_on_real_notes(bundled_notes):
    for path in bundled_notes:
        target = analyze(path)
        audio = target.audio[target.onset_index :]
        scores = {}
        for name, reference in (("floor", metrics.sine_floor), ("limit", metrics.harmonic_resynthesis)):
            rendered = reference(target)[target.onset_index :]
            rendered_analysis = analyze((rendered, RATE), note_hint=round(target.midi_note))
            scores[name] = (
                metrics.multires_log_stft_distance_db(audio, rendered, RATE),
                metrics.harmonic_level_error_db(target, rendered_analysis),
            )
        assert scores["limit"][0] < scores["floor"][0] - 2.0, path.name
        assert scores["limit"][1] < scores["floor"][1] - 10.0, path.name


@pytest.mark.parametrize(
    "target, rendered, rate, message",
    [
        (np.zeros((2, 2)), np.zeros(4), RATE, "target audio must be a non-empty 1-D array"),
        (np.zeros(4), np.array([]), RATE, "rendered audio must be a non-empty 1-D array"),
        (np.zeros(4), np.array([np.nan, 0.0]), RATE, "rendered audio contains NaN"),
        (np.zeros(4), np.zeros(4), 0, "sample rate"),
    ],
)
def test_stft_distance_validates_input(target, rendered, rate, message):
    with pytest.raises(InputError, match=message):
        metrics.multires_log_stft_distance_db(target, rendered, rate)


def test_precomputed_target_spectrogram_gives_the_multiresolution_distance(tone):
    """The polish's cached target (LogSpectrogramTarget) is the verification metric, not an approximation of it."""
    rng = np.random.default_rng(3)
    rendered = 0.7 * tone + 0.01 * rng.standard_normal(tone.size)
    target = metrics.LogSpectrogramTarget(tone, RATE)
    assert target.distance_db(rendered) == pytest.approx(metrics.multires_log_stft_distance_db(tone, rendered, RATE),
                                                         rel=1e-12)
    shorter = rendered[: tone.size // 2]  # zero-padded to the target's length, as the metric does
    assert target.distance_db(shorter) == pytest.approx(metrics.multires_log_stft_distance_db(tone, shorter, RATE),
                                                        rel=1e-12)
    one_size = metrics.LogSpectrogramTarget(tone, RATE, fft_sizes=(1024,))
    assert one_size.distance_db(rendered) == pytest.approx(
        metrics.multires_log_stft_distance_db(tone, rendered, RATE, fft_sizes=(1024,)), rel=1e-12)
    assert target.distance_db(tone) == 0.0
