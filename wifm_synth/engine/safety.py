"""The output safety stage: a soft clipper, the last stage before a sound card or an audio file.

A sample at or below LIMIT_THRESHOLD (−1 dBFS) passes unchanged, bit for bit, so ordinary output is
untouched; above it the excess is squeezed by tanh into the last dB, which meets the identity with
slope 1 at the threshold and never passes full scale (0 dBFS). A NaN becomes silence. It keeps no
state and no lookahead: no latency, and the same samples give the same output in any block split.

Live output runs it in the audio callback (``engine/abi.py``) and counts in the engine state
(``ENGINE_LIMITED_SAMPLES``, ``ENGINE_LIMITED_PEAK_CENTI_DBFS``) for the control thread's notice;
rendered files run it after the level gain (``drivers/wav.py``).
"""

from __future__ import annotations

import math

from numba import njit

from wifm_synth.engine.kernels import KERNEL
from wifm_synth.engine.layout import (
    ENGINE_LIMITED_PEAK_CENTI_DBFS,
    ENGINE_LIMITED_SAMPLES,
)

LIMIT_THRESHOLD_DBFS = -1.0
LIMIT_THRESHOLD = 10.0 ** (LIMIT_THRESHOLD_DBFS / 20.0)
LIMIT_HEADROOM = 1.0 - LIMIT_THRESHOLD
# The peak an infinite or NaN sample is recorded as (centi-dBFS): far above any finite float32 sample.
UNBOUNDED_PEAK_CENTI_DBFS = 100_000


@njit(inline="always", **KERNEL)
def soft_limit(sample):
    """``sample`` itself at or below the threshold, else threshold + headroom · tanh(excess / headroom)."""
    magnitude = abs(sample)
    if magnitude <= LIMIT_THRESHOLD:
        return sample
    if math.isnan(magnitude):
        return 0.0
    limited = min(LIMIT_THRESHOLD + LIMIT_HEADROOM * math.tanh((magnitude - LIMIT_THRESHOLD) / LIMIT_HEADROOM), 1.0)
    return limited if sample > 0.0 else -limited


@njit(**KERNEL)
def limit_frames(frames):
    """Soft-limit ``frames`` (frames × channels) in place; returns (samples changed, largest magnitude before).

    The magnitude of a NaN counts as infinite."""
    changed = 0
    peak = 0.0
    for frame in range(frames.shape[0]):
        for channel in range(frames.shape[1]):
            sample = frames[frame, channel]
            magnitude = abs(sample)
            if magnitude <= LIMIT_THRESHOLD:
                continue
            changed += 1
            peak = max(peak, math.inf if math.isnan(magnitude) else magnitude)
            frames[frame, channel] = soft_limit(sample)
    return changed, peak


@njit(**KERNEL)
def centi_dbfs(peak):
    """``peak`` (> 0) in hundredths of a dBFS, rounded up; infinite as UNBOUNDED_PEAK_CENTI_DBFS."""
    if not peak < math.inf:
        return UNBOUNDED_PEAK_CENTI_DBFS
    return min(math.ceil(2000.0 * math.log10(peak)), UNBOUNDED_PEAK_CENTI_DBFS)


@njit(**KERNEL)
def count_limiting(engine, changed, peak):
    """Add a limited stretch to the engine's counters (audio thread; plain stores, read by the control thread)."""
    if changed == 0:
        return
    engine[ENGINE_LIMITED_SAMPLES] += changed
    engine[ENGINE_LIMITED_PEAK_CENTI_DBFS] = max(engine[ENGINE_LIMITED_PEAK_CENTI_DBFS], centi_dbfs(peak))


def limiting_notice(samples: int, peak_centi_dbfs: int) -> str:
    """The notice line for ``samples`` limited samples whose loudest was ``peak_centi_dbfs`` before limiting."""
    peak = "beyond any finite level" if peak_centi_dbfs >= UNBOUNDED_PEAK_CENTI_DBFS else \
        f"{peak_centi_dbfs / 100:+.1f} dBFS"
    return f"output limited on {samples} samples (peak before limiting {peak})"
