"""Line spectrum of a 2-operator FM pair and its exact derivative with respect to the index beta.

    sin(2π c f0 t + β sin(2π m f0 t)) = Σ_n J_n(β) sin(2π (c + n m) f0 t)

so order n puts a line of signed amplitude J_n(β) at (c + n m)·f0 (J_-n = (-1)^n J_n). A line
with negative frequency folds to |c + n m| with its sign flipped, because sin is odd; a line at
exactly 0 Hz is sin(0) = 0 and vanishes. With integer ratios several orders land on the same
harmonic: their signed amplitudes are summed first, and only then is the magnitude taken.

Two forms:
- ``harmonic_spectrum``: integer ratios, magnitudes on harmonics k = 1..H of f0, batched over
  frames (one beta per frame) in a single Numba call — the fitter's inner loop.
- ``fm_lines``: any positive ratios, one line per order n = -N..N with its position (f0 units),
  signed amplitude, d amplitude/dβ and d position/d ratio, for free-ratio fitting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from wifm_synth.checks import finite_scalar_or_vector, integer_at_least
from wifm_synth.errors import InputError
from wifm_synth.voice.bessel import bessel_j_and_derivative_into


@njit(cache=True)
def _signed_order_value(table, n):
    """table[|n|] with the J_-n = (-1)^n J_n sign for negative n."""
    if n >= 0:
        return table[n]
    value = table[-n]
    return -value if (-n) % 2 == 1 else value


@njit(cache=True)
def magnitude_and_derivative(signed_sum, signed_derivative, beta):
    """|S| and d|S|/dβ. At S = 0 the one-sided slopes are ±|S'|: for β = 0 (edge of the domain
    β >= 0) take the right-hand slope |S'|; inside the domain take their average, 0."""
    if signed_sum > 0.0:
        return signed_sum, signed_derivative
    if signed_sum < 0.0:
        return -signed_sum, -signed_derivative
    if beta == 0.0:
        return 0.0, abs(signed_derivative)
    return 0.0, 0.0


@njit(cache=True)
def harmonic_spectrum_max_order(carrier_ratio, mod_ratio, n_harmonics):
    """Largest |n| whose line |c + n m| can land on a harmonic 1..H."""
    return (n_harmonics + carrier_ratio) // mod_ratio


@njit(cache=True)
def harmonic_spectrum_into(betas, carrier_ratio, mod_ratio, magnitudes, derivatives,
                           bessel_values, bessel_derivatives, bessel_work):
    """Numba kernel behind ``harmonic_spectrum``; writes (T, H) outputs, no allocation.

    Work buffers need max_order+1, max_order+1 and max_order+2 slots
    (max_order = ``harmonic_spectrum_max_order``).
    """
    n_harmonics = magnitudes.shape[1]
    max_order = harmonic_spectrum_max_order(carrier_ratio, mod_ratio, n_harmonics)
    for t in range(betas.shape[0]):
        beta = betas[t]
        n_significant = bessel_j_and_derivative_into(beta, bessel_values[: max_order + 1],
                                                     bessel_derivatives[: max_order + 1],
                                                     bessel_work[: max_order + 2])
        sums = magnitudes[t]
        sum_derivatives = derivatives[t]
        for k in range(n_harmonics):
            sums[k] = 0.0
            sum_derivatives[k] = 0.0
        for n in range(-n_significant, n_significant + 1):
            frequency = carrier_ratio + n * mod_ratio
            if frequency == 0 or abs(frequency) > n_harmonics:
                continue
            sign = 1.0 if frequency > 0 else -1.0
            slot = abs(frequency) - 1
            sums[slot] += sign * _signed_order_value(bessel_values, n)
            sum_derivatives[slot] += sign * _signed_order_value(bessel_derivatives, n)
        for k in range(n_harmonics):
            sums[k], sum_derivatives[k] = magnitude_and_derivative(sums[k], sum_derivatives[k], beta)


def _validated_betas(beta) -> np.ndarray:
    betas = finite_scalar_or_vector(beta, "beta")
    if np.any(betas < 0.0):
        raise InputError("beta: modulation indices must be >= 0")
    return betas


def harmonic_spectrum(beta, carrier_ratio: int, mod_ratio: int, n_harmonics: int) -> tuple[np.ndarray, np.ndarray]:
    """Magnitudes of harmonics k = 1..H (in units of the carrier's unit amplitude) and d/dβ.

    ``beta`` is a scalar or a (T,) array of per-frame modulation indices (radians, >= 0); the
    ratios are integers (carrier at ``carrier_ratio``·f0, modulator at ``mod_ratio``·f0). Returns
    (magnitudes, d magnitudes/dβ) of shape (H,) or (T, H). The DC line is dropped.
    """
    carrier = integer_at_least(carrier_ratio, "carrier_ratio", 1)
    mod = integer_at_least(mod_ratio, "mod_ratio", 1)
    harmonics = integer_at_least(n_harmonics, "n_harmonics", 1)
    betas = _validated_betas(beta)
    flat = np.ascontiguousarray(betas.reshape(-1))
    magnitudes = np.empty((flat.shape[0], harmonics))
    derivatives = np.empty_like(magnitudes)
    max_order = harmonic_spectrum_max_order(carrier, mod, harmonics)
    harmonic_spectrum_into(flat, carrier, mod, magnitudes, derivatives,
                           np.empty(max_order + 1), np.empty(max_order + 1), np.empty(max_order + 2))
    if betas.ndim == 0:
        return magnitudes[0], derivatives[0]
    return magnitudes, derivatives


@dataclass(frozen=True)
class FmLines:
    """One line per order n of a 2-operator FM pair (positions in units of f0).

    ``amplitudes`` are signed (fold sign included) so coincident lines can be summed by the
    caller; ``magnitudes()`` gives |amplitude| and its β-derivative for lines that do not coincide.
    """

    orders: np.ndarray  # (L,) n = -N..N
    positions: np.ndarray  # (L,) |c + n m|
    amplitudes: np.ndarray  # (T, L) or (L,) signed amplitude
    amplitude_derivatives: np.ndarray  # d amplitude / dβ, same shape
    position_per_carrier_ratio: np.ndarray  # (L,) d position / d c
    position_per_mod_ratio: np.ndarray  # (L,) d position / d m
    betas: np.ndarray  # () or (T,)

    def magnitudes(self) -> tuple[np.ndarray, np.ndarray]:
        """(|amplitude|, d|amplitude|/dβ) with the same kink rule as ``harmonic_spectrum``."""
        sign = np.sign(self.amplitudes)
        at_zero_index = np.broadcast_to(np.asarray(self.betas)[..., None] == 0.0, self.amplitudes.shape)
        derivative = np.where(sign != 0.0, sign * self.amplitude_derivatives,
                              np.where(at_zero_index, np.abs(self.amplitude_derivatives), 0.0))
        return np.abs(self.amplitudes), derivative


@njit(cache=True)
def _fm_lines_kernel(betas, carrier_ratio, mod_ratio, orders, amplitudes, derivatives,
                     bessel_values, bessel_derivatives, bessel_work):
    for t in range(betas.shape[0]):
        bessel_j_and_derivative_into(betas[t], bessel_values, bessel_derivatives, bessel_work)
        for i in range(orders.shape[0]):
            n = orders[i]
            frequency = carrier_ratio + n * mod_ratio
            # a folded line flips sign; a line exactly at 0 Hz is sin(0) and carries nothing
            sign = 1.0 if frequency > 0.0 else (-1.0 if frequency < 0.0 else 0.0)
            amplitudes[t, i] = sign * _signed_order_value(bessel_values, n)
            derivatives[t, i] = sign * _signed_order_value(bessel_derivatives, n)


def fm_lines(beta, carrier_ratio: float, mod_ratio: float, n_sidebands: int) -> FmLines:
    """All lines of orders n = -N..N for real ratios (carrier c, modulator m, both > 0, in f0 units).

    ``beta`` is a scalar or (T,) array. Choose N above the largest β (J_n(β) is below 1e-6 for
    n > β + 4·β^(1/3) + 8). Position derivatives are sign(c + n m) and n·sign(c + n m) (0 for a
    line exactly at DC, the average of the one-sided slopes).
    """
    for name, value in (("carrier_ratio", carrier_ratio), ("mod_ratio", mod_ratio)):
        if isinstance(value, bool) or not np.isfinite(value) or value <= 0.0:
            raise InputError(f"{name}: must be a finite number > 0, got {value!r}")
    n_max = integer_at_least(n_sidebands, "n_sidebands", 0)
    betas = _validated_betas(beta)
    carrier, mod = float(carrier_ratio), float(mod_ratio)
    orders = np.arange(-n_max, n_max + 1)
    raw = carrier + orders * mod
    sign = np.sign(raw)
    flat = np.ascontiguousarray(betas.reshape(-1))
    amplitudes = np.empty((flat.shape[0], orders.shape[0]))
    derivatives = np.empty_like(amplitudes)
    _fm_lines_kernel(flat, carrier, mod, orders, amplitudes, derivatives,
                     np.empty(n_max + 1), np.empty(n_max + 1), np.empty(n_max + 2))
    if betas.ndim == 0:
        amplitudes, derivatives = amplitudes[0], derivatives[0]
    return FmLines(orders=orders, positions=np.abs(raw), amplitudes=amplitudes,
                   amplitude_derivatives=derivatives, position_per_carrier_ratio=sign,
                   position_per_mod_ratio=orders * sign, betas=betas)
