"""Writing rendered audio: 24-bit PCM WAV, atomically (nothing half-written on failure)."""

from __future__ import annotations

import os

import numpy as np
import soundfile

from wifm_synth.errors import OutputError
from wifm_synth.formats.atomic import atomic_output

WAV_SUBTYPE = "PCM_24"  # rendered audio: 24-bit PCM, which every player reads


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> float:
    """Write mono (n,) or multi-channel (n, channels) audio; returns the peak before clipping.

    Samples beyond full scale are clipped (24-bit PCM cannot hold them); the returned peak lets the
    caller warn about it.
    """
    audio = np.asarray(audio, dtype=np.float64)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    try:
        with atomic_output(path) as temp:
            soundfile.write(temp, np.clip(audio, -1.0, 1.0), sample_rate, subtype=WAV_SUBTYPE, format="WAV")
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        raise OutputError(f"cannot write WAV ({exc})", path) from None
    return peak
