"""The key × velocity tiling: which sample plays each (key, velocity) cell, as rectangles covering the plane.

A rectangle is anything with ``key_lo``, ``key_hi``, ``vel_lo`` and ``vel_hi`` (an SFZ region, a bank
zone, a :class:`ZoneSpan`). :func:`tile` gives every cell to the first rectangle covering it and fills
the cells none covers from the nearest rectangle, or leaves them silent; :func:`zones_from_root_keys`
tiles samples that are points (a root key in a velocity layer); :func:`first_overlap` and :func:`first_gap`
check that a bank's zones cover every cell at most once and at least once.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple, Protocol

import numpy as np

from wifm_synth.checks import integer_in
from wifm_synth.errors import InputError

KEY_RANGE = (0, 127)
# Velocity 0 is a note-off, so zones tile velocities 1..127.
VELOCITY_RANGE = (1, 127)
PLANE = f"keys {KEY_RANGE[0]}..{KEY_RANGE[1]} × velocities {VELOCITY_RANGE[0]}..{VELOCITY_RANGE[1]}"
UNCOVERED = -1
_GRID_SHAPE = (KEY_RANGE[1] - KEY_RANGE[0] + 1, VELOCITY_RANGE[1] - VELOCITY_RANGE[0] + 1)


class Rectangle(Protocol):
    key_lo: int
    key_hi: int
    vel_lo: int
    vel_hi: int


class ZoneSpan(NamedTuple):
    """Where one fitted sample plays: its velocity layer, root key, and key × velocity rectangle."""

    layer_velocity: int
    root_key: int
    key_lo: int
    key_hi: int
    vel_lo: int
    vel_hi: int


class Tile(NamedTuple):
    """One rectangle of a tiling, played by ``rectangles[owner]`` of the rectangles tiled."""

    owner: int
    key_lo: int
    key_hi: int
    vel_lo: int
    vel_hi: int


def _cells(rectangle: Rectangle) -> tuple[slice, slice]:
    return (slice(rectangle.key_lo - KEY_RANGE[0], rectangle.key_hi - KEY_RANGE[0] + 1),
            slice(rectangle.vel_lo - VELOCITY_RANGE[0], rectangle.vel_hi - VELOCITY_RANGE[0] + 1))


def _cell(index: np.ndarray) -> tuple[int, int]:
    """(key, velocity) of a grid index."""
    return int(index[0]) + KEY_RANGE[0], int(index[1]) + VELOCITY_RANGE[0]


def owner_grid(rectangles: Sequence[Rectangle]) -> np.ndarray:
    """``owner[key, velocity - 1]`` = index of the first rectangle covering that cell, UNCOVERED where none does."""
    owner = np.full(_GRID_SHAPE, UNCOVERED, dtype=np.int64)
    for index, rectangle in enumerate(rectangles):
        cells = owner[_cells(rectangle)]
        cells[cells == UNCOVERED] = index
    return owner


def tile(rectangles: Sequence[Rectangle], *, fill_gaps: bool = True) -> list[Tile]:
    """Tiles sorted by (vel_lo, key_lo): where rectangles overlap the first one plays. With ``fill_gaps``
    the tiles cover the whole plane: cells none covers play the nearest rectangle along the keys of their
    velocity, else the nearest covered velocity (the lower one on a tie); without, those cells stay
    uncovered (silent). A rectangle may need several tiles."""
    if not rectangles:
        raise InputError("no samples to build zones from")
    owner = owner_grid(rectangles)
    if fill_gaps:
        _fill_from_nearest(owner)
    # Each velocity's column is a set of key runs of one owner; a run that repeats over consecutive
    # velocities grows into one rectangle.
    tiles, open_runs = [], {}  # (owner, key_lo, key_hi) → velocity index where the run began
    for velocity_index in range(owner.shape[1] + 1):
        runs = _key_runs(owner[:, velocity_index]) if velocity_index < owner.shape[1] else set()
        for run in [run for run in open_runs if run not in runs]:
            index, key_lo, key_hi = run
            tiles.append(Tile(index, key_lo, key_hi, open_runs.pop(run) + VELOCITY_RANGE[0],
                              velocity_index - 1 + VELOCITY_RANGE[0]))
        for run in runs - open_runs.keys():
            open_runs[run] = velocity_index
    return sorted((piece for piece in tiles if piece.owner != UNCOVERED), key=lambda piece: (piece.vel_lo, piece.key_lo))


def _fill_from_nearest(owner: np.ndarray) -> None:
    """Give each uncovered cell of ``owner`` the nearest owner along its velocity's keys, else the nearest
    covered velocity's (the lower one on a tie)."""
    keys = np.arange(owner.shape[0])
    for column in owner.T:
        covered = np.flatnonzero(column != UNCOVERED)
        if covered.size:
            column[:] = column[covered[np.abs(keys[:, None] - covered[None, :]).argmin(axis=1)]]
    covered_columns = np.flatnonzero((owner != UNCOVERED).all(axis=0))
    for velocity_index in range(owner.shape[1]):
        if owner[0, velocity_index] == UNCOVERED:
            owner[:, velocity_index] = owner[:, covered_columns[np.abs(covered_columns - velocity_index).argmin()]]


def _key_runs(column: np.ndarray) -> set[tuple[int, int, int]]:
    """``(value, first key, last key)`` of each run of equal values in ``column``."""
    starts = np.flatnonzero(np.diff(column, prepend=column[0] - 1))
    ends = np.append(starts[1:] - 1, len(column) - 1)
    return {(int(column[start]), int(start) + KEY_RANGE[0], int(end) + KEY_RANGE[0]) for start, end in zip(starts, ends)}


def zones_from_root_keys(root_keys_by_velocity_layer: Mapping[int, Iterable[int]]) -> list[ZoneSpan]:
    """Tiling zones for fitted samples: ``{layer_velocity: [root_key, ...]}`` → one ZoneSpan per sample.

    Keys first: each key plays the nearest recorded root key, over all layers (boundary at the midpoint
    between neighbouring root keys, outermost zones extend to keys 0 and 127), so a key with its own
    recording never plays another key's. Then velocities, within each root key's keys: its own layers split
    at the midpoints between their velocities, the outermost extend to velocities 1 and 127 (ties go to the
    lower one).
    """
    if not root_keys_by_velocity_layer:
        raise InputError("no samples to build zones from")
    velocities_by_root_key: dict[int, list[int]] = {}
    for velocity, root_keys in root_keys_by_velocity_layer.items():
        integer_in(velocity, "velocity layer", *VELOCITY_RANGE)
        keys = list(root_keys)
        for key in keys:
            integer_in(key, f"velocity layer {velocity}: root key", *KEY_RANGE)
        if not keys:
            raise InputError(f"velocity layer {velocity}: has no root keys")
        if len(set(keys)) != len(keys):
            raise InputError(f"velocity layer {velocity}: root keys {sorted(keys)} repeat a key")
        for key in keys:
            velocities_by_root_key.setdefault(int(key), []).append(int(velocity))
    spans = []
    for root_key, key_lo, key_hi in _nearest_bands(velocities_by_root_key, *KEY_RANGE):
        for velocity, vel_lo, vel_hi in _nearest_bands(velocities_by_root_key[root_key], *VELOCITY_RANGE):
            spans.append(ZoneSpan(velocity, root_key, key_lo, key_hi, vel_lo, vel_hi))
    return sorted(spans, key=lambda span: (span.vel_lo, span.key_lo))


def _nearest_bands(points: Iterable[int], low: int, high: int) -> list[tuple[int, int, int]]:
    """``(point, first, last)``: the values low..high nearest each point (the lower point on a tie), as
    :func:`tile` fills along one axis."""
    points = sorted(points)
    # A value exactly between two points goes to the lower one.
    lasts = [(left + right) // 2 for left, right in itertools.pairwise(points)] + [high]
    firsts = [low] + [last + 1 for last in lasts[:-1]]
    return list(zip(points, firsts, lasts))


def first_overlap(rectangles: Sequence[Rectangle]) -> tuple[int, int, int, int] | None:
    """``(index, earlier index, key, velocity)`` of the first rectangle that covers a cell an earlier one
    covers (at its first such cell), or None."""
    owner = owner_grid(rectangles)
    for index, rectangle in enumerate(rectangles):
        overlap = np.argwhere(owner[_cells(rectangle)] < index)
        if len(overlap):
            grid_index = overlap[0] + (rectangle.key_lo - KEY_RANGE[0], rectangle.vel_lo - VELOCITY_RANGE[0])
            return (index, int(owner[tuple(grid_index)]), *_cell(grid_index))
    return None


def first_gap(rectangles: Sequence[Rectangle]) -> tuple[int, int] | None:
    """``(key, velocity)`` of the first cell no rectangle covers, or None."""
    gaps = np.argwhere(owner_grid(rectangles) == UNCOVERED)
    return _cell(gaps[0]) if len(gaps) else None
