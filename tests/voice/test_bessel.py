"""Bessel J_n tables: against scipy, against a NumPy quadrature twin, and input validation."""

import numpy as np
import pytest
import scipy.special

from wifm_synth.errors import InputError
from wifm_synth.voice.bessel import (
    bessel_j,
    bessel_j_and_derivative_into,
    bessel_j_into,
    bessel_table,
)


def bessel_by_quadrature(x: float, max_order: int) -> tuple[np.ndarray, np.ndarray]:
    """NumPy twin: J_n(x) = (1/2π) ∫ cos(nτ - x sin τ) dτ and J_n'(x) = (1/2π) ∫ sin(nτ - x sin τ) sin τ dτ;
    the trapezoid rule on a periodic integrand is exact up to aliased orders n ± 512, negligible
    for |x| <= 60, n <= 120."""
    tau = np.linspace(0.0, 2.0 * np.pi, 512, endpoint=False)
    phase = np.arange(max_order + 1)[:, None] * tau - x * np.sin(tau)
    return np.cos(phase).mean(axis=1), (np.sin(phase) * np.sin(tau)).mean(axis=1)


ARGUMENTS = np.concatenate([[0.0, 1e-300, 1e-12, 1e-9, 1e-7, 1e-4], np.linspace(0.01, 50.0, 997)])


@pytest.mark.parametrize("max_order", [0, 1, 2, 7, 40, 80])
def test_values_and_derivatives_match_scipy(max_order):
    values, derivatives = bessel_table(ARGUMENTS, max_order)
    orders = np.arange(max_order + 1)[None, :]
    assert values.shape == (ARGUMENTS.size, max_order + 1)
    np.testing.assert_allclose(values, scipy.special.jv(orders, ARGUMENTS[:, None]), rtol=0, atol=1e-10)
    np.testing.assert_allclose(derivatives, scipy.special.jvp(orders, ARGUMENTS[:, None]), rtol=0, atol=1e-10)


def test_tiny_arguments_keep_relative_accuracy():
    # J_n(x) ~ (x/2)^n / n!: the series branch must not flush small values to zero early
    values = bessel_j(1e-5, 3)
    expected = scipy.special.jv(np.arange(4), 1e-5)
    np.testing.assert_allclose(values, expected, rtol=1e-12)


@pytest.mark.parametrize("x", [0.0, 3e-9, 0.3, 2.404825557695773, 7.5, 31.0, 49.9])
def test_kernels_match_numpy_quadrature_twin(x):
    values, derivatives = bessel_by_quadrature(x, 80)
    out = np.empty(81)
    bessel_j_into(x, out)
    np.testing.assert_allclose(out, values, rtol=0, atol=1e-12)
    out_derivatives, work = np.empty(81), np.empty(82)
    bessel_j_and_derivative_into(x, out, out_derivatives, work)
    np.testing.assert_allclose(out, values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out_derivatives, derivatives, rtol=0, atol=1e-12)


def test_negative_arguments_follow_parity():
    x = np.array([0.5, 4.0, 17.0])
    np.testing.assert_allclose(bessel_j(-x, 9), bessel_j(x, 9) * (-1.0) ** np.arange(10), rtol=0, atol=1e-15)


def test_derivative_kernel_uses_neighbouring_orders():
    values, derivatives, work = np.empty(6), np.empty(6), np.empty(7)
    bessel_j_and_derivative_into(3.7, values, derivatives, work)
    step = 1e-6
    numeric = (bessel_j(3.7 + step, 5) - bessel_j(3.7 - step, 5)) / (2 * step)
    np.testing.assert_allclose(derivatives, numeric, rtol=0, atol=1e-8)
    np.testing.assert_allclose(values, bessel_j(3.7, 5), rtol=0, atol=0)


def test_normalisation_identity_holds():
    values = bessel_j(np.array([0.7, 12.0, 45.0]), 90)
    np.testing.assert_allclose(values[:, 0] + 2.0 * values[:, 2::2].sum(axis=1), 1.0, atol=1e-14)


def test_scalar_argument_gives_one_column():
    values, derivatives = bessel_table(2.0, 4)
    assert values.shape == derivatives.shape == (5,)


@pytest.mark.parametrize("x, order", [(np.nan, 3), (np.inf, 3), (np.ones((2, 2)), 3), (1.0, -1), (1.0, 2.5), (1.0, True)])
def test_invalid_input_raises_input_error(x, order):
    with pytest.raises(InputError):
        bessel_table(x, order)
