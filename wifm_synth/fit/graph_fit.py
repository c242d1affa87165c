"""Per-frame operator levels of a structure by exact-gradient descent on the W1 loss, and the
greedy-plus-beam search over structures and integer ratios.

Loss of a frame: W1 between the target's harmonic amplitudes and the structure's harmonic magnitudes
on the loss axis (``fit.loss``). Its gradient w.r.t. each operator level and the feedback is exact:
dL/dlevel_k = Σ_h dL/dM_h · dM_h/dlevel_k, W1's amplitude gradient times ``voice.graph_spectrum``'s
derivatives. The objective over frames adds a quadratic smoothness prior on each operator's level
from frame to frame, so level trajectories do not hop between local minima and stay few-segment
for the envelope DP. The feedback is one value per voice (the patch field has no envelope), so its
gradient is summed over frames.

Carrier levels: W1 compares normalised shapes, so only the carriers' *relative* levels matter; they
are kept summing to 1 per frame and the absolute level is set afterwards by energy matching.

Search: from given starts (the 2-operator fits, or ``multi_op``'s two-pair starts) grow one operator at a
time (a new carrier, or a modulator under any operator) with every small integer ratio; rank each move by
its loss with the new operator's level at the best of a few entry levels per frame, the others fixed;
optimise the most promising moves briefly on a few frames from there and keep a beam of the best structures.
Feedback is tried on each operator of the best structure of each size.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from wifm_synth.fit.loss import frame_losses
from wifm_synth.fit.ratio_search import MAX_INDEX, weighted_mean
from wifm_synth.fit.structures import CARRIER_ROOT, Structure, is_realisable
from wifm_synth.voice.graph_spectrum import GraphSpectrum, points_per_period

CARRIER_RATIOS = tuple(range(1, 5))
MODULATOR_RATIOS = tuple(range(1, 15))
# Above 1 rad the feedback fixed point has several branches (graph_spectrum's docstring) and the
# engine's recursion turns noisy, so the fit stays below it.
MAX_FEEDBACK = 0.95
# Prior weight per (rad or relative level)² of change between consecutive fitted frames, against
# per-frame W1 values of ~0.05–0.5 on the log2 axis: small enough that a real change pays for itself.
SMOOTHNESS = 0.02
LEARNING_RATE = 0.05
# A move (one more operator) is ranked by the loss with the new operator's level at the best of these per
# frame, the others fixed, and optimised from there. Ranked by the loss's slope at level 0 instead (as
# before), the moves W1 favours are wide modulators that move mass the most, not those that fit
# (docs/RESULTS.md: dev-note median position 0.71 → 0.74).
ENTRY_MODULATOR_LEVELS = (0.25, 0.5, 1.0, 1.75, 2.75)
ENTRY_CARRIER_LEVELS = (0.1, 0.25, 0.5)
SCREEN_ITERATIONS = 25
REFINE_ITERATIONS = 60
MOVES_OPTIMISED = 8  # per parent structure, after ranking by the entry score
BEAM_WIDTH = 3
FEEDBACK_START = 0.3


@dataclass
class LevelFit:
    """A structure with per-frame levels (T, K) and one feedback value, and its weighted mean loss."""

    structure: Structure
    levels: np.ndarray
    feedback: float
    loss: float


# The cost of one evaluation (spectrum, W1 and its gradient, an optimiser step) as a model of its inputs,
# so that ``--ops auto`` weighs quality gained against work in a way that does not depend on the machine's
# load (a wall clock would make the same note fit differently on a busy machine). Fitted (non-negative
# least squares) to the CPU seconds of the grow steps of 8 fits (4 dev notes, auto and 6 operators, one
# core of the project's AMD EPYC, NUMBA_NUM_THREADS=1; median error 21 %): a fixed cost per evaluation
# plus T·N·(a + b K) for T frames, N points per period and K operators.
SPECTRUM_NS_PER_POINT_FRAME = 34.0
SPECTRUM_NS_PER_POINT_FRAME_OPERATOR = 2.5
EVALUATION_OVERHEAD_S = 5.4e-4
CACHED_SPECTRA = 16


class SpectrumCache:
    """One GraphSpectrum per (structure, points per period); N grows with the levels, so it is looked
    up per evaluation from the current levels. ``modelled_seconds`` adds up the cost model above over
    every evaluation made through it. Only the CACHED_SPECTRA most recently used are kept: a search
    tries over a thousand structures, each instance holds megabytes of buffers, and an optimisation
    calls one structure many times in a row."""

    def __init__(self, n_harmonics: int):
        self.n_harmonics = n_harmonics
        self.instances: OrderedDict = OrderedDict()
        self.modelled_seconds = 0.0

    def __call__(self, structure: Structure, levels: np.ndarray, feedback: float):
        topology = structure.topology()
        n_points = points_per_period(topology, structure.ratios, levels, feedback, self.n_harmonics)
        key = (structure, n_points)
        if key in self.instances:
            self.instances.move_to_end(key)
        else:
            self.instances[key] = GraphSpectrum(topology, structure.ratios, self.n_harmonics, n_points)
            if len(self.instances) > CACHED_SPECTRA:
                self.instances.popitem(last=False)
        frames = levels.shape[0] if levels.ndim == 2 else 1
        self.modelled_seconds += EVALUATION_OVERHEAD_S + 1e-9 * frames * n_points * (
            SPECTRUM_NS_PER_POINT_FRAME + SPECTRUM_NS_PER_POINT_FRAME_OPERATOR * topology.operator_count)
        return self.instances[key](levels, feedback)


def evaluate(cache: SpectrumCache, structure: Structure, levels, feedback, axis, amplitudes):
    """Per-frame loss (T,), d loss/d levels (T, K) and d loss/d feedback (T,)."""
    magnitudes, derivatives = cache(structure, levels, feedback)
    result = frame_losses("w1", axis, amplitudes, axis, magnitudes)
    gradient = np.einsum("th,thp->tp", result.grad_amps, derivatives)
    return result.loss, gradient[:, :-1], gradient[:, -1]


def _upper_bounds(structure: Structure) -> np.ndarray:
    return np.array([1.0 if carrier else MAX_INDEX for carrier in structure.carriers])


def _normalise_carriers(levels: np.ndarray, carriers: np.ndarray) -> np.ndarray:
    total = levels[:, carriers].sum(axis=1, keepdims=True)
    levels[:, carriers] /= np.where(total > 0.0, total, 1.0)
    return levels


def optimise_levels(cache: SpectrumCache, structure: Structure, levels: np.ndarray, feedback: float,
                    axis: np.ndarray, amplitudes: np.ndarray, weights: np.ndarray, iterations: int,
                    smoothness: float = SMOOTHNESS) -> LevelFit:
    """Projected Adam on every frame's levels (and the shared feedback); returns the best iterate."""
    carriers = np.array(structure.carriers)
    upper = _upper_bounds(structure)
    levels = _normalise_carriers(np.clip(np.array(levels, dtype=np.float64), 0.0, upper), carriers)
    use_feedback = structure.feedback_operator is not None
    feedback = float(feedback) if use_feedback else 0.0
    frame_weights = weights / max(weights.sum(), 1e-300)
    moments = [np.zeros_like(levels), np.zeros_like(levels), 0.0, 0.0]
    best = None
    for step in range(1, iterations + 2):
        loss, grad_levels, grad_feedback = evaluate(cache, structure, levels, feedback, axis, amplitudes)
        total = float(np.sum(frame_weights * loss))
        if best is None or total < best.loss:
            best = LevelFit(structure, levels.copy(), feedback, total)
        if step > iterations:
            break
        gradient = grad_levels * frame_weights[:, None]
        if smoothness > 0.0 and levels.shape[0] > 1:
            jumps = np.diff(levels, axis=0)
            gradient[1:] += 2.0 * smoothness * jumps / levels.shape[0]
            gradient[:-1] -= 2.0 * smoothness * jumps / levels.shape[0]
        levels = levels - _adam(moments, 0, gradient, step)
        levels = _normalise_carriers(np.clip(levels, 0.0, upper), carriers)
        if use_feedback:
            feedback = float(np.clip(feedback - _adam(moments, 2, float(np.sum(frame_weights * grad_feedback)), step),
                                     0.0, MAX_FEEDBACK))
    return best


def _adam(moments: list, slot: int, gradient, step: int, beta1: float = 0.9, beta2: float = 0.999):
    """Adam's step for the parameters whose first and second moments sit at moments[slot], [slot + 1]."""
    moments[slot] = beta1 * moments[slot] + (1.0 - beta1) * gradient
    moments[slot + 1] = beta2 * moments[slot + 1] + (1.0 - beta2) * gradient * gradient
    first = moments[slot] / (1.0 - beta1 ** step)
    second = moments[slot + 1] / (1.0 - beta2 ** step)
    return LEARNING_RATE * first / (np.sqrt(second) + 1e-8)


def _moves(structure: Structure):
    """Every realisable structure with one more operator: a carrier, or a modulator under any operator."""
    for parent in (CARRIER_ROOT, *range(structure.operator_count)):
        for ratio in CARRIER_RATIOS if parent == CARRIER_ROOT else MODULATOR_RATIOS:
            grown = structure.with_operator(parent, ratio)
            if is_realisable(grown):
                yield grown


def _entry(cache, grown: Structure, levels: np.ndarray, feedback: float, axis, amplitudes, weights):
    """(score, start levels) of a move: the new (last) operator's level tried at each entry level with the
    others fixed, per frame the best one; the score is the weighted mean of those frames' losses."""
    entries = np.array(ENTRY_CARRIER_LEVELS if grown.parents[-1] == CARRIER_ROOT else ENTRY_MODULATOR_LEVELS)
    frames = levels.shape[0]
    batch = np.concatenate([np.tile(levels, (entries.size, 1)), np.repeat(entries, frames)[:, None]], axis=1)
    loss, _, _ = evaluate(cache, grown, batch, feedback, axis, np.tile(amplitudes, (entries.size, 1)))
    loss = loss.reshape(entries.size, frames)
    best = np.argmin(loss, axis=0)
    start = np.concatenate([levels, entries[best][:, None]], axis=1)
    return weighted_mean(loss[best, np.arange(frames)], weights), start


def grow_structures(cache: SpectrumCache, starts: list[LevelFit], max_operators: int, axis: np.ndarray,
                    amplitudes: np.ndarray, weights: np.ndarray, runners_up: dict | None = None) -> dict[int, LevelFit]:
    """Best fit found per operator count (from the starts' up to ``max_operators``), on these frames.
    The starts (fits of one operator count) are the first beam. ``runners_up``, when given, receives the
    rest of each count's beam (best first), without the feedback trial."""
    first = min(starts, key=lambda fit: fit.loss)
    best = {first.structure.operator_count: first}
    frontier = list(starts)
    for size in range(first.structure.operator_count + 1, max_operators + 1):
        fits: dict[str, LevelFit] = {}
        for parent in frontier:
            ranked = []
            for grown in _moves(parent.structure):
                if grown.key() in fits:
                    continue
                score, levels = _entry(cache, grown, parent.levels, parent.feedback, axis, amplitudes, weights)
                ranked.append((score, len(ranked), grown, levels))
            ranked.sort(key=lambda item: item[:2])
            for _, _, grown, levels in ranked[:MOVES_OPTIMISED]:
                fit = optimise_levels(cache, grown, levels, parent.feedback, axis, amplitudes, weights,
                                      SCREEN_ITERATIONS)
                fits[grown.key()] = fit
        if not fits:
            break
        frontier = sorted(fits.values(), key=lambda fit: fit.loss)[:BEAM_WIDTH]
        best[size] = frontier[0]
        if runners_up is not None:
            runners_up[size] = frontier[1:]
    for size, fit in list(best.items()):
        best[size] = with_best_feedback(cache, fit, axis, amplitudes, weights)
    return best


def with_best_feedback(cache, fit: LevelFit, axis, amplitudes, weights) -> LevelFit:
    """The fit, or the fit with feedback on one of its operators if that lowers the loss."""
    if fit.structure.feedback_operator is not None:
        return fit
    best = fit
    for operator in range(fit.structure.operator_count):
        structure = fit.structure.with_feedback(operator)
        if not is_realisable(structure):
            continue
        candidate = optimise_levels(cache, structure, fit.levels, FEEDBACK_START, axis, amplitudes, weights,
                                    SCREEN_ITERATIONS)
        if candidate.loss < best.loss:
            best = candidate
    return best
