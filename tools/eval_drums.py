"""What the unpitched drum fit gains over a pitched one, on a SoundFont's drum kit (JSON).

Usage: python tools/eval_drums.py FONT.sf2 [--kit BANK:PROGRAM] [--keys 35-81]
Each key of the kit (default the standard kit, 128:0, over the General MIDI percussion map) is played by
FluidSynth as ``wifm bank`` plays it, then matched twice by wifm_synth.fit.drums' band-spectrum search:
once restricted to what a pitched fit can reach (integer ratios of the key's frequency, no feedback) and
once as the fit does it (free: any ratio, feedback up to 16 rad; the better of the two kept). The score is
the fit's loss: the mean absolute 1/3-octave band level difference over the hit (dB, lower is better).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from benchmark_info import machine_info

from wifm_synth.analysis.envelope import detect_onset
from wifm_synth.fit.drums import SAMPLE_RATE, band_levels_db, fit_drum, search_timbre
from wifm_synth.formats.sf2 import read_presets
from wifm_synth.library.soundfont import SILENT_PEAK, NoteRenderer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("font", type=Path)
    parser.add_argument("--kit", default="128:0", help="BANK:PROGRAM of the kit (default 128:0)")
    parser.add_argument("--keys", default="35-81", help="FIRST-LAST keys (default 35-81, the GM percussion map)")
    args = parser.parse_args()
    bank, program = (int(part) for part in args.kit.split(":"))
    first, last = (int(part) for part in args.keys.split("-"))
    (kit,) = [preset for preset in read_presets(args.font) if (preset.bank, preset.program) == (bank, program)]
    renderer = NoteRenderer(args.font)
    rows = []
    for key in range(first, last + 1):
        frames = renderer.render(kit, key, 100)
        if np.abs(frames.astype(np.int32)).max() < SILENT_PEAK:
            continue
        audio = frames.astype(np.float64).mean(axis=1) / 32768.0
        target = band_levels_db(audio, SAMPLE_RATE, detect_onset(audio, SAMPLE_RATE))
        _, pitched = search_timbre(target, key, harmonic_only=True)
        started = time.perf_counter()
        fit = fit_drum(audio, key)
        timbre = fit.timbre
        rows.append({"key": key, "pitched_db": round(pitched, 2), "free_db": round(fit.loss, 2),
                     "carrier_ratio": timbre.carrier_ratio, "modulator_ratio": timbre.modulator_ratio,
                     "index": timbre.index, "feedback": timbre.feedback,
                     "fit_seconds": round(time.perf_counter() - started, 3)})
    renderer.close()
    pitched = np.array([row["pitched_db"] for row in rows])
    free = np.array([row["free_db"] for row in rows])
    print(json.dumps({
        "benchmark": "drums", "font": args.font.name, "kit": args.kit, "keys": len(rows),
        "pitched_db": {"mean": round(float(pitched.mean()), 2), "median": round(float(np.median(pitched)), 2)},
        "free_db": {"mean": round(float(free.mean()), 2), "median": round(float(np.median(free)), 2)},
        "free_better_by_2_db": int(np.sum(free < pitched - 2.0)),
        "with_feedback": sum(row["feedback"] > 0 for row in rows),
        "non_integer_ratio": sum(any(abs(ratio - round(ratio)) > 1e-3 for ratio in (row["carrier_ratio"],
                                                                                    row["modulator_ratio"]))
                                 for row in rows),
        "fit_seconds_median": round(float(np.median([row["fit_seconds"] for row in rows])), 3),
        "rows": rows, "machine": machine_info(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
