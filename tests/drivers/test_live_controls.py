"""The player's controls live, on a private JACK dummy server, through the shell on a pseudo-terminal and a
JACK MIDI keyboard: ``gain -6`` lowers the captured level by 6 dB, ``tuning 442`` raises the pitch by
7.85 cents, aftertouch (channel and key) adds vibrato, the soft pedal lowers the level, ``load`` swaps
in a bank while a note sounds (the note rings on at its level and pitch, and the server's log blames
no xrun on the player's audio client that the idle clients do not share), and a GM System On resets the program. (The capture is a Python JACK client: on a busy
machine it misses cycles, which the measurements are made robust to.)"""

import time

import numpy as np
import pytest
from jack_server import running_jack_server, xruns_in_log
from test_live_jack import SOUND, STARTUP_TIMEOUT_S, Capture
from test_live_shell import BANK, ShellPlayer, close_all, jack_keyboard

from wifm_synth.formats.patch_json import save_patch
from wifm_synth.midi import GM_SYSTEM_ON
from wifm_synth.voice.patch import Envelope, Operator, Patch

rtmidi = pytest.importorskip("rtmidi")
pytest.importorskip("jack")

pytestmark = pytest.mark.jack

SETTLE_S = 0.3  # a shell command reaches the engine within a poll and a period; envelopes settle
SEGMENT_S = 0.3


def steady_sine() -> Patch:
    """A sine at a steady level while the key is down (the LFO's default rate, no vibrato of its own)."""
    return Patch(operators=[Operator(level=0.3, envelope=Envelope([(0.002, 0.0)], 0.05))])


def rms_db(audio: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(audio.astype(np.float64) ** 2)))


def line_hz(audio: np.ndarray, rate: int) -> float:
    """The strongest line's frequency: the median over 0.1 s windows (a window that spans a cycle the
    capture client missed is off, the median is not) of a zero-padded spectrum's peak, refined by a
    parabola through the log magnitudes around it."""
    window, padded = rate // 10, 16 * (rate // 10)
    estimates = []
    for start in range(0, len(audio) - window + 1, window // 2):
        magnitude = np.log(np.abs(np.fft.rfft(audio[start:start + window] * np.hanning(window), padded)) + 1e-30)
        peak = int(np.argmax(magnitude))
        left, centre, right = magnitude[peak - 1: peak + 2]
        estimates.append((peak + 0.5 * (left - right) / (left - 2 * centre + right)) * rate / padded)
    return float(np.median(estimates))


def energy_near(audio: np.ndarray, rate: int, hz: float, width_hz: float = 4.0) -> float:
    """Fraction of the energy within ``width_hz`` of ``hz``: near 1 for a steady tone, low with vibrato."""
    power = np.abs(np.fft.rfft(audio * np.hanning(len(audio)))) ** 2
    frequencies = np.fft.rfftfreq(len(audio), 1 / rate)
    return float(power[np.abs(frequencies - hz) <= width_hz].sum() / power.sum())


def harmonic_profile(audio: np.ndarray, rate: int, harmonics: int = 8) -> np.ndarray:
    """Levels (dB below the strongest) of the first harmonics of the note's line: its timbre."""
    f0 = line_hz(audio, rate)
    magnitude = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    frequencies = np.fft.rfftfreq(len(audio), 1 / rate)
    levels = np.array([magnitude[np.abs(frequencies - k * f0) <= 4.0].max() for k in range(1, harmonics + 1)])
    return 20 * np.log10(levels / levels.max() + 1e-6)


def test_gain_tuning_aftertouch_soft_pedal_load_and_reset(tmp_path):
    log_path = tmp_path / "jackd.log"
    with open(log_path, "w") as log, running_jack_server(log=log, realtime=True) as server:
        play_the_controls(tmp_path, server, log_path)


def play_the_controls(tmp_path, jack_server, log_path):
    rate = jack_server.sample_rate
    patch = tmp_path / "sine.json"
    save_patch(steady_sine(), patch)
    player = ShellPlayer(jack_server.env, "--client-name", "controls", "--midi-in", "none", "-v",
                         instrument=patch)
    capture = keyboard = None
    try:
        player.wait_for("type help for commands", STARTUP_TIMEOUT_S)
        capture = Capture(rate)
        capture.connect("controls:")
        keyboard = jack_keyboard(jack_server.env, "wifm-controls-keys", "controls")

        marks = []

        def mark() -> None:
            """Now, on JACK's clock: what follows is measured from here (the graph may lag the wall clock)."""
            marks.append(capture.client.frame_time - capture.start_frame)

        def segment(settle_s: float = SETTLE_S) -> np.ndarray:
            """SEGMENT_S of the left channel, ``settle_s`` after the latest mark, once it has been captured."""
            start = marks[-1] + round(settle_s * rate)
            end = start + round(SEGMENT_S * rate)
            deadline = time.monotonic() + 30
            while capture.captured() < end and time.monotonic() < deadline:
                time.sleep(0.05)
            assert capture.captured() >= end, "the JACK graph stopped"
            return capture.buffer[0, start:end].astype(np.float64)

        def command(line: str, answer: str) -> None:
            player.type(line)
            player.wait_for(answer, 10)
            mark()  # the answer comes once the command is posted (a busy machine may delay the shell)

        def send(*messages) -> None:
            mark()
            for message in messages:
                keyboard.send_message(message)

        send([0x90, 69, 100])
        plain = segment()
        assert np.max(np.abs(plain)) > SOUND
        command("gain -6", "master gain -6.0 dB")
        quieter = segment()
        assert rms_db(quieter) - rms_db(plain) == pytest.approx(-6.0, abs=0.5)
        command("tuning 442", "tuning A4 = 442 Hz (+7.85 cents)")
        tuned = segment()
        cents = 1200 * np.log2(line_hz(tuned, rate) / line_hz(plain, rate))
        assert cents == pytest.approx(1200 * np.log2(442 / 440), abs=0.5)
        assert energy_near(tuned, rate, 442.0) > 0.9
        for pressure_on, pressure_off in (([0xD0, 127], [0xD0, 0]), ([0xA0, 69, 127], [0xA0, 69, 0])):
            send(pressure_on)  # channel, then polyphonic aftertouch: vibrato
            assert energy_near(segment(), rate, 442.0) < 0.5
            send(pressure_off)
        send([0x80, 69, 0], [0xB0, 67, 127], [0x90, 69, 100])  # soft pedal down, then strike again
        soft = segment()
        assert rms_db(soft) - rms_db(tuned) == pytest.approx(-4.0, abs=0.5)

        log_before_load = log_path.read_text()
        command(f"load {BANK}", "loaded")
        sounding = segment()  # the held note rings on through the load, unchanged
        assert rms_db(sounding) == pytest.approx(rms_db(soft), abs=0.5)
        assert line_hz(sounding, rate) == pytest.approx(line_hz(soft, rate), abs=0.05)
        # On a shared, busy machine a stall makes every client late in the same cycle, the idle ones too.
        # An xrun of the audio client's own (the engine's callback, which the load must never hold up)
        # is one the idle clients do not share. (The MIDI client is rtmidi's, starved with the process.)
        xruns = xruns_in_log(log_path.read_text()[len(log_before_load):])["blamed_clients"]
        idle = max(xruns.get("wifm-controls-keys", 0), xruns.get("wifm-test-capture", 0))
        assert xruns.get("controls", 0) <= idle, f"the player's audio was late for JACK during the load: {xruns}"
        send([0x80, 69, 0], [0xB0, 67, 0])

        def held_note() -> np.ndarray:
            send([0x90, 60, 100])
            note = segment(0.05)
            send([0x80, 60, 0])
            segment()  # its release dies away
            return note

        keys = held_note()  # the bank's program 0 now plays
        assert abs(line_hz(keys, rate) - line_hz(tuned, rate)) > 20, "load did not change the sound"
        command("prog 1 33", "channel 1: program 33")
        bass = held_note()
        send(list(GM_SYSTEM_ON))
        player.wait_for("F0 7E 7F 09 01 F7", 10)  # -v shows it arrived
        reset = held_note()
        distance = {name: np.sqrt(np.mean((harmonic_profile(note, rate) - harmonic_profile(reset, rate)) ** 2))
                    for name, note in (("keys", keys), ("bass", bass))}
        assert np.sqrt(np.mean((harmonic_profile(keys, rate) - harmonic_profile(bass, rate)) ** 2)) > 3.0
        assert distance["keys"] < distance["bass"] / 2, f"GM System On did not return channel 1 to program 0: {distance}"
        player.type("quit")
        assert player.process.wait(timeout=30) == 0
    finally:
        close_all(player, keyboard, capture)
