"""Ratio search and β(t) tracking: Viterbi twin, exact-spectrum recovery, refinement precision."""

import math

import numpy as np
import pytest

from wifm_synth.fit import ratio_search
from wifm_synth.fit.loss import sinkhorn_lines
from wifm_synth.fit.ratio_search import (
    TargetSpectra,
    candidate_ratios,
    energy_matched_gains,
    index_grid,
    search_index_trajectories,
)
from wifm_synth.voice.spectrum import harmonic_spectrum


def reference_viterbi(costs, weights, betas, jump_cost):
    """Plain NumPy dynamic programme over the grid, vectorised over grid pairs."""
    total = weights[0] * costs[0]
    back = []
    for t in range(1, costs.shape[0]):
        candidates = total[None, :] + jump_cost * (betas[:, None] - betas[None, :]) ** 2  # [to, from]
        back.append(np.argmin(candidates, axis=1))
        total = candidates.min(axis=1) + weights[t] * costs[t]
    path = [int(np.argmin(total))]
    for pointers in reversed(back):
        path.append(int(pointers[path[-1]]))
    return np.array(path[::-1]), float(total.min())


def path_cost(path, costs, weights, betas, jump_cost):
    steps = np.diff(betas[path])
    return float(np.sum(weights * costs[np.arange(path.size), path]) + jump_cost * np.sum(steps**2))


def test_viterbi_matches_numpy_twin():
    rng = np.random.default_rng(11)
    costs = rng.uniform(0.0, 1.0, (30, 17))
    weights = (rng.uniform(size=30) > 0.2).astype(float)
    betas = index_grid(17, 6.0)
    path, total = ratio_search._viterbi(costs, weights, betas, 0.3)
    expected_path, expected_total = reference_viterbi(costs, weights, betas, 0.3)
    assert total == pytest.approx(expected_total, rel=1e-12)
    assert path_cost(path, costs, weights, betas, 0.3) == pytest.approx(expected_total, rel=1e-12)
    np.testing.assert_array_equal(path, expected_path)


def test_smoothness_prior_removes_isolated_jumps():
    """A frame whose own minimum is far away follows its neighbours when the jump does not pay."""
    betas = index_grid(40, 6.0)
    costs = (betas[None, :] - 2.0) ** 2 * np.ones((9, 1))
    costs[4] = np.minimum((betas - 5.0) ** 2, 0.01 + (betas - 2.0) ** 2)
    path, _ = ratio_search._viterbi(costs, np.ones(9), betas, 1.0)
    assert np.all(np.abs(betas[path] - 2.0) < 0.2)
    free_path, _ = ratio_search._viterbi(costs, np.ones(9), betas, 0.0)
    assert abs(betas[free_path[4]] - 5.0) < 0.2


def test_candidates_have_the_fundamental_as_lowest_line():
    candidates = candidate_ratios()
    assert (1, 1) in candidates and (3, 2) in candidates and (2, 4) not in candidates
    assert all(math.gcd(c, m) == 1 for c, m in candidates)
    assert len(candidates) == len(set(candidates)) == 12 + 6 + 8


def exact_target(carrier, modulator, betas, n_harmonics=60, axis="harmonic", hop_s=0.01):
    magnitudes, _ = harmonic_spectrum(betas, carrier, modulator, n_harmonics)
    levels = np.linspace(1.0, 0.3, betas.size)
    harmonics = np.arange(1, n_harmonics + 1, dtype=float)
    positions = harmonics if axis == "harmonic" else np.log2(harmonics)
    return TargetSpectra(positions, magnitudes * levels[:, None], np.ones(betas.size), hop_s), levels


@pytest.mark.parametrize("axis", ["harmonic", "log"])
@pytest.mark.parametrize("carrier, modulator, peak", [(1, 1, 4.0), (1, 3, 1.2), (1, 7, 2.5), (2, 3, 3.0), (3, 5, 0.8)])
def test_exact_spectra_recover_ratio_and_index(carrier, modulator, peak, axis):
    betas = peak * np.exp(-np.arange(80) * 0.01 / 0.4)
    target, levels = exact_target(carrier, modulator, betas, axis=axis)
    best = search_index_trajectories(target)[0]
    assert (best.carrier_ratio, best.modulator_ratio) == (carrier, modulator)
    np.testing.assert_allclose(best.betas, betas, rtol=2e-3)
    np.testing.assert_allclose(best.carrier_gains, levels, rtol=2e-3)
    assert best.loss < 1e-3


def test_mse_loss_kind_recovers_too():
    betas = np.full(40, 2.2)
    target, _ = exact_target(1, 4, betas)
    best = search_index_trajectories(target, "mse")[0]
    assert (best.carrier_ratio, best.modulator_ratio) == (1, 4)
    np.testing.assert_allclose(best.betas, betas, rtol=2e-3)


def test_refinement_beats_the_grid_resolution():
    grid = index_grid()
    between = 0.5 * (grid[60] + grid[61])
    target, _ = exact_target(1, 2, np.full(5, between))
    best = search_index_trajectories(target, candidates=[(1, 2)])[0]
    assert np.max(np.abs(best.betas - between)) < 1e-3 * (grid[61] - grid[60])


def test_energy_matched_gain():
    rng = np.random.default_rng(2)
    magnitudes = rng.uniform(size=(4, 9))
    np.testing.assert_allclose(energy_matched_gains(magnitudes * [[1.0], [2.0], [0.5], [3.0]], magnitudes),
                               [1.0, 2.0, 0.5, 3.0])
    # A different shape keeps the target's energy (least squares would shrink it by the cosine).
    target = np.array([[3.0, 4.0, 0.0]])
    model = np.array([[1.0, 0.0, 1.0]])
    assert energy_matched_gains(target, model)[0] ** 2 * 2.0 == pytest.approx(25.0)
    assert energy_matched_gains(np.ones((1, 3)), np.zeros((1, 3)))[0] == 0.0


def test_sinkhorn_polishes_the_w1_fit():
    betas = np.array([3.0, 2.5, 2.0, 1.5])
    target, _ = exact_target(1, 5, betas, n_harmonics=40, axis="log", hop_s=0.2)
    results = search_index_trajectories(target, "sinkhorn")
    assert len(results) == 1
    best = results[0]
    assert (best.carrier_ratio, best.modulator_ratio) == (1, 5)
    # Entropic smoothing may move the optimum a little; the polish stays within half a grid cell of W1's.
    np.testing.assert_allclose(best.betas, betas, rtol=0.05)
    magnitudes, _ = harmonic_spectrum(best.betas, 1, 5, 40)
    reported = sinkhorn_lines(target.axis, target.amplitudes, target.axis, magnitudes,
                              reg=ratio_search.SINKHORN_REG, tolerance=ratio_search.SINKHORN_TOLERANCE)
    np.testing.assert_allclose(best.frame_loss, reported.loss, rtol=1e-6)
    assert best.loss == pytest.approx(reported.loss.mean())
