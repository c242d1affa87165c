"""Embedded media: FLAC and PNG data URIs decode back to what was put in."""

import base64
import io

import numpy as np
import soundfile
from matplotlib.figure import Figure
from matplotlib.image import imread

from wifm_synth.report.media import (
    FIGURE_DPI,
    MAX_PLAYER_SECONDS,
    PLAYER_SAMPLE_RATE,
    audio_data_uri,
    data_uri,
    figure_data_uri,
    is_cut_for_player,
)


def decode(uri: str, mime_type: str) -> bytes:
    header, payload = uri.split(",", 1)
    assert header == f"data:{mime_type};base64"
    return base64.b64decode(payload, validate=True)


def test_data_uri_round_trips_bytes():
    assert decode(data_uri(b"\x00wifm\xff", "application/octet-stream"), "application/octet-stream") == b"\x00wifm\xff"


def test_audio_uri_is_flac_at_player_rate_with_level_kept():
    rate = 48000
    times = np.arange(rate) / rate
    tone = 0.25 * np.sin(2 * np.pi * 440.0 * times)
    audio, decoded_rate = soundfile.read(io.BytesIO(decode(audio_data_uri(tone, rate), "audio/flac")))
    assert decoded_rate == PLAYER_SAMPLE_RATE
    assert abs(len(audio) - PLAYER_SAMPLE_RATE) <= 1
    # Not normalised: a quiet target stays quiet next to its render.
    middle = audio[1000:-1000]
    expected = 0.25 * np.sin(2 * np.pi * 440.0 * np.arange(len(audio)) / PLAYER_SAMPLE_RATE)[1000:-1000]
    assert np.max(np.abs(middle - expected)) < 1e-3


def test_audio_uri_clips_instead_of_wrapping():
    audio, _ = soundfile.read(io.BytesIO(decode(audio_data_uri(np.full(48000, 3.0), 48000), "audio/flac")))
    assert np.all(audio[100:-100] > 0.99)


def test_figure_uri_is_png_of_the_figure_size():
    figure = Figure(figsize=(4.0, 2.0))
    figure.add_subplot().plot([0, 1], [1, 0], color="red")
    image = imread(io.BytesIO(decode(figure_data_uri(figure), "image/png")), format="png")
    assert image.shape[:2] == (2 * FIGURE_DPI, 4 * FIGURE_DPI)
    red = (image[..., 0] > 0.8) & (image[..., 1] < 0.3) & (image[..., 2] < 0.3)
    assert red.sum() > 50  # the line survived the palette reduction


def test_long_audio_is_cut_for_the_player_with_a_fade():
    rate = 48000
    long_tone = 0.5 * np.sin(2 * np.pi * 300.0 * np.arange(int((MAX_PLAYER_SECONDS + 4) * rate)) / rate)
    assert is_cut_for_player(long_tone, rate) and not is_cut_for_player(long_tone[: rate], rate)
    audio, decoded_rate = soundfile.read(io.BytesIO(decode(audio_data_uri(long_tone, rate), "audio/flac")))
    assert abs(len(audio) / decoded_rate - MAX_PLAYER_SECONDS) < 0.01
    assert np.abs(audio[-12:]).max() < 0.006 and np.abs(audio[-decoded_rate:-decoded_rate // 2]).max() > 0.45
