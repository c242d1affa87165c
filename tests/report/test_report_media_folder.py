"""The report's media go inline while the page stays under its size limit, else into NAME_media/ beside it."""

import errno
import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile
from matplotlib.image import imread

from wifm_synth.errors import OutputError
from wifm_synth.report import report_command
from wifm_synth.report.media import media_folder_for

DATA_URI = re.compile(r'(?:src|data-render)="data:')
LINKED = re.compile(r'(?:src|data-render)="([^"]+)"')


def linked_sources(page_text: str) -> list[str]:
    return [source for source in LINKED.findall(page_text) if not source.startswith("data:")]


@pytest.fixture(scope="module")
def inline_page(workspace):
    page = workspace / "inline" / "bank.html"
    page.parent.mkdir()
    assert report_command(workspace / "bank" / "bank.json", page) == 0
    return page


def test_small_report_holds_its_media_inline(inline_page):
    text = inline_page.read_text()
    assert len(DATA_URI.findall(text)) == 20  # 13 audio (5 A/B sides, 8 zone renders), 7 figures
    assert linked_sources(text) == [] and "wifm-media:" not in text
    assert not media_folder_for(inline_page).exists()


def test_report_over_the_limit_links_its_media_from_a_folder(workspace, inline_page, capsys):
    page = workspace / "linked" / "bank.html"
    page.parent.mkdir()
    limit = inline_page.stat().st_size - 1  # the inline page would be one byte too big
    assert report_command(workspace / "bank" / "bank.json", page, max_inline_bytes=limit) == 0
    assert "media in bank_media/" in capsys.readouterr().out
    text, folder = page.read_text(), media_folder_for(page)
    assert folder == page.parent / "bank_media" and "data:" not in text and "wifm-media:" not in text
    sources = linked_sources(text)
    assert len(sources) == 20 and all(source.startswith("bank_media/") for source in sources)
    assert sorted(path.name for path in folder.iterdir()) == sorted(source.split("/", 1)[1] for source in sources)
    for source in sources:
        if source.endswith(".flac"):
            audio, rate = soundfile.read(page.parent / source)
            assert rate == 24000 and np.abs(audio).max() > 0.01
        else:
            assert imread(page.parent / source).shape[0] > 150
    # Linked, the page is the inline one without its base64: a small fraction of it.
    media_bytes = sum(path.stat().st_size for path in folder.iterdir())
    assert page.stat().st_size < 0.1 * inline_page.stat().st_size
    assert media_bytes * 4 / 3 > 0.9 * (inline_page.stat().st_size - page.stat().st_size)
    assert not [entry for entry in page.parent.iterdir() if entry.name.startswith(".")]  # no temporaries left


def test_linked_report_replaces_an_older_media_folder_and_inline_one_leaves_it(workspace, inline_page):
    page = workspace / "again" / "bank.html"
    folder = media_folder_for(page)
    folder.mkdir(parents=True)
    (folder / "stale.flac").write_bytes(b"old")
    assert report_command(workspace / "bank" / "bank.json", page) == 0  # inline: the folder is not its
    assert (folder / "stale.flac").exists()
    assert report_command(workspace / "bank" / "bank.json", page, max_inline_bytes=1000) == 0
    assert not (folder / "stale.flac").exists() and len(list(folder.iterdir())) == 20


def test_a_media_folder_that_cannot_be_placed_leaves_the_older_page_and_folder(workspace, monkeypatch):
    page = workspace / "blocked" / "bank.html"
    folder = media_folder_for(page)
    folder.mkdir(parents=True)
    (folder / "note-1-render.flac").write_bytes(b"old media")
    page.write_text("old page")
    real_rename, refused = os.rename, []

    def refuse_new_folder(source, target):
        """The first move of a hidden folder into place fails (the new media); putting the older one back works."""
        if Path(source).name.startswith(".bank_media.") and Path(target) == folder and not refused:
            refused.append(source)
            raise OSError(errno.EACCES, "Permission denied")
        return real_rename(source, target)

    monkeypatch.setattr("wifm_synth.report.media.os.rename", refuse_new_folder)
    with pytest.raises(OutputError, match="cannot write the media folder"):
        report_command(workspace / "bank" / "bank.json", page, max_inline_bytes=1000)
    assert page.read_text() == "old page" and (folder / "note-1-render.flac").read_bytes() == b"old media"
    assert sorted(entry.name for entry in page.parent.iterdir()) == ["bank.html", "bank_media"]
