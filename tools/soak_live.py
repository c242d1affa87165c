"""Soak test of live play: ``wifm play`` on a private JACK dummy server under random MIDI, as JSON.

Usage: python tools/soak_live.py [--minutes 10] [--flood-minutes 10] [--instrument BANK_OR_PATCH]
                                 [--rate 30] [--flood-rate 5000] [--warmup-s 30]

Starts a private JACK dummy server (48 kHz, 128 frames; real-time scheduling when this machine allows
SCHED_FIFO), then ``wifm play INSTRUMENT`` as a user would (a subprocess, its command shell on a
pseudo-terminal) and one JACK client in this process with a MIDI output port the player connects to
and two audio inputs recording the player's output. From its process callback the client sends random
MIDI on every channel — notes of random keys, velocities and lengths, sustain and sostenuto pedals,
volume, expression, pan, modulation, pressure, pitch bend, program changes — at ``--rate`` events per
second (a player) for a warm-up and ``--minutes``, then at ``--flood-rate`` for ``--flood-minutes``.
Then it resets controllers and sends all-notes-off on every channel, waits out the longest release
and listens to a last window that must be silent.

Measured per phase: events sent, the output's peak and its non-finite samples (every sample is checked
in the callback, nothing is stored), the player's resident memory (/proc, every few seconds), its
PortAudio underflows (the engine finishing late: from its ``status`` command), the xruns the server's
log blames on each client and the cycles the dummy driver woke late, and the xruns JACK notified this
client of (the player's clients are its audio client, named by ``--client-name``, and its MIDI
client, that name with ``-midi``). RSS growth is measured from the end of the warm-up. Each note-on brings its
note-off, so about 1.6 × the rate of events is sent. This client's process callback is
Python: on a loaded machine JACK may blame xruns on it, which the log tells apart from the player's.
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
from jack_server import running_jack_server

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
CONTROLLERS = (1, 7, 10, 11, 64, 66)  # modulation, volume, pan, expression, sustain, sostenuto
CHANNEL_PRESSURE, PITCH_BEND = 0xD0, 0xE0
STATUS_LINE = re.compile(r"(\d+) voices sounding \(peak (\d+)\), DSP load (\d+) %, (\d+) underflows since start"
                         r"(?:, (.*))?")
TARGETS = {"rss_growth_mb_max": 5.0, "nonfinite_samples": 0, "peak_dbfs_max": 0.0, "engine_underflows": 0,
           "voices_after_release": 0}


@dataclass
class Window:
    """What the capture saw in one phase; written by the process callback only."""

    frames: int = 0
    peak: float = 0.0
    nonfinite_samples: int = 0
    events_sent: int = 0


class Keyboard:
    """JACK client: random MIDI out from its process callback, the player's stereo output in."""

    def __init__(self, seed: int):
        import jack

        self.client = jack.Client(CLIENT_NAME, no_start_server=True)
        self.midi_out = self.client.midi_outports.register("keys")
        self.inports = [self.client.inports.register(f"in_{side}") for side in ("left", "right")]
        self.rng = np.random.default_rng(seed)
        self.rate = 0.0  # events per second; 0: none
        self.window = Window()
        self.pending_offs: list[tuple[int, int, int]] = []  # (frame, channel, key)
        self.final_messages: list[tuple[int, int, int]] = []  # sent once, at the next cycle
        self.xruns = 0
        self.client.set_xrun_callback(self._xrun)
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _xrun(self, delayed_usecs):
        self.xruns += 1

    def _random_message(self, frame: int) -> tuple[int, int, int]:
        rng = self.rng
        channel = int(rng.integers(0, MIDI_CHANNELS))
        kind = rng.random()
        if kind < 0.6:
            key = int(rng.integers(0, 128))
            heapq.heappush(self.pending_offs, (frame + int(rng.uniform(*NOTE_SECONDS) * SAMPLE_RATE), channel, key))
            return NOTE_ON | channel, key, int(rng.integers(1, 128))
        if kind < 0.85:
            return CONTROL_CHANGE | channel, int(rng.choice(CONTROLLERS)), int(rng.integers(0, 128))
        if kind < 0.93:
            return PITCH_BEND | channel, int(rng.integers(0, 128)), int(rng.integers(0, 128))
        if kind < 0.98:
            return CHANNEL_PRESSURE | channel, int(rng.integers(0, 128)), 0
        return PROGRAM_CHANGE | channel, int(rng.integers(0, 128)), 0

    def _process(self, frames):
        window = self.window
        for port in self.inports:
            block = port.get_array()
            finite = np.isfinite(block)
            if not finite.all():
                window.nonfinite_samples += int(np.count_nonzero(~finite))
                block = block[finite]
            if block.size:
                window.peak = max(window.peak, float(np.max(np.abs(block))))
        window.frames += frames
        self.midi_out.clear_buffer()
        now = self.client.last_frame_time
        messages = []
        if self.final_messages:
            messages = [(0, message) for message in self.final_messages]
            self.final_messages = []
        elif self.rate > 0:
            offsets = np.sort(self.rng.integers(0, frames, self.rng.poisson(self.rate * frames / SAMPLE_RATE)))
            messages = [(int(offset), self._random_message(now + int(offset))) for offset in offsets]
            while self.pending_offs and self.pending_offs[0][0] < now + frames:
                due, channel, key = heapq.heappop(self.pending_offs)
                messages.append((max(due - now, 0), (NOTE_OFF | channel, key, 0)))
            messages.sort(key=lambda item: item[0])
        for offset, message in messages:
            self.midi_out.write_midi_event(offset, message[:2] if message[0] & 0xF0 in (0xC0, 0xD0) else message)
        window.events_sent += len(messages)

    def start_window(self) -> Window:
        """A fresh window from the next cycle on; returns the one that ends."""
        finished, self.window = self.window, Window()
        return finished

    def play(self, rate: float) -> None:
        self.rate = rate

    def everything_off(self) -> None:
        """Stop playing; reset controllers (pedals up) and all notes off on every channel."""
        self.rate = 0.0
        self.pending_offs = []
        self.final_messages = [(CONTROL_CHANGE | channel, controller, 0)
                               for channel in range(MIDI_CHANNELS)
                               for controller in (CC_RESET_CONTROLLERS, CC_ALL_NOTES_OFF)]

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
        self.client.deactivate()
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
                "underflows": int(match[4]), "limiting": match[5]}

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
    soak_client_xruns: int = 0
    jack_log: dict = field(default_factory=dict)
    status_at_end: dict = field(default_factory=dict)


def run_phase(player: Player, keyboard: Keyboard, log_path: Path, seconds: float, rate: float) -> PhaseResult:
    """Play at ``rate`` for ``seconds``: the capture window, RSS samples, underflows and the server log's xruns."""
    underflows_before = player.status()["underflows"]
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
        seconds=seconds, events_per_second_asked=rate, events_sent=window.events_sent,
        frames_captured=window.frames, output_peak_dbfs=dbfs(window.peak), nonfinite_samples=window.nonfinite_samples,
        rss_mb={"start": round(rss[0], 2), "end": round(rss[-1], 2), "max": round(max(rss), 2),
                "samples": len(rss)},
        engine_underflows=status["underflows"] - underflows_before, soak_client_xruns=keyboard.xruns - xruns_before,
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
                               "player_ports": len(keyboard.client.get_ports(f"{PLAYER_NAME}:", is_audio=True))}
            exit_status = player.quit()
        finally:
            keyboard.close()
            player.kill()
        zombified = len(re.findall(r"zombified", log_path.read_text(errors="replace")))
    measured = [phases[name] for name in ("realistic", "flood") if name in phases] or [warmup]
    peak = max(phase.output_peak_dbfs if phase.output_peak_dbfs is not None else -np.inf for phase in measured)
    summary = {
        "rss_growth_mb_after_warmup": round(rss_end - rss_after_warmup, 2),
        "nonfinite_samples": sum(phase.nonfinite_samples for phase in measured),
        "output_peak_dbfs": None if peak == -np.inf else peak,
        "engine_underflows": sum(phase.engine_underflows for phase in measured),
        "player_blamed_xruns": sum(count for phase in measured for client, count in
                                   phase.jack_log["blamed_clients"].items() if client != CLIENT_NAME),
        "soak_client_blamed_xruns": sum(phase.jack_log["blamed_clients"].get(CLIENT_NAME, 0) for phase in measured),
        "driver_late_cycles": sum(phase.jack_log["driver_late"] for phase in measured),
        "voices_after_release": after_release["voices_sounding"],
        "silence_window_peak_dbfs": dbfs(silence.peak),
        "stuck_notes": after_release["voices_sounding"] > 0 or silence.peak > SILENCE,
    }
    summary["pass"] = (summary["rss_growth_mb_after_warmup"] < TARGETS["rss_growth_mb_max"]
                       and summary["nonfinite_samples"] == 0 and summary["engine_underflows"] == 0
                       and (summary["output_peak_dbfs"] is None or summary["output_peak_dbfs"] <= 0.0)
                       and not summary["stuck_notes"] and clients_running["player_alive"] and exit_status == 0)
    return {
        "jack_scheduling": "realtime" if realtime else "no-realtime",
        "summary": summary,
        "phases": {name: asdict(phase) for name, phase in phases.items()},
        "after_release": {"wait_s": RELEASE_WAIT_S, "window_s": SILENCE_WINDOW_S, "status": after_release},
        "clients_running_at_end": clients_running,
        "server_log_zombified_lines": zombified,
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
