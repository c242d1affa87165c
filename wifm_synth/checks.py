"""Argument checks shared by every public function: one rule for "an integer in a range", one for numbers.

Python's ``bool`` is an ``int`` and NumPy integers are not, so a bare ``isinstance(value, int)`` both
admits ``True`` and refuses ``np.int64(3)``; these helpers get that right once. Each raises the
given WifmError subclass with the message ``NAME: must be …, got VALUE`` (one line).
"""

from __future__ import annotations

import math

import numpy as np

from wifm_synth.errors import InputError, WifmError


def is_integer(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def is_number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))


def integer_in(value, name: str, low: int, high: int | None = None, *, unit: str = "",
               error: type[WifmError] = InputError, path=None) -> int:
    """``value`` as an int if it is an integer in [low, high] (no upper bound when ``high`` is None);
    else ``error`` naming ``path`` (the file the value came from), if given."""
    if not is_integer(value) or value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"{low}..{high}"
        raise error(f"{name}: must be an integer {bound}{unit}, got {value!r}", path)
    return int(value)


def integer_at_least(value, name: str, minimum: int) -> int:
    """``value`` as an int, or InputError naming ``name`` if it is not an integer >= ``minimum``."""
    return integer_in(value, name, minimum)


def number_in(value, name: str, low: float, high: float, *, unit: str = "",
              error: type[WifmError] = InputError) -> float:
    """``value`` as a float if it is a finite number in [low, high]."""
    if not is_number(value) or not math.isfinite(value) or not low <= value <= high:
        raise error(f"{name}: must be {low:g}..{high:g}{unit}, got {value!r}")
    return float(value)


def finite_scalar_or_vector(value, name: str) -> np.ndarray:
    """``value`` as a float64 array of 0 or 1 dimensions, or InputError naming ``name``."""
    values = np.asarray(value, dtype=np.float64)
    if values.ndim > 1:
        raise InputError(f"{name}: must be a scalar or 1-D array, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise InputError(f"{name}: must be finite")
    return values
