"""MIDI input under JACK: one JACK client (JACK-Client, on the system libjack) whose compiled callback
hands every event over with its exact frame — ``JackMidiInput``.

The client is ``NAME-midi`` with one MIDI input port, ``midi_in``, from start-up; the scan connects the
matching sources to that port (JACK merges them, in frame order) and ``--midi-in none`` leaves the
routing to the user. The process callback is machine code (``jack_ring``), so no Python runs in
JACK's thread. Under JACK the player loads no other JACK client library: PortAudio's JACK host and
JACK-Client both use the system's libjack, where python-rtmidi's wheel would bring a second one.

Timing: an event's JACK frame F is exact (the cycle's first frame plus the event's offset). Once per
poll the pump reads the JACK clock and the stream clock back to back (under PortAudio's JACK host the
stream clock is JACK's frame clock over the rate, offset by a constant) and turns "now" into an engine
frame; each event is played ``now_jack − F`` frames before that frame, so the events of a cycle keep
their distances to the frame and reach the engine one period later. PortAudio dates each period with
JACK's estimate of "now" when the engine's callback runs, some frames after the cycle began on a busy
machine, varying from period to period; ``LatestPeriodGrid`` keeps the most punctual recent reading.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jack

from wifm_synth.drivers.jack_ring import (
    FRAME_MASK,
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


def _address(pointer) -> int:
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


class LatestPeriodGrid:
    """The engine frame of stream time 0 (plus the event latency), as the most punctual recent period says.

    The engine's callback measures it each period from PortAudio's "now", which is late by however long
    after the cycle's start the callback ran: a late reading places events early, and an event placed
    before the next period's first frame is played at that frame, late. The largest value of the last
    one to two seconds is the most punctual reading. A callback is never late by a period without an
    xrun, so a reading more than a period below it is a real step — the engine missed cycles and now
    renders behind JACK's clock — and starts the window again; keeping the old value would delay events
    by the cycles missed.
    """

    WINDOW_S = 1.0

    def __init__(self):
        self._window_start = None
        self._current = self._previous = -math.inf

    def event_frame(self, clock: StreamClock, stream_now: float, rate: float, period: int) -> int:
        """The engine frame at which an event arriving at ``stream_now`` plays, on the most punctual grid."""
        grid = clock.event_frame(stream_now) - stream_now * rate
        if grid < max(self._current, self._previous) - period:  # a step back: forget the earlier readings
            self._window_start, self._previous, self._current = stream_now, -math.inf, -math.inf
        elif self._window_start is None or stream_now - self._window_start > self.WINDOW_S:
            self._window_start, self._previous, self._current = stream_now, self._current, -math.inf
        self._current = max(self._current, grid)
        return max(0, round(max(self._current, self._previous) + stream_now * rate))


class JackReader:
    """The own port's events, out of the callback's ring, to the sink at their frames."""

    def __init__(self, name: str, client: jack.Client, ring: EventRing):
        self.name = name
        self._client = client
        self._ring = ring
        self._dropped = 0
        self._grid = LatestPeriodGrid()

    def forward_pending(self, sink: EventSink, clock: StreamClock, last_poll: float, now: float,
                        monitor: Callable[[str], None] | None = None) -> list[str]:
        """Send every event the callback queued to ``sink`` at its own frame; ``monitor`` (``-v``) gets a
        description of each. Returns the notices of events that could not be used or were dropped."""
        notices = []
        jack_now = self._client.frame_time  # read back to back with the stream clock: one time base
        stream_now = clock.time()
        now_frame = self._grid.event_frame(clock, stream_now, self._client.samplerate, self._client.blocksize)
        while (item := self._ring.take()) is not None:
            frame, message = item
            notice = forward_message(sink, message, max(0, now_frame - frames_before(jack_now, frame)))
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

    def __init__(self, sink: EventSink, clock: StreamClock, *, wanted: str = ALL_PORTS,
                 client_name: str = CLIENT_NAME, verbose: bool = False):
        super().__init__(sink, clock, wanted=wanted, client_name=client_name, verbose=verbose)
        try:
            self._client = jack.Client(client_name, no_start_server=True)
        except jack.JackError as exc:
            raise DeviceError(f"cannot open MIDI input ({SYSTEM_NAME}): {exc}") from exc
        try:
            self._port = self._client.midi_inports.register(OWN_PORT_NAME)
            self._ring = EventRing(_address(self._client._ptr), _address(self._port._ptr), jack._libname)
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
        self._reader = JackReader(self._port.name, self._client, self._ring)

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
