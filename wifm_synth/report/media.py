"""The report's media (audio and figures): data URIs inside the page, or files in a folder beside it when the
inline page would be too big to open comfortably."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile
import soxr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from wifm_synth.errors import OutputError

# 24 kHz keeps everything a listener can judge a fit by (harmonics up to 12 kHz) at half the size of 48 kHz.
PLAYER_SAMPLE_RATE = 24000
# Players hold a few seconds per note to keep the page small; longer notes are cut with a short fade.
MAX_PLAYER_SECONDS = 8.0
PLAYER_FADE_SECONDS = 0.05
FIGURE_DPI = 96


def data_uri(payload: bytes, mime_type: str) -> str:
    return f"data:{mime_type};base64,{base64.b64encode(payload).decode('ascii')}"


def flac_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """Mono audio as 16-bit FLAC at PLAYER_SAMPLE_RATE; the level is kept (clipped, not normalised) for A/B."""
    resampled = soxr.resample(np.asarray(audio, dtype=np.float64), sample_rate, PLAYER_SAMPLE_RATE)
    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(resampled, -1.0, 1.0), PLAYER_SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def is_cut_for_player(audio: np.ndarray, sample_rate: int) -> bool:
    return len(audio) > MAX_PLAYER_SECONDS * sample_rate


def player_flac_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """FLAC of the first MAX_PLAYER_SECONDS of ``audio``."""
    if is_cut_for_player(audio, sample_rate):
        audio = audio[: int(MAX_PLAYER_SECONDS * sample_rate)].copy()
        fade = int(PLAYER_FADE_SECONDS * sample_rate)
        audio[-fade:] *= np.linspace(1.0, 0.0, fade)  # no click at the cut
    return flac_bytes(audio, sample_rate)


def audio_data_uri(audio: np.ndarray, sample_rate: int) -> str:
    """FLAC data URI of the first MAX_PLAYER_SECONDS of ``audio``."""
    return data_uri(player_flac_bytes(audio, sample_rate), "audio/flac")


def figure_png_bytes(figure: Figure) -> bytes:
    """Render with the Agg canvas (no GUI backend, no pyplot global state) to a 256-colour PNG.

    A palette is visually lossless for these plots and makes spectrogram PNGs about 2.5 times smaller.
    """
    canvas = FigureCanvasAgg(figure)
    figure.set_dpi(FIGURE_DPI)
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB")
    buffer = io.BytesIO()
    image.quantize(256, dither=Image.Dither.NONE).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def figure_data_uri(figure: Figure) -> str:
    return data_uri(figure_png_bytes(figure), "image/png")


# Above this, the page links its media from a folder beside it instead of holding them (browsers open a
# 20 MB page slowly, and a whole GM bank's media are hundreds of megabytes).
MAX_INLINE_PAGE_BYTES = 20_000_000
MEDIA_REFERENCE = re.compile(r"wifm-media:([\w.-]+)")
_MIME_TYPES = {".flac": "audio/flac", ".png": "image/png"}


def media_folder_for(page: Path) -> Path:
    """Where a page's linked media go: ``NAME_media/`` beside ``NAME.html``."""
    return page.with_name(f"{page.stem}_media")


@dataclass
class MediaStore:
    """Media written to a temporary folder as the report makes them; the page refers to each by a
    ``wifm-media:NAME`` placeholder until :meth:`finish` places them inline or links them from the folder."""

    folder: Path
    inline_bytes: int = 0  # what the media would add to the page as data URIs
    payload_bytes: int = 0  # what they take as files
    names: list[str] = field(default_factory=list)

    def add(self, name: str, payload: bytes) -> str:
        (self.folder / name).write_bytes(payload)
        self.names.append(name)
        self.payload_bytes += len(payload)
        self.inline_bytes += len(f"data:{_MIME_TYPES[Path(name).suffix]};base64,") + 4 * -(-len(payload) // 3)
        return f"wifm-media:{name}"

    def audio(self, name: str, audio: np.ndarray, sample_rate: int) -> str:
        return self.add(f"{name}.flac", player_flac_bytes(audio, sample_rate))

    def figure(self, name: str, figure: Figure) -> str:
        return self.add(f"{name}.png", figure_png_bytes(figure))

    def is_linked(self, page_text: str, max_inline_bytes: int) -> bool:
        return len(page_text.encode("utf-8")) + self.inline_bytes > max_inline_bytes

    def resolve(self, page_text: str, linked_folder: str | None) -> str:
        """``page_text`` with every placeholder replaced: a data URI, or a link into ``linked_folder``."""
        if linked_folder is not None:
            return MEDIA_REFERENCE.sub(lambda match: f"{linked_folder}/{match.group(1)}", page_text)

        def inline(match: re.Match) -> str:
            name = match.group(1)
            return data_uri((self.folder / name).read_bytes(), _MIME_TYPES[Path(name).suffix])
        return MEDIA_REFERENCE.sub(inline, page_text)


def temporary_media_folder(page: Path) -> tempfile.TemporaryDirectory:
    """A hidden folder beside ``page`` (same file system, so it can be renamed into place)."""
    return tempfile.TemporaryDirectory(prefix=f".{media_folder_for(page).name}.", dir=page.parent,
                                       ignore_cleanup_errors=True)


def place_media_folder(store: MediaStore, page: Path) -> None:
    """Make the store's folder the page's media folder, replacing an older one."""
    final = media_folder_for(page)
    older = store.folder.with_name(store.folder.name + ".older")  # hidden like the store's folder
    try:
        os.chmod(store.folder, 0o755)  # mkdtemp makes it private; a report folder is shared like the page
        had_older = final.exists() or final.is_symlink()
        if had_older:
            os.rename(final, older)  # kept until the new one is in place, so a failure leaves it as it was
        try:
            os.rename(store.folder, final)
        except OSError:
            if had_older:
                os.rename(older, final)
            raise
    except OSError as exc:
        raise OutputError(f"cannot write the media folder ({exc.strerror})", final) from None
    if older.is_dir() and not older.is_symlink():
        shutil.rmtree(older, ignore_errors=True)
    elif older.exists() or older.is_symlink():
        older.unlink()
