"""2-operator FM line spectra: against the FFT of rendered tones, a NumPy twin and finite differences."""

import numpy as np
import pytest
import scipy.special

from wifm_synth.errors import InputError
from wifm_synth.voice.spectrum import fm_lines, harmonic_spectrum

RATE = 48000
F0 = 100.0  # with 1 s of audio every line at a multiple of 1 Hz falls exactly on an FFT bin


def rendered_line_magnitudes(carrier_ratio, mod_ratio, beta):
    """Magnitude per 1 Hz bin of sin(2π c f0 t + β sin(2π m f0 t)) rendered for 1 s."""
    t = np.arange(RATE) / RATE
    tone = np.sin(2 * np.pi * carrier_ratio * F0 * t + beta * np.sin(2 * np.pi * mod_ratio * F0 * t))
    return np.abs(np.fft.rfft(tone)) * 2.0 / RATE


def fm_lines_twin(betas, carrier_ratio, mod_ratio, n_sidebands):
    """NumPy twin of the line form: positions |c + n m|, amplitudes sign(c + n m)·J_n(β) and d/dβ."""
    orders = np.arange(-n_sidebands, n_sidebands + 1)
    frequencies = carrier_ratio + orders * mod_ratio
    sign = np.sign(frequencies)
    amplitudes = sign * scipy.special.jv(orders[None, :], betas[:, None])
    derivatives = sign * scipy.special.jvp(orders[None, :], betas[:, None])
    return np.abs(frequencies), amplitudes, derivatives


def harmonic_spectrum_twin(betas, carrier_ratio, mod_ratio, n_harmonics):
    """NumPy twin: signed lines summed per harmonic, then |·| (right-hand slope at β = 0)."""
    positions, amplitudes, derivatives = fm_lines_twin(betas, carrier_ratio, mod_ratio,
                                                       (n_harmonics + carrier_ratio) // mod_ratio)
    keep = (positions >= 1) & (positions <= n_harmonics)
    slots = positions[keep].astype(int) - 1
    sums = np.zeros((betas.size, n_harmonics))
    sum_derivatives = np.zeros((betas.size, n_harmonics))
    np.add.at(sums.T, slots, amplitudes[:, keep].T)
    np.add.at(sum_derivatives.T, slots, derivatives[:, keep].T)
    at_zero = betas[:, None] == 0.0
    slope = np.where(at_zero & (sums == 0.0), np.abs(sum_derivatives), np.sign(sums) * sum_derivatives)
    return np.abs(sums), slope


RATIO_PAIRS = [(1, 1), (1, 2), (2, 1), (3, 2), (1, 3), (2, 5), (1, 7)]
BETAS = np.array([0.0, 0.3, 1.0, 2.404825557695773, 3.8, 6.0, 10.0])


@pytest.mark.parametrize("carrier_ratio, mod_ratio", RATIO_PAIRS)
def test_harmonic_magnitudes_match_fft_of_rendered_tone(carrier_ratio, mod_ratio):
    magnitudes, _ = harmonic_spectrum(BETAS, carrier_ratio, mod_ratio, 60)
    harmonic_bins = (np.arange(1, 61) * F0).astype(int)
    for beta, row in zip(BETAS, magnitudes):
        measured = rendered_line_magnitudes(carrier_ratio, mod_ratio, beta)[harmonic_bins]
        np.testing.assert_allclose(row, measured, rtol=0, atol=1e-3)


@pytest.mark.parametrize("carrier_ratio, mod_ratio", RATIO_PAIRS)
def test_kernel_matches_numpy_twin(carrier_ratio, mod_ratio):
    betas = np.linspace(0.0, 12.0, 37)
    magnitudes, derivatives = harmonic_spectrum(betas, carrier_ratio, mod_ratio, 48)
    twin_magnitudes, twin_derivatives = harmonic_spectrum_twin(betas, carrier_ratio, mod_ratio, 48)
    np.testing.assert_allclose(magnitudes, twin_magnitudes, rtol=0, atol=1e-12)
    np.testing.assert_allclose(derivatives, twin_derivatives, rtol=0, atol=1e-12)


@pytest.mark.parametrize("carrier_ratio, mod_ratio", [(1.0, 1.37), (0.5, 2.0), (3.0, 0.25)])
def test_line_kernel_matches_numpy_twin(carrier_ratio, mod_ratio):
    betas = np.linspace(0.0, 9.0, 10)
    lines = fm_lines(betas, carrier_ratio, mod_ratio, 30)
    positions, amplitudes, derivatives = fm_lines_twin(betas, carrier_ratio, mod_ratio, 30)
    np.testing.assert_array_equal(lines.positions, positions)
    np.testing.assert_allclose(lines.amplitudes, amplitudes, rtol=0, atol=1e-12)
    np.testing.assert_allclose(lines.amplitude_derivatives, derivatives, rtol=0, atol=1e-12)


def test_coinciding_lines_add_signed_not_absolute():
    # c = m = 1: harmonic 1 gets J_0 (n=0) and the folded n=-2 line, -J_-2 = -J_2
    beta = 1.5
    magnitudes, _ = harmonic_spectrum(beta, 1, 1, 4)
    j = scipy.special.jv(np.arange(6), beta)
    assert magnitudes[0] == pytest.approx(abs(j[0] - j[2]), abs=1e-14)
    assert magnitudes[1] == pytest.approx(abs(j[1] + j[3]), abs=1e-14)


@pytest.mark.parametrize("carrier_ratio, mod_ratio", [(1, 1), (2, 3), (1, 4)])
def test_beta_derivative_matches_central_differences(carrier_ratio, mod_ratio):
    betas = np.array([0.4, 1.3, 2.9, 5.2, 8.8])
    step = 1e-6
    _, derivatives = harmonic_spectrum(betas, carrier_ratio, mod_ratio, 40)
    upper, _ = harmonic_spectrum(betas + step, carrier_ratio, mod_ratio, 40)
    lower, _ = harmonic_spectrum(betas - step, carrier_ratio, mod_ratio, 40)
    np.testing.assert_allclose(derivatives, (upper - lower) / (2 * step), rtol=0, atol=1e-8)


def test_derivative_at_zero_index_is_the_right_hand_slope():
    step = 1e-7
    magnitudes, derivatives = harmonic_spectrum(0.0, 1, 2, 8)
    upper, _ = harmonic_spectrum(step, 1, 2, 8)
    np.testing.assert_allclose(magnitudes, np.eye(8)[0], atol=0)
    np.testing.assert_allclose(derivatives, (upper - magnitudes) / step, rtol=0, atol=1e-6)
    assert derivatives[2] == pytest.approx(0.5)  # sideband at c + m = 3 starts as β/2


@pytest.mark.parametrize("carrier_ratio, mod_ratio", [(1.0, 1.37), (2.0, 0.73), (0.5, 2.21)])
def test_free_ratio_lines_match_fft(carrier_ratio, mod_ratio):
    beta = 7.0
    lines = fm_lines(beta, carrier_ratio, mod_ratio, 40)
    magnitudes, _ = lines.magnitudes()
    measured = rendered_line_magnitudes(carrier_ratio, mod_ratio, beta)
    bins = np.round(lines.positions * F0).astype(int)
    np.testing.assert_allclose(magnitudes, measured[bins], rtol=0, atol=1e-3)


def test_free_ratio_lines_sum_to_harmonic_spectrum_for_integer_ratios():
    betas = np.array([0.0, 1.1, 4.5])
    lines = fm_lines(betas, 2.0, 3.0, 30)
    harmonics = lines.positions.astype(int)
    sums = np.zeros((3, 40))
    keep = (harmonics >= 1) & (harmonics <= 40)
    np.add.at(sums.T, harmonics[keep] - 1, lines.amplitudes[:, keep].T)
    np.testing.assert_allclose(np.abs(sums), harmonic_spectrum(betas, 2, 3, 40)[0], rtol=0, atol=1e-14)


def test_free_ratio_derivatives_match_central_differences():
    betas = np.array([0.8, 3.3])
    step = 1e-6
    lines = fm_lines(betas, 1.0, 1.41, 25)
    beta_numeric = (fm_lines(betas + step, 1.0, 1.41, 25).amplitudes
                    - fm_lines(betas - step, 1.0, 1.41, 25).amplitudes) / (2 * step)
    np.testing.assert_allclose(lines.amplitude_derivatives, beta_numeric, rtol=0, atol=1e-8)
    carrier_numeric = (fm_lines(betas, 1.0 + step, 1.41, 25).positions
                       - fm_lines(betas, 1.0 - step, 1.41, 25).positions) / (2 * step)
    mod_numeric = (fm_lines(betas, 1.0, 1.41 + step, 25).positions
                   - fm_lines(betas, 1.0, 1.41 - step, 25).positions) / (2 * step)
    np.testing.assert_allclose(lines.position_per_carrier_ratio, carrier_numeric, atol=1e-8)
    np.testing.assert_allclose(lines.position_per_mod_ratio, mod_numeric, atol=1e-7)


def test_line_magnitude_slopes_match_differences():
    betas = np.array([0.0, 0.9, 4.2])
    step = 1e-7
    _, slopes = fm_lines(betas, 1.0, 2.3, 20).magnitudes()
    upper, _ = fm_lines(betas + step, 1.0, 2.3, 20).magnitudes()
    lower, _ = fm_lines(np.maximum(betas - step, 0.0), 1.0, 2.3, 20).magnitudes()
    spacing = (betas + step) - np.maximum(betas - step, 0.0)
    np.testing.assert_allclose(slopes, (upper - lower) / spacing[:, None], rtol=0, atol=1e-6)
    assert slopes[0, 21] == pytest.approx(0.5)  # first upper sideband grows as β/2 from β = 0


def test_line_exactly_at_dc_carries_nothing():
    lines = fm_lines(2.0, 1.0, 0.5, 4)
    at_dc = lines.positions == 0.0
    assert at_dc.sum() == 1
    assert lines.amplitudes[at_dc] == 0.0
    assert lines.position_per_mod_ratio[at_dc] == 0.0


@pytest.mark.parametrize("args", [
    (1.0, 1.5, 1, 10), (1.0, 1, 0, 10), (1.0, 1, 1, 0), (-0.1, 1, 1, 10), (np.nan, 1, 1, 10),
    (np.ones((2, 2)), 1, 1, 10), (1.0, True, 1, 10),
])
def test_harmonic_spectrum_rejects_invalid_input(args):
    with pytest.raises(InputError):
        harmonic_spectrum(*args)


@pytest.mark.parametrize("args", [(1.0, 0.0, 1.0, 5), (1.0, 1.0, np.inf, 5), (1.0, 1.0, 1.0, -1), (-1.0, 1.0, 1.0, 5)])
def test_fm_lines_rejects_invalid_input(args):
    with pytest.raises(InputError):
        fm_lines(*args)
