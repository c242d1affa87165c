"""tools/dx7_reference.py's distance: zero for a render against itself, blind to level, not to timbre."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import dx7_reference


def test_distance_is_zero_against_itself_and_rms_matched():
    time = np.arange(int(0.5 * dx7_reference.RATE)) / dx7_reference.RATE
    tone = np.sin(2 * np.pi * 440 * time)
    distance, loudness = dx7_reference.distance_db(tone, 0.5 * tone)
    assert distance == pytest.approx(0.0, abs=1e-6) and loudness == pytest.approx(-6.02, abs=0.01)
    brighter = tone + 0.5 * np.sin(2 * np.pi * 1320 * time)
    assert dx7_reference.distance_db(tone, brighter)[0] > 0.5


def test_loudness_spread_removes_the_global_offset():
    spread = dx7_reference.loudness_spread([6.0, 7.0, 5.0, 6.0, 16.0])
    assert spread["offset_db"] == 6.0
    assert spread["median_abs_deviation_db"] == 1.0
    assert spread["p90_abs_deviation_db"] == pytest.approx(6.4)  # deviations 0, 0, 1, 1, 10
