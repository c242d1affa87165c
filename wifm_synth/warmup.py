"""Compiling the Numba kernels ahead of use: ``wifm warmup`` and the first-run notice.

Numba compiles every kernel the first time a process needs it and keeps the machine code in the
on-disk cache (the folder ``wifm_synth/__init__.py`` sets, keyed on the sources). A cold cache costs
about ten silent seconds on the first ``wifm render``/``play``/``fit``; the notice says so, and
``wifm warmup`` (which ``make demo`` runs first) pays it once, up front.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

COMPILING_NOTICE = "wifm: compiling the engine, first run only…"
# The engine's block kernel is the last one a render compiles: its index file means the engine is cached.
ENGINE_INDEX_PATTERN = "engine_*/block.*.nbi"


def engine_cache_is_cold() -> bool:
    """Whether Numba's cache folder holds no compiled engine yet (False when the folder is unknown)."""
    folder = os.environ.get("NUMBA_CACHE_DIR")
    if not folder or not Path(folder).is_dir():
        return False
    return not any(Path(folder).glob(ENGINE_INDEX_PATTERN))


def announce_compiling_if_cold() -> None:
    """Tell a person at a terminal why the first run pauses; to a script or a pipe every error stays one
    line, so the notice goes only to a terminal."""
    if sys.stderr.isatty() and engine_cache_is_cold():
        print(COMPILING_NOTICE, file=sys.stderr, flush=True)


def _test_tone(folder: Path, sample_rate: int = 48000) -> Path:
    """One second of a decaying 440 Hz tone with a few harmonics, to run the fitter on."""
    import soundfile

    time_s = np.arange(sample_rate) / sample_rate
    tone = sum(0.3 / harmonic * np.sin(2 * np.pi * 440 * harmonic * time_s) for harmonic in (1, 2, 3))
    path = folder / "a4.wav"
    soundfile.write(path, tone * np.exp(-2 * time_s), sample_rate, subtype="FLOAT")
    return path


def warmup_command(as_json: bool = False) -> int:
    """Compile (or load from the cache) the engine render, the audio callback and the fitter's kernels."""
    import json

    from wifm_synth.engine import render_note
    from wifm_synth.engine.abi import engine_stream_callback
    from wifm_synth.fit.fitter import FitSettings, fit_file
    from wifm_synth.formats.atomic import scratch_folder
    from wifm_synth.voice.patch import Operator, Patch

    timings = {}
    started = time.perf_counter()
    patch = Patch(operators=[Operator(ratio=1.0, modulators=[1]), Operator(ratio=2.0, level=0.5, carrier=False)],
                  name="warmup")
    render_note(patch, 69, hold_s=0.05, tail_s=0.05)
    timings["engine"] = time.perf_counter() - started
    started = time.perf_counter()
    engine_stream_callback()
    timings["audio_callback"] = time.perf_counter() - started
    started = time.perf_counter()
    with scratch_folder("warmup") as folder:
        fit_file(_test_tone(folder), note=69, settings=FitSettings())
    timings["fitter"] = time.perf_counter() - started
    if as_json:
        print(json.dumps({name: round(seconds, 2) for name, seconds in timings.items()}))
    else:
        print("wifm: engine ready (" + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items())
              + ")")
    return 0
