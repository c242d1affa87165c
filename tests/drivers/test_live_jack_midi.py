"""``wifm play``'s JACK MIDI input on a private JACK dummy server: one JACK client library in the player,
and events that keep their exact frame, also on a busy machine.

The python-rtmidi wheel links a libjack of its own; a player that loads it beside the system libjack
of PortAudio's JACK host has two client libraries talking to one server (the soak's SIGSEGVs,
docs/RESULTS.md). The timing test sends notes from a JACK MIDI port at chosen JACK frames, with two
busy-looping processes beside it, and finds their onsets in the player's output on the same clock. Its
server runs JACK's threads with real-time scheduling where the machine allows it, as an audio machine
does: the busy processes then compete with the player's MIDI thread and the test's own Python, not with
JACK's cycle.
"""

import contextlib
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from jack_server import jack_server, running_jack_server  # noqa: F401  (fixture)
from test_live_jack import STARTUP_TIMEOUT_S, Capture, PlayerProcess, held_tone_patch

from wifm_synth.formats.patch_json import save_patch

jack = pytest.importorskip("jack")

pytestmark = pytest.mark.jack

JACK_LIBRARY = re.compile(r"/libjack(-[0-9a-f]+)?\.so[.0-9]*$")  # not libjacknet/libjackserver
PLAYER = "wifm-timing"
NOTE_SPACING_S = 0.3
LEAD_S = 2.0  # events are scheduled this far ahead, so that a busy machine does not make them late
PAIRS = ((5, 100), (120, 10), (0, 127), (90, 20), (30, 110), (127, 1))  # frames into the period: left, right
SOUND = 1e-2
BUSY_PROCESSES = 2  # as many as this machine's cores
BUSY_LOOP = "while True: pass"


class Sequencer:
    """A JACK client sending scheduled MIDI events at exact JACK frames."""

    def __init__(self):
        self.client = jack.Client("wifm-test-sequencer", no_start_server=True)
        self.port = self.client.midi_outports.register("out")
        self.lock = threading.Lock()
        self.schedule: list[tuple[int, bytes]] = []
        self.late = 0  # events whose frame had passed when their cycle came (a stalled test process)
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames):
        self.port.clear_buffer()
        start = self.client.last_frame_time
        with self.lock:
            while self.schedule and self.schedule[0][0] < start + frames:
                frame, message = self.schedule.pop(0)
                if frame >= start:
                    self.port.write_midi_event(frame - start, message)
                else:
                    self.late += 1

    def send_at(self, events: list[tuple[int, bytes]]):
        with self.lock:
            self.schedule = sorted(self.schedule + events)

    def close(self):
        self.client.deactivate()
        self.client.close()


def jack_libraries(pid: int) -> set[str]:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {line.split()[-1] for line in maps.splitlines() if JACK_LIBRARY.search(line)}


@pytest.fixture(scope="module")
def patch_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("timing") / "held.json"
    save_patch(held_tone_patch(), path)
    return path


def test_player_maps_one_jack_client_library(jack_server, patch_path):  # noqa: F811
    player = PlayerProcess(patch_path, jack_server.env, "--client-name", PLAYER, "--midi-in", "none")
    try:
        player.wait_for("playing on", STARTUP_TIMEOUT_S)
        libraries = jack_libraries(player.process.pid)
    finally:
        player.process.terminate()
        player.process.wait(timeout=60)
    assert len(libraries) == 1, f"the player maps {sorted(libraries)}"


@pytest.fixture(scope="module")
def realtime_jack_server():
    """A private dummy server with SCHED_FIFO threads where this machine allows it (else without)."""
    allowed = subprocess.run(["chrt", "-f", "10", "true"], capture_output=True, check=False).returncode == 0
    with running_jack_server(realtime=allowed) as server:
        yield server


@contextlib.contextmanager
def busy_processes(count: int = BUSY_PROCESSES):
    """``count`` processes spinning on the CPU at normal priority, stopped on exit."""
    spinners = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(count)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def _first_sound(audio: np.ndarray) -> int | None:
    loud = np.flatnonzero(np.abs(audio) > SOUND)
    return int(loud[0]) if len(loud) else None


def test_events_keep_their_frame_on_a_busy_machine(realtime_jack_server, patch_path):
    """Two notes sent in one JACK cycle at different frames, channel 1 panned left and channel 2 right, start
    exactly as many frames apart as they were sent (events quantised to the period would start together),
    and every note, whatever its offset in its period, sounds with one latency — while two processes
    spin on the CPU."""
    server = realtime_jack_server
    rate, period = server.sample_rate, server.period
    player = PlayerProcess(patch_path, server.env, "--client-name", PLAYER, "--midi-in", "wifm-test-sequencer")
    capture = sequencer = None
    busy = contextlib.ExitStack()
    try:
        player.wait_for("playing on", STARTUP_TIMEOUT_S)
        capture = Capture(rate)
        capture.connect(f"{PLAYER}:")
        sequencer = Sequencer()
        player.wait_for("connected 'wifm-test-sequencer:out'", 10)
        spacing = round(NOTE_SPACING_S * rate / period) * period
        cycle = (sequencer.client.frame_time // period + round(LEAD_S * rate / period)) * period
        events = [(cycle, bytes([0xB0, 10, 0])), (cycle, bytes([0xB1, 10, 127]))]  # channel 1 left, 2 right
        starts = []
        for index, (left, right) in enumerate(PAIRS):
            start = cycle + (index + 1) * spacing
            starts.append((start + left, start + right))
            for channel, offset in ((0, left), (1, right)):
                events += [(start + offset, bytes([0x90 | channel, 69, 100])),
                           (start + offset + spacing // 2, bytes([0x80 | channel, 69, 0]))]
        busy.enter_context(busy_processes())
        sequencer.send_at(events)
        end = cycle + (len(PAIRS) + 2) * spacing - capture.start_frame
        deadline = time.monotonic() + 30
        while capture.captured() < end and time.monotonic() < deadline:
            time.sleep(0.05)
        assert capture.captured() >= end, "the JACK graph stopped"
        assert sequencer.late == 0, f"{sequencer.late} events were scheduled too late to be sent"
        busy.close()
        apart, latencies = [], []
        for left_start, right_start in starts:
            first = left_start - capture.start_frame - period
            window = slice(first, left_start - capture.start_frame + spacing // 2)
            left, right = (_first_sound(capture.buffer[side, window]) for side in (0, 1))
            assert left is not None and right is not None, f"no sound after the notes at frame {left_start}"
            apart.append(left - right)
            latencies += [first + left + capture.start_frame - left_start, first + right + capture.start_frame
                          - right_start]
    finally:
        busy.close()
        for client in (sequencer, capture):
            if client is not None:
                client.close()
        player.process.terminate()
        player.process.wait(timeout=60)
    sent_apart = [left - right for left, right in PAIRS]
    figures = f"onsets left − right {apart}, sent {sent_apart} frames apart; latencies {latencies} frames"
    print(figures)
    assert apart == sent_apart, figures
    assert len(set(latencies)) == 1, figures
