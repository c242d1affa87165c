"""What the audio callback learns about each period besides its samples — the *stream clock* it keeps
(the engine frame at stream time 0, under JACK the engine frame of JACK frame 0), and whether the
engine's own work overran the period.

The stream clock is a float64 array written by the callback once per period and read by the MIDI
thread and the main thread; each field is one aligned 8-byte store, so a reader never sees a torn value.

**JACK dating.** Under JACK every period is one JACK cycle, and ``jack_last_frame_time`` read inside the
callback is that cycle's first frame C, exact (PortAudio's ``currentTime`` is JACK's *estimate* of now
when the callback runs, late by however long the machine kept it waiting). The callback publishes the
*JACK origin*: the engine frame of JACK frame 0, ``frames_out − C`` (one float64 store), constant
while the engine renders one period per cycle. An event at JACK frame F then plays at
``origin + F + latency`` — its cycle's distance kept to the frame, one period later.

A late callback can read the *next* cycle's frame (it still renders the earlier cycle), which would
date one period a period too early; a cycle the engine really missed lowers the origin for good. So
the origin follows a lower reading only when two periods in a row agree, and a higher one at once.

**Engine-late periods.** The callback reads its thread's CPU clock and a monotonic clock at entry and
exit. A period whose callback used more CPU time than the period lasts is *engine-late*: the engine's own
work overran. One whose callback took longer than the period in wall time but not in CPU time was
*stalled*: the thread was kept waiting (preempted) inside the callback. Both are counted, with the worst
CPU and wall times, in the engine state (``ENGINE_LATE_PERIODS`` … in ``engine/layout.py``).
"""

from __future__ import annotations

from numba import njit

from wifm_synth.engine.kernels import KERNEL
from wifm_synth.engine.layout import (
    ENGINE_LATE_PERIODS,
    ENGINE_STALLED_PERIODS,
    ENGINE_WORST_PERIOD_CPU_NS,
    ENGINE_WORST_PERIOD_NS,
)

# --- the stream clock (float64) ---
CLOCK_FRAME_ORIGIN = 0  # engine frame at stream time 0 (PortAudio's timeInfo->currentTime)
CLOCK_SAMPLE_RATE = 1
CLOCK_UNDERFLOWS = 2  # periods PortAudio flagged as output underflow
CLOCK_CALLBACKS = 3
CLOCK_JACK_ORIGIN = 4  # engine frame of JACK frame 0 (modulo 2**32, as JACK's frame clock wraps)
CLOCK_JACK_READING = 5  # the last period's reading, published or not
CLOCK_JACK_PERIODS = 6  # periods dated by JACK so far (0: no JACK dating)
CLOCK_FIELDS = 7

NANOSECONDS = 1_000_000_000


@njit(**KERNEL)
def date_period_by_jack(clock, frames_out, cycle_frame):
    """Publish the JACK origin of a period that starts at engine frame ``frames_out`` and JACK frame
    ``cycle_frame``: a higher reading at once, a lower one once two periods in a row agree."""
    reading = float(frames_out - cycle_frame)
    if (clock[CLOCK_JACK_PERIODS] == 0 or reading >= clock[CLOCK_JACK_ORIGIN]
            or reading == clock[CLOCK_JACK_READING]):
        clock[CLOCK_JACK_ORIGIN] = reading
    clock[CLOCK_JACK_READING] = reading
    clock[CLOCK_JACK_PERIODS] += 1


@njit(**KERNEL)
def count_period_time(engine, wall_ns, cpu_ns, frames, sample_rate):
    """Add one period's callback times (nanoseconds) to the counters: engine-late when the callback used more
    CPU time than ``frames`` last at ``sample_rate``, stalled when it took longer in wall time."""
    budget_ns = frames * NANOSECONDS // sample_rate
    if cpu_ns > budget_ns:
        engine[ENGINE_LATE_PERIODS] += 1
    if wall_ns > budget_ns:
        engine[ENGINE_STALLED_PERIODS] += 1
    engine[ENGINE_WORST_PERIOD_NS] = max(engine[ENGINE_WORST_PERIOD_NS], wall_ns)
    engine[ENGINE_WORST_PERIOD_CPU_NS] = max(engine[ENGINE_WORST_PERIOD_CPU_NS], cpu_ns)
