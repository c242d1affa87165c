"""The native envelope's shape before note-off, in NumPy: what the engine's held envelope plays."""

from __future__ import annotations

import numpy as np


def envelope_levels_db(times, knot_times, knot_levels) -> np.ndarray:
    """The envelope in dB at ``times`` > 0: an attack linear in amplitude from silence to the first knot,
    then linear in dB between knots, the last level held. Knot times are the segments' cumulative
    durations, knot levels their ``end_level_db``."""
    attack = knot_levels[0] + 20.0 * np.log10(np.minimum(times, knot_times[0]) / knot_times[0])
    decay = np.interp(times, knot_times, knot_levels)
    return np.where(times <= knot_times[0], attack, decay)
