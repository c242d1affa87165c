"""Report figures (matplotlib, Agg canvas): per-note target/render comparison, the strongest harmonics' trajectories
and the bank keyboard map."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.signal
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize, to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from wifm_synth.analysis import SampleAnalysis
from wifm_synth.library.naming import note_name

TARGET_COLOUR = "#1f3b73"
RENDER_COLOUR = "#e0701b"
MISSING_COLOUR = "#d4d4d4"
QUALITY_COLOURMAP = colormaps["RdYlGn"]
# Quality is where a fit sits between the floor (0) and the limit (1) reference; see fit.verify.
QUALITY_NORM = Normalize(vmin=0.0, vmax=1.0)
SPECTROGRAM_RANGE_DB = 90.0
HARMONIC_RANGE_DB = 70.0
PLOTTED_HARMONICS = 8
TRAJECTORY_HARMONICS = 6  # few enough that each target/render pair of lines stays readable
SILENCE_FLOOR = 1e-9
BLACK_KEY_CLASSES = {1, 3, 6, 8, 10}
def quality_colour(quality: float | None) -> str:
    return MISSING_COLOUR if quality is None else to_hex(QUALITY_COLOURMAP(QUALITY_NORM(quality)))


@dataclass
class Track:
    """One side of a comparison: audio starting at the note onset, and its analysis when it has one."""

    title: str
    audio: np.ndarray
    sample_rate: int
    analysis: SampleAnalysis | None

    @property
    def duration_s(self) -> float:
        return len(self.audio) / self.sample_rate


def _decibels(values: np.ndarray) -> np.ndarray:
    return 20.0 * np.log10(np.maximum(values, SILENCE_FLOOR))


def _spectrogram_db(track: Track) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # ~43 ms windows resolve the harmonics of a low E bass (41 Hz); ~5 ms hops show attacks.
    window = 2048 * track.sample_rate // 48000
    hop = window // 8
    audio = np.pad(track.audio, (0, max(0, window - len(track.audio))))  # scipy would shrink only the window
    frequencies, times, magnitudes = scipy.signal.spectrogram(
        audio, fs=track.sample_rate, window="hann", nperseg=window, noverlap=window - hop,
        mode="magnitude", scaling="spectrum",
    )
    # "spectrum" scaling gives a/2 for a sinusoid a·sin, so doubling reads as the peak level in dBFS.
    return frequencies, times, _decibels(2.0 * magnitudes)


def _top_frequency_hz(f0_hz: float, sample_rate: int) -> float:
    """Show about 24 harmonics: enough to see the timbre, few enough that lines stay distinct."""
    return float(np.clip(24.0 * f0_hz, 2000.0, sample_rate / 2))


def _message_panel(axes, text: str) -> None:
    axes.set_axis_off()
    axes.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=11, color="#555555",
              transform=axes.transAxes)


def _draw_spectrogram(axes, track: Track, top_hz: float, peak_db: float):
    frequencies, times, levels_db = _spectrogram_db(track)
    shown = frequencies <= top_hz
    image = axes.imshow(
        levels_db[shown], origin="lower", aspect="auto", cmap="magma",
        extent=(times[0], times[-1], frequencies[0], frequencies[shown][-1]),
        vmin=peak_db - SPECTROGRAM_RANGE_DB, vmax=peak_db, interpolation="nearest",
    )
    axes.set_ylabel("frequency (Hz)")
    axes.set_title(f"{track.title}: spectrogram", fontsize=10, loc="left")
    return image


def _draw_harmonics(axes, track: Track, top_db: float) -> None:
    analysis = track.analysis
    count = min(PLOTTED_HARMONICS, analysis.harmonic_amps.shape[1])
    palette = colormaps["viridis"](np.linspace(0.0, 0.9, count))
    for harmonic in range(count):
        axes.plot(analysis.frame_times, _decibels(analysis.harmonic_amps[:, harmonic]), color=palette[harmonic],
                  linewidth=1.1, label=f"h{harmonic + 1}")
    axes.set_ylim(top_db - HARMONIC_RANGE_DB, top_db + 3.0)
    axes.set_ylabel("level (dBFS)")
    axes.set_title(f"{track.title}: harmonic levels", fontsize=10, loc="left")
    axes.grid(alpha=0.3)


def note_figure(target: Track | None, rendered: Track, missing_target_reason: str) -> Figure:
    """Spectrograms and harmonic levels side by side (target left, render right), envelopes overlaid below.

    Both sides share colour scales and axes, referenced to the target when there is one, so equal looks
    mean equal sounds. ``missing_target_reason`` fills the target column when ``target`` is None.
    """
    figure = Figure(figsize=(12.0, 9.0), layout="constrained")
    grid = figure.add_gridspec(3, 2, height_ratios=[1.15, 1.0, 0.85])
    spectrogram_axes = [figure.add_subplot(grid[0, column]) for column in range(2)]
    harmonic_axes = [figure.add_subplot(grid[1, column], sharex=spectrogram_axes[column]) for column in range(2)]
    envelope_axes = figure.add_subplot(grid[2, :])

    tracks = [target, rendered]
    reference = target if target is not None else rendered
    peak_db = float(_spectrogram_db(reference)[2].max())
    analysed = next((t.analysis for t in tracks if t is not None and t.analysis is not None), None)
    top_hz = _top_frequency_hz(440.0 if analysed is None else analysed.f0_hz, reference.sample_rate)
    harmonic_top_db = 0.0 if analysed is None else float(_decibels(analysed.harmonic_amps).max())
    duration_s = max(t.duration_s for t in tracks if t is not None)

    image = None
    for column, track in enumerate(tracks):
        if track is None:
            _message_panel(spectrogram_axes[column], missing_target_reason)
            _message_panel(harmonic_axes[column], "")
            continue
        image = _draw_spectrogram(spectrogram_axes[column], track, top_hz, peak_db)
        spectrogram_axes[column].set_xlim(0.0, duration_s)
        if track.analysis is None:
            _message_panel(harmonic_axes[column], f"{track.title}: no pitch found, harmonics not measured")
        else:
            _draw_harmonics(harmonic_axes[column], track, harmonic_top_db)
            harmonic_axes[column].set_xlabel("time since onset (s)")
    figure.colorbar(image, ax=spectrogram_axes, label="level (dBFS)", shrink=0.9, pad=0.01)
    legend_axes = harmonic_axes[1] if rendered.analysis is not None else harmonic_axes[0]
    if legend_axes.lines:
        legend_axes.legend(loc="upper right", ncol=4, fontsize=8, framealpha=0.8)

    _draw_envelopes(envelope_axes, [(target, TARGET_COLOUR), (rendered, RENDER_COLOUR)], duration_s)
    return figure


def _draw_envelopes(axes, coloured_tracks: list[tuple[Track | None, str]], duration_s: float) -> None:
    top_db = -np.inf
    for track, colour in coloured_tracks:
        if track is None or track.analysis is None:
            continue
        levels_db = _decibels(track.analysis.rms_env)
        top_db = max(top_db, float(levels_db.max()))
        axes.plot(track.analysis.frame_times, levels_db, color=colour, linewidth=1.6, label=track.title)
        if track.analysis.release_start_s is not None:
            axes.axvline(track.analysis.release_start_s, color=colour, linestyle="--", linewidth=0.9,
                         label=f"{track.title}: release starts")
    if np.isfinite(top_db):
        axes.set_ylim(top_db - 80.0, top_db + 3.0)
        axes.legend(loc="upper right", fontsize=8, framealpha=0.8)
    axes.set_xlim(0.0, duration_s)
    axes.set_xlabel("time since onset (s)")
    axes.set_ylabel("RMS (dBFS)")
    axes.set_title("amplitude envelopes", fontsize=10, loc="left")
    axes.grid(alpha=0.3)


def strongest_harmonics(analysis: SampleAnalysis, count: int = TRAJECTORY_HARMONICS) -> list[int]:
    """The 0-based indices of the ``count`` harmonics carrying the most energy over the note, lowest first."""
    energy = np.sum(analysis.harmonic_amps ** 2, axis=0)
    return sorted(np.argsort(energy)[::-1][:count].tolist())


def harmonic_trajectories_figure(target: Track | None, rendered: Track) -> Figure | None:
    """The strongest harmonics' levels over time, the target's solid and the render's dashed in the same
    colour, on one axes so each harmonic's fit reads directly; None when neither side was analysed.

    The harmonics are the target's strongest (the render's when there is no target): the ones the fit
    most needed to get right.
    """
    sides = [(track, style) for track, style in ((target, "-"), (rendered, "--"))
             if track is not None and track.analysis is not None]
    if not sides:
        return None
    harmonics = strongest_harmonics(sides[0][0].analysis)
    figure = Figure(figsize=(12.0, 3.6), layout="constrained")
    axes = figure.add_subplot()
    palette = [to_hex(colour) for colour in colormaps["tab10"](np.arange(len(harmonics)))]
    top_db = -np.inf
    for track, style in sides:
        analysis = track.analysis
        for colour, harmonic in zip(palette, harmonics):
            if harmonic >= analysis.harmonic_amps.shape[1]:
                continue
            levels_db = _decibels(analysis.harmonic_amps[:, harmonic])
            top_db = max(top_db, float(levels_db.max()))
            axes.plot(analysis.frame_times, levels_db, style, color=colour, linewidth=1.3,
                      label=f"h{harmonic + 1}" if style == sides[0][1] else None)
    axes.set_ylim(top_db - HARMONIC_RANGE_DB, top_db + 3.0)
    axes.set_xlim(0.0, max(track.duration_s for track, _ in sides))
    axes.set_xlabel("time since onset (s)")
    axes.set_ylabel("level (dBFS)")
    kinds = " vs ".join(f"{track.title} ({'solid' if style == '-' else 'dashed'})" for track, style in sides)
    axes.set_title(f"strongest harmonics over time: {kinds}", fontsize=10, loc="left")
    axes.legend(loc="upper right", ncol=len(harmonics), fontsize=8, framealpha=0.8)
    axes.grid(alpha=0.3)
    return figure


@dataclass
class MapZone:
    """A bank zone as drawn on the keyboard map."""

    key_lo: int
    key_hi: int
    vel_lo: int
    vel_hi: int
    root_key: int
    quality: float | None


def keyboard_map_figure(programs: list[tuple[str, list[MapZone]]]) -> Figure:
    """One strip per program (velocity layers as rows, loudest on top) over a shared keyboard axis.

    Each zone is a box over its key range, coloured by fit quality (grey: not scored), with its root key
    marked.
    """
    layer_counts = [len({(z.vel_lo, z.vel_hi) for z in zones}) for _, zones in programs]
    heights = [0.45 + 0.42 * count for count in layer_counts] + [0.35]
    figure = Figure(figsize=(12.0, sum(heights) + 0.9), layout="constrained")
    grid = figure.add_gridspec(len(heights), 1, height_ratios=heights)
    all_zones = [zone for _, zones in programs for zone in zones]
    key_lo = min(zone.key_lo for zone in all_zones)
    key_hi = max(zone.key_hi for zone in all_zones)
    program_axes = [figure.add_subplot(grid[row]) for row in range(len(programs))]
    keyboard_axes = figure.add_subplot(grid[-1], sharex=program_axes[0])
    for axes in program_axes[1:]:
        axes.sharex(keyboard_axes)

    for axes, (title, zones) in zip(program_axes, programs):
        layers = sorted({(z.vel_lo, z.vel_hi) for z in zones})
        for zone in zones:
            row = layers.index((zone.vel_lo, zone.vel_hi))
            axes.add_patch(Rectangle(
                (zone.key_lo - 0.5, row + 0.06), zone.key_hi - zone.key_lo + 1, 0.88,
                facecolor=quality_colour(zone.quality), edgecolor="#333333", linewidth=0.8,
                hatch="//" if zone.quality is None else None,
            ))
            axes.plot([zone.root_key], [row + 0.5], marker="v", color="black", markersize=6)
            width = zone.key_hi - zone.key_lo + 1
            if width >= 6:
                axes.text(zone.root_key + 0.9, row + 0.5, note_name(zone.root_key), va="center", fontsize=8,
                          bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})
        axes.set_ylim(0, len(layers))
        axes.set_yticks([row + 0.5 for row in range(len(layers))],
                        [f"vel {lo}–{hi}" for lo, hi in layers], fontsize=8)
        axes.set_title(title, fontsize=10, loc="left")
        axes.tick_params(axis="x", labelbottom=False, bottom=False)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)

    _draw_keyboard(keyboard_axes, key_lo, key_hi)
    colourbar = figure.colorbar(
        ScalarMappable(norm=QUALITY_NORM, cmap=QUALITY_COLOURMAP), ax=program_axes + [keyboard_axes],
        pad=0.01, aspect=12 if len(programs) > 1 else 6,
    )
    colourbar.set_label("fit quality\n0 = floor, 1 = limit", fontsize=8)
    return figure


def _draw_keyboard(axes, key_lo: int, key_hi: int) -> None:
    for key in range(key_lo, key_hi + 1):
        black = key % 12 in BLACK_KEY_CLASSES
        axes.add_patch(Rectangle((key - 0.5, 0.0), 1.0, 1.0, facecolor="#222222" if black else "white",
                                 edgecolor="#999999", linewidth=0.4))
    octave_starts = [key for key in range(key_lo, key_hi + 1) if key % 12 == 0]
    axes.set_xticks(octave_starts, [note_name(key) for key in octave_starts], fontsize=8)
    axes.set_xlim(key_lo - 0.5, key_hi + 0.5)
    axes.set_ylim(0.0, 1.0)
    axes.set_yticks([])
    axes.set_xlabel("key")
