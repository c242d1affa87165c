"""Live MIDI input (python-rtmidi) → timestamped events in the engine's ring.

One thread, the *MIDI pump*, owns every rtmidi port and is the ring's only producer (the audio
callback is its only consumer), so the single-producer/single-consumer ring needs no lock. It polls
the ports every half millisecond rather than using rtmidi callbacks: with the JACK API rtmidi would
run a Python callback inside JACK's process thread, where waiting for the GIL stalls the JACK graph.
Polled messages are back-dated to their arrival with rtmidi's own inter-message delta times, so the
poll interval adds no timing jitter. (With JACK, rtmidi dates a message when its process cycle reads
it and drops the frame offset inside the cycle, so events reach the engine quantised to the period.)
Where the system allows it (root, or an rtprio limit) the pump runs at the lowest SCHED_FIFO
priority, below JACK's audio threads but ahead of ordinary processes. It still needs the GIL for a
moment per poll: other busy Python threads in the process can delay a note by a period.

Every half second the pump rescans the ports: matching ports that appeared are connected, and a port
that disappeared triggers a panic (controllers reset, all notes off on all channels) so no note hangs
and no pitch bend or modulation stays where the lost keyboard left it. An unexpected error in the pump
(rtmidi failing to list or open ports, a full event ring) becomes a notice and the pump carries on,
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
from dataclasses import dataclass
from typing import Protocol

import rtmidi

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
# rtmidi's default input queue holds 100 messages; a dense chord with controllers can exceed that
# between two polls when the machine is busy.
QUEUE_SIZE = 4096

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


def api_name(api: int) -> str:
    return rtmidi.get_api_display_name(api)


def available_apis() -> list[int]:
    """rtmidi back ends compiled in, without the dummy one."""
    return [api for api in rtmidi.get_compiled_api() if api != rtmidi.API_RTMIDI_DUMMY]


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


def request_realtime_priority() -> bool:
    """Move the calling thread to SCHED_FIFO at the lowest real-time priority; False if not allowed."""
    try:
        policy = os.SCHED_FIFO
        os.sched_setscheduler(0, policy, os.sched_param(os.sched_get_priority_min(policy)))
    except (AttributeError, OSError):  # not Linux, or no permission
        return False
    return True


def estimate_arrival(previous_arrival: float | None, delta_s: float, last_poll: float, now: float) -> float:
    """Stream time at which a message arrived, from rtmidi's delta to the port's previous message.

    The message arrived after the previous poll (``last_poll``) and before this one (``now``). A
    first message is dated at the earliest possible time: an early estimate is corrected by the lower
    bound of later polls, a late one never would be (every later bound lies above it). The clamp also
    stops rtmidi's clock and the stream's from drifting apart.
    """
    estimate = last_poll if previous_arrival is None else previous_arrival + delta_s
    return min(max(estimate, last_poll), now)


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


_MESSAGE_NAMES = {0x80: "note off", 0x90: "note on", 0xA0: "key pressure", 0xB0: "control change",
                  0xC0: "program change", 0xD0: "channel pressure", 0xE0: "pitch bend"}


def describe_message(message: list[int]) -> str:
    """``ch 1 note on 60 100`` for a channel message; the bytes in hex for anything else."""
    status = message[0]
    if CHANNEL_MESSAGE_FIRST <= status < SYSTEM_MESSAGE_FIRST:
        return f"ch {(status & 0x0F) + 1} {_MESSAGE_NAMES[status & 0xF0]} " + " ".join(map(str, message[1:]))
    return " ".join(f"{byte:02X}" for byte in message[:16]) + (" …" if len(message) > 16 else "")


class MidiInput:
    """Connects the MIDI sources matching ``wanted`` ("all" or a name substring) to ``sink``.

    Use as a context manager or call start()/stop(). Notices for the user (ports connected or lost,
    waiting for a port) are queued for the main thread: read them with ``notices()``.
    """

    def __init__(self, sink: EventSink, clock: StreamClock, *, api: int, wanted: str = ALL_PORTS,
                 client_name: str = CLIENT_NAME, verbose: bool = False):
        if not wanted:
            raise DeviceError("--midi-in: empty port name (use a name substring, 'all' or 'none')")
        self._sink = sink
        self._clock = clock
        self.api = api
        self.wanted = wanted
        self.client_name = client_name
        try:
            # the own port exists from start-up, so that patchbays can connect to it before any source; its
            # client also lists the sources, so the player's first JACK/ALSA client is exactly client_name
            self._own_port = PolledPort(f"{client_name}:{OWN_PORT_NAME}", rtmidi.MidiIn(
                api, client_name, queue_size_limit=QUEUE_SIZE))
            self._own_port.midi_in.ignore_types(sysex=False, timing=True, active_sense=True)
            self._own_port.midi_in.open_virtual_port(OWN_PORT_NAME)
        except rtmidi.RtMidiError as exc:
            raise DeviceError(f"cannot open MIDI input ({api_name(api)}): {exc}") from exc
        self._ports: dict[str, PolledPort] = {}
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
        for port in self._ports.values():
            port.midi_in.delete()
        self._ports.clear()
        self._own_port.midi_in.delete()

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
        for port in [self._own_port, *self._ports.values()]:
            try:
                for notice in port.forward_pending(self._sink, self._clock, self._last_poll_time, now,
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

    def _port_lister(self) -> rtmidi.MidiIn:
        return self._own_port.midi_in

    def _scan_ports(self) -> None:
        if self.wanted == NO_PORTS:
            return  # the user routes sources to the own port
        names = self._port_lister().get_ports()
        available = {name for name in names if port_matches(name, self.wanted)}
        for name in set(self._ports) - available:
            self._ports.pop(name).midi_in.delete()
            self._notices.put(f"MIDI in: '{name}' disappeared; all notes off")
            send_panic(self._sink, self._clock.event_frame(self._clock.time()))
        for index, name in enumerate(names):
            if name in available and name not in self._ports:
                self._open(index, name)
        if not self._ports and not self._waiting_announced:
            self._notices.put(
                f"MIDI in: no {api_name(self.api)} port matching '{self.wanted}' yet; waiting for one"
            )
        self._waiting_announced = not self._ports

    def _open(self, index: int, name: str) -> None:
        midi_in = rtmidi.MidiIn(self.api, self.client_name, queue_size_limit=QUEUE_SIZE)
        midi_in.ignore_types(sysex=False, timing=True, active_sense=True)
        try:
            midi_in.open_port(index, "in")
        except rtmidi.RtMidiError as exc:  # the port vanished between listing and opening
            midi_in.delete()
            self._notices.put(f"MIDI in: cannot connect '{name}': {exc}")
            return
        self._ports[name] = PolledPort(name, midi_in)
        self._notices.put(f"MIDI in: connected '{name}'")

