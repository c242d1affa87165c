"""Report figures: shared scales between target and render, missing-target layout, keyboard map colours,
harmonic trajectories."""

import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.patches import Rectangle

from wifm_synth.analysis import analyze
from wifm_synth.report.figures import (
    MISSING_COLOUR,
    MapZone,
    Track,
    _spectrogram_db,
    harmonic_trajectories_figure,
    keyboard_map_figure,
    note_figure,
    quality_colour,
    strongest_harmonics,
)

RATE = 48000


def plucked_tone(f0_hz: float, brightness: float, seconds: float = 1.5) -> np.ndarray:
    times = np.arange(int(seconds * RATE)) / RATE
    envelope = np.minimum(times / 0.005, 1.0) * np.exp(-2.0 * times)
    envelope[times > 1.0] *= np.exp(-30.0 * (times[times > 1.0] - 1.0))  # release at 1 s
    phase = 2 * np.pi * f0_hz * times
    return 0.3 * envelope * np.sin(phase + brightness * envelope * np.sin(phase))


def track(title: str, brightness: float) -> Track:
    audio = plucked_tone(220.0, brightness)
    return Track(title, audio, RATE, analyze((audio, RATE), note_hint=57))


@pytest.fixture(scope="module")
def tracks() -> tuple[Track, Track]:
    return track("target", 2.0), track("render", 0.5)


def test_quality_colours_run_red_to_green_and_grey_when_unscored():
    assert quality_colour(None) == MISSING_COLOUR
    red_at_floor = quality_colour(0.0)
    green_at_limit = quality_colour(1.0)
    assert int(red_at_floor[1:3], 16) > int(red_at_floor[3:5], 16)
    assert int(green_at_limit[3:5], 16) > int(green_at_limit[1:3], 16)
    assert quality_colour(-3.0) == red_at_floor and quality_colour(5.0) == green_at_limit


def test_spectrogram_reads_a_sinusoid_peak_in_dbfs():
    bin_centre_hz = 44 * RATE / 2048  # on a bin of the 2048-point window, so no scalloping loss
    sine = 0.5 * np.sin(2 * np.pi * bin_centre_hz * np.arange(RATE) / RATE)
    frequencies, _, levels_db = _spectrogram_db(Track("sine", sine, RATE, None))
    assert levels_db.max() == pytest.approx(20 * np.log10(0.5), abs=0.05)
    assert frequencies[np.argmax(levels_db.max(axis=1))] == pytest.approx(bin_centre_hz)


def test_note_figure_shares_scales_between_target_and_render(tracks):
    figure = note_figure(*tracks, missing_target_reason="unused")
    spectrogram_target, spectrogram_render, harmonics_target, harmonics_render, envelopes = figure.axes[:5]
    assert spectrogram_target.images[0].get_clim() == spectrogram_render.images[0].get_clim()
    assert spectrogram_target.get_ylim() == spectrogram_render.get_ylim()
    assert harmonics_target.get_ylim() == harmonics_render.get_ylim()
    assert len(harmonics_target.lines) == len(harmonics_render.lines) > 1
    # One envelope per side, plus each side's release marker (both tones release at 1 s).
    labels = [line.get_label() for line in envelopes.lines]
    assert labels == ["target", "target: release starts", "render", "render: release starts"]
    for marker in envelopes.lines[1::2]:
        assert marker.get_xdata()[0] == pytest.approx(1.0, abs=0.05)


def test_note_figure_without_target_says_why_and_still_shows_the_render(tracks):
    figure = note_figure(None, tracks[1], missing_target_reason="target sample not found")
    spectrogram_target, spectrogram_render = figure.axes[:2]
    assert not spectrogram_target.axison
    assert [text.get_text() for text in spectrogram_target.texts] == ["target sample not found"]
    assert len(spectrogram_render.images) == 1
    envelope_labels = [line.get_label() for line in figure.axes[4].lines]
    assert "render" in envelope_labels and "target" not in envelope_labels


def test_keyboard_map_draws_each_zone_in_its_quality_colour_with_velocity_rows():
    programs = [
        ("0:0 keys", [MapZone(0, 59, 1, 127, 48, 0.8), MapZone(60, 127, 1, 127, 72, 0.2)]),
        ("0:4 ep", [MapZone(0, 127, 1, 90, 55, None), MapZone(0, 127, 91, 127, 67, 0.5)]),
    ]
    figure = keyboard_map_figure(programs)
    for axes, (title, zones) in zip(figure.axes, programs):
        assert axes.get_title(loc="left") == title
        boxes = [patch for patch in axes.patches if isinstance(patch, Rectangle)]
        assert [to_hex(box.get_facecolor()) for box in boxes] == [quality_colour(zone.quality) for zone in zones]
        assert [bool(box.get_hatch()) for box in boxes] == [zone.quality is None for zone in zones]
        assert [box.get_width() for box in boxes] == [zone.key_hi - zone.key_lo + 1 for zone in zones]
    assert [label.get_text() for label in figure.axes[1].get_yticklabels()] == ["vel 1–90", "vel 91–127"]
    keyboard = figure.axes[2]
    assert len(keyboard.patches) == 128


def test_note_figure_with_an_unpitched_render_keeps_the_target_and_says_so(tracks):
    silent = Track("render", np.zeros(RATE), RATE, None)
    figure = note_figure(tracks[0], silent, missing_target_reason="unused")
    harmonics_target, harmonics_render = figure.axes[2:4]
    assert len(harmonics_target.lines) > 1
    assert [text.get_text() for text in harmonics_render.texts] == ["render: no pitch found, harmonics not measured"]
    assert [line.get_label() for line in figure.axes[4].lines][:1] == ["target"]


def test_strongest_harmonics_are_ranked_by_energy_and_listed_lowest_first(tracks):
    analysis = tracks[0].analysis
    chosen = strongest_harmonics(analysis, 3)
    energy = (analysis.harmonic_amps ** 2).sum(axis=0)
    assert chosen == sorted(chosen) and len(chosen) == 3
    assert min(energy[chosen]) >= max(np.delete(energy, chosen))


def test_trajectories_pair_each_target_harmonic_with_the_render_s_in_one_colour(tracks):
    figure = harmonic_trajectories_figure(*tracks)
    (axes,) = figure.axes
    harmonics = strongest_harmonics(tracks[0].analysis)
    target_lines = [line for line in axes.lines if line.get_linestyle() == "-"]
    render_lines = [line for line in axes.lines if line.get_linestyle() == "--"]
    assert len(target_lines) == len(render_lines) == len(harmonics) == 6
    assert [line.get_color() for line in target_lines] == [line.get_color() for line in render_lines]
    assert [text.get_text() for text in axes.get_legend().get_texts()] == [f"h{h + 1}" for h in harmonics]
    assert "target (solid) vs render (dashed)" in axes.get_title(loc="left")


def test_trajectories_show_one_side_when_the_other_was_not_analysed(tracks):
    figure = harmonic_trajectories_figure(None, tracks[1])
    assert {line.get_linestyle() for line in figure.axes[0].lines} == {"--"}
    silent = Track("render", np.zeros(RATE), RATE, None)
    assert {line.get_linestyle() for line in harmonic_trajectories_figure(tracks[0], silent).axes[0].lines} == {"-"}
    assert harmonic_trajectories_figure(None, silent) is None
