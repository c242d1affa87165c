"""The audio callback's period kernels (``engine/period_clock.py``) against their Python twins: the JACK
origin that ignores a one-period late reading but follows a real step, and the engine-late counters."""

import numpy as np

from wifm_synth.engine.layout import (
    ENGINE_FIELDS,
    ENGINE_LATE_PERIODS,
    ENGINE_STALLED_PERIODS,
    ENGINE_WORST_PERIOD_CPU_NS,
    ENGINE_WORST_PERIOD_NS,
)
from wifm_synth.engine.period_clock import (
    CLOCK_FIELDS,
    CLOCK_JACK_ORIGIN,
    CLOCK_JACK_PERIODS,
    CLOCK_JACK_READING,
    count_period_time,
    date_period_by_jack,
)

PERIOD = 128
RATE = 48000


class TwinJackOrigin:
    def __init__(self):
        self.origin = self.reading = None

    def date(self, frames_out: int, cycle_frame: int) -> None:
        reading = frames_out - cycle_frame
        if self.origin is None or reading >= self.origin or reading == self.reading:
            self.origin = reading
        self.reading = reading


def test_jack_origin_matches_its_twin_through_late_readings_steps_and_a_wrap():
    generator = np.random.default_rng(3)
    clock, twin = np.zeros(CLOCK_FIELDS), TwinJackOrigin()
    frames_out, cycle = 0, (1 << 32) - 40 * PERIOD  # JACK's clock wraps during the run
    origins = set()
    for period in range(2000):
        draw = generator.random()
        if draw < 0.05:
            reading_cycle = cycle + PERIOD  # a late callback reads the next cycle's frame
        elif draw < 0.06:
            cycle += PERIOD  # a cycle the engine really missed
            reading_cycle = cycle
        else:
            reading_cycle = cycle
        reading_cycle &= 0xFFFFFFFF
        date_period_by_jack(clock, frames_out, reading_cycle)
        twin.date(frames_out, reading_cycle)
        assert (clock[CLOCK_JACK_ORIGIN], clock[CLOCK_JACK_READING]) == (twin.origin, twin.reading)
        origins.add(twin.origin)
        frames_out += PERIOD
        cycle += PERIOD
    assert clock[CLOCK_JACK_PERIODS] == 2000
    assert len(origins) > 10  # steps and the wrap moved it


def test_a_single_late_reading_never_moves_the_origin():
    clock = np.zeros(CLOCK_FIELDS)
    date_period_by_jack(clock, 0, 1000)
    date_period_by_jack(clock, PERIOD, 1000 + 2 * PERIOD)  # read the next cycle: ignored
    assert clock[CLOCK_JACK_ORIGIN] == -1000
    date_period_by_jack(clock, 2 * PERIOD, 1000 + 2 * PERIOD)
    assert clock[CLOCK_JACK_ORIGIN] == -1000
    date_period_by_jack(clock, 3 * PERIOD, 1000 + 4 * PERIOD)  # a missed cycle, read twice: followed
    date_period_by_jack(clock, 4 * PERIOD, 1000 + 5 * PERIOD)
    assert clock[CLOCK_JACK_ORIGIN] == -1000 - PERIOD


def test_engine_late_counters_match_their_twin():
    generator = np.random.default_rng(5)
    engine = np.zeros(ENGINE_FIELDS, dtype=np.int64)
    budget = PERIOD * 1_000_000_000 // RATE
    walls = generator.integers(0, 2 * budget, 500)
    cpus = walls * generator.random(500)
    for wall, cpu in zip(walls, cpus.astype(np.int64), strict=True):
        count_period_time(engine, np.int64(wall), np.int64(cpu), np.int64(PERIOD), np.int64(RATE))
    assert engine[ENGINE_STALLED_PERIODS] == np.count_nonzero(walls > budget) > 0
    assert engine[ENGINE_LATE_PERIODS] == np.count_nonzero(cpus.astype(np.int64) > budget) > 0
    assert engine[ENGINE_WORST_PERIOD_NS] == walls.max()
    assert engine[ENGINE_WORST_PERIOD_CPU_NS] == cpus.astype(np.int64).max()
