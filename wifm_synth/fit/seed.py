"""The seed method, kept as the comparison baseline (``--method seed``), with exact gradients.

Carrier ratio 1 and a FREE (real) modulator ratio: Adam on (ratio, index) from (5, 5) at the
loudest frame, then Adam on the index of every frame with that ratio, warm-started from the
loudest frame's index. The per-frame loss (W1 or Sinkhorn) compares the target harmonics with the
model's lines at their real positions on the seed's linear (harmonic-index) frequency axis;
gradients come from the loss (amplitude and line-position gradients) chained with the FM line
derivatives — no numerical differentiation.
The carrier gain matches each frame's energy, as in the main method, and the caller fits 3-segment
envelopes.
"""

from __future__ import annotations

import numpy as np

from wifm_synth.errors import InputError
from wifm_synth.fit.loss import frame_losses
from wifm_synth.fit.ratio_search import (
    IndexTrajectory,
    TargetSpectra,
    energy_matched_gains,
    weighted_mean,
)
from wifm_synth.voice.spectrum import fm_lines

START_RATIO = 5.0
START_INDEX = 5.0
RATIO_RANGE = (0.05, 32.0)
INDEX_RANGE = (0.0, 25.0)
LOUDEST_FRAME_STEPS = 400
PER_FRAME_STEPS = 150
LEARNING_RATE = 0.05
ADAM_BETAS = (0.9, 0.999)
ADAM_EPSILON = 1e-8
ENVELOPE_SEGMENTS = 3
SEED_LOSS_KINDS = ("w1", "sinkhorn")


class _Adam:
    """Adam on an array of parameters (elementwise, so a batch of frames steps independently)."""

    def __init__(self, shape, learning_rate=LEARNING_RATE):
        self.learning_rate = learning_rate
        self.first = np.zeros(shape)
        self.second = np.zeros(shape)
        self.steps = 0

    def step(self, params, gradient):
        beta1, beta2 = ADAM_BETAS
        self.steps += 1
        self.first = beta1 * self.first + (1.0 - beta1) * gradient
        self.second = beta2 * self.second + (1.0 - beta2) * gradient**2
        first = self.first / (1.0 - beta1**self.steps)
        second = self.second / (1.0 - beta2**self.steps)
        return params - self.learning_rate * first / (np.sqrt(second) + ADAM_EPSILON)


def _sidebands(max_index: float) -> int:
    # J_n(β) < 1e-6 beyond this order (see fm.spectrum.fm_lines).
    return int(max_index + 4.0 * max_index ** (1.0 / 3.0) + 8.0)


def _model_lines(target: TargetSpectra, ratio: float, betas: np.ndarray):
    """Model line magnitudes and positions on the loss axis, with d/dβ and d position/d ratio.

    Lines outside the target's harmonic range (below half a harmonic or above the last one) get
    zero amplitude: the target was measured only there.
    """
    lines = fm_lines(betas, 1.0, ratio, _sidebands(float(betas.max())))
    magnitudes, slopes = lines.magnitudes()
    n_harmonics = target.axis.size
    inside = (lines.positions >= 0.5) & (lines.positions <= n_harmonics + 0.5)
    magnitudes = np.where(inside, magnitudes, 0.0)
    slopes = np.where(inside, slopes, 0.0)
    # The loss axis is a monotone map of the harmonic number; interpolate it (and its slope) there.
    harmonic_numbers = np.arange(1, n_harmonics + 1, dtype=np.float64)
    clipped = np.clip(lines.positions, 1.0, float(n_harmonics))
    positions = np.interp(clipped, harmonic_numbers, target.axis)
    axis_slope = np.gradient(target.axis, harmonic_numbers) if n_harmonics > 1 else np.ones(1)
    position_per_ratio = np.interp(clipped, harmonic_numbers, axis_slope) * lines.position_per_mod_ratio
    return magnitudes, slopes, positions, position_per_ratio


def _loss_and_gradients(loss_kind, target, frames, ratio, betas):
    magnitudes, slopes, positions, position_per_ratio = _model_lines(target, ratio, betas)
    result = frame_losses(loss_kind, target.axis, target.amplitudes[frames], positions,
                          np.atleast_2d(magnitudes))
    grad_index = np.sum(result.grad_amps * np.atleast_2d(slopes), axis=1)
    grad_ratio = np.sum(result.grad_positions * position_per_ratio, axis=1)
    return result.loss, grad_index, grad_ratio, np.atleast_2d(magnitudes)


def fit_seed_trajectory(target: TargetSpectra, loss_kind: str = "w1") -> IndexTrajectory:
    """Seed-method fit; ``modulator_ratio`` of the result is a real number."""
    if loss_kind not in SEED_LOSS_KINDS:
        raise InputError(f"loss: the seed method needs a transport loss ({', '.join(SEED_LOSS_KINDS)}); "
                         f"{loss_kind!r} cannot compare lines that fall between harmonics")
    energy = np.sum(target.amplitudes**2, axis=1) * target.frame_weights
    loudest = np.array([int(np.argmax(energy))])
    params = np.array([START_RATIO, START_INDEX])
    adam = _Adam(2)
    for _ in range(LOUDEST_FRAME_STEPS):
        _, grad_index, grad_ratio, _ = _loss_and_gradients(loss_kind, target, loudest, params[0], params[1:])
        params = adam.step(params, np.array([grad_ratio[0], grad_index[0]]))
        params[0] = np.clip(params[0], *RATIO_RANGE)
        params[1] = np.clip(params[1], *INDEX_RANGE)
    ratio = float(params[0])

    frames = np.arange(target.amplitudes.shape[0])
    betas = np.full(frames.size, params[1])
    adam = _Adam(frames.size)
    for _ in range(PER_FRAME_STEPS):
        _, grad_index, _, _ = _loss_and_gradients(loss_kind, target, frames, ratio, betas)
        betas = np.clip(adam.step(betas, grad_index), *INDEX_RANGE)
    frame_loss, _, _, magnitudes = _loss_and_gradients(loss_kind, target, frames, ratio, betas)
    gains = energy_matched_gains(target.amplitudes, magnitudes)
    return IndexTrajectory(
        carrier_ratio=1, modulator_ratio=ratio, betas=betas, frame_loss=frame_loss,
        loss=weighted_mean(frame_loss, target.frame_weights), carrier_gains=gains,
    )
