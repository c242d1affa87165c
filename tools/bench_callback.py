"""Audio callback under a busy Python main thread: a Python sounddevice callback vs the Numba @cfunc.

Usage: python tools/bench_callback.py --json [--seconds 20] [--voices 32]
For each JACK scheduling mode available (real-time when the machine allows SCHED_FIFO, and
non-real-time) it starts a private JACK dummy server (48 kHz, 128 frames) and, in a fresh process per
variant, plays held six-operator voices through the same engine while the main thread spins a pure
Python loop. Counted over the measurement window (after a settle period): periods, PortAudio output
underflow flags, and the xruns the JACK server blamed on each client (from its log). The Python
callback is sounddevice's documented way to stream; it needs the GIL every period. The cfunc
(wifm_synth.engine.abi) never does. As the machine's floor, the same window is also measured
for JACK's C example client (jack_simple_client): xruns it suffers come from the machine's
scheduling, not from Python.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the JACK dummy server helper the tests use

from bench_engine import bench_patch, hold_voices
from benchmark_info import machine_info
from jack_server import running_jack_server, xruns_in_log

from wifm_synth.engine import Synth, process_block

SAMPLE_RATE = 48000
PERIOD = 128
# The private JACK server's settings, as both JACK benchmarks (this and bench_live) report them.
JACK_SETUP = {"sample_rate": SAMPLE_RATE, "period": PERIOD, "period_ms": round(1000 * PERIOD / SAMPLE_RATE, 3)}
SETTLE_S = 3.0
VARIANTS = ("python_callback", "cfunc_callback")
MEASURING = "measuring"
PORTAUDIO_CLIENT = "PortAudio"  # the JACK client name PortAudio registers


def held_voices_synth(voices: int) -> Synth:
    """``voices`` six-operator notes queued at frame 0, on distinct (channel, key) pairs."""
    synth = Synth(bench_patch(6, 0.0), sample_rate=SAMPLE_RATE, polyphony=max(voices, 1))
    hold_voices(synth, voices)
    return synth


def announce_measuring() -> None:
    """Tells the parent the settle period is over (it marks the server log there)."""
    print(MEASURING, flush=True)


def busy_python_loop(seconds: float) -> int:
    """Pure Python bytecode: holds the GIL except at the interpreter's switch interval."""
    iterations = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        iterations += 1
    return iterations


def run_python_callback(synth: Synth, seconds: float) -> dict:
    import sounddevice

    counters = {"periods": 0, "underflows": 0}
    left = np.zeros(8192, dtype=np.float32)
    right = np.zeros(8192, dtype=np.float32)

    def callback(outdata, frames, time_info, status):
        counters["periods"] += 1
        if status.output_underflow:
            counters["underflows"] += 1
        process_block(synth.state, left, right, frames)
        outdata[:, 0] = left[:frames]
        outdata[:, 1] = right[:frames]

    with sounddevice.OutputStream(samplerate=SAMPLE_RATE, blocksize=PERIOD, channels=2, dtype="float32",
                                  latency=PERIOD / SAMPLE_RATE, callback=callback):
        busy_python_loop(SETTLE_S)
        announce_measuring()
        start = dict(counters)
        iterations = busy_python_loop(seconds)
        end = dict(counters)
    return {key: end[key] - start[key] for key in end} | {"busy_loop_iterations": iterations}


def run_cfunc_callback(synth: Synth, seconds: float) -> dict:
    from wifm_synth.drivers.audio_out import EngineOutputStream

    with EngineOutputStream(synth, period=PERIOD) as stream:
        busy_python_loop(SETTLE_S)
        announce_measuring()
        start = {"periods": stream.callbacks, "underflows": stream.underflows}
        iterations = busy_python_loop(seconds)
        end = {"periods": stream.callbacks, "underflows": stream.underflows}
    return {key: end[key] - start[key] for key in end} | {"busy_loop_iterations": iterations}


def child(variant: str, seconds: float, voices: int) -> None:
    synth = held_voices_synth(voices)
    synth.render(PERIOD)  # JIT warm and note-ons applied before the stream starts
    runner = run_python_callback if variant == "python_callback" else run_cfunc_callback
    result = runner(synth, seconds)
    import sounddevice

    result["sounding_voices"] = synth.active_voices
    result["portaudio"] = sounddevice.get_portaudio_version()[1]
    print(json.dumps(result))


def scheduling_modes() -> list[bool]:
    """JACK real-time scheduling (when this machine allows SCHED_FIFO), then non-real-time."""
    realtime_allowed = subprocess.run(["chrt", "-f", "10", "true"], capture_output=True, check=False).returncode == 0
    return [True, False] if realtime_allowed else [False]


def xruns_since(log_path: Path, offset: int, end: int | None = None) -> dict:
    """The JACK server log's xrun report for what it wrote after ``offset`` bytes (up to ``end``)."""
    with open(log_path, errors="replace") as log:
        log.seek(offset)
        return xruns_in_log(log.read() if end is None else log.read(end - offset))


def run_child(variant: str, seconds: float, voices: int, server, log_path: Path) -> dict:
    """One variant in a fresh process; the server log's xrun lines from its measurement window."""
    child_process = subprocess.Popen(
        [sys.executable, __file__, "--child", variant, "--seconds", str(seconds), "--voices", str(voices)],
        stdout=subprocess.PIPE, text=True, env=server.env)
    window_start = None
    lines = []
    for line in child_process.stdout:
        if line.strip() == MEASURING:
            window_start = log_path.stat().st_size
        lines.append(line)
    if child_process.wait() != 0 or window_start is None:
        raise RuntimeError(f"{variant} run failed: {''.join(lines)}")
    jack_log = xruns_since(log_path, window_start)
    # PortAudio flags an underflow for an xrun anywhere in the graph; the server names the late client.
    return json.loads(lines[-1]) | {"xruns_blamed_on_player": jack_log["blamed_clients"].get(PORTAUDIO_CLIENT, 0),
                                    "jack_log": jack_log}


def native_client_xruns(seconds: float, server, log_path: Path) -> dict:
    """The machine's floor: JACK's own C example client (a sine), no Python in its process at all."""
    client = subprocess.Popen(["jack_simple_client"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=server.env)
    try:
        time.sleep(SETTLE_S)
        window_start = log_path.stat().st_size
        time.sleep(seconds)
        return {"client": "jack_simple_client", "jack_log": xruns_since(log_path, window_start)}
    finally:
        client.terminate()
        client.wait(timeout=10)


def measure(realtime: bool, seconds: float, voices: int, log_path: Path) -> dict:
    results = {"load_average_before": os.getloadavg()}
    with open(log_path, "w") as log, running_jack_server(SAMPLE_RATE, PERIOD, realtime=realtime, log=log) as server:
        for variant in VARIANTS:
            result = run_child(variant, seconds, voices, server, log_path)
            result["expected_periods"] = round(seconds * SAMPLE_RATE / PERIOD)
            result["underflows_per_1000_periods"] = round(1000 * result["underflows"] / max(result["periods"], 1), 2)
            results[variant] = result
        results["c_reference_client"] = native_client_xruns(seconds, server, log_path)
    results["load_average_after"] = os.getloadavg()
    return {"jack_scheduling": "realtime" if realtime else "no-realtime", **results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement window per variant")
    parser.add_argument("--voices", type=int, default=32, help="held six-operator voices")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.seconds, args.voices)
        return 0
    with tempfile.TemporaryDirectory() as folder:
        runs = [measure(realtime, args.seconds, args.voices, Path(folder) / "jackd.log")
                for realtime in scheduling_modes()]
    report = {
        "benchmark": "callback",
        **JACK_SETUP,
        "seconds_per_variant": args.seconds,
        "held_six_operator_voices": args.voices,
        "main_thread": "busy pure-Python loop (default GIL switch interval "
                       f"{sys.getswitchinterval() * 1000:g} ms)",
        "runs": runs,
        "machine": machine_info("sounddevice", portaudio=runs[0]["cfunc_callback"]["portaudio"],
                                jackd=subprocess.run(["jackd", "--version"], capture_output=True, text=True,
                                                     check=False).stdout.splitlines()[0]),
    }
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        for run in report["runs"]:
            for variant in VARIANTS:
                result = run[variant]
                print(f"{run['jack_scheduling']:>11} {variant:>15}: {result['underflows']} underflows, "
                      f"{result['xruns_blamed_on_player']} xruns blamed on it in {result['periods']} periods")
            floor = run["c_reference_client"]["jack_log"]
            print(f"{run['jack_scheduling']:>11} {'C reference':>15}: {sum(floor['blamed_clients'].values())} xruns "
                  f"blamed on it, driver late {floor['driver_late']} times")
    return 0


if __name__ == "__main__":
    sys.exit(main())
