"""End to end: reports for a small bank and a single patch, loaded in headless Chromium.

The screenshot must not be blank, and the DOM Chromium built must hold the audio players and figures
with data URIs that decode to FLAC and PNG, and each note's operator graph, operator table and LFO row.
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

from wifm_synth.formats.bank_json import Bank, Program, Zone, save_bank
from wifm_synth.formats.patch_json import save_patch
from wifm_synth.report import report_command
from wifm_synth.voice.patch import Envelope, Operator, Patch, Pitch

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (the Makefile's deps target installs it)"
)


def fm_patch(name: str, note: int, source: str) -> Patch:
    """A plucked 2-operator patch at ``note`` (hand-made, standing in for a fitted one)."""
    return Patch(
        name=name,
        pitch=Pitch(reference_note=note),
        operators=[
            Operator(level=0.25, modulators=[1], envelope=Envelope([(0.005, 0.0), (2.5, -30.0)], 0.2)),
            Operator(level=1.2, carrier=False, envelope=Envelope([(0.005, 0.0), (0.8, -18.0)], 0.2)),
        ],
        metadata={"source": source, "midi_note": note, "loss": 0.2, "loss_kind": "w1", "method": "wifm",
                  "settings": {"ops": 2}},
    )


class MediaCollector(HTMLParser):
    """Sources of <audio> and <img> elements, section ids and in-page links, grouped by note section."""

    def __init__(self):
        super().__init__()
        self.audio: list[tuple[str, str]] = []  # (section id, src)
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
        if tag == "audio":
            self.audio.append((current, attributes["src"]))
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


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, bundled_notes) -> Path:
    folder = tmp_path_factory.mktemp("report")
    by_name = {path.name: path for path in bundled_notes}
    (folder / "bank" / "patches").mkdir(parents=True)
    shutil.copy(by_name["bass_40_100.wav"], folder / "bank" / "bass_40_100.wav")  # found via the bank folder
    shutil.copy(by_name["flute_67_100.wav"], folder / "bank" / "patches" / "flute_67_100.wav")  # beside its patch
    bank = Bank(
        name="report test",
        programs=[
            Program(program=33, name="bass", zones=[Zone("patches/bass.json", 40, 0, 127, 1, 127)]),
            Program(program=73, name="flute", zones=[
                Zone("patches/flute.json", 67, 0, 127, 1, 100), Zone("patches/lost.json", 79, 0, 127, 101, 127)]),
        ],
        patches={
            "patches/bass.json": fm_patch("bass_40_100", 40, "bass_40_100.wav"),
            "patches/flute.json": fm_patch("flute_67_100", 67, "flute_67_100.wav"),
            "patches/lost.json": fm_patch("flute_79_100", 79, "flute_79_100.wav"),
        },
    )
    save_bank(bank, folder / "bank" / "bank.json")
    save_patch(fm_patch("piano_55_100", 55, str(by_name["piano_55_100.wav"])), folder / "piano.json")
    return folder


def test_bank_report_shows_keyboard_map_players_and_figures(workspace, capsys):
    page = workspace / "bank.html"
    assert report_command(workspace / "bank" / "bank.json", page) == 0
    assert str(page) in capsys.readouterr().out
    collector, screenshot = inspect_in_chromium(page, workspace)
    check_not_blank(screenshot)
    check_media(collector)

    assert collector.section_ids == ["overview", "note-1", "note-2", "note-3"]
    # Each note: the comparison figure and the harmonic trajectories.
    assert [section for section, _ in collector.images] == ["overview"] + [
        note for note in ("note-1", "note-2", "note-3") for _ in range(2)]
    assert collector.graphs == ["note-1", "note-2", "note-3"]
    # Target and render for the two notes whose samples were found; the render alone for the lost one.
    assert [section for section, _ in collector.audio] == ["note-1", "note-1", "note-2", "note-2", "note-3"]
    assert collector.links == ["note-1", "note-2", "note-3"]  # zone table: program order, then velocity
    text = " ".join(collector.text)
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
    assert "multi-resolution log-spectral distance" in text and "Target sample unavailable" not in text
