"""Bessel functions of the first kind J_0..J_N (and their derivatives) for FM line spectra.

An FM operator pair produces lines whose amplitudes are J_n(beta) for every integer order n, so the
fitter needs all orders at once for each frame's modulation index. Miller's backward recurrence
gives the whole column in one O(N) sweep and is stable for any x (forward recurrence is not once
n > x). Negative orders follow from J_-n = (-1)^n J_n, derivatives from
dJ_n/dx = (J_{n-1} - J_{n+1}) / 2.

The ``_into`` kernels are Numba functions meant to be called from other kernels; they write into
caller-provided buffers and assume valid input. The public wrappers validate and allocate.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from wifm_synth.checks import finite_scalar_or_vector, integer_at_least

# Below this |x| the two-term power series is exact to double precision, and the recurrence's
# growth factor 2k/x would overflow.
_SERIES_LIMIT = 1e-8
# Rescale the unnormalised recurrence before it can overflow (the growth per step, 2k/x, stays
# below ~1e12 for |x| >= _SERIES_LIMIT).
_RESCALE_ABOVE = 1e250
# Extra orders above max(N, x) where the backward recurrence starts; J decays super-exponentially
# past n > x, so this margin makes the truncation error far below 1e-16.
_START_MARGIN = 20
_START_SPREAD = 40.0
# Orders whose J_n is below this everywhere are set to zero instead of being recurred through.
_NEGLIGIBLE = 1e-18


@njit(cache=True)
def _highest_significant_order(n_top, ax):
    """Lowest order >= |x| above which every J_n(x) is below 1e-18 (bound (x/2)^n / n!), capped at n_top."""
    half = 0.5 * ax
    bound = 1.0
    n = 0
    while n < n_top and (n < ax or bound > _NEGLIGIBLE):
        n += 1
        bound *= half / n
    return n


@njit(cache=True)
def _miller_start_order(n_top, ax):
    """Even starting order for the backward recurrence covering orders 0..n_top at |x| = ax."""
    base = max(n_top, int(ax))
    start = base + _START_MARGIN + int(math.sqrt(_START_SPREAD * (base + 1)))
    return start + (start & 1)


@njit(cache=True)
def bessel_j_into(x, out):
    """Fill ``out[n] = J_n(x)`` for n = 0..len(out)-1 (Numba kernel, no allocation).

    Returns the highest order that may exceed 1e-18 in magnitude; all orders above it are 0.
    """
    n_top = out.shape[0] - 1
    ax = abs(x)
    if ax < _SERIES_LIMIT:
        # J_n(x) = (x/2)^n / n! * (1 - (x/2)^2 / (n+1) + ...)
        half = 0.5 * ax
        term = 1.0
        n_significant = 0
        for n in range(n_top + 1):
            out[n] = term * (1.0 - half * half / (n + 1))
            if out[n] > _NEGLIGIBLE:
                n_significant = n
            term *= half / (n + 1)
    else:
        n_significant = _highest_significant_order(n_top, ax)
        for n in range(n_significant + 1, n_top + 1):
            out[n] = 0.0
        start = _miller_start_order(n_significant, ax)
        two_over_x = 2.0 / ax
        j_above = 0.0  # J_{k+1}, unnormalised
        j_here = 1e-30  # J_k, unnormalised; small seed leaves headroom before the first rescale
        norm = 0.0  # J_0 + 2 * sum of even orders, unnormalised
        for k in range(start, 0, -1):
            if k <= n_significant:
                out[k] = j_here
            if k % 2 == 0:
                norm += 2.0 * j_here
            j_below = k * two_over_x * j_here - j_above
            j_above = j_here
            j_here = j_below
            if abs(j_here) > _RESCALE_ABOVE:
                scale = 1.0 / _RESCALE_ABOVE
                j_here *= scale
                j_above *= scale
                norm *= scale
                for n in range(k, n_significant + 1):
                    out[n] *= scale
        out[0] = j_here
        norm += j_here
        inv_norm = 1.0 / norm
        for n in range(n_significant + 1):
            out[n] *= inv_norm
    if x < 0.0:
        for n in range(1, n_significant + 1, 2):
            out[n] = -out[n]
    return n_significant


@njit(cache=True)
def bessel_j_and_derivative_into(x, values, derivatives, work):
    """Fill J_n(x) and dJ_n/dx for n = 0..len(values)-1; ``work`` needs len(values)+1 slots.

    Returns the highest order whose value or derivative may exceed ~1e-18 in magnitude.
    """
    n_top = values.shape[0] - 1
    n_significant = min(bessel_j_into(x, work) + 1, n_top)
    for n in range(n_top + 1):
        values[n] = work[n]
    derivatives[0] = -work[1]
    for n in range(1, n_top + 1):
        derivatives[n] = 0.5 * (work[n - 1] - work[n + 1])
    return n_significant


@njit(cache=True)
def _bessel_table_kernel(xs, values, derivatives, work):
    for i in range(xs.shape[0]):
        bessel_j_and_derivative_into(xs[i], values[i], derivatives[i], work)


def bessel_table(x, max_order: int) -> tuple[np.ndarray, np.ndarray]:
    """J_n(x) and dJ_n/dx for orders n = 0..max_order.

    ``x`` is a scalar or a 1-D array of T arguments; the results have shape (max_order+1,) or
    (T, max_order+1). Accurate to ~1e-14 absolute (measured for |x| <= 60 and orders <= 120).
    """
    n_top = integer_at_least(max_order, "max_order", 0)
    xs = finite_scalar_or_vector(x, "x")
    flat = np.ascontiguousarray(xs.reshape(-1))
    values = np.empty((flat.shape[0], n_top + 1))
    derivatives = np.empty_like(values)
    _bessel_table_kernel(flat, values, derivatives, np.empty(n_top + 2))
    if xs.ndim == 0:
        return values[0], derivatives[0]
    return values, derivatives


def bessel_j(x, max_order: int) -> np.ndarray:
    """J_n(x) for orders n = 0..max_order; shape (max_order+1,) or (T, max_order+1) as for ``x``."""
    return bessel_table(x, max_order)[0]
