"""The key × velocity tiling: nearest-sample zones for folders, first-region-wins with nearest fill for SFZ,
and the exactly-once check bank files must pass."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wifm_synth.errors import InputError
from wifm_synth.library.zones import (
    ZoneSpan,
    first_gap,
    first_overlap,
    tile,
    zones_from_root_keys,
)


def coverage(spans) -> np.ndarray:
    """How many zones cover each (key, velocity 1..127) cell."""
    grid = np.zeros((128, 128), dtype=int)
    for span in spans:
        grid[span.key_lo:span.key_hi + 1, span.vel_lo:span.vel_hi + 1] += 1
    return grid[:, 1:]


def test_zones_from_root_keys_split_at_midpoints():
    spans = zones_from_root_keys({100: [67, 55]})
    assert [(s.root_key, s.key_lo, s.key_hi, s.vel_lo, s.vel_hi) for s in spans] == [
        (55, 0, 61, 1, 127), (67, 62, 127, 1, 127)]
    layered = zones_from_root_keys({40: [60], 100: [60], 127: [60]})
    assert [(s.layer_velocity, s.vel_lo, s.vel_hi) for s in layered] == [(40, 1, 70), (100, 71, 113), (127, 114, 127)]


@given(st.dictionaries(st.integers(1, 127), st.sets(st.integers(0, 127), min_size=1, max_size=20),
                       min_size=1, max_size=5))
def test_zones_from_root_keys_tile_without_gaps_or_overlaps(layers):
    spans = zones_from_root_keys(layers)
    assert (coverage(spans) == 1).all()
    for span in spans:  # each key plays its nearest root key in its layer
        others = layers[span.layer_velocity]
        for key in (span.key_lo, span.key_hi):
            assert abs(key - span.root_key) <= min(abs(key - other) for other in others)
        assert span.vel_lo <= span.layer_velocity <= span.vel_hi


@pytest.mark.parametrize(
    "layers, message",
    [
        ({}, "no samples"),
        ({0: [60]}, "velocity layer: must be an integer 1..127, got 0"),
        ({100: [128]}, "velocity layer 100: root key: must be an integer 0..127, got 128"),
        ({100: []}, "velocity layer 100: has no root keys"),
        ({100: [60, 60]}, r"velocity layer 100: root keys \[60, 60\] repeat a key"),
    ],
)
def test_zones_from_root_keys_rejects_bad_input(layers, message):
    with pytest.raises(InputError, match=message):
        zones_from_root_keys(layers)


def rectangle(key_lo, key_hi, vel_lo=1, vel_hi=127):
    return zones_from_root_keys({100: [key_lo]})[0]._replace(key_lo=key_lo, key_hi=key_hi, vel_lo=vel_lo, vel_hi=vel_hi)


def test_tile_gives_overlaps_to_the_first_and_gaps_to_the_nearest():
    low, high, loud = rectangle(40, 59, 1, 90), rectangle(55, 80, 1, 90), rectangle(60, 60, 100, 127)
    tiles = tile([low, high, loud])
    assert (coverage(tiles) == 1).all()

    def owner(key, velocity):
        return next(piece.owner for piece in tiles if piece.key_lo <= key <= piece.key_hi
                    and piece.vel_lo <= velocity <= piece.vel_hi)

    assert owner(57, 50) == owner(0, 1) == 0  # overlap: the first one; gap below: the nearest key
    assert owner(60, 50) == owner(127, 90) == 1
    assert owner(0, 127) == owner(127, 100) == 2
    assert owner(50, 95) == 0 and owner(50, 96) == 2  # velocities 91..99: the nearest layer, the lower on a tie


def test_overlaps_and_gaps_are_found_at_their_first_cell():
    assert first_overlap([rectangle(0, 60), rectangle(61, 127)]) is None
    assert first_gap([rectangle(0, 60), rectangle(61, 127)]) is None
    assert first_overlap([rectangle(0, 60), rectangle(50, 127, 20, 127), rectangle(61, 127)]) == (1, 0, 50, 20)
    assert first_gap([rectangle(0, 60), rectangle(62, 127, 5, 127)]) == (61, 1)


def test_a_key_with_its_own_recording_never_plays_another_keys_layer():
    # Key 60 was recorded soft only, key 64 loud only: each plays its own recording at every velocity.
    spans = zones_from_root_keys({30: [60], 110: [64, 72]})
    assert [(s.layer_velocity, s.root_key, s.key_lo, s.key_hi, s.vel_lo, s.vel_hi) for s in spans] == [
        (30, 60, 0, 62, 1, 127), (110, 64, 63, 68, 1, 127), (110, 72, 69, 127, 1, 127)]
    # Within a key's region its own layers split at the midpoint of their velocities.
    spans = zones_from_root_keys({30: [60, 72], 110: [60]})
    assert [(s.layer_velocity, s.root_key, s.key_lo, s.key_hi, s.vel_lo, s.vel_hi) for s in spans] == [
        (30, 60, 0, 66, 1, 70), (30, 72, 67, 127, 1, 127), (110, 60, 0, 66, 71, 127)]


def test_tile_without_fill_leaves_uncovered_cells_silent():
    regions = [ZoneSpan(0, 0, 40, 50, 1, 127), ZoneSpan(0, 0, 60, 70, 64, 127), ZoneSpan(0, 0, 45, 65, 100, 127)]
    pieces = tile(regions, fill_gaps=False)
    assert [tuple(piece) for piece in pieces] == [(0, 40, 50, 1, 127), (1, 60, 70, 64, 127), (2, 51, 59, 100, 127)]
    assert first_gap(pieces) == (0, 1)
