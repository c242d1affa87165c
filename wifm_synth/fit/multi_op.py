"""Recorded note → DX7-algorithm patch with up to 6 operators, never worse than the 2-operator fit.

Pipeline, after the 2-operator fit (``fitter``):
1. screening frames (a few evenly spaced active frames) and refinement frames (every frame of the
   attack, then evenly thinned);
2. structure search on the screening frames (``graph_fit.grow_structures``) in two trunks: from the
   2-operator pairs, and from two carrier–modulator pairs (``two_pair_starts``);
3. per operator count, the best structure's levels are interpolated onto the refinement frames and
   refined there with exact gradients (smoothness prior; warm-started from the screening solution);
4. carrier levels energy-matched per frame (as the 2-operator fit), every operator's level trajectory
   → few-segment envelope by the DP of ``fit.envelope``, release from the sample;
5. each candidate — the 2-operator patch and the refined patches — is rendered by the engine and scored
   by the multi-resolution log-spectral distance;
6. the two closest are polished against their renders (``fit.polish``: release times, levels, segment
   levels and durations), the closer result further; a polish is kept only if it renders closer; last,
   where the analysis measures stretched partials (piano), the ratios are stretched if that renders closer.

``--ops auto`` grows to 6 operators but stops adding when the screening loss gained per second spent
falls below AUTO_GAIN_PER_SECOND, the seconds being those of ``graph_fit``'s cost model (not the wall
clock: the same note gets the same patch however busy the machine is).
"""

from __future__ import annotations

import itertools

import numpy as np

from wifm_synth.analysis import SampleAnalysis
from wifm_synth.fit import graph_fit
from wifm_synth.fit.envelope import fit_envelope
from wifm_synth.fit.graph_fit import LevelFit, SpectrumCache, evaluate, optimise_levels
from wifm_synth.fit.loss import grid_cost_table
from wifm_synth.fit.ratio_search import (
    candidate_ratios,
    energy_matched_gains,
    index_grid,
    weighted_mean,
)
from wifm_synth.fit.structures import CARRIER_ROOT, Structure, realise
from wifm_synth.fit.verify import render_distance_db
from wifm_synth.voice.patch import Envelope, Operator
from wifm_synth.voice.spectrum import harmonic_spectrum
from wifm_synth.voice.topology import MAX_OPERATORS, Topology

SCREEN_FRAMES = 12
REFINE_FRAMES = 40
# The largest operator counts reached (e.g. 5 and 6) are refined, each count's best structure and the next
# RUNNERS_UP_REFINED of its beam: the screening loss on 12 frames ranks structures only roughly, and a
# runner-up often renders closer to the recording (dev notes: 7 of 20). The pair always competes.
REFINED_COUNTS = 2
RUNNERS_UP_REFINED = 2
# Two-pair starts (two carriers with a modulator each): grown one operator at a time from one pair, the
# second pair is rarely found (synthetic recovery: 0 of 40 structures), so every two pairs are tried.
TWO_PAIR_INDEX_POINTS = 16
TWO_PAIR_SHARES = (0.25, 0.5, 0.75)
TWO_PAIR_FINALISTS = 12
TWO_PAIR_ITERATIONS = 100
ATTACK_S = 0.25  # every frame this close to the onset is refined: the attack is where envelopes bend
# --ops auto: another operator must lower the mean screening W1 by this much per modelled second it costs.
AUTO_GAIN_PER_SECOND = 0.002


def _evenly(frames: np.ndarray, count: int) -> np.ndarray:
    if frames.size <= count:
        return frames
    return frames[np.unique(np.linspace(0, frames.size - 1, count).round().astype(np.int64))]


def refinement_frames(times: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Indices (into the held frames) of every attack frame and an even thinning of the rest."""
    active = np.flatnonzero(weights > 0)
    last = int(active[-1]) if active.size else times.size - 1
    frames = np.arange(last + 1)
    attack = frames[times[frames] <= ATTACK_S]
    rest = _evenly(frames[times[frames] > ATTACK_S], max(2, REFINE_FRAMES - attack.size))
    return np.union1d(attack, rest)


def _interpolated(levels: np.ndarray, from_times: np.ndarray, to_times: np.ndarray) -> np.ndarray:
    return np.stack([np.interp(to_times, from_times, levels[:, k]) for k in range(levels.shape[1])], axis=1)


def two_pair_starts(cache: SpectrumCache, axis, amplitudes, weights) -> list[LevelFit]:
    """4-operator fits of two carrier–modulator pairs: every two of the 2-operator search's ratio pairs
    (``ratio_search.candidate_ratios``, 325 combinations) are started per frame at the best point of a coarse
    grid of both indices and the carriers' shares, and the TWO_PAIR_FINALISTS best starts are optimised.

    On the grid the two pairs' magnitude spectra are added (a line both pairs play is over-estimated where
    their signs differ; the optimisation that follows uses the exact spectrum). Each pair's own best index,
    fitted to the whole note, is a poor start: it explains the other pair's lines too."""
    grid = index_grid(TWO_PAIR_INDEX_POINTS)
    pool = candidate_ratios()
    tables = {ratios: harmonic_spectrum(grid, *ratios, axis.size)[0] for ratios in pool}
    shares = np.array(TWO_PAIR_SHARES)
    points = grid.size
    starts = []
    for first, second in itertools.combinations(pool, 2):
        structure = Structure((CARRIER_ROOT, 0, CARRIER_ROOT, 2), (*first, *second))  # algorithm 1 plays any
        models = (shares[:, None, None, None] * tables[first][None, :, None, :]
                  + (1.0 - shares[:, None, None, None]) * tables[second][None, None, :, :])
        costs = grid_cost_table("w1", axis, amplitudes, models.reshape(-1, axis.size))
        best = np.argmin(costs, axis=1)
        share, first_index, second_index = np.unravel_index(best, (shares.size, points, points))
        levels = np.stack([shares[share], grid[first_index], 1.0 - shares[share], grid[second_index]], axis=1)
        starts.append((weighted_mean(costs[np.arange(best.size), best], weights), structure, levels))
    starts.sort(key=lambda start: start[0])
    return [optimise_levels(cache, structure, levels, 0.0, axis, amplitudes, weights, TWO_PAIR_ITERATIONS)
            for _, structure, levels in starts[:TWO_PAIR_FINALISTS]]


def search(analysis_inputs, pairs, max_operators: int | str):
    """Structure search and refinement → (refined best fit per operator count 3…, the refinement frames,
    the spectrum cache). Levels are on the refinement frames.

    ``analysis_inputs`` = (axis, amplitudes (T, H), weights (T,), times (T,)) of the held frames;
    ``pairs`` are 2-operator trajectories (``ratio_search.IndexTrajectory``) on those frames, the starts.
    """
    axis, amplitudes, weights, times = analysis_inputs
    cache = SpectrumCache(axis.size)
    screen = _evenly(np.flatnonzero(weights > 0), SCREEN_FRAMES)
    starts = []
    for pair in pairs:
        structure = Structure((graph_fit.CARRIER_ROOT, 0), (round(pair.carrier_ratio), round(pair.modulator_ratio)))
        levels = np.stack([np.ones(screen.size), pair.betas[screen]], axis=1)
        loss, _, _ = evaluate(cache, structure, levels, 0.0, axis, amplitudes[screen])
        starts.append(LevelFit(structure, levels, 0.0, weighted_mean(loss, weights[screen])))
    limit = MAX_OPERATORS if max_operators == "auto" else int(max_operators)
    runners_up: dict[int, list[LevelFit]] = {}
    screened = _grow(cache, starts, limit, max_operators == "auto", axis, amplitudes[screen], weights[screen],
                     runners_up)
    largest = max(screened)
    # the second trunk: two carrier–modulator pairs, grown one operator at a time to the count the first
    # reached; its best structures join the candidates (the first trunk's stay: the render check chooses)
    two_pairs = {}
    if largest >= 4:
        seeds = sorted(two_pair_starts(cache, axis, amplitudes[screen], weights[screen]),
                       key=lambda fit: fit.loss)[:graph_fit.BEAM_WIDTH]
        two_pairs = graph_fit.grow_structures(cache, seeds, largest, axis, amplitudes[screen], weights[screen])
    refine = refinement_frames(times, weights)
    refined = []
    for size, fit in sorted(screened.items()):
        # refinement is most of the cost: only the largest counts are refined and offered to the render check
        if size <= 2 or size < largest - REFINED_COUNTS + 1:
            continue
        of_size = [fit, *runners_up.get(size, [])[:RUNNERS_UP_REFINED]]
        if size in two_pairs and all(two_pairs[size].structure != start.structure for start in of_size):
            of_size.append(two_pairs[size])
        for start in of_size:
            levels = _interpolated(start.levels, times[screen], times[refine])
            refined.append(optimise_levels(cache, start.structure, levels, start.feedback, axis, amplitudes[refine],
                                           weights[refine], graph_fit.REFINE_ITERATIONS))
    return refined, refine, cache


def _grow(cache, starts, limit, auto, axis, amplitudes, weights, runners_up) -> dict[int, LevelFit]:
    """grow_structures one operator count at a time, so ``auto`` can stop when growth stops paying."""
    if not auto:
        return graph_fit.grow_structures(cache, starts, limit, axis, amplitudes, weights, runners_up)
    current = min(starts, key=lambda fit: fit.loss)
    best = {2: current}
    frontier = starts
    while current.structure.operator_count < limit:
        started = cache.modelled_seconds
        size = current.structure.operator_count + 1
        grown = graph_fit.grow_structures(cache, frontier, size, axis, amplitudes, weights, runners_up)
        if size not in grown:
            break
        gain = current.loss - grown[size].loss
        best[size] = current = grown[size]
        frontier = [current]
        if gain / max(cache.modelled_seconds - started, 1e-3) < AUTO_GAIN_PER_SECOND:
            break
    return best


def _levels_db(values, reference, floor_db):
    return 20.0 * np.log10(np.maximum(values / max(reference, 1e-300), 10.0 ** (floor_db / 20.0)))


def operators_for(fit: LevelFit, cache: SpectrumCache, axis, amplitudes, times, fitted, release_s, floors,
                  modulator_velocity_sensitivity, min_index, level_correction_db=None):
    """The 6 DX7 operators of a refined fit (energy-matched carriers, envelopes per operator), its
    algorithm and per-operator peak levels. ``fitted`` are the frames the envelopes follow.
    ``level_correction_db`` (per frame, dB) is taken out of the carriers' levels when the patch's LFO
    plays the tremolo (``fit.lfo``), so the envelopes follow the level without it."""
    structure = fit.structure
    algorithm, placement = realise(structure)
    topology = Topology.from_algorithm(algorithm)
    levels = fit.levels.copy()
    magnitudes, _ = cache(structure, levels, fit.feedback)
    carriers = np.array(structure.carriers)
    gains = energy_matched_gains(amplitudes, magnitudes)
    if level_correction_db is not None:
        gains = gains * 10.0 ** (-level_correction_db / 20.0)
    levels[:, carriers] *= gains[:, None]
    carrier_floor_db, modulator_floor_db = floors
    by_dx7 = {dx7: k for k, dx7 in enumerate(placement)}
    operators = []
    for dx7 in range(MAX_OPERATORS):
        carrier, sources = topology.carriers[dx7], list(topology.modulators[dx7])
        k = by_dx7.get(dx7)
        peak = 0.0 if k is None else float(levels[fitted, k].max())
        if k is None or peak <= min_index:
            operators.append(Operator(ratio=1.0, level=0.0, carrier=carrier, modulators=sources,
                                      envelope=Envelope(release_s=release_s)))
            continue
        floor_db = carrier_floor_db if carrier else modulator_floor_db
        envelope = fit_envelope(times[fitted], _levels_db(levels[fitted, k], peak, floor_db))
        operators.append(Operator(
            ratio=float(structure.ratios[k]), level=peak, carrier=carrier, modulators=sources,
            feedback=fit.feedback if k == structure.feedback_operator else 0.0,
            envelope=Envelope(segments=envelope.segments, release_s=release_s),
            **({} if carrier else {"velocity_sensitivity": modulator_velocity_sensitivity})))
    return algorithm, operators, levels


def frame_loss(cache: SpectrumCache, fit: LevelFit, axis, amplitudes) -> np.ndarray:
    return evaluate(cache, fit.structure, fit.levels, fit.feedback, axis, amplitudes)[0]


def render_distances(candidates: list, analysis: SampleAnalysis) -> list[float]:
    """Each candidate patch's render distance to the target (``fit.verify``), the render check."""
    return [render_distance_db(patch, analysis) for patch in candidates]
