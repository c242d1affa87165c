"""Shared fixtures: paths to the bundled samples."""

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_NOTES = REPO_ROOT / "samples" / "freepats"


@pytest.fixture(scope="session")
def bundled_notes() -> list[Path]:
    return sorted(BUNDLED_NOTES.rglob("*.wav"))
