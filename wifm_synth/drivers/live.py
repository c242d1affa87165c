"""Live play: MIDI ports → engine → audio device (``wifm play``), and the device list (``wifm devices``).

Three threads and no locks: the audio thread runs only the compiled callback (engine/abi), the MIDI pump
thread is the event ring's single producer (midi_in), and the main thread loads the instrument, prints
status and notices, and waits for Ctrl-C / SIGTERM. On stop it takes over as the ring's producer (after
the pump has ended), releases every note, lets the releases ring briefly and closes the streams. If the
sound server dies instead, nothing is closed (libjack and PortAudio would block on the dead server's
clients): ``play`` raises ``AudioHostLost`` and the command leaves the process at once.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import threading
import time

from wifm_synth.drivers.alsa_quiet import silence_alsa_errors
from wifm_synth.drivers.audio_out import (
    AudioHostLost,
    EngineOutputStream,
    find_output_device,
    list_output_devices,
    use_client_name,
)
from wifm_synth.drivers.midi_in import (
    ALL_PORTS,
    CLIENT_NAME,
    NO_PORTS,
    OWN_PORT_NAME,
    POSTED_ANSWER_S,
    MidiInput,
    send_panic,
)
from wifm_synth.drivers.shell import PlayShell, start_line_reader
from wifm_synth.engine import Synth
from wifm_synth.engine.tables import compile_instrument
from wifm_synth.errors import DeviceError, InputError, WifmError
from wifm_synth.formats.bank_json import load_instrument
from wifm_synth.midi import STANDARD_A4_HZ
from wifm_synth.voice.patch import Patch

JACK_HOST_API = "JACK Audio Connection Kit"
JACK_MIDI_CLIENT_SUFFIX = "-midi"
STATUS_POLL_S = 0.1
RELEASE_RING_S = 0.5  # at most this long for releases to fade after stop
# The MIDI pump must get the GIL well within one period even if other Python threads are busy
# (the default switch interval is 5 ms, about two periods at 128 frames).
GIL_SWITCH_INTERVAL_S = 0.0005


def jack_is_running(devices: list[dict]) -> bool:
    """PortAudio only lists JACK devices while a JACK server is running."""
    return any(device["host_api"] == JACK_HOST_API for device in devices)


def open_midi_input(audio_host_api: str, synth: Synth, stream: EngineOutputStream, *, wanted: str,
                    client_name: str, verbose: bool) -> MidiInput:
    """JACK MIDI when the audio goes through JACK (one clock, one graph, one libjack), otherwise rtmidi's
    first back end (ALSA). Under JACK the MIDI client is ``NAME-midi``: the audio client holds the name
    (JACK gives each name to one client; the second would become ``NAME-01``). rtmidi is imported only
    for the other systems: its wheel links a libjack of its own (``rtmidi_in``)."""
    if audio_host_api == JACK_HOST_API:
        from wifm_synth.drivers.jack_midi_in import JackMidiInput

        return JackMidiInput(synth, stream, wanted=wanted, client_name=f"{client_name}{JACK_MIDI_CLIENT_SUFFIX}",
                             verbose=verbose)
    from wifm_synth.drivers.rtmidi_in import RtMidiInput, available_apis

    apis = available_apis()
    if not apis:
        raise DeviceError("no MIDI input system available (python-rtmidi has no usable back end)")
    return RtMidiInput(synth, stream, api=apis[0], wanted=wanted, client_name=client_name, verbose=verbose)


class LivePlayer:
    """An instrument playing live: engine + audio stream + MIDI input. A context manager.

    ``sample_rate`` None plays at the output device's default rate (under JACK, the server's rate).
    The engine has room to load another instrument while playing (``load_instrument``).
    """

    def __init__(self, instrument, *, midi_in: str = ALL_PORTS, audio_out: str | int | None = None,
                 period: int = 128, polyphony: int = 256, sample_rate: int | None = None,
                 client_name: str = CLIENT_NAME, verbose: bool = False, gain_db: float = 0.0,
                 a4_hz: float = STANDARD_A4_HZ):
        use_client_name(client_name)  # before PortAudio opens its JACK client
        device = find_output_device(audio_out)
        if sample_rate is None:
            sample_rate = round(device["default_sample_rate"])
        self.synth = Synth(instrument, sample_rate=sample_rate, polyphony=polyphony, gain_db=gain_db, a4_hz=a4_hz,
                           loadable=True)
        self.stream = EngineOutputStream(self.synth, device=device["index"], period=period)
        try:
            self.midi = open_midi_input(self.stream.device["host_api"], self.synth, self.stream, wanted=midi_in,
                                        client_name=client_name, verbose=verbose)
        except WifmError:
            self.stream.close()
            raise
        self._previous_switch_interval = sys.getswitchinterval()

    def start(self) -> LivePlayer:
        self.stream.start()
        try:
            self.midi.start()
        except BaseException:
            self.stream.close()
            raise
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        return self

    def status_line(self) -> str:
        stream = self.stream
        rate = stream.sample_rate
        event_ms = 1000 * stream.latency_frames / rate
        output_ms = 1000 * stream.output_latency_s
        ports = ", ".join(self.midi.connected_ports) or ("none" if self.midi.wanted == NO_PORTS else "none yet")
        return (f"playing on '{stream.device['name']}' ({stream.device['host_api']}): {rate} Hz, "
                f"period {stream.period} frames ({1000 * stream.period / rate:.2f} ms), "
                f"latency {event_ms + output_ms:.2f} ms (events {event_ms:.2f} + output {output_ms:.2f}); "
                f"MIDI in ({self.midi.system_name}): port {self.midi.client_name}:{OWN_PORT_NAME}, "
                f"connected {ports}")

    def notices(self) -> list[str]:
        return self.midi.notices() + self.synth.notices()

    def load_patch(self, row: int, patch: Patch) -> None:
        """Replace patch row ``row`` while playing: sounding notes go on, later notes play ``patch``.
        The MIDI pump posts it, being the event ring's only producer."""
        self.midi.post_patch_load(row, patch)

    def set_gain(self, gain_db: float) -> None:
        self.midi.post("gain", lambda synth, frame: synth.set_gain(gain_db, frame))

    def set_tuning(self, a4_hz: float) -> None:
        self.midi.post("tuning", lambda synth, frame: synth.set_tuning(a4_hz, frame))

    def load_instrument(self, instrument) -> str | None:
        """Swap in ``instrument`` (a Patch or Bank) while playing, without a gap: it is compiled here, on
        the calling thread, and the MIDI pump hands it to the engine. Returns why it was refused, or None."""
        compiled = compile_instrument(instrument)
        outcome: queue.SimpleQueue[str | None] = queue.SimpleQueue()

        def load(synth: Synth, frame: int) -> None:
            try:
                synth.load_instrument(compiled, frame)
            except InputError as refusal:
                outcome.put(str(refusal))
            else:
                outcome.put(None)

        self.midi.post("load", load)
        try:
            return outcome.get(timeout=POSTED_ANSWER_S)
        except queue.Empty:
            return "the MIDI thread did not take it (is it stuck?)"

    def close(self) -> None:
        """Stop MIDI, release every note, let the releases ring (up to RELEASE_RING_S), close the audio.

        After the sound server died only the stream is forgotten: the MIDI pump (a daemon thread) and
        its ports are left alone, since closing JACK MIDI clients of a dead server can block as well.
        """
        if self.stream.lost:
            self.stream.close()
            sys.setswitchinterval(self._previous_switch_interval)
            return
        try:
            self.midi.stop()  # from here on this thread is the ring's only producer
            if self.stream.active:
                send_panic(self.synth, self.stream.event_frame(self.stream.time()))
                deadline = time.monotonic() + RELEASE_RING_S
                while self.synth.active_voices and time.monotonic() < deadline:
                    time.sleep(0.01)
        finally:
            self.stream.close()
            sys.setswitchinterval(self._previous_switch_interval)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum, frame):
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def play_command(instrument: str | os.PathLike, midi_in: str = ALL_PORTS, audio_out: str | int | None = None,
                 period: int = 128, polyphony: int = 256, sample_rate: int | None = None, *,
                 client_name: str = CLIENT_NAME, verbose: bool = False, quiet: bool = False,
                 shell: bool = False, gain_db: float = 0.0, a4_hz: float = STANDARD_A4_HZ,
                 strict_syx: bool = False) -> int:
    """``wifm play``: play a patch or bank from MIDI input until Ctrl-C or SIGTERM; 0 on a clean stop.

    Raises AudioHostLost if the sound server goes away; the caller should then leave with ``os._exit``.
    """
    silence_alsa_errors()
    stop = threading.Event()
    _stop_on_signals(stop)  # first: a stop request while loading must still end cleanly
    loaded = load_instrument(instrument, strict_syx=strict_syx)
    with LivePlayer(loaded, midi_in=midi_in, audio_out=audio_out, period=period, polyphony=polyphony,
                    sample_rate=sample_rate, client_name=client_name, verbose=verbose, gain_db=gain_db,
                    a4_hz=a4_hz) as player:
        if not quiet:
            print(f"wifm play: {os.fspath(instrument)} {player.status_line()}", flush=True)
            print(f"wifm play: {drum_channel_line(loaded)}", flush=True)
        lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        commands = PlayShell(player, loaded, write=lambda text: print(text, flush=True),
                             describe_instrument=drum_channel_line) if shell else None
        if commands is not None:
            print("wifm play: type help for commands", flush=True)
            start_line_reader(lines)
        while not stop.wait(STATUS_POLL_S):
            for notice in player.notices():
                if not quiet:
                    print(f"wifm play: {notice}", flush=True)
            while commands is not None and not lines.empty():
                line = lines.get()
                if line is None or not commands.handle(line):
                    stop.set()
                    break
            if player.stream.lost:
                raise AudioHostLost(f"audio output '{player.stream.device['name']}' stopped (sound server gone?)")
    if not quiet:
        limiting = player.synth.limiting_report()
        if limiting:
            print(f"wifm play: {limiting}", flush=True)
        print("wifm play: stopped", flush=True)
    return 0


def drum_channel_line(instrument) -> str:
    """What MIDI channel 10 plays: a player expecting General MIDI drums there should know."""
    if isinstance(instrument, Patch):
        return f"channel 10 plays the patch '{instrument.name}' like every channel"
    if instrument.drums is None:
        return f"channel 10 (GM drums) is silent: bank '{instrument.name}' has no drum program"
    bank, program = instrument.drums
    return f"channel 10 (GM drums) plays bank {bank} program {program}"


def _midi_inputs(jack_running: bool) -> list[dict]:
    inputs = []
    if jack_running:  # probing without a server would only make libjack complain that none runs
        from wifm_synth.drivers.jack_midi_in import SYSTEM_NAME, list_jack_midi_sources

        inputs += [{"api": SYSTEM_NAME, "name": name} for name in list_jack_midi_sources()]
    from wifm_synth.drivers.rtmidi_in import api_name, available_apis, list_input_ports

    for api in available_apis():
        inputs += [{"api": api_name(api), "name": name} for name in list_input_ports(api)]
    return inputs


def devices_command(as_json: bool = False) -> int:
    """``wifm devices``: audio outputs (PortAudio) and MIDI inputs (JACK, and every rtmidi back end)."""
    silence_alsa_errors()
    try:
        outputs = list_output_devices()
        audio_problem = None
    except WifmError as exc:
        outputs, audio_problem = [], str(exc)
    inputs = _midi_inputs(jack_is_running(outputs))
    if as_json:
        print(json.dumps({"audio_outputs": outputs, "midi_inputs": inputs, "audio_error": audio_problem}, indent=2))
        return 0
    print("Audio outputs (PortAudio):")
    if audio_problem:
        print(f"  {audio_problem}")
    elif not outputs:
        print("  none (is a sound server running?)")
    for device in outputs:
        marker = "*" if device["default"] else " "
        print(f"  {marker} {device['index']:>2}  {device['name']}  [{device['host_api']}, {device['channels']} ch, "
              f"{device['default_sample_rate']:.0f} Hz]")
    print("MIDI inputs:")
    if not inputs:
        print("  none")
    for port in inputs:
        print(f"    [{port['api']}]  {port['name']}")
    return 0
