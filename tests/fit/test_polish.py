"""The polish stage (fit.polish): it recovers perturbed levels of a known patch, and it never makes a fit's
render check worse."""

import dataclasses

import numpy as np
import pytest

from wifm_synth.analysis import analyze
from wifm_synth.engine import render_note
from wifm_synth.fit import polish as polish_module
from wifm_synth.fit.polish import (
    LEVEL,
    SEGMENT_LEVEL,
    coordinates,
    moved,
    polish,
    polish_closest,
    polished_if_closer,
    stretched,
    stretched_if_closer,
)
from wifm_synth.fit.synthetic import random_patch
from wifm_synth.fit.verify import SAMPLE_RATE, render_distance_db
from wifm_synth.voice.patch import Envelope, Operator, Patch, Pitch
from wifm_synth.voice.schema import SCHEMA
from wifm_synth.voice.topology import Topology


@pytest.fixture(scope="module")
def known():
    """A random 4-operator DX7 patch rendered by the engine, and the render's analysis."""
    patch, _ = random_patch(np.random.default_rng(5), 4)
    note = patch.pitch.reference_note
    audio = render_note(patch, note, hold_s=1.0, tail_s=0.3, sample_rate=SAMPLE_RATE)
    return patch, analyze((audio, SAMPLE_RATE), note_hint=note)


def _perturbation(patch):
    """+4 / −4 dB on alternate operator levels, +6 dB on every segment's end level: 2 or 10 dB at each breakpoint
    (times unmoved)."""
    axes = coordinates(patch)
    offsets = np.array([(4.0 if k % 2 else -4.0) if axis.kind == LEVEL else 6.0 if axis.kind == SEGMENT_LEVEL else 0.0
                        for k, axis in enumerate(axes)])
    return axes, offsets


def _level_error_db(patch, truth):
    """Mean |dB| between the two patches' heard operators' levels at each envelope breakpoint (the operator's
    level times the segment's end level: a level moved up and every end level moved down by as much is the
    same sound)."""
    errors = []
    for operator, true in zip(patch.operators, truth.operators):
        if true.level > 0.0:
            errors += [abs(20.0 * np.log10(operator.level / true.level) + a[1] - b[1])
                       for a, b in zip(operator.envelope.segments, true.envelope.segments)]
    return float(np.mean(errors))


def test_polish_moves_perturbed_levels_back_toward_the_known_patch(known):
    truth, analysis = known
    axes, offsets = _perturbation(truth)
    perturbed = moved(truth, axes, offsets)
    polished, renders = polish(perturbed, analysis)
    assert renders <= polish_module.POLISH_EVALUATIONS
    assert render_distance_db(polished, analysis) < render_distance_db(perturbed, analysis) - 1.0
    assert _level_error_db(polished, truth) < 0.6 * _level_error_db(perturbed, truth)


@pytest.mark.parametrize("offset_db", [400.0, -400.0])
def test_moved_levels_and_times_stay_in_the_schema_ranges(known, offset_db):
    truth, _ = known
    axes = coordinates(truth)
    far = moved(truth, axes, np.full(len(axes), offset_db))
    level, segment = SCHEMA["operator.level"], SCHEMA["segment.end_level_db"]
    duration, release = SCHEMA["segment.duration_s"], SCHEMA["envelope.release_s"]
    for operator, true in zip(far.operators, truth.operators):
        assert level.low <= operator.level <= level.high
        assert all(segment.low <= end <= segment.high for _, end in operator.envelope.segments)
        assert all(duration.low <= span <= duration.high for span, _ in operator.envelope.segments)
        assert release.low <= operator.envelope.release_s <= release.high
        if true.level > 0.0:  # every heard operator's times moved
            assert operator.envelope.release_s != true.envelope.release_s
            assert all(span != true_span for (span, _), (true_span, _) in
                       zip(operator.envelope.segments, true.envelope.segments))
    assert all(operator.level <= polish_module.MAX_INDEX for operator in far.operators if not operator.carrier)


def test_a_time_offset_of_6_db_doubles_it(known):
    truth, _ = known
    axes = coordinates(truth)
    release = next(k for k, axis in enumerate(axes) if axis.kind == polish_module.RELEASE)
    first_duration = next(k for k, axis in enumerate(axes) if axis.kind == polish_module.SEGMENT_DURATION)
    offsets = np.zeros(len(axes))
    offsets[[release, first_duration]] = 20.0 * np.log10(2.0)
    doubled = moved(truth, axes, offsets)
    operator, true = doubled.operators[axes[release].operator], truth.operators[axes[release].operator]
    assert operator.envelope.release_s == pytest.approx(2.0 * true.envelope.release_s)
    segment = axes[first_duration]
    assert doubled.operators[segment.operator].envelope.segments[segment.segment][0] == pytest.approx(
        2.0 * truth.operators[segment.operator].envelope.segments[segment.segment][0])


def test_a_polish_that_renders_further_from_the_target_is_not_kept(known, monkeypatch):
    truth, analysis = known
    before = render_distance_db(truth, analysis)
    worse = dataclasses.replace(truth, operators=[dataclasses.replace(operator, level=operator.level * 0.5)
                                                  for operator in truth.operators])
    monkeypatch.setattr(polish_module, "polish", lambda patch, target, evaluations: (worse, 1))
    chosen, record = polished_if_closer(truth, analysis, before)
    assert chosen is truth and not record["kept"] and record["render_distance_db"] > before


def test_the_runner_up_is_chosen_when_its_polish_ends_closer(known, monkeypatch):
    truth, analysis = known
    quieter = dataclasses.replace(truth, operators=[dataclasses.replace(operator, level=operator.level * 0.9)
                                                    for operator in truth.operators])
    polished_runner_up = dataclasses.replace(quieter, metadata={"polished": True})
    calls = []

    def fake(patch, target, distance_db, evaluations):
        calls.append((patch, evaluations))
        if patch is quieter:  # the runner-up polishes to 1.0 dB, the first stays at its 2.0 dB
            return polished_runner_up, {"render_distance_db": 1.0, "renders": evaluations, "kept": True}
        return patch, {"render_distance_db": distance_db + 0.5, "renders": evaluations, "kept": False}

    monkeypatch.setattr(polish_module, "polished_if_closer", fake)
    monkeypatch.setattr(polish_module, "STRETCH_SCALES", ())
    chosen, patch, record = polish_closest([truth, quieter, truth], [2.0, 3.0, 9.0], analysis)
    assert chosen == 1 and patch is polished_runner_up
    first_round = polish_module.FIRST_ROUND_EVALUATIONS
    assert [evaluations for _, evaluations in calls] == [
        first_round, first_round, polish_module.POLISH_EVALUATIONS - 2 * first_round]
    assert calls[-1][0] is polished_runner_up  # the rest of the budget goes to the closer result
    assert record == {"render_distance_db": 1.0, "renders": polish_module.POLISH_EVALUATIONS, "kept": True,
                      "candidates_polished": 2, "stretch": 0.0}


def test_stretched_ratios_follow_the_stiff_string_law_with_the_fundamental_fixed(known):
    truth, _ = known
    stretch = 4e-4
    result = stretched(truth, stretch)
    for operator, true in zip(result.operators, truth.operators):
        if true.level == 0.0:
            assert operator.ratio == true.ratio
            continue
        expected = true.ratio * np.sqrt(1.0 + stretch * true.ratio ** 2) / np.sqrt(1.0 + stretch)
        assert operator.ratio == pytest.approx(expected, rel=1e-12)
        assert (operator.ratio == pytest.approx(1.0)) == (true.ratio == 1.0)


def _six_partials(stretch: float, note: int = 69):
    """An additive tone whose partial k sounds at k·f·sqrt(1 + stretch·k²) / sqrt(1 + stretch) (a stiff string's
    series with partial 1 at the note's f), amplitude 1/k, and its analysis; and the six-carrier patch (DX7
    algorithm 32) with integer ratios 1–6 that plays the same partials unstretched."""
    rate, f = SAMPLE_RATE, 440.0 * 2.0 ** ((note - 69) / 12)
    times = np.arange(int(1.5 * rate)) / rate
    ks = np.arange(1, 7)
    ratios = ks * np.sqrt(1.0 + stretch * ks ** 2) / np.sqrt(1.0 + stretch)
    fade = np.minimum(times / 0.005, 1.0) * np.exp(-times / 1.5)
    audio = 0.1 * fade * sum(np.sin(2 * np.pi * f * r * times) / k for k, r in zip(ks, ratios))
    topology = Topology.from_algorithm(32)
    operators = [Operator(ratio=float(6 - dx7), level=0.1 / (6 - dx7), carrier=topology.carriers[dx7],
                          modulators=list(topology.modulators[dx7]),
                          envelope=Envelope(segments=[(0.005, 0.0), (1.5, -8.7)], release_s=0.2))
                 for dx7 in range(6)]
    patch = Patch(name="six partials", pitch=Pitch(reference_note=note), algorithm=32, operators=operators)
    return patch, analyze((audio, SAMPLE_RATE), note_hint=note)


def test_a_stretched_target_is_matched_by_a_stretch_and_a_harmonic_one_is_left_alone():
    harmonic, stiff = _six_partials(1.5e-3)
    assert stiff.inharmonicity == pytest.approx(1.5e-3, rel=0.2)
    before = render_distance_db(harmonic, stiff)
    patch, stretch, distance = stretched_if_closer(harmonic, stiff, before)
    assert stretch == pytest.approx(stiff.inharmonicity)  # the law itself is the best of the scales here
    assert distance < before - 1.0 and render_distance_db(patch, stiff) == pytest.approx(distance)
    _, plain = _six_partials(0.0)
    assert plain.inharmonicity < polish_module.MIN_INHARMONICITY
    unchanged, none, same = stretched_if_closer(harmonic, plain, 5.0)
    assert unchanged is harmonic and none == 0.0 and same == 5.0
