"""Every file reader under mutated input: a result or a one-line WifmError, quickly, input unchanged.

A small fixed budget here; ``tools/fuzz.py FORMAT --cases N`` runs the same cases at length.
"""

import importlib.util
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

_spec = importlib.util.spec_from_file_location("fuzz", Path(__file__).parents[2] / "tools" / "fuzz.py")
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)


@pytest.mark.parametrize("kind", sorted(fuzz.SEEDS))
def test_reader_survives_mutations(kind):
    @settings(max_examples=60, derandomize=True, deadline=None)
    @given(st.integers(min_value=0, max_value=2**31))
    def case(number):
        failure, _, _ = fuzz.run_case(kind, number)
        assert failure is None, failure

    case()
