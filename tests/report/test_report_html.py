"""End to end: reports for a small bank and a single patch, loaded in headless Chromium.

The screenshot must not be blank, and the DOM Chromium built must hold one A/B player per note (switching
in place between target and fit), the renders across each note's zones, figures with data URIs that
decode to FLAC and PNG, the settings shared by every note once, and each note's operator graph, operator
table and LFO row.
"""

import base64
import io
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile
from matplotlib.image import imread

from wifm_synth.report import report_command

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (the Makefile's deps target installs it)"
)


class MediaCollector(HTMLParser):
    """Sources of <audio> and <img> elements, section ids and in-page links, grouped by note section."""

    def __init__(self):
        super().__init__()
        self.audio: list[tuple[str, str]] = []  # (section id, src): players' sources, then an A/B player's B
        self.ab_players: list[dict] = []  # attributes of each A/B box, its buttons and its audio
        self.images: list[tuple[str, str]] = []
        self.section_ids: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []
        self.graphs: list[str] = []  # section id of each operator-graph <svg>
        self.tables: list[tuple[str, str]] = []  # (section id, class)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "section":
            self.section_ids.append(attributes.get("id", ""))
        current = self.section_ids[-1] if self.section_ids else ""
        if tag == "div" and "ab" in attributes.get("class", "").split():
            self.ab_players.append({"section": current, "box": attributes, "buttons": []})
            if "data-render" in attributes:
                self.audio.append((current, attributes["data-render"]))
        elif tag == "button" and "data-side" in attributes:
            self.ab_players[-1]["buttons"].append(attributes)
        if tag == "audio":
            self.audio.append((current, attributes["src"]))
            if self.ab_players and self.ab_players[-1]["section"] == current and "audio" not in self.ab_players[-1]:
                self.ab_players[-1]["audio"] = attributes
        elif tag == "img":
            self.images.append((current, attributes["src"]))
        elif tag == "svg" and attributes.get("class") == "operator-graph":
            self.graphs.append(current)
        elif tag == "table":
            self.tables.append((current, attributes.get("class", "")))
        elif tag == "a" and attributes.get("href", "").startswith("#"):
            self.links.append(attributes["href"][1:])

    def handle_data(self, data):
        self.text.append(data)


def decode_data_uri(uri: str, mime_type: str) -> bytes:
    header, payload = uri.split(",", 1)
    assert header == f"data:{mime_type};base64"
    return base64.b64decode(payload, validate=True)


def chromium(page: Path, profile: Path, *arguments: str) -> str:
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", *arguments, page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout


def inspect_in_chromium(page: Path, workspace: Path) -> tuple[MediaCollector, np.ndarray]:
    screenshot = workspace / f"{page.stem}.png"
    chromium(page, workspace / "profile", "--hide-scrollbars", "--window-size=1280,2400",
             f"--screenshot={screenshot}")
    collector = MediaCollector()
    collector.feed(chromium(page, workspace / "profile", "--dump-dom"))
    return collector, imread(screenshot)


def check_media(collector: MediaCollector) -> None:
    for _, source in collector.audio:
        audio, rate = soundfile.read(io.BytesIO(decode_data_uri(source, "audio/flac")))
        assert rate >= 24000 and len(audio) / rate > 1.0 and np.abs(audio).max() > 0.01
    for _, source in collector.images:
        image = imread(io.BytesIO(decode_data_uri(source, "image/png")), format="png")
        assert min(image.shape[:2]) > 150 and image[..., :3].std() > 0.05


def check_not_blank(screenshot: np.ndarray) -> None:
    grey = screenshot[..., :3].mean(axis=2)
    assert grey.std() > 0.1  # text, figures and cards, not one flat colour
    assert (np.abs(grey - np.median(grey)) > 0.2).mean() > 0.05


def test_bank_report_shows_keyboard_map_players_and_figures(workspace, capsys):
    page = workspace / "bank.html"
    assert report_command(workspace / "bank" / "bank.json", page) == 0
    assert str(page) in capsys.readouterr().out
    collector, screenshot = inspect_in_chromium(page, workspace)
    check_not_blank(screenshot)
    check_media(collector)

    assert collector.section_ids == ["overview", "settings", "note-1", "note-2", "note-3"]
    # Each note: the comparison figure and the harmonic trajectories.
    assert [section for section, _ in collector.images] == ["overview"] + [
        note for note in ("note-1", "note-2", "note-3") for _ in range(2)]
    assert collector.graphs == ["note-1", "note-2", "note-3"]
    # One player per note: B then A for the two notes whose samples were found, the render alone for the lost
    # one; then the renders across its zones: both key edges, and the other velocity layer of the flute.
    assert [section for section, _ in collector.audio] == (
        ["note-1"] * 2 + ["note-1"] * 2 + ["note-2"] * 2 + ["note-2"] * 3 + ["note-3"] + ["note-3"] * 3)
    assert [player["section"] for player in collector.ab_players] == ["note-1", "note-2", "note-3"]
    for player in collector.ab_players[:2]:
        assert [button["data-side"] for button in player["buttons"]] == ["target", "render"]
        assert "loop" in player["audio"] and player["box"]["data-render"] != player["audio"]["src"]
    assert collector.ab_players[2]["buttons"] == [] and "loop" in collector.ab_players[2]["audio"]
    assert collector.links == ["note-1", "note-2", "note-3"]  # zone table: program order, then velocity
    text = " ".join(collector.text)
    assert "E1: lowest key of its zone E1–E3, velocity 100" in text and "C6: highest key" in text
    assert "velocity layer 101–127: G4 at velocity 101" in text and "velocity layer 1–100: G5 at velocity 100" in text
    # Settings every note shares are listed once; the notes keep only their own (source, key).
    assert text.count("loss_kind") == 1 and text.count("settings.ops") == 1 and text.count("midi_note") == 3
    # Every metric column says which way is better.
    assert "lower is better" in text and "higher is better" in text and "fit ↓" in text and "position ↑" in text
    assert "Target sample unavailable" in text and "flute_79_100.wav" in text
    assert text.count("Target sample unavailable") == 1
    assert "2 of 3 fitted notes scored" in text
    for note in ("note-1", "note-2", "note-3"):
        assert (note, "operators") in collector.tables and (note, "lfo") in collector.tables
    assert text.count("2-operator routing") == 3 and "carrier ← 2" in text


def test_single_patch_report_has_one_comparison_and_no_overview(workspace):
    page = workspace / "piano.html"
    assert report_command(workspace / "piano.json", page) == 0
    collector, screenshot = inspect_in_chromium(page, workspace)
    check_not_blank(screenshot)
    check_media(collector)
    assert collector.section_ids == ["note-1"]
    assert len(collector.audio) == 2 and len(collector.images) == 2 and collector.graphs == ["note-1"]
    text = " ".join(collector.text)
    assert "loss_kind" in text  # a single note keeps all its settings
    assert "multi-resolution log-spectral distance" in text and "Target sample unavailable" not in text


def test_ab_player_switches_to_the_fit_in_place(workspace):
    """Clicking B makes the one player play the fit (its source swapped in place), and the buttons say so."""
    page = workspace / "bank.html"
    report_command(workspace / "bank" / "bank.json", page)
    clicked = workspace / "clicked.html"
    click = "<script>document.querySelector('div.ab[data-render] button[data-side=render]').click()</script>"
    clicked.write_text(page.read_text().replace("</body>", click + "</body>"))
    before, after = MediaCollector(), MediaCollector()
    before.feed(page.read_text())
    after.feed(chromium(clicked, workspace / "profile", "--dump-dom"))
    first_before, first_after = before.ab_players[0], after.ab_players[0]
    assert first_after["audio"]["src"] == first_before["box"]["data-render"]
    assert "showing-render" in first_after["box"]["class"]
    assert [button["aria-pressed"] for button in first_after["buttons"]] == ["false", "true"]
    assert after.ab_players[1]["audio"]["src"] == before.ab_players[1]["audio"]["src"]  # the others stay on A
