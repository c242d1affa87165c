"""Live MIDI input → timestamped events in the engine's ring: the MIDI pump, whatever the MIDI system.

One thread, the *MIDI pump*, reads every MIDI source and is the ring's only producer (the audio
callback is its only consumer), so the single-producer/single-consumer ring needs no lock. It polls
every half millisecond; where messages come from is a subclass's: ``rtmidi_in.RtMidiInput`` (ALSA and
the other rtmidi back ends; messages back-dated to their arrival with rtmidi's delta times) and
``jack_midi_in.JackMidiInput`` (under JACK: one JACK client on the system libjack, whose compiled
process callback hands over every event with its exact frame). No Python ever runs in a MIDI
system's real-time thread, where waiting for the GIL would stall it.
Where the system allows it (root, or an rtprio limit) the pump runs at the lowest SCHED_FIFO
priority, below JACK's audio threads but ahead of ordinary processes. It still needs the GIL for a
moment per poll: other busy Python threads in the process can delay a note by a period.

Every half second the pump rescans the ports: matching ports that appeared are connected, and a port
that disappeared triggers a panic (controllers reset, all notes off on all channels) so no note hangs
and no pitch bend or modulation stays where the lost keyboard left it. An unexpected error in the pump
(the MIDI system failing to list or open ports, a full event ring) becomes a notice and the pump carries on,
retrying at the next scan: MIDI input never ends silently.

Whatever another thread asks the engine for (the shell's program changes, panic, gain, tuning, patch
and instrument loads: ``post``) also goes through the pump, which posts it to the ring between MIDI
messages: the ring keeps a single producer, and the audio thread applies it at the frame of the poll
that posted it. A GM System On or GS Reset message resets every channel (``Synth.reset``).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol

from wifm_synth.drivers.dx7_sysex_in import SYSEX_START, apply_sysex
from wifm_synth.errors import DeviceError, InputError
from wifm_synth.midi import (
    CC_ALL_NOTES_OFF,
    CC_RESET_CONTROLLERS,
    CONTROL_CHANGE,
    MIDI_CHANNELS,
    is_system_reset,
)
from wifm_synth.voice.patch import Patch

POSTED_ANSWER_S = 5.0  # the pump runs what is posted within a poll; this only guards against a hang

CLIENT_NAME = "wifm"
ALL_PORTS = "all"
NO_PORTS = "none"  # connect to nothing: only the own input port, for routing in qjackctl/Carla/aconnect
OWN_PORT_NAME = "midi_in"  # the input port every player has from start-up, whatever --midi-in says
POLL_INTERVAL_S = 0.0005
SCAN_INTERVAL_S = 0.5

CHANNEL_MESSAGE_FIRST = 0x80
SYSTEM_MESSAGE_FIRST = 0xF0


class EventSink(Protocol):
    """The engine's event ring (``wifm_synth.engine`` Synth): accepts (absolute frame, status, data1, data2)."""

    def send(self, frame: int, status: int, data1: int, data2: int) -> None: ...

    def load_patch(self, row: int, patch: Patch, frame: int | None = None) -> None: ...

    def reset(self, frame: int | None = None) -> None: ...


class StreamClock(Protocol):
    """The audio stream's clock: current time, and the engine frame at which an event arriving then plays."""

    def time(self) -> float: ...

    def event_frame(self, arrival_time: float) -> int: ...


def request_realtime_priority() -> bool:
    """Move the calling thread to SCHED_FIFO at the lowest real-time priority; False if not allowed."""
    try:
        policy = os.SCHED_FIFO
        os.sched_setscheduler(0, policy, os.sched_param(os.sched_get_priority_min(policy)))
    except (AttributeError, OSError):  # not Linux, or no permission
        return False
    return True


def port_matches(port_name: str, wanted: str) -> bool:
    if wanted == NO_PORTS:
        return False
    return wanted == ALL_PORTS or wanted.casefold() in port_name.casefold()


def send_panic(sink: EventSink, frame: int) -> None:
    """Reset all controllers (pedals up, bend and wheels centred) and all notes off on every channel:
    every note releases, none hangs."""
    for channel in range(MIDI_CHANNELS):
        for controller in (CC_RESET_CONTROLLERS, CC_ALL_NOTES_OFF):
            sink.send(frame, CONTROL_CHANGE | channel, controller, 0)


def forward_message(sink: EventSink, message: list[int], frame: int) -> str | None:
    """Queue a channel message for ``frame``; a GM/GS reset resets every channel, a DX7 SysEx message
    becomes patch loads at ``frame`` (``dx7_sysex_in``). Other system messages carry no note
    information. Returns a notice, if any."""
    status = message[0]
    if status == SYSEX_START:
        if is_system_reset(bytes(message)):
            sink.reset(frame)
            return None
        return apply_sysex(sink, message, frame)
    if not CHANNEL_MESSAGE_FIRST <= status < SYSTEM_MESSAGE_FIRST:
        return None
    data1 = message[1] if len(message) > 1 else 0
    data2 = message[2] if len(message) > 2 else 0
    sink.send(frame, status, data1, data2)


_MESSAGE_NAMES = {0x80: "note off", 0x90: "note on", 0xA0: "key pressure", 0xB0: "control change",
                  0xC0: "program change", 0xD0: "channel pressure", 0xE0: "pitch bend"}


def describe_message(message: list[int]) -> str:
    """``ch 1 note on 60 100`` for a channel message; the bytes in hex for anything else."""
    status = message[0]
    if CHANNEL_MESSAGE_FIRST <= status < SYSTEM_MESSAGE_FIRST:
        return f"ch {(status & 0x0F) + 1} {_MESSAGE_NAMES[status & 0xF0]} " + " ".join(map(str, message[1:]))
    return " ".join(f"{byte:02X}" for byte in message[:16]) + (" …" if len(message) > 16 else "")


class MidiPoller(Protocol):
    """A source of MIDI messages the pump polls: sends what arrived since the last poll to the sink."""

    def forward_pending(self, sink: EventSink, clock: StreamClock, last_poll: float, now: float,
                        monitor: Callable[[str], None] | None = None) -> list[str]: ...


class MidiInput:
    """Connects the MIDI sources matching ``wanted`` ("all" or a name substring) to ``sink``.

    Use as a context manager or call start()/stop(). Notices for the user (ports connected or lost,
    waiting for a port) are queued for the main thread: read them with ``notices()``. A subclass opens
    the own port (``client_name:midi_in``) in its constructor and provides the ``_pollers``,
    ``_source_names``, ``_connect``, ``_disconnect`` and ``_close`` of its MIDI system;
    ``system_name`` names that system to the user.
    """

    system_name = "MIDI"

    def __init__(self, sink: EventSink, clock: StreamClock, *, wanted: str = ALL_PORTS,
                 client_name: str = CLIENT_NAME, verbose: bool = False):
        if not wanted:
            raise DeviceError("--midi-in: empty port name (use a name substring, 'all' or 'none')")
        self._sink = sink
        self._clock = clock
        self.wanted = wanted
        self.client_name = client_name
        self._ports: dict[str, object] = {}  # connected source name → what _disconnect needs to release it
        self._notices: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._monitor = self._notices.put if verbose else None
        self._posted: queue.SimpleQueue[tuple[str, Callable[[EventSink, int], None], threading.Event]] = \
            queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="wifm-midi-in", daemon=True)
        self._last_poll_time = 0.0
        self._waiting_announced = False
        self._drop_announced = False
        self._last_failure: str | None = None
        self.realtime_pump: bool | None = None  # known once the pump runs

    # --- the MIDI system's part ---
    def _pollers(self) -> list[MidiPoller]:
        raise NotImplementedError

    def _source_names(self) -> list[str]:
        """Every MIDI source the system lists now, in its order."""
        raise NotImplementedError

    def _connect(self, index: int, name: str) -> object | None:
        """Connect source ``name`` (``index`` in ``_source_names``); None, with a notice, if it cannot be."""
        raise NotImplementedError

    def _disconnect(self, name: str, connection: object) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        """Close the own port and every connection (the pump has ended)."""
        raise NotImplementedError

    @property
    def connected_ports(self) -> list[str]:
        return sorted(self._ports)

    def notices(self) -> list[str]:
        """Messages for the user since the last call (called from the main thread)."""
        pending = []
        while True:
            try:
                pending.append(self._notices.get_nowait())
            except queue.Empty:
                return pending

    def post(self, what: str, action: Callable[[EventSink, int], None]) -> threading.Event:
        """Have the pump call ``action(sink, frame)`` at its next poll, ``frame`` being that poll's
        (from any thread). An InputError it raises becomes the notice ``what: reason``. The event returned
        is set once the pump has run it: events the caller's own port receives afterwards come after it."""
        done = threading.Event()
        self._posted.put((what, action, done))
        return done

    def post_event(self, status: int, data1: int, data2: int) -> threading.Event:
        """Have the pump send this channel message now (the ``wifm play`` shell)."""
        return self.post("MIDI in: events dropped", lambda sink, frame: sink.send(frame, status, data1, data2))

    def post_panic(self) -> threading.Event:
        return self.post("MIDI in: events dropped", send_panic)

    def post_patch_load(self, row: int, patch: Patch) -> threading.Event:
        """Have the pump replace patch row ``row`` by ``patch`` at its next poll."""
        return self.post("patch load", lambda sink, frame: sink.load_patch(row, patch, frame=frame))

    def start(self) -> MidiInput:
        self._last_poll_time = self._clock.time()
        self._scan_ports()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the pump and close every port; afterwards the caller may produce events itself."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._close()
        self._ports.clear()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _pump(self) -> None:
        self.realtime_pump = request_realtime_priority()
        if not self.realtime_pump:
            self._notices.put("MIDI in: no real-time priority for the MIDI thread (needs an rtprio limit); "
                              "note timing may jitter when the machine is busy")
        next_scan = time.monotonic() + SCAN_INTERVAL_S
        while not self._stop.is_set():
            time.sleep(POLL_INTERVAL_S)  # a timed nanosleep: wakes more punctually than Event.wait
            try:
                self._poll_messages()
                if time.monotonic() >= next_scan:
                    next_scan = time.monotonic() + SCAN_INTERVAL_S  # first: a failing scan waits for the next
                    self._scan_ports()
                    self._last_failure = None
            except Exception as exc:  # noqa: BLE001 - a dead pump would end MIDI input without a word
                self._report_failure(exc)
                self._stop.wait(SCAN_INTERVAL_S)

    def _report_failure(self, exc: Exception) -> None:
        """A notice for a pump error, once until the error changes or a scan succeeds."""
        failure = f"{type(exc).__name__}: {exc}"
        if failure != self._last_failure:
            self._notices.put(f"MIDI in: {failure}; retrying")
        self._last_failure = failure

    def _poll_messages(self) -> None:
        now = self._clock.time()
        for poller in self._pollers():
            try:
                for notice in poller.forward_pending(self._sink, self._clock, self._last_poll_time, now,
                                                     self._monitor):
                    self._notices.put(f"MIDI in: {notice}")
            except InputError as exc:  # e.g. the ring is full because the audio callback stopped
                if not self._drop_announced:
                    self._notices.put(f"MIDI in: events dropped: {exc}")
                self._drop_announced = True
        self._run_posted(now)
        self._last_poll_time = now

    def _run_posted(self, now: float) -> None:
        while True:
            try:
                what, action, done = self._posted.get_nowait()
            except queue.Empty:
                return
            try:
                action(self._sink, self._clock.event_frame(now))
            except InputError as exc:  # e.g. the ring or the staging rows are full because audio stopped
                self._notices.put(f"{what}: {exc}")
            finally:
                done.set()

    def _scan_ports(self) -> None:
        if self.wanted == NO_PORTS:
            return  # the user routes sources to the own port
        names = self._source_names()
        available = {name for name in names if port_matches(name, self.wanted)}
        for name in set(self._ports) - available:
            self._disconnect(name, self._ports.pop(name))
            self._notices.put(f"MIDI in: '{name}' disappeared; all notes off")
            send_panic(self._sink, self._clock.event_frame(self._clock.time()))
        for index, name in enumerate(names):
            if name in available and name not in self._ports:
                connection = self._connect(index, name)
                if connection is not None:
                    self._ports[name] = connection
                    self._notices.put(f"MIDI in: connected '{name}'")
        if not self._ports and not self._waiting_announced:
            self._notices.put(
                f"MIDI in: no {self.system_name} port matching '{self.wanted}' yet; waiting for one"
            )
        self._waiting_announced = not self._ports
