"""Media embedded in the self-contained report page: audio and figures as data URIs."""

from __future__ import annotations

import base64
import io

import numpy as np
import soundfile
import soxr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

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


def audio_data_uri(audio: np.ndarray, sample_rate: int) -> str:
    """FLAC data URI of the first MAX_PLAYER_SECONDS of ``audio``."""
    if is_cut_for_player(audio, sample_rate):
        audio = audio[: int(MAX_PLAYER_SECONDS * sample_rate)].copy()
        fade = int(PLAYER_FADE_SECONDS * sample_rate)
        audio[-fade:] *= np.linspace(1.0, 0.0, fade)  # no click at the cut
    return data_uri(flac_bytes(audio, sample_rate), "audio/flac")


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
