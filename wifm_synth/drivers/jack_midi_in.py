"""MIDI input under JACK: one JACK client (JACK-Client, on the system libjack) whose compiled callback
hands every event over with its exact frame — ``JackMidiInput``.

The client is ``NAME-midi`` with one MIDI input port, ``midi_in``, from start-up; the scan connects the
matching sources to that port (JACK merges them, in frame order) and ``--midi-in none`` leaves the
routing to the user. The process callback is machine code (``jack_ring``), so no Python runs in
JACK's thread. Under JACK the player loads no other JACK client library: PortAudio's JACK host and
JACK-Client both use the system's libjack, where python-rtmidi's wheel would bring a second one.

Timing: an event's JACK frame F is exact (the cycle's first frame plus the event's offset), and so is the
engine's period: its callback reads its cycle's first frame with ``jack_last_frame_time`` (through the
address of this client's libjack, on this client: ``EngineOutputStream.follow_jack_cycles``) and
publishes the engine frame of JACK frame 0. The pump plays each event at that origin plus F plus one
period, so the events of a cycle keep their distances and every event has one latency, however late the
engine's callback or the pump ran, as long as the pump hands the event over before the next period is
rendered. Until the first period is dated, or when the stream's period is not JACK's (PortAudio then
buffers), an event is placed by its distance from JACK's "now" on PortAudio's stream clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import jack

from wifm_synth.drivers.jack_ring import (
    FRAME_MASK,
    TABLE_LAST_FRAME_TIME,
    EventRing,
    jack_midi_process_callback,
)
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

SYSTEM_NAME = "Jack"  # as rtmidi names JACK MIDI: the name `wifm devices` and the notices have always shown
_HALF_FRAME_RANGE = 1 << 31


def cffi_address(pointer) -> int:
    # JACK-Client exposes no raw pointers; its cffi handle (``_ffi``, ``_ptr``) is what it uses itself.
    return int(jack._ffi.cast("uintptr_t", pointer))


def list_jack_midi_sources(client_name: str = CLIENT_NAME) -> list[str]:
    """JACK MIDI output ports (the sources a player can connect); empty when no JACK server runs."""
    try:
        client = jack.Client(client_name, no_start_server=True)
    except jack.JackError:
        return []
    try:
        return [port.name for port in client.get_ports(is_midi=True, is_output=True)]
    finally:
        client.close()


def frames_before(now_frame: int, frame: int) -> int:
    """How many frames ``frame`` lies before ``now_frame`` on JACK's wrapping uint32 clock (negative: after)."""
    return ((now_frame - frame + _HALF_FRAME_RANGE) & FRAME_MASK) - _HALF_FRAME_RANGE


class JackStreamClock(StreamClock, Protocol):
    """The audio stream's clock under JACK: it can date its periods by JACK's cycles (``audio_out``)."""

    period: int

    def follow_jack_cycles(self, last_frame_time_address: int, client_address: int) -> None: ...

    def jack_event_frame(self, jack_frame: int, near: int) -> int | None: ...


class JackReader:
    """The own port's events, out of the callback's ring, to the sink at their frames."""

    def __init__(self, name: str, client: jack.Client, ring: EventRing, exact: bool):
        self.name = name
        self._client = client
        self._ring = ring
        self._exact = exact  # the engine's periods are dated by JACK's cycles
        self._dropped = 0

    def forward_pending(self, sink: EventSink, clock: JackStreamClock, last_poll: float, now: float,
                        monitor: Callable[[str], None] | None = None) -> list[str]:
        """Send every event the callback queued to ``sink`` at its own frame; ``monitor`` (``-v``) gets a
        description of each. Returns the notices of events that could not be used or were dropped."""
        notices = []
        jack_now = self._client.frame_time  # read back to back with the stream clock: one time base
        now_frame = clock.event_frame(clock.time())
        while (item := self._ring.take()) is not None:
            frame, message = item
            exact = clock.jack_event_frame(frame, now_frame) if self._exact else None
            at = exact if exact is not None else max(0, now_frame - frames_before(jack_now, frame))
            notice = forward_message(sink, message, at)
            if notice is not None:
                notices.append(notice)
            if monitor is not None:
                monitor(f"MIDI {self.name}: {describe_message(message)}")
        dropped = self._ring.dropped
        if dropped != self._dropped:
            notices.append(f"{dropped - self._dropped} events dropped (the MIDI thread fell behind)")
            self._dropped = dropped
        return notices


class JackMidiInput(MidiInput):
    """``MidiInput`` under JACK: client ``client_name`` with the input port ``midi_in``."""

    system_name = SYSTEM_NAME

    def __init__(self, sink: EventSink, clock: JackStreamClock, *, wanted: str = ALL_PORTS,
                 client_name: str = CLIENT_NAME, verbose: bool = False):
        super().__init__(sink, clock, wanted=wanted, client_name=client_name, verbose=verbose)
        try:
            self._client = jack.Client(client_name, no_start_server=True)
        except jack.JackError as exc:
            raise DeviceError(f"cannot open MIDI input ({SYSTEM_NAME}): {exc}") from exc
        try:
            self._port = self._client.midi_inports.register(OWN_PORT_NAME)
            self._ring = EventRing(cffi_address(self._client._ptr), cffi_address(self._port._ptr), jack._libname)
            callback = jack_midi_process_callback()
            status = jack._lib.jack_set_process_callback(
                self._client._ptr, jack._ffi.cast("JackProcessCallback", callback.address),
                jack._ffi.cast("void *", self._ring.table.ctypes.data))
            if status != 0:
                raise jack.JackError(f"jack_set_process_callback failed ({status})")
            self._client.activate()
        except jack.JackError as exc:
            self._client.close()
            raise DeviceError(f"cannot open MIDI input ({SYSTEM_NAME}): {exc}") from exc
        self.client_name = self._client.name  # what JACK named it
        exact = self._client.blocksize == clock.period  # one engine period per JACK cycle
        if exact:
            clock.follow_jack_cycles(int(self._ring.table[TABLE_LAST_FRAME_TIME]), cffi_address(self._client._ptr))
        self._reader = JackReader(self._port.name, self._client, self._ring, exact)

    def _pollers(self) -> list[JackReader]:
        return [self._reader]

    def _source_names(self) -> list[str]:
        return [port.name for port in self._client.get_ports(is_midi=True, is_output=True)]

    def _connect(self, index: int, name: str) -> str | None:
        try:
            if self._port.name not in [port.name for port in self._client.get_all_connections(name)]:
                self._client.connect(name, self._port)
        except jack.JackError as exc:  # the port vanished between listing and connecting
            self._notices.put(f"MIDI in: cannot connect '{name}': {exc}")
            return None
        return name

    def _disconnect(self, name: str, connection: str) -> None:
        """Nothing to release: JACK removed the connection with the port."""

    def _close(self) -> None:
        self._client.deactivate()  # the callback has returned for good: the ring may go
        self._client.close()
