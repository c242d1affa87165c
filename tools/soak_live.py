"""Soak test of live play: ``wifm play`` on a private JACK dummy server under random MIDI, as JSON.

Usage: python tools/soak_live.py [--minutes 10] [--flood-minutes 10] [--instrument BANK_OR_PATCH]
                                 [--rate 30] [--flood-rate 5000] [--warmup-s 30]

Starts a private JACK dummy server (48 kHz, 128 frames; real-time scheduling when this machine allows
SCHED_FIFO), then ``wifm play INSTRUMENT`` as a user would (a subprocess, its command shell on a
pseudo-terminal) and one JACK client in this process with a MIDI output port the player connects to
and two audio inputs recording the player's output. That client's process callback is compiled
(``soak_client.py``: no Python, no GIL in JACK's thread); a feeder thread queues random MIDI for it
``LEAD_S`` ahead on every channel — notes of random keys, velocities and lengths, sustain and sostenuto
pedals, volume, expression, pan, modulation, pressure, pitch bend, program changes — at ``--rate`` events
per second (a player) for a warm-up and ``--minutes``, then at ``--flood-rate`` for ``--flood-minutes``.
Then it resets controllers and sends all-notes-off on every channel, waits out the longest release
and listens to a last window that must be silent.

Measured per phase: events sent, the output's peak and its non-finite samples (every sample is checked
in the callback, nothing is stored), the player's resident memory (/proc, every few seconds), its
*engine-late* periods (audio callbacks that used more CPU time than the period lasts, timed inside the
callback; from its ``status`` command, with the worst callback, and the *stalled* ones that took longer
in wall time: the thread kept waiting inside the callback) and PortAudio underflows, the xruns the server's
log blames on each client and the cycles the dummy driver woke late, and the xruns JACK notified this
client of (the player's clients are its audio client, named by ``--client-name``, and its MIDI
client, that name with ``-midi``). RSS growth is measured from the end of the warm-up. Each note-on brings
its note-off, so about 1.6 × the rate of events is sent.

Pass: no engine-late period, the player's clients still running (its ports listed, none zombified) and
the player exiting 0 on ``quit``, RSS growth < 5 MB, no non-finite sample, no stuck note, peak ≤ 0 dBFS.
The server's xrun counts are reported, not judged: on a shared machine the dummy driver itself wakes
late and blames whichever client it finds unfinished. So is the machine's steal time (/proc/stat): a
virtual machine charges the time its host holds a virtual CPU to the thread running on it, which a CPU
clock cannot tell from work (``tools/cpu_clock_gaps.py`` measures how often). (Over 400 lines: the keyboard, the player and the
report are one experiment; the compiled client is ``soak_client.py``.)
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the JACK dummy server helper the tests use

from bench_callback import (
    JACK_SETUP,
    PERIOD,
    SAMPLE_RATE,
    scheduling_modes,
    xruns_since,
)
from benchmark_info import machine_info
from cpu_clock_gaps import steal_seconds
from jack_server import running_jack_server
from soak_client import open_soak_client

from wifm_synth.midi import (
    CC_ALL_NOTES_OFF,
    CC_RESET_CONTROLLERS,
    CONTROL_CHANGE,
    MIDI_CHANNELS,
    NOTE_OFF,
    NOTE_ON,
    PROGRAM_CHANGE,
)

BUNDLED_BANK = REPO / "patches" / "freepats" / "bank.json"
CLIENT_NAME = "wifm-soak"
PLAYER_NAME = "wifm-soaked"  # the player's --client-name: its JACK audio client, and NAME-midi for MIDI
STARTUP_TIMEOUT_S = 180.0  # a cold start compiles (and caches) the engine
RSS_INTERVAL_S = 5.0
RELEASE_WAIT_S = 8.0  # after all-notes-off: longer than any release of the bundled patches (≈ 1.2 s) to fade
SILENCE_WINDOW_S = 2.0
SILENCE = 10.0 ** (-90.0 / 20.0)  # the engine frees a voice below −90 dB, so the output is then exactly 0
NOTE_SECONDS = (0.02, 2.0)  # random note lengths
LEAD_S = 0.5  # the feeder queues events this far ahead of JACK's clock …
FEED_INTERVAL_S = 0.01  # … every this often
CONTROLLERS = (1, 7, 10, 11, 64, 66)  # modulation, volume, pan, expression, sustain, sostenuto
CHANNEL_PRESSURE, PITCH_BEND = 0xD0, 0xE0
STATUS_LINE = re.compile(r"(\d+) voices sounding \(peak (\d+)\), DSP load (\d+) %, (\d+) underflows since start, "
                         r"(\d+) engine-late periods \(CPU time over the ([\d.]+) ms period; worst ([\d.]+) ms\), "
                         r"(\d+) stalled \(wall time over it; worst ([\d.]+) ms\)(?:, (.*))?")
TARGETS = {"rss_growth_mb_max": 5.0, "nonfinite_samples": 0, "peak_dbfs_max": 0.0, "engine_late_periods": 0,
           "voices_after_release": 0, "player_clients_running": True}


class Keyboard:
    """JACK client: random MIDI out, the player's stereo output in, through a compiled process callback
    (``soak_client``). A feeder thread makes the random MIDI ``LEAD_S`` ahead of JACK's clock and queues it
    in the callback's ring; the main thread steers it through a command queue."""

    def __init__(self, seed: int):
        self.client, self.midi_out, self.inports, self.buffers = open_soak_client(CLIENT_NAME)
        self.rng = np.random.default_rng(seed)
        self.xruns = 0
        self.unqueued_events = 0  # the ring was full (never expected: it holds seconds of a flood)
        self._commands: queue.SimpleQueue[tuple[str, float]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self.client.set_xrun_callback(self._xrun)  # JACK's notification thread, not its process thread
        self.client.activate()
        self._feeder = threading.Thread(target=self._feed, name="soak-feeder", daemon=True)
        self._feeder.start()

    def _xrun(self, delayed_usecs):
        self.xruns += 1

    def _random_message(self, frame: int, pending_offs: list) -> tuple[int, ...]:
        rng = self.rng
        channel = int(rng.integers(0, MIDI_CHANNELS))
        kind = rng.random()
        if kind < 0.6:
            key = int(rng.integers(0, 128))
            heapq.heappush(pending_offs, (frame + int(rng.uniform(*NOTE_SECONDS) * SAMPLE_RATE), channel, key))
            return NOTE_ON | channel, key, int(rng.integers(1, 128))
        if kind < 0.85:
            return CONTROL_CHANGE | channel, int(rng.choice(CONTROLLERS)), int(rng.integers(0, 128))
        if kind < 0.93:
            return PITCH_BEND | channel, int(rng.integers(0, 128)), int(rng.integers(0, 128))
        if kind < 0.98:
            return CHANNEL_PRESSURE | channel, int(rng.integers(0, 128))
        return PROGRAM_CHANGE | channel, int(rng.integers(0, 128))

    def _queue(self, messages: list[tuple[int, tuple[int, ...]]]) -> None:
        for frame, message in sorted(messages, key=lambda item: item[0]):
            self.unqueued_events += not self.buffers.queue(frame, bytes(message))

    def _feed(self) -> None:
        """Random MIDI for the frames up to LEAD_S ahead of JACK's clock, every FEED_INTERVAL_S."""
        rate, next_frame, pending_offs = 0.0, None, []
        while not self._stop.wait(FEED_INTERVAL_S):
            horizon = self.client.frame_time + round(LEAD_S * SAMPLE_RATE)
            start = horizon if next_frame is None else next_frame
            while not self._commands.empty():
                command, value = self._commands.get()
                if command == "rate":
                    rate = value
                else:  # everything off, after every event already queued
                    pending_offs = []
                    self._queue([(start, (CONTROL_CHANGE | channel, controller, 0))
                                 for channel in range(MIDI_CHANNELS)
                                 for controller in (CC_RESET_CONTROLLERS, CC_ALL_NOTES_OFF)])
                    rate = 0.0
            if rate <= 0:
                next_frame = None  # events already queued all lie before the next horizon
                continue
            if horizon <= start:
                next_frame = start
                continue
            frames = np.sort(self.rng.integers(start, horizon, self.rng.poisson(rate * (horizon - start) / SAMPLE_RATE)))
            messages = [(int(frame), self._random_message(int(frame), pending_offs)) for frame in frames]
            while pending_offs and pending_offs[0][0] < horizon:
                due, channel, key = heapq.heappop(pending_offs)
                messages.append((max(due, start), (NOTE_OFF | channel, key, 0)))
            self._queue(messages)
            next_frame = horizon

    def window(self, finished: int) -> dict:
        """What the callback counted in window ``finished`` (after it switched away and a cycle passed)."""
        time.sleep(4 * PERIOD / SAMPLE_RATE)
        return self.buffers.counts(finished)

    def start_window(self) -> dict:
        """A fresh window from the next cycle on; returns the counts of the one that ends."""
        return self.window(self.buffers.next_window())

    def play(self, rate: float) -> None:
        self._commands.put(("rate", rate))

    def everything_off(self) -> None:
        """Stop playing; after every event already queued, reset controllers (pedals up) and all notes off on
        every channel."""
        self._commands.put(("off", 0.0))

    def connect(self, timeout_s: float = 30.0) -> None:
        """The player's audio outputs to our inputs; wait until the player connected our MIDI port."""
        deadline = time.monotonic() + timeout_s
        while True:
            sources = self.client.get_ports(f"{PLAYER_NAME}:", is_audio=True, is_output=True)
            if len(sources) == 2 and self.client.get_all_connections(self.midi_out):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the player's ports never appeared or connected (audio {sources})")
            time.sleep(0.1)
        for source, inport in zip(sources, self.inports, strict=True):
            self.client.connect(source, inport)

    def close(self) -> None:
        self._stop.set()
        self._feeder.join()
        self.client.deactivate()  # the callback has returned for good: its buffers may go
        self.client.close()


class Player:
    """``wifm play`` in a subprocess, its shell on a pseudo-terminal, its output lines collected."""

    def __init__(self, instrument: Path, env: dict):
        master, slave = os.openpty()
        self.shell = os.fdopen(master, "w", buffering=1)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "wifm_synth", "play", str(instrument), "--client-name", PLAYER_NAME,
             "--midi-in", CLIENT_NAME],
            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
            env={**env, "PYTHONFAULTHANDLER": "1"})  # a crash dumps every thread's Python stack
        os.close(slave)
        self.lines: queue.Queue[str] = queue.Queue()
        self.transcript: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: re.Pattern | str, timeout: float) -> re.Match:
        pattern = re.compile(re.escape(pattern)) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.transcript.append(line)
            match = pattern.search(line)
            if match:
                return match
        raise RuntimeError(f"the player never printed {pattern.pattern!r}; it printed {self.transcript[-20:]}")

    def status(self) -> dict:
        self.shell.write("status\n")
        match = self.wait_for(STATUS_LINE, 10.0)
        return {"voices_sounding": int(match[1]), "peak_voices": int(match[2]), "dsp_load_percent": int(match[3]),
                "underflows": int(match[4]), "engine_late_periods": int(match[5]), "period_ms": float(match[6]),
                "worst_callback_cpu_ms": float(match[7]), "stalled_periods": int(match[8]),
                "worst_callback_ms": float(match[9]), "limiting": match[10]}

    def rss_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("the player has no VmRSS")

    def quit(self) -> int:
        self.shell.write("quit\n")
        self.wait_for("stopped", 30.0)
        return self.process.wait(timeout=30)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def dbfs(peak: float) -> float | None:
    return round(20 * np.log10(peak), 2) if peak > 0 else None


@dataclass
class PhaseResult:
    seconds: float
    events_per_second_asked: float
    events_sent: int = 0
    frames_captured: int = 0
    output_peak_dbfs: float | None = None
    nonfinite_samples: int = 0
    rss_mb: dict = field(default_factory=dict)
    engine_underflows: int = 0
    engine_late_periods: int = 0
    engine_stalled_periods: int = 0
    soak_client_late_events: int = 0
    soak_client_xruns: int = 0
    machine_steal_s: float = 0.0  # /proc/stat: time the hypervisor held this machine's virtual CPUs
    jack_log: dict = field(default_factory=dict)
    status_at_end: dict = field(default_factory=dict)


def run_phase(player: Player, keyboard: Keyboard, log_path: Path, seconds: float, rate: float) -> PhaseResult:
    """Play at ``rate`` for ``seconds``: the capture window, RSS samples, underflows and the server log's xruns."""
    before = player.status()
    steal_before = steal_seconds()
    xruns_before = keyboard.xruns
    log_start = log_path.stat().st_size
    keyboard.start_window()
    keyboard.play(rate)
    rss = [player.rss_mb()]
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(RSS_INTERVAL_S, left))
        if player.process.poll() is not None:
            raise PlayerDied(player.process.returncode, time.monotonic() - (end - seconds))
        rss.append(player.rss_mb())
    window = keyboard.start_window()
    status = player.status()
    return PhaseResult(
        seconds=seconds, events_per_second_asked=rate, events_sent=window["events_sent"],
        frames_captured=window["frames"], output_peak_dbfs=dbfs(window["peak"]),
        nonfinite_samples=window["nonfinite_samples"],
        rss_mb={"start": round(rss[0], 2), "end": round(rss[-1], 2), "max": round(max(rss), 2),
                "samples": len(rss)},
        engine_underflows=status["underflows"] - before["underflows"],
        engine_late_periods=status["engine_late_periods"] - before["engine_late_periods"],
        engine_stalled_periods=status["stalled_periods"] - before["stalled_periods"],
        soak_client_late_events=window["late_events"], soak_client_xruns=keyboard.xruns - xruns_before,
        machine_steal_s=round(steal_seconds() - steal_before, 2),
        jack_log=xruns_since(log_path, log_start), status_at_end=status)


class PlayerDied(Exception):
    """The player exited in the middle of a phase (a crash: a soak never asks it to stop there)."""

    def __init__(self, exit_status: int, after_s: float):
        super().__init__(f"the player exited with status {exit_status} after {after_s:.0f} s of the phase")
        self.exit_status, self.after_s = exit_status, after_s


def _died(player: Player, phases: dict, phase: str, death: PlayerDied) -> dict:
    """The report of a soak whose player died: what ran, when it died, and its last lines (a fault handler's
    dump among them when ``PYTHONFAULTHANDLER`` is set)."""
    time.sleep(0.5)  # let the reader thread take the last lines
    while not player.lines.empty():
        player.transcript.append(player.lines.get())
    return {"summary": {"pass": False, "player_died_in": phase, "after_s": round(death.after_s, 1),
                        "player_exit_status": death.exit_status},
            "phases": {name: asdict(result) for name, result in phases.items()},
            "player_last_lines": player.transcript[-80:]}


def soak(instrument: Path, warmup_s: float, minutes: float, flood_minutes: float, rate: float, flood_rate: float,
         realtime: bool, seed: int, log_path: Path) -> dict:
    with open(log_path, "w") as log, running_jack_server(SAMPLE_RATE, PERIOD, realtime=realtime, log=log) as server:
        keyboard = Keyboard(seed)
        player = Player(instrument, server.env)
        try:
            player.wait_for("playing on", STARTUP_TIMEOUT_S)
            keyboard.connect()
            phases = {}
            for name, seconds, events_per_second in (("warmup", warmup_s, rate), ("realistic", 60 * minutes, rate),
                                                     ("flood", 60 * flood_minutes, flood_rate)):
                if seconds > 0 or name == "warmup":
                    try:
                        phases[name] = run_phase(player, keyboard, log_path, seconds, events_per_second)
                    except PlayerDied as death:
                        return {"jack_scheduling": "realtime" if realtime else "no-realtime",
                                **_died(player, phases, name, death)}
            warmup = phases["warmup"]
            rss_after_warmup = warmup.rss_mb["end"]
            rss_end = player.rss_mb()
            keyboard.everything_off()
            time.sleep(RELEASE_WAIT_S)
            keyboard.start_window()
            time.sleep(SILENCE_WINDOW_S)
            silence = keyboard.start_window()
            after_release = player.status()
            clients_running = {"player_alive": player.process.poll() is None,
                               "player_audio_ports": len(keyboard.client.get_ports(f"{PLAYER_NAME}:", is_audio=True)),
                               "player_midi_ports": len(keyboard.client.get_ports(f"{PLAYER_NAME}-midi:",
                                                                                  is_midi=True))}
            exit_status = player.quit()
        finally:
            keyboard.close()
            player.kill()
        zombified_lines = [line for line in log_path.read_text(errors="replace").splitlines() if "zombified" in line]
    clients_running["player_zombified_lines"] = sum(PLAYER_NAME in line for line in zombified_lines)
    clients_running["running"] = (clients_running["player_alive"] and clients_running["player_audio_ports"] == 2
                                  and clients_running["player_midi_ports"] == 1
                                  and clients_running["player_zombified_lines"] == 0)
    measured = [phases[name] for name in ("realistic", "flood") if name in phases] or [warmup]
    peak = max(phase.output_peak_dbfs if phase.output_peak_dbfs is not None else -np.inf for phase in measured)
    summary = {
        "rss_growth_mb_after_warmup": round(rss_end - rss_after_warmup, 2),
        "nonfinite_samples": sum(phase.nonfinite_samples for phase in measured),
        "output_peak_dbfs": None if peak == -np.inf else peak,
        "engine_late_periods": sum(phase.engine_late_periods for phase in measured),
        "engine_stalled_periods": sum(phase.engine_stalled_periods for phase in measured),
        "engine_late_periods_since_start": after_release["engine_late_periods"],
        "worst_callback_cpu_ms_since_start": after_release["worst_callback_cpu_ms"],
        "worst_callback_ms_since_start": after_release["worst_callback_ms"],
        "period_ms": after_release["period_ms"],
        "engine_underflows": sum(phase.engine_underflows for phase in measured),
        "player_blamed_xruns": sum(count for phase in measured for client, count in
                                   phase.jack_log["blamed_clients"].items() if client != CLIENT_NAME),
        "soak_client_blamed_xruns": sum(phase.jack_log["blamed_clients"].get(CLIENT_NAME, 0) for phase in measured),
        "driver_late_cycles": sum(phase.jack_log["driver_late"] for phase in measured),
        "soak_client_late_events": sum(phase.soak_client_late_events for phase in measured),
        "machine_steal_s": round(sum(phase.machine_steal_s for phase in measured), 2),
        "voices_after_release": after_release["voices_sounding"],
        "silence_window_peak_dbfs": dbfs(silence["peak"]),
        "stuck_notes": after_release["voices_sounding"] > 0 or silence["peak"] > SILENCE,
    }
    summary["pass"] = (summary["rss_growth_mb_after_warmup"] < TARGETS["rss_growth_mb_max"]
                       and summary["nonfinite_samples"] == 0 and summary["engine_late_periods"] == 0
                       and (summary["output_peak_dbfs"] is None or summary["output_peak_dbfs"] <= 0.0)
                       and not summary["stuck_notes"] and clients_running["running"] and exit_status == 0)
    return {
        "jack_scheduling": "realtime" if realtime else "no-realtime",
        "summary": summary,
        "phases": {name: asdict(phase) for name, phase in phases.items()},
        "after_release": {"wait_s": RELEASE_WAIT_S, "window_s": SILENCE_WINDOW_S, "status": after_release},
        "clients_running_at_end": clients_running,
        "server_log_zombified_lines": len(zombified_lines),
        "soak_client_unqueued_events": keyboard.unqueued_events,
        "player_exit_status": exit_status,
        "player_last_lines": player.transcript[-5:],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instrument", type=Path, default=BUNDLED_BANK, help="patch or bank (default: the bundled bank)")
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes at --rate after the warm-up")
    parser.add_argument("--flood-minutes", type=float, default=10.0, help="minutes at --flood-rate")
    parser.add_argument("--rate", type=float, default=30.0, help="events per second of a player (default 30)")
    parser.add_argument("--flood-rate", type=float, default=5000.0, help="events per second of a flood (default 5000)")
    parser.add_argument("--warmup-s", type=float, default=30.0, help="seconds at --rate before RSS is taken")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-realtime", action="store_true", help="JACK without SCHED_FIFO even where allowed")
    args = parser.parse_args(argv)
    realtime = not args.no_realtime and scheduling_modes()[0]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="wifm-soak-") as folder:
        run = soak(args.instrument, args.warmup_s, args.minutes, args.flood_minutes, args.rate, args.flood_rate,
                   realtime, args.seed, Path(folder) / "jackd.log")
    report = {
        "tool": "soak_live",
        "command": " ".join(["python", "tools/soak_live.py", *(argv if argv is not None else sys.argv[1:])]),
        **JACK_SETUP,
        "instrument": os.path.relpath(args.instrument, REPO) if args.instrument.is_absolute() else str(args.instrument),
        "warmup_s": args.warmup_s, "minutes": args.minutes, "flood_minutes": args.flood_minutes,
        "rate": args.rate, "flood_rate": args.flood_rate, "seed": args.seed,
        "targets": TARGETS,
        **run,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "machine": machine_info("JACK-Client"),
    }
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0 if run["summary"]["pass"] else 1  # a crash is a result too: the JSON says where


if __name__ == "__main__":
    sys.exit(main())
