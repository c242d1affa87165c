"""Fitter speed: seconds per note (analysis + fit) on one thread, after warm-up; JIT cost separately.

Usage: python tools/bench_fit.py [NOTES_DIR] [--json] [--repeat N] [--cold-cache] [--ops 2|4|6|auto]

NOTES_DIR is any folder of single-note recordings (default: the bundled samples/freepats).
The seed method (the baseline it replaces) is timed in the same run for the speed ratio.
``--cold-cache`` compiles into an empty Numba cache, so ``first_call_s`` is the full JIT cost.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmark_info import machine_info

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_NOTES = REPO_ROOT / "samples" / "freepats"


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notes_dir", nargs="?", type=Path, default=BUNDLED_NOTES,
                        help="any folder of single-note recordings (default: the bundled samples/freepats)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per note (the median is kept)")
    parser.add_argument("--cold-cache", action="store_true", help="measure JIT compilation from an empty cache")
    parser.add_argument("--ops", default="2", help="operators of the wifm fit: 2, 4, 6 or auto (default 2)")
    return parser.parse_args()


def main() -> int:
    args = _parse_args()
    # Single-threaded by contract; must be set before numba is imported.
    os.environ["NUMBA_NUM_THREADS"] = "1"
    if args.cold_cache:
        cache_dir = tempfile.mkdtemp(prefix="wifm-bench-numba-")
        atexit.register(shutil.rmtree, cache_dir, ignore_errors=True)
        os.environ["NUMBA_CACHE_DIR"] = cache_dir
    import numba

    from wifm_synth.analysis import analyze
    from wifm_synth.fit.fitter import FitSettings, fit_analysis
    from wifm_synth.library.discover import AUDIO_SUFFIXES

    notes = sorted(path for path in args.notes_dir.rglob("*") if path.suffix.lower() in AUDIO_SUFFIXES)
    if not notes:
        print(f"bench_fit: no audio files under {args.notes_dir}", file=sys.stderr)
        return 2
    methods = {"wifm": FitSettings(ops=args.ops if args.ops == "auto" else int(args.ops)),
               "seed": FitSettings(method="seed")}

    started = time.perf_counter()
    first = analyze(notes[0])
    first_analysis_s = time.perf_counter() - started
    first_fit_s = {}
    for name, settings in methods.items():
        started = time.perf_counter()
        fit_analysis(first, settings)
        first_fit_s[name] = time.perf_counter() - started

    rows = []
    for path in notes:
        analysis_times, fit_times = [], {name: [] for name in methods}
        for _ in range(args.repeat):
            started = time.perf_counter()
            analysis = analyze(path)
            analysis_times.append(time.perf_counter() - started)
            for name, settings in methods.items():
                started = time.perf_counter()
                result = fit_analysis(analysis, settings)
                fit_times[name].append(time.perf_counter() - started)
                if name == "wifm":
                    ratios = result.ratios
        analysis_s = statistics.median(analysis_times)
        rows.append({
            "note": path.name,
            "analysis_s": round(analysis_s, 4),
            "fit_s": round(statistics.median(fit_times["wifm"]), 4),
            "total_s": round(analysis_s + statistics.median(fit_times["wifm"]), 4),
            "seed_total_s": round(analysis_s + statistics.median(fit_times["seed"]), 4),
            "ratios": ratios,
        })

    median_total = statistics.median(row["total_s"] for row in rows)
    median_seed = statistics.median(row["seed_total_s"] for row in rows)
    report = {
        "benchmark": "fit",
        "notes_dir": str(args.notes_dir),
        "threads": numba.config.NUMBA_NUM_THREADS,
        "ops": args.ops,
        "first_call_s": {
            "analysis": round(first_analysis_s, 3),
            **{f"fit_{name}": round(seconds, 3) for name, seconds in first_fit_s.items()},
            "numba_cache": "cold" if args.cold_cache else "warm (as left by earlier runs)",
        },
        "median_total_s": round(median_total, 4),
        "median_analysis_s": round(statistics.median(row["analysis_s"] for row in rows), 4),
        "median_fit_s": round(statistics.median(row["fit_s"] for row in rows), 4),
        "median_seed_total_s": round(median_seed, 4),
        "seed_over_wifm_time_ratio": round(median_seed / median_total, 2),
        "target_total_s": 1.0 if args.ops == "2" else 20.0,
        "notes": rows,
        "machine": machine_info(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{'note':32s} {'analysis':>9s} {'fit':>9s} {'total':>9s} {'seed':>9s}  ratios")
        for row in rows:
            print(f"{row['note']:32s} {row['analysis_s']:9.3f} {row['fit_s']:9.3f} {row['total_s']:9.3f} "
                  f"{row['seed_total_s']:9.3f}  {row['ratios']}")
        print(f"median total {median_total:.3f} s (target {report['target_total_s']} s), seed {median_seed:.3f} s; "
              f"first call: analysis {first_analysis_s:.2f} s, fit {first_fit_s['wifm']:.2f} s; "
              f"{report['machine']['cpu']}, {report['machine']['cores']} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
