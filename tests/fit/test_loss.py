"""Per-frame W1 / MSE / Sinkhorn losses: references (POT, scipy), NumPy twins, finite differences."""

import numpy as np
import ot
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from wifm_synth.errors import InputError
from wifm_synth.fit.loss import (
    FrameLosses,
    frame_losses,
    grid_cost_table,
    mse_grid,
    sinkhorn_lines,
    w1_grid,
    w1_lines,
)
from wifm_synth.fit.loss_kernels import CDF_ROUNDOFF, MSE_UPPER_BOUND, w1_grid_amps_into


def w1_twin(target_pos, target_w, model_pos, model_amps):
    """NumPy twin of one W1 frame: CDFs on the unique merged positions, gradients from their jumps."""
    p = target_w / target_w.sum()
    q = model_amps / model_amps.sum()
    axis = np.unique(np.concatenate([target_pos, model_pos]))
    difference = (p[None, :] * (target_pos[None, :] <= axis[:, None])).sum(1) \
        - (q[None, :] * (model_pos[None, :] <= axis[:, None])).sum(1)
    gaps = np.append(np.diff(axis), 0.0)
    loss = np.sum(np.abs(difference) * gaps)
    sign = np.where(np.abs(difference) > CDF_ROUNDOFF, np.sign(difference), 0.0)
    d_weights = np.array([-np.sum(sign * gaps * (axis >= y)) for y in model_pos])
    grad_amps = (d_weights - q @ d_weights) / model_amps.sum()
    slot = np.searchsorted(axis, model_pos)
    right = difference[slot]
    left = np.where(slot > 0, difference[slot - 1], 0.0)
    grad_positions = 0.5 * ((np.abs(right + q) - np.abs(right)) + (np.abs(left) - np.abs(left - q)))
    return loss, grad_amps, grad_positions


def mse_twin(target_w, model_amps):
    p = target_w / target_w.sum()
    q = model_amps / model_amps.sum()
    d_weights = -2.0 * (p - q)
    return np.sum((p - q) ** 2), (d_weights - q @ d_weights) / model_amps.sum()


def random_frame(rng, n_target, n_model, *, integer_positions):
    """Positions on a small integer lattice produce ties; some weights are exactly zero."""
    if integer_positions:
        target_pos = rng.integers(0, 6, n_target).astype(float)
        model_pos = rng.integers(0, 6, n_model).astype(float)
    else:
        target_pos = rng.uniform(-3.0, 9.0, n_target)
        model_pos = rng.uniform(-3.0, 9.0, n_model)
    target_w = rng.random(n_target) * (rng.random(n_target) > 0.25)
    model_amps = rng.random(n_model) * (rng.random(n_model) > 0.25)
    target_w[rng.integers(n_target)] += 0.1
    model_amps[rng.integers(n_model)] += 0.1
    return target_pos, target_w, model_pos, model_amps


FRAME_SIZES = [(1, 1), (1, 5), (6, 1), (7, 9), (30, 12)]


@pytest.mark.parametrize("integer_positions", [True, False])
@pytest.mark.parametrize("n_target, n_model", FRAME_SIZES)
def test_w1_values_match_pot_and_scipy(n_target, n_model, integer_positions):
    rng = np.random.default_rng(n_target * 100 + n_model)
    for _ in range(20):
        target_pos, target_w, model_pos, model_amps = random_frame(rng, n_target, n_model, integer_positions=integer_positions)
        loss = w1_lines(target_pos, target_w, model_pos, model_amps).loss
        pot = ot.wasserstein_1d(target_pos, model_pos, target_w / target_w.sum(), model_amps / model_amps.sum(), p=1)
        assert loss == pytest.approx(pot, abs=1e-12)
        assert loss == pytest.approx(scipy.stats.wasserstein_distance(target_pos, model_pos, target_w, model_amps), abs=1e-12)


def atoms(max_size):
    """(positions, weights) with repeated positions likely and some weights exactly zero."""
    position = st.one_of(st.integers(-3, 3).map(float), st.floats(-1e3, 1e3))
    weight = st.one_of(st.just(0.0), st.floats(1e-6, 1e6))
    return st.lists(st.tuples(position, weight), min_size=1, max_size=max_size).filter(
        lambda pairs: sum(w for _, w in pairs) > 0.0).map(lambda pairs: tuple(np.array(column) for column in zip(*pairs)))


@settings(max_examples=200, deadline=None)
@given(atoms(12), atoms(12))
def test_w1_values_match_scipy_on_arbitrary_inputs(target, model):
    loss = w1_lines(target[0], target[1], model[0], model[1]).loss
    expected = scipy.stats.wasserstein_distance(target[0], model[0], target[1], model[1])
    span = max(target[0].max(), model[0].max()) - min(target[0].min(), model[0].min())
    assert loss == pytest.approx(expected, abs=1e-9 * max(span, 1.0))


@pytest.mark.parametrize("integer_positions", [True, False])
@pytest.mark.parametrize("n_target, n_model", FRAME_SIZES)
def test_w1_lines_kernel_matches_numpy_twin(n_target, n_model, integer_positions):
    rng = np.random.default_rng(7 + n_target * 100 + n_model)
    frames = [random_frame(rng, n_target, n_model, integer_positions=integer_positions) for _ in range(15)]
    stacked = [np.stack(column) for column in zip(*frames)]
    result = w1_lines(*stacked)  # per-frame positions (T, N) and (T, L)
    for t, frame in enumerate(frames):
        loss, grad_amps, grad_positions = w1_twin(*frame)
        assert result.loss[t] == pytest.approx(loss, abs=1e-12)
        np.testing.assert_allclose(result.grad_amps[t], grad_amps, rtol=0, atol=1e-12)
        np.testing.assert_allclose(result.grad_positions[t], grad_positions, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["w1", "sinkhorn"])
def test_shared_positions_equal_per_frame_positions(kind):
    rng = np.random.default_rng(13)
    target_pos, _, model_pos, _ = random_frame(rng, 9, 7, integer_positions=True)
    target_w = rng.random((4, 9))
    model_amps = rng.random((4, 7))
    model_amps[1] = 0.0
    shared = frame_losses(kind, target_pos, target_w, model_pos, model_amps)
    per_frame = frame_losses(kind, np.tile(target_pos, (4, 1)), target_w, np.tile(model_pos, (4, 1)), model_amps)
    for a, b in zip(shared, per_frame):
        np.testing.assert_array_equal(a, b)


def grid_case(seed, n_frames=8, n_points=24, log_axis=False):
    rng = np.random.default_rng(seed)
    grid = np.log2(np.arange(1.0, n_points + 1)) if log_axis else np.arange(1.0, n_points + 1)
    target = rng.random((n_frames, n_points)) * (rng.random((n_frames, n_points)) > 0.3)
    model = rng.random((n_frames, n_points)) * (rng.random((n_frames, n_points)) > 0.3)
    target[:, 0] += 0.05
    model[:, -1] += 0.05
    return grid, target, model


@pytest.mark.parametrize("log_axis", [False, True])
def test_w1_grid_matches_twin_and_general_path(log_axis):
    grid, target, model = grid_case(1, log_axis=log_axis)
    result = w1_grid(grid, target, model)
    general = w1_lines(grid, target, grid, model)
    for t in range(target.shape[0]):
        loss, grad_amps, grad_positions = w1_twin(grid, target[t], grid, model[t])
        assert result.loss[t] == pytest.approx(loss, abs=1e-12)
        np.testing.assert_allclose(result.grad_amps[t], grad_amps, rtol=0, atol=1e-12)
        np.testing.assert_allclose(result.grad_positions[t], grad_positions, rtol=0, atol=1e-12)
    for fast, slow in zip(result, general):
        np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)


def central_differences(loss_of, values, step=1e-7):
    """d loss / d values[..., j] for every j (values: amplitudes or positions)."""
    numeric = np.zeros_like(values)
    for j in range(values.shape[-1]):
        upper, lower = values.copy(), values.copy()
        upper[..., j] += step
        lower[..., j] -= step
        numeric[..., j] = (loss_of(upper) - loss_of(lower)) / (2 * step)
    return numeric


@pytest.mark.parametrize("log_axis", [False, True])
def test_w1_grid_amplitude_gradient_matches_finite_differences(log_axis):
    grid, target, model = grid_case(2, log_axis=log_axis)
    model += 0.01  # central differences need room on both sides of every amplitude
    analytic = w1_grid(grid, target, model).grad_amps
    numeric = central_differences(lambda amps: w1_grid(grid, target, amps).loss, model)
    np.testing.assert_allclose(analytic, numeric, rtol=0, atol=1e-6)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("integer_positions", [True, False])
def test_w1_lines_gradients_match_finite_differences(integer_positions, seed):
    rng = np.random.default_rng(seed)
    target_pos, target_w, model_pos, model_amps = random_frame(rng, 8, 6, integer_positions=integer_positions)
    model_amps += 0.01
    result = w1_lines(target_pos, target_w, model_pos, model_amps)
    numeric = central_differences(
        lambda amps: w1_lines(target_pos, target_w, model_pos, amps).loss, model_amps)
    np.testing.assert_allclose(result.grad_amps, numeric, rtol=0, atol=1e-6)
    # W1 is piecewise linear in positions; at ties central differences see the averaged slope
    numeric_positions = central_differences(
        lambda positions: w1_lines(target_pos, target_w, positions, model_amps).loss, model_pos)
    np.testing.assert_allclose(result.grad_positions, numeric_positions, rtol=0, atol=1e-6)


def test_mse_matches_twin_and_finite_differences():
    _, target, model = grid_case(4)
    model += 0.01
    result = mse_grid(target, model)
    for t in range(target.shape[0]):
        loss, grad_amps = mse_twin(target[t], model[t])
        assert result.loss[t] == pytest.approx(loss, abs=1e-14)
        np.testing.assert_allclose(result.grad_amps[t], grad_amps, rtol=0, atol=1e-13)
    numeric = central_differences(lambda amps: mse_grid(target, amps).loss, model)
    np.testing.assert_allclose(result.grad_amps, numeric, rtol=0, atol=1e-7)
    assert not result.grad_positions.any()


def quiet_frames():
    """Frame 0 both empty, 1 silent target, 2 silent model, 3 normal."""
    target = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.2, 0.0, 0.5], [1.0, 0.0, 1.0]])
    model = np.array([[0.0, 0.0, 0.0], [0.3, 0.1, 0.0], [0.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    return np.array([1.0, 2.0, 4.0]), target, model


@pytest.mark.parametrize("kind", ["w1", "mse", "sinkhorn"])
def test_quiet_frames_are_finite_and_bounded(kind):
    grid, target, model = quiet_frames()
    result = frame_losses(kind, grid, target, grid, model)
    for array in result:
        assert np.isfinite(array).all()
    upper_bound = MSE_UPPER_BOUND if kind == "mse" else grid[-1] - grid[0]
    assert result.loss[0] == result.loss[1] == 0.0
    assert result.loss[2] == upper_bound
    assert 0.0 < result.loss[3] <= upper_bound
    assert not result.grad_amps[:3].any() and not result.grad_positions[:3].any()


def test_w1_lines_silent_model_scores_span_of_the_frame():
    result = w1_lines(np.array([2.0, 3.0]), np.array([1.0, 1.0]), np.array([-1.0, 5.0]), np.array([0.0, 0.0]))
    assert result.loss == 6.0
    assert not result.grad_amps.any()


def test_identical_distributions_have_zero_loss_and_zero_amplitude_gradient():
    grid = np.arange(1.0, 9.0)
    weights = np.array([0.0, 1.0, 0.5, 0.0, 0.25, 0.0, 0.0, 0.125])
    result = w1_grid(grid, weights, 3.0 * weights)
    assert result.loss == 0.0
    assert not result.grad_amps.any()


def test_shifting_a_single_line_moves_loss_linearly():
    result = w1_lines(np.array([0.0]), np.array([1.0]), np.array([2.5]), np.array([3.0]))
    assert result.loss == pytest.approx(2.5)
    assert result.grad_positions[0] == pytest.approx(1.0)
    assert result.grad_amps[0] == pytest.approx(0.0)


def test_sinkhorn_tends_to_w1_for_small_regularisation():
    rng = np.random.default_rng(5)
    target_pos, target_w, model_pos, model_amps = random_frame(rng, 10, 8, integer_positions=False)
    exact = w1_lines(target_pos, target_w, model_pos, model_amps).loss
    entropic = sinkhorn_lines(target_pos, target_w, model_pos, model_amps, reg=0.01).loss
    assert entropic == pytest.approx(exact, abs=0.05)


def test_sinkhorn_stays_finite_when_reg_is_tiny_against_the_distances():
    # exp(-distance / reg) underflows for every pair here; a single model line makes the plan p⊗q
    grid = np.arange(1.0, 61.0)
    target = np.where(grid >= 40, 1.0, 0.0)
    model = np.where(grid == 1, 1.0, 1e-30)
    result = sinkhorn_lines(grid, target, grid, model, reg=0.01)
    assert result.loss == pytest.approx(w1_lines(grid, target, grid, model).loss, rel=1e-6)
    for array in result:
        assert np.isfinite(array).all()
    assert result.grad_amps[1] < 0.0  # mass nearer the target lowers the cost


def test_sinkhorn_gradients_match_finite_differences():
    rng = np.random.default_rng(6)
    target_pos, target_w, model_pos, model_amps = random_frame(rng, 7, 6, integer_positions=False)
    model_amps[2] = 0.0
    settings = {"reg": 0.3, "tolerance": 1e-13}
    result = sinkhorn_lines(target_pos, target_w, model_pos, model_amps, **settings)
    step = 1e-6
    for j in range(model_amps.size):
        lower = model_amps.copy()
        upper = model_amps.copy()
        upper[j] += step
        lower[j] = max(lower[j] - step, 0.0)  # a silent line only has the one-sided slope
        numeric = (sinkhorn_lines(target_pos, target_w, model_pos, upper, **settings).loss
                   - sinkhorn_lines(target_pos, target_w, model_pos, lower, **settings).loss) / (upper[j] - lower[j])
        assert result.grad_amps[j] == pytest.approx(numeric, abs=1e-5)
    numeric_positions = central_differences(
        lambda positions: sinkhorn_lines(target_pos, target_w, positions, model_amps, **settings).loss, model_pos, step)
    np.testing.assert_allclose(result.grad_positions, numeric_positions, rtol=0, atol=1e-6)
    assert result.grad_positions[2] == 0.0


def test_dispatcher_takes_the_grid_path_only_on_a_shared_grid():
    grid, target, model = grid_case(8)
    on_grid = frame_losses("w1", grid, target, grid, model)
    for fast, reference in zip(on_grid, w1_grid(grid, target, model)):
        np.testing.assert_array_equal(fast, reference)
    shifted = grid + 0.25
    off_grid = frame_losses("w1", grid, target, shifted, model)
    for general, reference in zip(off_grid, w1_lines(grid, target, shifted, model)):
        np.testing.assert_array_equal(general, reference)
    with pytest.raises(InputError, match="mse"):
        frame_losses("mse", grid, target, shifted, model)
    with pytest.raises(InputError, match="unknown kind"):
        frame_losses("l2", grid, target, grid, model)


def test_amplitude_only_kernel_matches_full_kernel():
    grid, target, model = grid_case(10)
    target[2] = 0.0
    model[5] = 0.0
    full = w1_grid(grid, target, model)
    loss, grad_amps = np.empty(target.shape[0]), np.empty(target.shape)
    w1_grid_amps_into(grid, target, model, loss, grad_amps)
    np.testing.assert_array_equal(loss, full.loss)
    np.testing.assert_array_equal(grad_amps, full.grad_amps)


@pytest.mark.parametrize("kind", ["w1", "mse"])
@pytest.mark.parametrize("log_axis", [False, True])
def test_cost_table_matches_pairwise_frame_losses(kind, log_axis):
    grid, target, _ = grid_case(11, n_frames=6, log_axis=log_axis)
    _, _, models = grid_case(12, n_frames=5, log_axis=log_axis)
    target[1] = 0.0
    models[3] = 0.0
    table = grid_cost_table(kind, grid, target, models)
    assert table.shape == (6, 5)
    # NumPy twins of the table kernels: W1 from normalised CDF differences times gaps, MSE directly
    with np.errstate(invalid="ignore"):
        p = target / target.sum(1, keepdims=True)
        q = models / models.sum(1, keepdims=True)
    if kind == "w1":
        twin = (np.abs(np.cumsum(p, 1)[:, None, :-1] - np.cumsum(q, 1)[None, :, :-1]) * np.diff(grid)).sum(-1)
        twin[:, 3] = grid[-1] - grid[0]
    else:
        twin = ((p[:, None, :] - q[None, :, :]) ** 2).sum(-1)
        twin[:, 3] = MSE_UPPER_BOUND
    twin[1, :] = 0.0
    np.testing.assert_allclose(table, twin, rtol=0, atol=1e-12)
    for g in range(models.shape[0]):
        pairwise = frame_losses(kind, grid, target, grid, np.repeat(models[g:g + 1], target.shape[0], axis=0)).loss
        np.testing.assert_allclose(table[:, g], pairwise, rtol=0, atol=1e-12)
    with pytest.raises(InputError, match="cost tables"):
        grid_cost_table("sinkhorn", grid, target, models)


def test_preallocated_output_is_filled_in_place():
    grid, target, model = grid_case(9)
    out = FrameLosses(np.empty(target.shape[0]), np.empty(target.shape), np.empty(target.shape))
    result = w1_grid(grid, target, model, out=out)
    assert result.loss is out.loss and result.grad_amps is out.grad_amps
    np.testing.assert_array_equal(out.loss, w1_grid(grid, target, model).loss)
    with pytest.raises(InputError, match="out"):
        w1_grid(grid, target, model, out=FrameLosses(np.empty(1), out.grad_amps, out.grad_positions))


@pytest.mark.parametrize("call", [
    lambda: w1_grid([1.0, 2.0], [1.0, -0.1], [1.0, 1.0]),
    lambda: w1_grid([1.0, 2.0], [1.0, np.nan], [1.0, 1.0]),
    lambda: w1_grid([1.0, 2.0], [1.0, 1.0], [1.0, np.inf]),
    lambda: w1_grid([2.0, 1.0], [1.0, 1.0], [1.0, 1.0]),
    lambda: w1_grid([1.0, 1.0], [1.0, 1.0], [1.0, 1.0]),
    lambda: w1_grid([1.0, 2.0, 3.0], [1.0, 1.0], [1.0, 1.0]),
    lambda: w1_grid([1.0, 2.0], [[1.0, 1.0]], [[1.0, 1.0], [1.0, 1.0]]),
    lambda: w1_lines([1.0], [[]], [1.0], [[1.0]]),
    lambda: w1_lines([1.0, 2.0], [1.0], [1.0], [1.0]),
    lambda: w1_lines([np.nan], [1.0], [1.0], [1.0]),
    lambda: mse_grid([1.0, 1.0], [1.0]),
    lambda: sinkhorn_lines([1.0], [1.0], [1.0], [1.0], reg=0.0),
])
def test_invalid_input_raises_input_error(call):
    with pytest.raises(InputError):
        call()
