"""MIDI input through python-rtmidi (ALSA and rtmidi's other back ends, JACK aside): ``RtMidiInput``.

The pump (``midi_in.MidiInput``) polls every rtmidi input rather than using rtmidi callbacks, which
would run Python in the MIDI system's thread. Polled messages are back-dated to their arrival with
rtmidi's own inter-message delta times, so the poll interval adds no timing jitter. Each connected
source gets an rtmidi input of its own, beside the own port every player has from start-up.

Under JACK the player does not use rtmidi (``jack_midi_in``): the python-rtmidi wheel links a libjack
of its own, and two JACK client libraries in one process talking to one server is what crashed the
player in the soak (docs/RESULTS.md). This module is therefore imported only for other MIDI systems.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import rtmidi

from wifm_synth.drivers.midi_in import (
    ALL_PORTS,
    CLIENT_NAME,
    OWN_PORT_NAME,
    EventSink,
    MidiInput,
    StreamClock,
    describe_message,
    forward_message,
)
from wifm_synth.errors import DeviceError

# rtmidi's default input queue holds 100 messages; a dense chord with controllers can exceed that
# between two polls when the machine is busy.
QUEUE_SIZE = 4096


def api_name(api: int) -> str:
    return rtmidi.get_api_display_name(api)


def available_apis() -> list[int]:
    """rtmidi back ends compiled in, without the dummy one and without JACK (``jack_midi_in``)."""
    return [api for api in rtmidi.get_compiled_api() if api not in (rtmidi.API_RTMIDI_DUMMY, rtmidi.API_UNIX_JACK)]


def list_input_ports(api: int) -> list[str]:
    """Names of the MIDI sources visible through ``api`` (empty when that MIDI system is not running)."""
    try:
        scanner = rtmidi.MidiIn(api, CLIENT_NAME)
    except rtmidi.RtMidiError:
        return []
    try:
        return list(scanner.get_ports())
    finally:
        scanner.delete()


def estimate_arrival(previous_arrival: float | None, delta_s: float, last_poll: float, now: float) -> float:
    """Stream time at which a message arrived, from rtmidi's delta to the port's previous message.

    The message arrived after the previous poll (``last_poll``) and before this one (``now``). A
    first message is dated at the earliest possible time: an early estimate is corrected by the lower
    bound of later polls, a late one never would be (every later bound lies above it). The clamp also
    stops rtmidi's clock and the stream's from drifting apart.
    """
    estimate = last_poll if previous_arrival is None else previous_arrival + delta_s
    return min(max(estimate, last_poll), now)


@dataclass
class PolledPort:
    """One open MIDI source: its rtmidi input and the estimated arrival of its latest message."""

    name: str
    midi_in: rtmidi.MidiIn
    previous_arrival: float | None = None

    def forward_pending(self, sink: EventSink, clock: StreamClock, last_poll: float, now: float,
                        monitor: Callable[[str], None] | None = None) -> list[str]:
        """Send every message rtmidi queued since ``last_poll`` to ``sink``, each at its own frame;
        ``monitor`` (``wifm play -v``) gets a description of each. Returns the notices of messages that
        could not be used."""
        notices = []
        while (item := self.midi_in.get_message()) is not None:
            message, delta_s = item
            self.previous_arrival = estimate_arrival(self.previous_arrival, delta_s, last_poll, now)
            notice = forward_message(sink, message, clock.event_frame(self.previous_arrival))
            if notice is not None:
                notices.append(notice)
            if monitor is not None:
                monitor(f"MIDI {self.name}: {describe_message(message)}")
        return notices


class RtMidiInput(MidiInput):
    """``MidiInput`` through the rtmidi back end ``api`` (see ``available_apis``)."""

    def __init__(self, sink: EventSink, clock: StreamClock, *, api: int, wanted: str = ALL_PORTS,
                 client_name: str = CLIENT_NAME, verbose: bool = False):
        super().__init__(sink, clock, wanted=wanted, client_name=client_name, verbose=verbose)
        self.api = api
        self.system_name = api_name(api)
        try:
            # the own port exists from start-up, so that patchbays can connect to it before any source; its
            # client also lists the sources, so the player's first ALSA client is exactly client_name
            self._own_port = PolledPort(f"{client_name}:{OWN_PORT_NAME}", self._new_input())
            self._own_port.midi_in.open_virtual_port(OWN_PORT_NAME)
        except rtmidi.RtMidiError as exc:
            raise DeviceError(f"cannot open MIDI input ({self.system_name}): {exc}") from exc

    def _pollers(self) -> list[PolledPort]:
        return [self._own_port, *self._ports.values()]

    def _source_names(self) -> list[str]:
        return self._own_port.midi_in.get_ports()

    def _new_input(self) -> rtmidi.MidiIn:
        """An rtmidi input of this player's client that passes SysEx (voice loads) and drops clock ticks and
        active sensing."""
        midi_in = rtmidi.MidiIn(self.api, self.client_name, queue_size_limit=QUEUE_SIZE)
        midi_in.ignore_types(sysex=False, timing=True, active_sense=True)
        return midi_in

    def _connect(self, index: int, name: str) -> PolledPort | None:
        midi_in = self._new_input()
        try:
            midi_in.open_port(index, "in")
        except rtmidi.RtMidiError as exc:  # the port vanished between listing and opening
            midi_in.delete()
            self._notices.put(f"MIDI in: cannot connect '{name}': {exc}")
            return None
        return PolledPort(name, midi_in)

    def _disconnect(self, name: str, connection: PolledPort) -> None:
        connection.midi_in.delete()

    def _close(self) -> None:
        for port in self._ports.values():
            port.midi_in.delete()
        self._own_port.midi_in.delete()
