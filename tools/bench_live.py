"""Live play on a JACK dummy server: xruns under load and MIDI-in → audio-out latency.

Usage: python tools/bench_live.py --json [--seconds 60] [--voices 128]
For each JACK scheduling mode available (real-time when the machine allows SCHED_FIFO, and
non-real-time) it starts a private JACK dummy server (48 kHz, 128 frames) and a player process running
``wifm_synth.drivers.live.LivePlayer`` (the code behind ``wifm play``) with ``--voices`` held
six-operator notes panned hard right, while its Python main thread spins a busy loop. A probe JACK
client in this process sends a note every half second on a channel panned hard left, from its process
callback, so each note-on's JACK frame is exact; it records the player's output by JACK frame, and the
latency of a note is (first non-silent left sample − note-on frame) / rate. Xruns are counted over the
measurement window, after a settle period: JACK's xrun notifications, the clients the server blamed,
and the player's PortAudio underflow flags.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the JACK dummy server helper the tests use

from bench_callback import (
    JACK_SETUP,
    MEASURING,
    PERIOD,
    SAMPLE_RATE,
    announce_measuring,
    busy_python_loop,
    scheduling_modes,
    xruns_since,
)
from bench_engine import bench_patch, hold_voices
from benchmark_info import machine_info
from jack_server import running_jack_server

from wifm_synth.engine.state import DRUM_CHANNEL, MIDI_CHANNELS

SETTLE_S = 5.0
PROBE_CLIENT = "wifm-bench-probe"
PROBE_CHANNEL = MIDI_CHANNELS - 1
PROBE_KEY = 81
PROBE_INTERVAL_S = 0.5
PROBE_HOLD_S = 0.1
ONSET_THRESHOLD = 1e-4  # the left channel is exactly silent between probe notes
PAN_HARD_LEFT, PAN_HARD_RIGHT = 0, 127
CC_PAN = 10
STARTED = "started"


def wait_idle(seconds: float) -> int:
    time.sleep(seconds)
    return 0


def player(seconds: float, voices: int, busy: bool) -> None:
    """The player process: LivePlayer with held voices, busy (or idle) main thread, counters as JSON at the end."""
    main_thread_work = busy_python_loop if busy else wait_idle
    from wifm_synth.drivers.live import LivePlayer

    live = LivePlayer(bench_patch(6, 0.0), midi_in=PROBE_CLIENT, period=PERIOD, sample_rate=SAMPLE_RATE)
    synth = live.synth
    load_channels = [channel for channel in range(MIDI_CHANNELS) if channel not in (DRUM_CHANNEL, PROBE_CHANNEL)]
    # Before start() the main thread is still the ring's only producer.
    for channel in load_channels:
        synth.send(0, 0xB0 | channel, CC_PAN, PAN_HARD_RIGHT)
    synth.send(0, 0xB0 | PROBE_CHANNEL, CC_PAN, PAN_HARD_LEFT)
    hold_voices(synth, voices, load_channels)
    with live:
        print(STARTED, flush=True)
        main_thread_work(SETTLE_S)
        announce_measuring()
        start = {"periods": live.stream.callbacks, "underflows": live.stream.underflows}
        iterations = main_thread_work(seconds)
        result = {"periods": live.stream.callbacks - start["periods"],
                  "underflows": live.stream.underflows - start["underflows"],
                  "busy_loop_iterations": iterations, "sounding_voices": synth.active_voices,
                  "peak_voices": synth.peak_voices, "portaudio_cpu_load": round(live.stream.cpu_load, 4),
                  "gil_switch_interval_ms": sys.getswitchinterval() * 1000,
                  "midi_pump_sched_fifo": live.midi.realtime_pump,
                  "midi_ports": live.midi.connected_ports, "status": live.status_line()}
    print(json.dumps(result), flush=True)


class Probe:
    """JACK client: plays probe notes from its process callback and records the player's left channel."""

    def __init__(self, capture_seconds: float):
        import jack

        self.client = jack.Client(PROBE_CLIENT, no_start_server=True)
        self.midi_out = self.client.midi_outports.register("keys")
        self.audio_in = self.client.inports.register("left")
        self.capture = np.zeros(int(capture_seconds * SAMPLE_RATE), dtype=np.float32)
        # Only notes whose onset window ends inside the recording (and the player's measurement window).
        self.note_on_frames = np.zeros(int((capture_seconds - PROBE_HOLD_S) / PROBE_INTERVAL_S) + 1, dtype=np.int64)
        self.notes_sent = 0
        self.start_frame: int | None = None  # probing and recording run from here
        self.stop_requested = False
        self.xruns = 0
        self.interval = int(PROBE_INTERVAL_S * SAMPLE_RATE)
        self.hold = int(PROBE_HOLD_S * SAMPLE_RATE)
        self.client.set_xrun_callback(self._xrun)
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _xrun(self, delayed_usecs):
        self.xruns += 1

    def _process(self, frames):
        self.midi_out.clear_buffer()
        if self.start_frame is None or self.stop_requested:
            return
        position = self.client.last_frame_time - self.start_frame
        if not 0 <= position <= len(self.capture) - frames:
            return
        self.capture[position:position + frames] = self.audio_in.get_array()
        # A note-on where a probe interval starts within this cycle, its note-off PROBE_HOLD_S later.
        note_on_offset = -position % self.interval
        if note_on_offset < frames and self.notes_sent < len(self.note_on_frames):
            self.midi_out.write_midi_event(note_on_offset, (0x90 | PROBE_CHANNEL, PROBE_KEY, 127))
            self.note_on_frames[self.notes_sent] = position + note_on_offset
            self.notes_sent += 1
        note_off_offset = (self.hold - position) % self.interval
        if note_off_offset < frames:
            self.midi_out.write_midi_event(note_off_offset, (0x80 | PROBE_CHANNEL, PROBE_KEY, 0))

    def connect_player(self, timeout_s: float = 10.0) -> None:
        sources = self.client.get_ports("PortAudio:", is_audio=True, is_output=True)
        self.client.connect(sources[0], self.audio_in)
        deadline = time.monotonic() + timeout_s
        while not self.client.get_all_connections(self.midi_out):
            if time.monotonic() > deadline:
                raise RuntimeError("the player never connected to the probe's MIDI port")
            time.sleep(0.05)

    def start(self) -> None:
        self.start_frame = self.client.frame_time + 2 * PERIOD

    def latencies_ms(self) -> np.ndarray:
        """Note-on → first sound, per probe note that was fully recorded."""
        latencies = []
        for note_on in self.note_on_frames[:self.notes_sent]:
            window = self.capture[note_on:note_on + self.hold]
            if len(window) < self.hold:
                continue
            loud = np.flatnonzero(np.abs(window) > ONSET_THRESHOLD)
            latencies.append(1000 * loud[0] / SAMPLE_RATE if len(loud) else np.inf)
        return np.asarray(latencies)

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


def measure(realtime: bool, seconds: float, voices: int, busy: bool, log_path: Path) -> dict:
    load_before = os.getloadavg()
    with open(log_path, "w") as log, running_jack_server(SAMPLE_RATE, PERIOD, realtime=realtime, log=log) as server:
        command = [sys.executable, __file__, "--player", "--seconds", str(seconds), "--voices", str(voices)]
        if not busy:
            command.append("--idle-main-thread")
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=server.env)
        lines: list[str] = []
        measuring = threading.Event()
        probe = None
        try:
            line = process.stdout.readline()
            if line.strip() != STARTED:
                raise RuntimeError(f"player did not start: {line}")
            probe = Probe(seconds)
            probe.connect_player()

            def read_player():
                for player_line in process.stdout:
                    if player_line.strip() == MEASURING:
                        measuring.set()
                    lines.append(player_line)

            reader = threading.Thread(target=read_player, daemon=True)
            reader.start()
            if not measuring.wait(SETTLE_S + 120):
                raise RuntimeError("player never finished settling")
            window_start = log_path.stat().st_size
            xruns_before = probe.xruns
            probe.start()
            reader.join(timeout=seconds + 120)
            probe.stop_requested = True
            xruns = probe.xruns - xruns_before
        finally:
            if probe is not None:
                probe.close()
            if process.poll() is None:
                process.wait(timeout=30)
        if process.returncode != 0:
            raise RuntimeError(f"player failed: {''.join(lines)}")
        jack_log = xruns_since(log_path, window_start)
    latencies = probe.latencies_ms()
    heard = latencies[np.isfinite(latencies)]
    player_result = json.loads(lines[-1])
    return {
        "jack_scheduling": "realtime" if realtime else "no-realtime",
        "player_main_thread": "busy Python loop" if busy else "idle",
        "measured_seconds": seconds,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "xruns": xruns,
        "jack_log": jack_log,
        "player": player_result,
        "latency_ms": {
            "notes": len(latencies),
            "missed": int(len(latencies) - len(heard)),
            "median": round(float(np.median(heard)), 3) if len(heard) else None,
            "min": round(float(np.min(heard)), 3) if len(heard) else None,
            "max": round(float(np.max(heard)), 3) if len(heard) else None,
            "p95": round(float(np.percentile(heard, 95)), 3) if len(heard) else None,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--seconds", type=float, default=60.0, help="measurement window per scheduling mode")
    parser.add_argument("--voices", type=int, default=128, help="held six-operator voices")
    parser.add_argument("--idle-main-thread", action="store_true",
                        help="let the player's main thread sleep instead of spinning (for comparison)")
    parser.add_argument("--player", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.player:
        player(args.seconds, args.voices, busy=not args.idle_main_thread)
        return 0
    with tempfile.TemporaryDirectory() as folder:
        runs = [measure(realtime, args.seconds, args.voices, not args.idle_main_thread, Path(folder) / "jackd.log")
                for realtime in scheduling_modes()]
    report = {
        "benchmark": "live",
        **JACK_SETUP,
        "held_six_operator_voices": args.voices,
        "settle_s": SETTLE_S,
        "targets": {"xruns": 0, "latency_ms_max": round(1000 * PERIOD / SAMPLE_RATE + 1, 3)},
        "runs": runs,
        "machine": machine_info("sounddevice", "JACK-Client"),
    }
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        for run in runs:
            latency = run["latency_ms"]
            print(f"{run['jack_scheduling']:>11}: {run['xruns']} xruns, {run['player']['underflows']} underflows in "
                  f"{run['player']['periods']} periods; latency median {latency['median']} ms, max {latency['max']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
