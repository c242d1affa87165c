"""Signals shorter than the largest analysis window (a 1,103-frame sample that fit accepts) still score."""

import numpy as np

from wifm_synth.analysis import metrics


def test_stft_distance_of_a_signal_shorter_than_its_windows():
    tone = np.sin(2 * np.pi * 440 * np.arange(1103) / 22050)
    distance = metrics.multires_log_stft_distance_db(tone, 0.5 * tone, 22050)
    assert np.isfinite(distance) and distance > 0


def test_long_signals_score_as_before_padding():
    tone = np.sin(2 * np.pi * 440 * np.arange(48000) / 48000)
    assert metrics.multires_log_stft_distance_db(tone, tone, 48000) == 0.0
