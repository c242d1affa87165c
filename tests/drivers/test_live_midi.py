"""MIDI input pieces that need no MIDI system: arrival dating, port matching, event forwarding,
and the player's errors when there is no audio device."""

import json
import os
import subprocess
import sys
import time

import pytest
import rtmidi

from wifm_synth.drivers import rtmidi_in
from wifm_synth.drivers.audio_out import nearest_on_wrapping_clock
from wifm_synth.drivers.jack_midi_in import frames_before
from wifm_synth.drivers.midi_in import ALL_PORTS, port_matches, send_panic
from wifm_synth.drivers.rtmidi_in import PolledPort, RtMidiInput, estimate_arrival
from wifm_synth.formats.patch_json import save_patch
from wifm_synth.voice.patch import Operator, Patch


def test_first_message_is_dated_at_the_earliest_possible_time():
    assert estimate_arrival(None, 0.0, last_poll=10.0, now=10.002) == 10.0


def test_following_messages_use_rtmidi_deltas():
    assert estimate_arrival(10.0, 0.0005, last_poll=10.0002, now=10.002) == pytest.approx(10.0005)


def test_estimates_stay_between_the_polls():
    # An early estimate is pulled up to the previous poll, a late one down to now.
    assert estimate_arrival(10.0, 0.5, last_poll=10.7, now=10.701) == 10.7
    assert estimate_arrival(10.0, 0.9, last_poll=10.7, now=10.701) == 10.701


def test_early_anchor_is_corrected_by_later_polls():
    # True arrivals every 0.1 s at x.x0003; polls at 1 ms; the first estimate is 0.9 ms early.
    arrival = None
    for index in range(5):
        true_arrival = 1.0 + 0.1 * index + 0.0003
        last_poll, now = 1.0 + 0.1 * index - 0.0006, 1.0 + 0.1 * index + 0.0004
        arrival = estimate_arrival(arrival, 0.0 if arrival is None else 0.1, last_poll, now)
        assert last_poll <= arrival <= true_arrival + 1e-12


def test_jack_frames_are_compared_across_the_uint32_wrap():
    assert frames_before(1000, 872) == 128
    assert frames_before(872, 1000) == -128  # an event stamped later in the cycle than the clock's estimate
    assert frames_before(5, 0xFFFFFFFF - 122) == 128  # the clock wrapped after the event


@pytest.mark.parametrize(("port", "wanted", "expected"), [
    ("a2j:Keystation 49 [20] (capture): Keystation 49 MIDI 1", "keystation", True),
    ("Midi Through:Midi Through Port-0 14:0", ALL_PORTS, True),
    ("system:midi_capture_1", "keystation", False),
])
def test_port_matching_is_a_case_insensitive_substring(port, wanted, expected):
    assert port_matches(port, wanted) is expected


class RecordingSink:
    def __init__(self):
        self.events = []

    def send(self, frame, status, data1, data2):
        self.events.append((frame, status, data1, data2))


class FixedClock:
    """Stream time t plays at frame 1000·t."""

    def event_frame(self, arrival_time):
        return round(arrival_time * 1000)


class QueuedPort:
    """Stands in for rtmidi.MidiIn: hands out queued (message, delta) pairs."""

    def __init__(self, messages):
        self.messages = list(messages)

    def get_message(self):
        return self.messages.pop(0) if self.messages else None


def forward(messages, last_poll=1.0, now=1.01):
    sink = RecordingSink()
    PolledPort("keys", QueuedPort(messages)).forward_pending(sink, FixedClock(), last_poll, now)
    return sink.events


def test_channel_messages_are_forwarded_with_their_arrival_frames():
    events = forward([([0x90, 60, 100], 0.0), ([0xC1, 5], 0.002), ([0xB0, 64, 127], 0.003)])
    assert events == [(1000, 0x90, 60, 100), (1002, 0xC1, 5, 0), (1005, 0xB0, 64, 127)]


def test_sysex_and_system_messages_are_accepted_but_not_forwarded():
    events = forward([([0xF0, 0x43, 0x00, 0x09, 0xF7], 0.0), ([0xFE], 0.001), ([0x80, 60, 0], 0.001)])
    assert events == [(1002, 0x80, 60, 0)]


def test_panic_resets_controllers_and_releases_every_channel():
    sink = RecordingSink()
    send_panic(sink, 480)
    assert {(frame, status & 0xF0, data1, data2) for frame, status, data1, data2 in sink.events} == {
        (480, 0xB0, 121, 0), (480, 0xB0, 123, 0)}
    assert sorted({status & 0x0F for _, status, _, _ in sink.events}) == list(range(16))
    # Reset (pedals up, bend centred) before all-notes-off, or sustained notes would survive it.
    assert [data1 for _, status, data1, _ in sink.events if status == 0xB3] == [121, 123]


class NoPorts:
    """Stands in for rtmidi.MidiIn: a MIDI system without ports."""

    def __init__(self, *args, **kwargs):
        pass

    def get_ports(self):
        return []

    def ignore_types(self, **kinds):
        pass

    def open_virtual_port(self, name):  # the player's own input port
        pass

    def get_message(self):
        return None

    def delete(self):
        pass


class FlakyPortLister(NoPorts):
    """Stands in for rtmidi.MidiIn: listing ports fails on calls 2 and 3 (call 1 is the player's start)."""

    calls = 0

    def get_ports(self):
        FlakyPortLister.calls += 1
        if FlakyPortLister.calls in (2, 3):
            raise rtmidi.SystemError("MidiInAlsa::getPortCount: error")
        return []


class StoppedClock(FixedClock):
    def time(self):
        return 0.0


def test_a_failing_port_scan_is_reported_once_and_the_pump_keeps_running(monkeypatch):
    monkeypatch.setattr(FlakyPortLister, "calls", 0)
    monkeypatch.setattr(rtmidi_in.rtmidi, "MidiIn", FlakyPortLister)
    monkeypatch.setattr("wifm_synth.drivers.midi_in.SCAN_INTERVAL_S", 0.01)
    midi = RtMidiInput(RecordingSink(), StoppedClock(), api=0).start()
    try:
        deadline = time.monotonic() + 10
        while FlakyPortLister.calls < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert midi._thread.is_alive()
        failures = [notice for notice in midi.notices() if "getPortCount" in notice]
    finally:
        midi.stop()
    assert FlakyPortLister.calls >= 5, "the pump stopped scanning after the error"
    assert failures == ["MIDI in: SystemError: MidiInAlsa::getPortCount: error; retrying"]


def test_patch_loads_from_another_thread_are_posted_by_the_pump(monkeypatch):
    from wifm_synth.engine import Synth
    from wifm_synth.engine.layout import ENGINE_PATCHES_LOADED

    monkeypatch.setattr(rtmidi_in.rtmidi, "MidiIn", NoPorts)
    synth = Synth(Patch(operators=[Operator()]), 48000, polyphony=4)
    midi = RtMidiInput(synth, StoppedClock(), api=0)
    loaded = Patch(operators=[Operator(level=0.2, modulators=[1]), Operator(carrier=False)])
    midi.post_patch_load(0, loaded)
    midi.post_patch_load(7, loaded)  # no such row: a notice, the pump goes on
    assert synth.queued_events == 0  # nothing reaches the ring before the pump polls
    midi._poll_messages()
    synth.render(64)
    assert synth.state.engine[ENGINE_PATCHES_LOADED] == 1 and synth.compiled.patches[0] == loaded
    assert [notice for notice in midi.notices() if notice.startswith("patch load")] == [
        "patch load: patch row: must be an integer 0..0, got 7"]


def run_cli(arguments, env, timeout=120):
    return subprocess.run([sys.executable, "-m", "wifm_synth.cli", *arguments], capture_output=True, text=True,
                          env=env, timeout=timeout, check=False)


def test_play_without_an_audio_device_fails_with_one_line(tmp_path):
    # A JACK server name nobody runs, and (in CI) no sound card: PortAudio finds no output.
    env = {**os.environ, "JACK_DEFAULT_SERVER": f"wifm-absent-{os.getpid()}", "JACK_NO_START_SERVER": "1"}
    listing = run_cli(["devices", "--json"], env)
    assert listing.returncode == 0, listing.stderr
    if json.loads(listing.stdout)["audio_outputs"]:
        pytest.skip("this machine has an audio output device")
    patch = tmp_path / "p.json"
    save_patch(Patch(operators=[Operator()]), patch)
    result = run_cli(["play", str(patch)], env)
    assert result.returncode == 2
    assert "wifm: error: no audio output device (is a sound server running?)" in result.stderr.splitlines()


def test_an_exact_jack_frame_is_placed_next_to_the_engine_frame_it_belongs_near():
    """JACK's frame clock wraps at 2**32: of the candidates 2**32 apart, the one nearest the engine's "now"."""
    assert nearest_on_wrapping_clock(5000, near=4000) == 5000
    assert nearest_on_wrapping_clock(5000 + (1 << 32), near=4000) == 5000  # the origin wrapped, the event not
    assert nearest_on_wrapping_clock(5000 - (1 << 32), near=4000) == 5000  # the event wrapped, the origin not
    assert nearest_on_wrapping_clock(3000, near=(1 << 40) + 4000) == (1 << 40) + 3000
