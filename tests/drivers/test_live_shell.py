"""The ``wifm play`` shell through a pseudo-terminal, on a private JACK dummy server: ``prog`` changes
the captured sound, ``panic`` silences it, unknown commands get one line, ``quit`` stops."""

import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from jack_server import jack_server, running_jack_server  # noqa: F401  (fixture)
from test_live_jack import SOUND, STARTUP_TIMEOUT_S, Capture, PlayerProcess

from wifm_synth.formats.patch_json import save_patch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "engine"))
from test_output_safety import loudest_valid_patch

rtmidi = pytest.importorskip("rtmidi")
pytest.importorskip("jack")

pytestmark = pytest.mark.jack

BANK = Path(__file__).resolve().parent.parent / "data" / "banks" / "test_bank.json"


class ShellPlayer(PlayerProcess):
    """``wifm play`` whose stdin is a terminal (the slave side of a pty), so that it starts its shell."""

    def __init__(self, env, *options, instrument=BANK):
        self.master, slave = pty.openpty()
        original_popen = subprocess.Popen
        subprocess.Popen = lambda *args, **kwargs: original_popen(*args, stdin=slave, **kwargs)
        try:
            super().__init__(instrument, env, *options)
        finally:
            subprocess.Popen = original_popen
        os.close(slave)

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())


def close_all(player: ShellPlayer, keyboard, capture) -> None:
    """After a test, passed or failed. A player still running is stopped with SIGTERM first: killed, it
    would leave JACK clients that keep the server from closing in time (and its registry entry behind)."""
    if keyboard is not None:
        keyboard.delete()
    if capture is not None:
        capture.close()
    if player.process.poll() is None:
        player.process.terminate()
        try:
            player.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            player.process.kill()
            player.process.wait()
    os.close(player.master)


def jack_keyboard(env, name: str, player_client: str):
    """A JACK MIDI output port ``name:out``, connected to the player's own input port."""
    keyboard = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name)
    keyboard.open_virtual_port("out")
    subprocess.run(["jack_connect", f"{name}:out", f"{player_client}-midi:midi_in"], env=env, check=True, timeout=30)
    time.sleep(0.3)
    return keyboard


def centroid(audio: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio[0] * np.hanning(audio.shape[1])))
    frequencies = np.fft.rfftfreq(audio.shape[1], 1 / rate)
    return float(np.sum(spectrum * frequencies) / np.sum(spectrum))


def test_shell_commands_change_program_silence_and_quit(jack_server):  # noqa: F811
    rate = jack_server.sample_rate
    player = ShellPlayer(jack_server.env, "--client-name", "shelltest", "--midi-in", "none")
    capture = keyboard = None
    try:
        player.wait_for("type help for commands", STARTUP_TIMEOUT_S)
        player.type("help")
        player.wait_for("prog CH N", 10)
        player.type("bogus 1 2")
        assert "unknown command 'bogus' (type help)" in player.wait_for("unknown command", 10)
        player.type("programs")
        player.wait_for("program  33 bass", 10)
        player.type("status")
        status = player.wait_for("underflows since start", 10)
        assert status.endswith(", output never limited")
        assert re.search(r", \d+ engine-late periods \(CPU time over the 2\.667 ms period; worst \d+\.\d{3} ms\), "
                         r"\d+ stalled \(wall time over it; worst \d+\.\d{3} ms\), ", status), status
        capture = Capture(rate)
        capture.connect("shelltest:")
        keyboard = jack_keyboard(jack_server.env, "wifm-shell-keys", "shelltest")

        def held_note() -> np.ndarray:
            keyboard.send_message([0x90, 60, 100])
            time.sleep(0.4)
            end = capture.captured()
            keyboard.send_message([0x80, 60, 0])
            time.sleep(1.0)
            return capture.buffer[:, end - rate // 4: end].copy()

        keys = held_note()
        player.type("prog 1 33")
        player.wait_for("channel 1: program 33", 10)
        time.sleep(0.2)  # the shell answers when it posts the change; the MIDI pump sends it at its next poll
        bass = held_note()
        assert np.max(np.abs(keys)) > SOUND and np.max(np.abs(bass)) > SOUND
        # offline the two programs' centroids at C4 are 0.43 octave apart (397 and 294 Hz)
        assert abs(np.log2(centroid(bass, rate) / centroid(keys, rate))) > 0.2, "prog did not change the sound"

        keyboard.send_message([0x90, 60, 100])
        keyboard.send_message([0xB0, 64, 127])  # pedal down: only panic stops it
        keyboard.send_message([0x80, 60, 0])
        time.sleep(0.4)
        assert capture.peak(capture.captured() - rate // 10, capture.captured()) > SOUND
        player.type("panic")
        player.wait_for("all notes off", 10)
        time.sleep(1.5)
        assert capture.peak(capture.captured() - rate // 10, capture.captured()) < SOUND
        player.type("quit")
        assert player.process.wait(timeout=30) == 0
    finally:
        close_all(player, keyboard, capture)


def test_live_output_of_the_loudest_valid_patch_is_limited_within_full_scale_and_reported(jack_server, tmp_path):  # noqa: F811
    patch = tmp_path / "loudest.json"
    save_patch(loudest_valid_patch(), patch)
    player = ShellPlayer(jack_server.env, "--client-name", "loudtest", "--midi-in", "none", instrument=patch)
    capture = keyboard = None
    try:
        player.wait_for("type help for commands", STARTUP_TIMEOUT_S)
        capture = Capture(jack_server.sample_rate)
        capture.connect("loudtest:")
        keyboard = jack_keyboard(jack_server.env, "wifm-loud-keys", "loudtest")
        start = capture.captured()
        for key in (127, 100, 64):
            keyboard.send_message([0x90, key, 127])
        time.sleep(0.5)
        heard = capture.buffer[:, start:capture.captured()]
        assert np.all(np.isfinite(heard)) and 0.99 < np.max(np.abs(heard)) <= 1.0
        player.type("status")
        status = player.wait_for("underflows since start", 10)
        assert re.search(r"output limited on \d+ samples \(peak before limiting \+\d+\.\d dBFS\)$", status), status
        player.type("quit")
        assert re.fullmatch(r"wifm play: output limited on \d+ samples \(peak before limiting \+\d+\.\d dBFS\)",
                            player.wait_for("wifm play: output limited", 30))
        assert player.process.wait(timeout=30) == 0
    finally:
        close_all(player, keyboard, capture)
