"""Synthetic test signals and paths shared by the analysis tests."""

from pathlib import Path

import numpy as np

RATE = 48000
REPO_ROOT = Path(__file__).resolve().parents[2]
BUNDLED_NOTES = REPO_ROOT / "samples" / "freepats"


def harmonic_tone(
    f0_hz: float,
    amplitudes,
    *,
    seconds: float = 2.0,
    rate: int = RATE,
    decay_s: float | None = None,
    stretch: float = 0.0,
    phases=None,
) -> np.ndarray:
    """Σ a_k·cos(2π·f_k·t + φ_k) with f_k = k·f0·sqrt(1 + stretch·k²), optionally decaying exponentially."""
    t = np.arange(int(seconds * rate)) / rate
    signal = np.zeros_like(t)
    for k, amplitude in enumerate(amplitudes, start=1):
        freq = k * f0_hz * np.sqrt(1.0 + stretch * k * k)
        phase = 0.3 * k if phases is None else phases[k - 1]
        if amplitude and freq < rate / 2:
            signal += amplitude * np.cos(2 * np.pi * freq * t + phase)
    if decay_s is not None:
        signal *= np.exp(-t / decay_s)
    return signal
