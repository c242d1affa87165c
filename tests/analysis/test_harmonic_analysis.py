import time

import numpy as np
import pytest
from analysis_signals import RATE, harmonic_tone

from wifm_synth.analysis import analyze
from wifm_synth.analysis.envelope import detect_onset, detect_release, frame_rms
from wifm_synth.analysis.spectrum import MAX_PARTIAL_HZ

AMPLITUDES = [0.5, 0.25, 0.1, 0.05, 0.01, 0.001]


def test_partial_amplitudes_frequencies_and_phases_are_measured():
    phases = [0.1, 1.2, -2.0, 2.9, -0.7, 0.4]
    tone = harmonic_tone(196.0, AMPLITUDES, seconds=1.5, phases=phases)
    analysis = analyze((tone, RATE))
    steady = slice(20, 120)
    amps_db = 20 * np.log10(analysis.harmonic_amps[steady, :6])
    np.testing.assert_allclose(amps_db, np.broadcast_to(20 * np.log10(AMPLITUDES), amps_db.shape), atol=0.05)
    expected_freqs = np.broadcast_to(196.0 * np.arange(1, 7), amps_db.shape)
    np.testing.assert_allclose(analysis.harmonic_freqs[steady, :6], expected_freqs, rtol=1e-4)
    centre_times = analysis.frame_centers[steady, None] / RATE
    expected = 2 * np.pi * 196.0 * np.arange(1, 7) * centre_times + np.array(phases)
    wrapped_error = np.angle(np.exp(1j * (analysis.harmonic_phases[steady, :6] - expected)))
    assert np.abs(wrapped_error).max() < 0.01
    assert np.all(analysis.harmonic_amps[steady, 6:] < 1e-5)


def test_shapes_frames_and_partial_count():
    analysis = analyze((harmonic_tone(440.0, AMPLITUDES, seconds=1.0), RATE))
    n_frames = analysis.frame_times.size
    assert n_frames == 100 and analysis.hop_s == 0.01
    np.testing.assert_allclose(analysis.frame_times, np.arange(100) * 0.01)
    n_partials = int(MAX_PARTIAL_HZ // 440.0)
    for field in ("harmonic_amps", "harmonic_freqs", "harmonic_phases"):
        assert getattr(analysis, field).shape == (n_frames, n_partials)
    assert analysis.rms_env.shape == (n_frames,) and analysis.partial_hz.shape == (n_partials,)


def test_partials_stop_below_nyquist_at_low_rates():
    analysis = analyze((harmonic_tone(440.0, AMPLITUDES, seconds=1.0), RATE), sample_rate=16000)
    assert analysis.sample_rate == 16000
    assert analysis.partial_hz.max() < 8000.0 and analysis.partial_hz.size == 17


def test_vibrato_is_followed_by_the_measured_frequencies():
    t = np.arange(2 * RATE) / RATE
    deviation = 0.01 * np.sin(2 * np.pi * 5.0 * t)  # ±1 % at 5 Hz
    phase = 2 * np.pi * 400.0 * np.cumsum(1 + deviation) / RATE
    tone = sum(a * np.sin(k * phase) for k, a in enumerate([1.0, 0.5, 0.3], start=1))
    analysis = analyze((tone, RATE))
    instantaneous = 400.0 * (1 + 0.01 * np.sin(2 * np.pi * 5.0 * analysis.frame_centers / RATE))
    steady = slice(10, 190)
    error = analysis.harmonic_freqs[steady, 2] - 3 * instantaneous[steady]
    assert np.ptp(analysis.harmonic_freqs[steady, 2]) > 15.0  # ±12 Hz swing at the third partial
    assert np.abs(error).max() < 2.0


def test_frame_f0_follows_vibrato_and_stretched_partials():
    t = np.arange(2 * RATE) / RATE
    deviation = 0.01 * np.sin(2 * np.pi * 5.0 * t)
    phase = 2 * np.pi * 400.0 * np.cumsum(1 + deviation) / RATE
    tone = sum(a * np.sin(k * phase) for k, a in enumerate([1.0, 0.5, 0.3], start=1))
    analysis = analyze((tone, RATE))
    instantaneous = 400.0 * (1 + 0.01 * np.sin(2 * np.pi * 5.0 * analysis.frame_centers / RATE))
    steady = slice(10, 190)
    assert np.abs(analysis.frame_f0_hz[steady] - instantaneous[steady]).max() < 0.5
    stiff = analyze((harmonic_tone(110.0, AMPLITUDES, stretch=4e-4), RATE))
    stiff_cents = 1200.0 * np.log2(stiff.frame_f0_hz[steady] / stiff.f0_hz)
    assert np.abs(stiff_cents).max() < 1.0

def test_rms_envelope_of_a_sine_is_its_amplitude_over_sqrt2():
    analysis = analyze((harmonic_tone(300.0, [0.8], seconds=1.0), RATE))
    np.testing.assert_allclose(analysis.rms_env[1:-1], 0.8 / np.sqrt(2), rtol=1e-3)


def test_frame_rms_matches_direct_computation():
    audio = np.random.default_rng(3).standard_normal(5000)
    centers = np.array([0, 100, 2500, 4990])
    direct = [np.sqrt(np.sum(np.square(audio[max(0, c - 50) : c + 50])) / 100) for c in centers]
    np.testing.assert_allclose(frame_rms(audio, centers, 50), direct)


@pytest.mark.parametrize("delay_s", [0.0, 0.3, 0.777])
def test_onset_after_leading_silence_and_noise(delay_s):
    noise = 1e-5 * np.random.default_rng(5).standard_normal(int(delay_s * RATE))
    tone = np.concatenate((noise, harmonic_tone(220.0, [0.5, 0.2], seconds=1.0, decay_s=0.5)))
    analysis = analyze((tone, RATE))
    assert abs(analysis.onset_index - delay_s * RATE) <= 0.003 * RATE
    assert analysis.frame_times[0] == 0.0
    assert analysis.harmonic_amps[10, 0] == pytest.approx(0.5 * np.exp(-0.1 / 0.5), rel=0.03)


def test_slow_attack_onset_is_where_the_sound_begins():
    tone = np.concatenate((np.zeros(RATE // 5), harmonic_tone(330.0, [0.5], seconds=1.0)))
    tone[RATE // 5 :] *= np.minimum(1.0, np.arange(RATE) / (0.3 * RATE))  # 300 ms linear fade-in
    onset = detect_onset(tone, RATE)
    assert RATE // 5 <= onset <= RATE // 5 + 0.02 * RATE


def _gated_tone(release_at_s, release_tau_s, seconds=3.0):
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = np.exp(-t / 2.0 - np.maximum(t - release_at_s, 0.0) / release_tau_s)
    return harmonic_tone(220.0, [0.5, 0.3, 0.1], seconds=seconds) * envelope


@pytest.mark.parametrize("release_at_s", [0.8, 1.234, 2.0])
@pytest.mark.parametrize("release_tau_s", [0.001, 0.05])
def test_release_start_is_found(release_at_s, release_tau_s):
    release = analyze((_gated_tone(release_at_s, release_tau_s), RATE)).release_start_s
    assert release is not None and abs(release - release_at_s) <= 0.03


@pytest.mark.parametrize(
    "envelope",
    [
        lambda t: np.ones_like(t),  # sustained to the end
        lambda t: np.exp(-t / 0.1),  # fades into silence (marimba-like)
        lambda t: 1 + 0.5 * np.sin(2 * np.pi * 3.0 * t),  # deep tremolo
        lambda t: np.exp(-t / 1.0) * (1 + 0.3 * np.sin(2 * np.pi * 6.0 * t)),
    ],
)
def test_no_release_without_a_note_off(envelope):
    t = np.arange(3 * RATE) / RATE
    tone = harmonic_tone(220.0, [0.5, 0.3], seconds=3.0) * envelope(t)
    assert analyze((tone, RATE)).release_start_s is None


def test_bundled_notes_release_at_their_note_off(bundled_notes):
    for path in bundled_notes:
        release = analyze(path).release_start_s
        assert release is not None and 1.95 <= release <= 2.1, path.name


def test_release_detection_on_too_short_envelopes_is_none():
    assert detect_release(np.ones(10), 0.01) is None


def test_silence_dither_and_quiet_tails_stay_finite():
    rng = np.random.default_rng(11)
    tone = harmonic_tone(110.0, [0.5, 0.2, 0.1], seconds=3.0)
    tone[RATE:] = 0.0  # digital silence
    tone[2 * RATE :] = rng.integers(-1, 2, RATE) / 32768.0  # ±1 LSB dither
    tone[int(1.5 * RATE) : 2 * RATE] = 1e-12 * rng.standard_normal(RATE // 2)  # far below 16-bit
    analysis = analyze((tone, RATE))
    for field in ("harmonic_amps", "harmonic_freqs", "harmonic_phases", "rms_env"):
        values = getattr(analysis, field)
        assert np.all(np.isfinite(values)), field
    assert np.all(analysis.harmonic_amps >= 0.0)
    assert np.all(analysis.harmonic_freqs > 0.0)


def test_analysis_is_fast(bundled_notes):
    analyze(bundled_notes[0])
    for path in bundled_notes:
        best = min(_cpu_seconds(analyze, path) for _ in range(3))
        assert best <= 0.15, path.name


def _cpu_seconds(function, *args):
    """CPU time, so that other processes competing for the cores do not make the test flaky."""
    started = time.process_time()
    function(*args)
    return time.process_time() - started


def test_real_note_after_leading_noise_keeps_onset_pitch_and_release(bundled_notes):
    path = next(p for p in bundled_notes if p.name == "trumpet_58_100.wav")
    plain = analyze(path)
    lead_in = 1e-4 * np.random.default_rng(9).standard_normal(RATE // 2)
    delayed = analyze((np.concatenate((lead_in, plain.audio)), RATE))
    assert abs(delayed.onset_index - (RATE // 2 + plain.onset_index)) <= 0.002 * RATE
    assert delayed.f0_hz == pytest.approx(plain.f0_hz, abs=0.05)
    assert delayed.release_start_s == pytest.approx(plain.release_start_s, abs=0.011)


def test_partials_account_for_the_energy_of_real_notes(bundled_notes):
    # Σ a_k²/2 over the partials is the power of a harmonic signal: on real notes it must match the
    # RMS envelope, which checks amplitude calibration and that no partial is missed or counted twice.
    for path in bundled_notes:
        analysis = analyze(path)
        steady = slice(20, 150)
        partial_power = np.sum(np.square(analysis.harmonic_amps[steady]) / 2, axis=1)
        ratio_db = 10 * np.log10(partial_power / np.square(analysis.rms_env[steady]))
        assert abs(np.median(ratio_db)) < 0.3, path.name
