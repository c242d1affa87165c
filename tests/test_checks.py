import numpy as np
import pytest

from wifm_synth.checks import finite_scalar_or_vector, integer_at_least
from wifm_synth.errors import InputError


def test_integer_at_least_accepts_numpy_integers_and_refuses_bools_floats_and_small_values():
    assert integer_at_least(np.int64(3), "n", 1) == 3
    for value in (True, 2.0, 0):
        with pytest.raises(InputError, match=rf"^n: must be an integer >= 1, got {value!r}$"):
            integer_at_least(value, "n", 1)


def test_finite_scalar_or_vector_keeps_the_shape_and_refuses_matrices_and_nan():
    assert finite_scalar_or_vector(2, "x").shape == ()
    np.testing.assert_array_equal(finite_scalar_or_vector([1, 2], "x"), [1.0, 2.0])
    with pytest.raises(InputError, match=r"^x: must be a scalar or 1-D array, got shape \(1, 2\)$"):
        finite_scalar_or_vector([[1, 2]], "x")
    with pytest.raises(InputError, match="^x: must be finite$"):
        finite_scalar_or_vector([1.0, np.nan], "x")
