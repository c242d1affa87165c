"""Envelope DP: NumPy twins of the kernels, brute force over breakpoints, recovery of known shapes."""

import itertools

import numpy as np
import pytest

from wifm_synth.errors import InputError
from wifm_synth.fit import envelope
from wifm_synth.fit.envelope import fit_envelope, fit_release_seconds


def reference_attack_cost(times, levels, weights, knots, end):
    prediction = knots[end] + 20.0 * np.log10(times[: end + 1] / times[end])
    return float(np.sum(weights[: end + 1] * (levels[: end + 1] - prediction) ** 2))


def reference_line_cost(times, levels, weights, knots, start, end):
    frames = np.arange(start + 1, end + 1)
    prediction = np.interp(times[frames], [times[start], times[end]], [knots[start], knots[end]])
    return float(np.sum(weights[frames] * (levels[frames] - prediction) ** 2))


def brute_force_costs(times, levels, weights, knots, max_segments):
    """Minimum cost for each segment count by enumerating every breakpoint set (small N only)."""
    n = times.size
    best = np.full(max_segments, np.inf)
    for segments in range(1, max_segments + 1):
        for inner in itertools.combinations(range(n - 1), segments - 1):
            breakpoints = list(inner) + [n - 1]
            cost = reference_attack_cost(times, levels, weights, knots, breakpoints[0])
            cost += sum(reference_line_cost(times, levels, weights, knots, a, b)
                        for a, b in zip(breakpoints[:-1], breakpoints[1:]))
            best[segments - 1] = min(best[segments - 1], cost)
    return best


@pytest.fixture
def noisy_case():
    rng = np.random.default_rng(7)
    times = np.sort(rng.uniform(0.01, 1.0, 11))
    levels = rng.normal(-10.0, 6.0, times.size)
    weights = rng.uniform(0.2, 1.0, times.size)
    knots = rng.normal(-10.0, 6.0, times.size)
    return times, levels, weights, knots


def test_kernels_match_numpy_twins(noisy_case):
    times, levels, weights, knots = noisy_case
    sums = envelope._prefix_sums(times, levels, weights)
    for start, end in [(0, 1), (0, 10), (3, 7), (5, 6)]:
        assert envelope._line_cost(sums, times, knots, start, end) == pytest.approx(
            reference_line_cost(times, levels, weights, knots, start, end), rel=1e-9, abs=1e-9)
    attack = envelope._attack_costs(times, levels, weights, knots)
    for end in range(times.size):
        assert attack[end] == pytest.approx(reference_attack_cost(times, levels, weights, knots, end), rel=1e-9)


def test_dp_equals_brute_force(noisy_case):
    times, levels, weights, knots = noisy_case
    costs, previous = envelope._segment_dp(times, levels, weights, knots, 5)
    np.testing.assert_allclose(costs, brute_force_costs(times, levels, weights, knots, 5), rtol=1e-9)
    # The back-pointers reproduce the optimal cost.
    breakpoints = envelope._breakpoints(previous, 4, times.size - 1)
    rebuilt = reference_attack_cost(times, levels, weights, knots, breakpoints[0]) + sum(
        reference_line_cost(times, levels, weights, knots, a, b) for a, b in zip(breakpoints[:-1], breakpoints[1:]))
    assert rebuilt == pytest.approx(costs[3], rel=1e-9)


def piano_like(times):
    """Attack to 0 dB at 10 ms, fast first decay to −12 dB at 0.3 s, slow second slope to −30 dB at 2 s."""
    attack = 20.0 * np.log10(np.minimum(times, 0.01) / 0.01)
    decay = np.interp(times, [0.01, 0.3, 2.0], [0.0, -12.0, -30.0])
    return np.where(times <= 0.01, attack, decay)


def test_two_slope_decay_is_recovered():
    times = np.arange(1, 201) * 0.01
    rng = np.random.default_rng(3)
    levels = piano_like(times) + rng.normal(0.0, 0.2, times.size)
    fit = fit_envelope(times, levels, extend_decay=False)
    assert len(fit.segments) == 3
    assert fit.rms_error_db < 0.3
    np.testing.assert_allclose(fit.knot_times, [0.01, 0.3, 2.0], atol=0.021)
    np.testing.assert_allclose(fit.knot_levels_db, [0.0, -12.0, -30.0], atol=0.6)


def test_decay_is_extended_and_sustain_is_held():
    times = np.arange(1, 201) * 0.01
    decaying = fit_envelope(times, piano_like(times))
    duration, level = decaying.segments[-1]
    assert level == pytest.approx(envelope.DECAY_TARGET_DB)
    # The extension keeps the fitted slope of about −10.6 dB/s.
    assert (level - decaying.segments[-2][1]) / duration == pytest.approx(-18.0 / 1.7, rel=0.02)
    flat = np.where(times < 0.1, 20.0 * np.log10(times / 0.1), -3.0 * np.minimum((times - 0.1) / 0.1, 1.0))
    held = fit_envelope(times, flat)
    assert held.segments[-1][1] == pytest.approx(-3.0, abs=0.1)
    assert sum(d for d, _ in held.segments) == pytest.approx(2.0)


def test_fixed_segment_count_and_validation():
    times = np.arange(1, 101) * 0.01
    fit = fit_envelope(times, piano_like(times), fixed_segments=3, extend_decay=False)
    assert len(fit.segments) == 3
    with pytest.raises(InputError, match="increasing"):
        fit_envelope(times[::-1], piano_like(times))
    with pytest.raises(InputError, match="finite"):
        fit_envelope(times, np.full(times.size, np.nan))
    with pytest.raises(InputError, match="segment count"):
        fit_envelope(times, piano_like(times), fixed_segments=9)


def test_release_slope():
    times = np.arange(0, 300) * 0.01
    levels = np.where(times < 2.0, -6.0, -6.0 - 120.0 * (times - 2.0))  # 60 dB per 0.5 s
    assert fit_release_seconds(times, levels, 2.0) == pytest.approx(0.5, rel=0.02)
    assert fit_release_seconds(times, levels, None) == envelope.DEFAULT_RELEASE_S
    assert fit_release_seconds(times, np.full(times.size, -6.0), 2.0) == envelope.DEFAULT_RELEASE_S


def test_long_note_segments_stay_within_the_format_limit():
    # A 70 s note: 0.1 s attack, slow 70 s fade of 20 dB. Long lines are split, not left over 60 s.
    times = np.arange(1, 1401) * 0.05
    drone = np.where(times < 0.1, 20.0 * np.log10(times / 0.1), -20.0 * (times - 0.1) / 69.9)
    fit = fit_envelope(times, drone, extend_decay=False)
    assert len(fit.segments) <= envelope.MAX_SEGMENTS
    assert all(0.0 < duration <= 60.0 for duration, _ in fit.segments)
    assert sum(d for d, _ in fit.segments) == pytest.approx(70.0)
    assert fit.segments[-1][1] == pytest.approx(-20.0, abs=0.5)
    # No spare segments: a 130 s and a 70 s line each reach their level at 60 s; the attack is capped too.
    crowded = envelope._within_segment_limit([(61.0, 0.0)] + [(0.5, -1.0)] * 5 + [(130.0, -7.0), (70.0, -9.0)])
    assert len(crowded) == envelope.MAX_SEGMENTS
    assert crowded[0] == (60.0, 0.0) and crowded[-2:] == [(60.0, -7.0), (60.0, -9.0)]
    split = envelope._within_segment_limit([(0.1, 0.0), (150.0, -30.0)])
    assert split == [(0.1, 0.0), (50.0, -10.0), (50.0, -20.0), (50.0, -30.0)]
