"""Live play on a JACK dummy server: xruns of the player alone, then MIDI-in → audio-out latency.

Usage: python tools/bench_live.py --json [--seconds 60] [--latency-seconds 30] [--voices 128]
For each JACK scheduling mode available (real-time when the machine allows SCHED_FIFO, and
non-real-time) it starts a private JACK dummy server (48 kHz, 128 frames) and a player process running
``wifm_synth.drivers.live.LivePlayer`` (the code behind ``wifm play``) with ``--voices`` held
six-operator notes panned hard right, while its Python main thread spins a busy loop. Each phase
starts after a settle period.

Phase A (``xruns_player_only``, ``--seconds``): the player is the only client in the graph (its
PortAudio client and its JACK MIDI client, waiting for a MIDI port). Counted: the xruns the server's log
blames on each client, the cycles the dummy driver woke late, and the player's PortAudio underflow
flags.

Phase B (``latency_phase``, ``--latency-seconds``): a probe JACK client in this process joins, sends a
note every half second on a channel panned hard left from its process callback, so each note-on's JACK
frame is exact, and records the player's output by JACK frame; the latency of a note is (first
non-silent left sample − note-on frame) / rate. The probe's process callback is Python, and a Python
JACK client is itself a source of xruns on a loaded machine, so this phase's xruns are
reported separately, as including the probe.

Finally (``c_reference_client``), JACK's C example client runs alone for ``--seconds``: the machine's
floor, xruns that come from its scheduling rather than from Python.
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

from bench_callback import (
    JACK_SETUP,
    MEASURING,
    PERIOD,
    SAMPLE_RATE,
    announce_measuring,
    busy_python_loop,
    native_client_xruns,
    scheduling_modes,
    xruns_since,
)
from bench_engine import bench_patch, hold_voices
from benchmark_info import machine_info
from jack_server import running_jack_server

from wifm_synth.drivers.midi_in import CLIENT_NAME
from wifm_synth.midi import DRUM_CHANNEL, MIDI_CHANNELS

SETTLE_S = 5.0
PROBE_CLIENT = "wifm-bench-probe"
PROBE_CHANNEL = MIDI_CHANNELS - 1
PROBE_KEY = 81
PROBE_INTERVAL_S = 0.5
PROBE_HOLD_S = 0.1
ONSET_THRESHOLD = 1e-4  # the left channel is exactly silent between probe notes
PAN_HARD_LEFT, PAN_HARD_RIGHT = 0, 127
CC_PAN = 10
PROBE_CONNECTED = "probe connected"


def wait_idle(seconds: float) -> int:
    time.sleep(seconds)
    return 0


def measured_phase(live, seconds: float, main_thread_work) -> dict:
    """Settle, tell the parent the window starts, then the player's counters over ``seconds``."""
    main_thread_work(SETTLE_S)
    announce_measuring()
    start = {"periods": live.stream.callbacks, "underflows": live.stream.underflows}
    iterations = main_thread_work(seconds)
    return {"periods": live.stream.callbacks - start["periods"],
            "underflows": live.stream.underflows - start["underflows"],
            "busy_loop_iterations": iterations, "sounding_voices": live.synth.active_voices,
            "peak_voices": live.synth.peak_voices, "portaudio_cpu_load": round(live.stream.cpu_load, 4),
            "gil_switch_interval_ms": sys.getswitchinterval() * 1000,
            "midi_pump_sched_fifo": live.midi.realtime_pump,
            "midi_ports": live.midi.connected_ports, "status": live.status_line()}


def player(seconds: float, latency_seconds: float, voices: int, busy: bool) -> None:
    """The player process: LivePlayer with held voices, busy (or idle) main thread; per phase its counters
    as one JSON line. Phase B starts when the parent writes a line saying its probe is connected."""
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
        print(json.dumps(measured_phase(live, seconds, main_thread_work)), flush=True)
        if sys.stdin.readline().strip() != PROBE_CONNECTED:
            raise RuntimeError("the benchmark stopped before its probe connected")
        print(json.dumps(measured_phase(live, latency_seconds, main_thread_work)), flush=True)


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
        self.xruns_at_start = 0
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
        sources = self.client.get_ports(f"{CLIENT_NAME}:", is_audio=True, is_output=True)
        self.client.connect(sources[0], self.audio_in)
        deadline = time.monotonic() + timeout_s
        while not self.client.get_all_connections(self.midi_out):
            if time.monotonic() > deadline:
                raise RuntimeError("the player never connected to the probe's MIDI port")
            time.sleep(0.05)

    def start(self) -> None:
        self.xruns_at_start = self.xruns
        self.start_frame = self.client.frame_time + 2 * PERIOD

    def stop(self) -> int:
        """Stops probing; the xruns JACK notified the probe of since start()."""
        self.stop_requested = True
        return self.xruns - self.xruns_at_start

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


def next_player_line(process: subprocess.Popen) -> str:
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"the player stopped (exit status {process.wait()})")
    return line.strip()


def player_phase(process: subprocess.Popen, log_path: Path, on_window_start=lambda: None) -> tuple[dict, dict]:
    """One measured phase of the player: its counters and the server log's xrun report for the window."""
    line = next_player_line(process)
    if line != MEASURING:
        raise RuntimeError(f"unexpected output from the player: {line}")
    window_start = log_path.stat().st_size
    on_window_start()
    counters = json.loads(next_player_line(process))
    return counters, xruns_since(log_path, window_start, log_path.stat().st_size)


def latency_summary(latencies: np.ndarray) -> dict:
    heard = latencies[np.isfinite(latencies)]
    statistics = {"median": np.median, "min": np.min, "max": np.max, "p95": lambda values: np.percentile(values, 95)}
    return {"notes": len(latencies), "missed": int(len(latencies) - len(heard)),
            **{name: round(float(statistic(heard)), 3) if len(heard) else None
               for name, statistic in statistics.items()}}


def measure(realtime: bool, seconds: float, latency_seconds: float, voices: int, busy: bool, log_path: Path) -> dict:
    load_before = os.getloadavg()
    with open(log_path, "w") as log, running_jack_server(SAMPLE_RATE, PERIOD, realtime=realtime, log=log) as server:
        command = [sys.executable, __file__, "--player", "--seconds", str(seconds),
                   "--latency-seconds", str(latency_seconds), "--voices", str(voices)]
        if not busy:
            command.append("--idle-main-thread")
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=server.env)
        probe = None
        try:
            player_only, player_only_log = player_phase(process, log_path)
            probe = Probe(latency_seconds)
            probe.connect_player()
            process.stdin.write(PROBE_CONNECTED + "\n")
            process.stdin.flush()
            latency_player, latency_log = player_phase(process, log_path, probe.start)
            probe_xruns = probe.stop()
        finally:
            if probe is not None:
                probe.close()
            process.stdin.close()
            process.wait(timeout=60)
        if process.returncode != 0:
            raise RuntimeError(f"the player failed (exit status {process.returncode})")
        c_reference = native_client_xruns(seconds, server, log_path)
    return {
        "jack_scheduling": "realtime" if realtime else "no-realtime",
        "player_main_thread": "busy Python loop" if busy else "idle",
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "xruns_player_only": {"measured_seconds": seconds, "jack_clients": "the player's PortAudio and JACK MIDI clients",
                              "jack_log": player_only_log, "player": player_only},
        "latency_phase": {"measured_seconds": latency_seconds,
                          "jack_clients": "the player's and the benchmark's Python probe client (its xruns count here)",
                          "xruns_notified_to_probe": probe_xruns, "jack_log": latency_log,
                          "player": latency_player, "latency_ms": latency_summary(probe.latencies_ms())},
        "c_reference_client": {"measured_seconds": seconds, **c_reference},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="xrun window of the player alone (and of the C reference client), per scheduling mode")
    parser.add_argument("--latency-seconds", type=float, default=30.0,
                        help="latency window with the probe client, per scheduling mode")
    parser.add_argument("--voices", type=int, default=128, help="held six-operator voices")
    parser.add_argument("--idle-main-thread", action="store_true",
                        help="let the player's main thread sleep instead of spinning (for comparison)")
    parser.add_argument("--player", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.player:
        player(args.seconds, args.latency_seconds, args.voices, busy=not args.idle_main_thread)
        return 0
    with tempfile.TemporaryDirectory() as folder:
        runs = [measure(realtime, args.seconds, args.latency_seconds, args.voices, not args.idle_main_thread,
                        Path(folder) / "jackd.log")
                for realtime in scheduling_modes()]
    report = {
        "benchmark": "live",
        **JACK_SETUP,
        "held_six_operator_voices": args.voices,
        "settle_s": SETTLE_S,
        "targets": {"xruns_player_only": 0, "latency_ms_max": round(1000 * PERIOD / SAMPLE_RATE + 1, 3)},
        "runs": runs,
        "machine": machine_info("sounddevice", "JACK-Client"),
    }
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        for run in runs:
            alone, probed, floor = run["xruns_player_only"], run["latency_phase"], run["c_reference_client"]["jack_log"]
            latency = probed["latency_ms"]
            print(f"{run['jack_scheduling']:>11}: player alone {alone['player']['underflows']} underflows in "
                  f"{alone['player']['periods']} periods, blamed {alone['jack_log']['blamed_clients']}, driver late "
                  f"{alone['jack_log']['driver_late']}; with probe {probed['xruns_notified_to_probe']} xruns, latency "
                  f"median {latency['median']} ms, max {latency['max']} ms; C reference client: blamed "
                  f"{floor['blamed_clients']}, driver late {floor['driver_late']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
