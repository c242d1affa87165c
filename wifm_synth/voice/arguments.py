"""Validation of the public FM functions' arguments (the njit kernels behind them assume valid input)."""

from __future__ import annotations

import numpy as np

from wifm_synth.errors import InputError


def integer_at_least(value, name: str, minimum: int) -> int:
    """``value`` as an int, or InputError naming ``name`` if it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name}: must be an integer >= {minimum}, got {value!r}")
    return int(value)


def finite_scalar_or_vector(value, name: str) -> np.ndarray:
    """``value`` as a float64 array of 0 or 1 dimensions, or InputError naming ``name``."""
    values = np.asarray(value, dtype=np.float64)
    if values.ndim > 1:
        raise InputError(f"{name}: must be a scalar or 1-D array, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise InputError(f"{name}: must be finite")
    return values
