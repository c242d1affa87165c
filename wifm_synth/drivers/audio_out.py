"""Audio output: a PortAudio stream (device choice, opening, starting, closing) running the engine's callback.

The callback and its ``userData`` pointer table are ``wifm_synth.engine.abi``: compiled machine code
that PortAudio calls directly, so a busy Python main thread cannot make it miss a period. This
module only finds devices and owns the stream, registering that callback through sounddevice's own
cffi handle.

Event timing uses PortAudio's stream clock on both sides: the callback records, once per period, which
engine frame corresponds to stream time 0 (from ``timeInfo->currentTime`` at block start), and the MIDI
thread reads the same clock with ``Pa_GetStreamTime`` (PortAudio documents the two as one time base; with
JACK it is JACK's frame clock, with ALSA the system clock). An event arriving at stream time t is played
at frame ``origin + t·rate + period``: one period after it arrived, at the matching offset in the block,
so the latency is constant instead of jittering with the arrival's position in the period. Under JACK the
stream clock is JACK's estimate of "now" when the callback runs, late by a varying number of frames on
a busy machine; ``follow_jack_cycles`` has the callback read each cycle's exact first frame instead, and
``jack_event_frame`` places an event stamped with its JACK frame exactly (``engine/period_clock.py``).

Under JACK the player's audio client is named like its MIDI client (``--client-name``, default
``wifm``), not PortAudio's default ``PortAudio``: PortAudio's JACK host API takes the name from
``PaJack_SetClientName`` before it initialises, which sounddevice does when it is imported, so
``use_client_name`` calls it (through ctypes, on the library sounddevice loads) first.

If the host dies under a running stream (the JACK server quits), PortAudio would block for ever stopping
or closing it, and its exit hook can abort on the dead client: ``close`` then abandons the stream, and
the process should leave without PortAudio's exit hook (``os._exit``; see ``AudioHostLost``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

import numpy as np

from wifm_synth.checks import integer_in
from wifm_synth.engine import Synth
from wifm_synth.engine.abi import (
    OUTPUT_CHANNELS,
    TABLE_JACK_CLIENT,
    TABLE_JACK_LAST_FRAME_TIME,
    engine_pointer_table,
    engine_stream_callback,
)
from wifm_synth.engine.layout import (
    BLOCK,
    ENGINE_LATE_PERIODS,
    ENGINE_STALLED_PERIODS,
    ENGINE_WORST_PERIOD_CPU_NS,
    ENGINE_WORST_PERIOD_NS,
)
from wifm_synth.engine.period_clock import (
    CLOCK_CALLBACKS,
    CLOCK_FIELDS,
    CLOCK_FRAME_ORIGIN,
    CLOCK_JACK_ORIGIN,
    CLOCK_JACK_PERIODS,
    CLOCK_SAMPLE_RATE,
    CLOCK_UNDERFLOWS,
)
from wifm_synth.errors import DeviceError

NO_DEVICE_MESSAGE = "no audio output device (is a sound server running?)"
PA_FLOAT32 = 0x00000001
PA_NO_FLAG = 0
PA_NO_ERROR = 0
PA_INVALID_SAMPLE_RATE = -9997
JACK_FRAME_RANGE = 1 << 32  # jack_nframes_t wraps


# PortAudio keeps the pointer it is given, so the name's buffer must live as long as the library.
_jack_client_name: ctypes.Array | None = None


def use_client_name(name: str) -> None:
    """Name the JACK audio client ``name`` (PaJack_SetClientName) for PortAudio's next initialisation.

    Before sounddevice is imported this is free; if it was imported already, PortAudio is terminated
    and initialised again, which drops and reopens its JACK client under the new name. Without JACK
    support in PortAudio (or without PortAudio) this does nothing: the name only matters to JACK.
    """
    global _jack_client_name
    loaded = sys.modules.get("sounddevice")
    library_name = loaded._libname if loaded is not None else ctypes.util.find_library("portaudio")
    if library_name is None:
        return
    try:
        library = ctypes.CDLL(library_name)  # the same handle sounddevice's cffi module holds
    except OSError:
        return
    set_name = getattr(library, "PaJack_SetClientName", None)
    if set_name is None:
        return
    _jack_client_name = ctypes.create_string_buffer(name.encode())
    set_name.argtypes = [ctypes.c_char_p]
    set_name(_jack_client_name)
    if loaded is not None:
        loaded._terminate()
        loaded._initialize()


def nearest_on_wrapping_clock(frame: int, near: int) -> int:
    """Of ``frame``'s candidates 2**32 apart (JACK's frame clock wraps), the one nearest to ``near``."""
    return near + (frame - near + JACK_FRAME_RANGE // 2) % JACK_FRAME_RANGE - JACK_FRAME_RANGE // 2


class AudioHostLost(DeviceError):
    """The running stream stopped because its host (sound server) went away; the stream is abandoned."""


def _portaudio():
    """sounddevice's cffi module and PortAudio library (imported late: PortAudio scans the host APIs,
    JACK included, when it is first loaded)."""
    try:
        import sounddevice
    except OSError as exc:  # libportaudio2 missing
        raise DeviceError(f"cannot load PortAudio: {exc}") from exc
    return sounddevice


def list_output_devices() -> list[dict]:
    """Audio outputs PortAudio sees: index, name, host API, channels, default rate, default flag."""
    sounddevice = _portaudio()
    host_apis = sounddevice.query_hostapis()
    default_output = sounddevice._lib.Pa_GetDefaultOutputDevice()
    return [
        {
            "index": device["index"],
            "name": device["name"],
            "host_api": host_apis[device["hostapi"]]["name"],
            "channels": device["max_output_channels"],
            "default_sample_rate": device["default_samplerate"],
            "default": device["index"] == default_output,
        }
        for device in sounddevice.query_devices()
        if device["max_output_channels"] > 0
    ]


def find_output_device(wanted: str | int | None) -> dict:
    """The output device ``wanted`` names: None = the default, an index, or a name (exact or a unique substring)."""
    devices = list_output_devices()
    if not devices:
        raise DeviceError(NO_DEVICE_MESSAGE)
    if wanted is None:
        defaults = [device for device in devices if device["default"]]
        return defaults[0] if defaults else devices[0]
    if isinstance(wanted, int) or str(wanted).isdigit():
        by_index = [device for device in devices if device["index"] == int(wanted)]
        if not by_index:
            raise DeviceError(f"--audio-out: no audio output with index {wanted} (see 'wifm devices')")
        return by_index[0]
    exact = [device for device in devices if device["name"].casefold() == wanted.casefold()]
    partial = [device for device in devices if wanted.casefold() in device["name"].casefold()]
    matches = exact or partial
    if len(matches) != 1:
        problem = "no audio output" if not matches else f"{len(matches)} audio outputs"
        raise DeviceError(f"--audio-out: {problem} matching '{wanted}' (see 'wifm devices')")
    return matches[0]


class EngineOutputStream:
    """A running PortAudio output stream whose callback is ``engine_stream_callback`` on ``synth``.

    It is also the MIDI input's clock (``time``/``event_frame``). Use as a context manager, or
    call ``start``/``close``.
    """

    def __init__(self, synth: Synth, *, device: str | int | None = None, period: int = 128):
        integer_in(period, "--period", 16, 8192, unit=" frames", error=DeviceError)
        self._sounddevice = _portaudio()
        self._ffi, self._lib = self._sounddevice._ffi, self._sounddevice._lib
        self.synth = synth
        self.device = find_output_device(device)
        self.sample_rate = synth.sample_rate
        self.period = period
        # Events wait one period (the current one is already rendered), plus a block when the period
        # is not a whole number of engine blocks, because the engine may have rendered that far ahead.
        self.latency_frames = period if period % BLOCK == 0 else period + BLOCK - 1
        self.clock = np.zeros(CLOCK_FIELDS)
        self.clock[CLOCK_SAMPLE_RATE] = self.sample_rate
        self._table = engine_pointer_table(synth.state, self.clock)
        self._started = False
        self._stream = self._open()

    def _check(self, error_code: int, action: str) -> None:
        if error_code != PA_NO_ERROR:
            reason = self._ffi.string(self._lib.Pa_GetErrorText(error_code)).decode(errors="replace")
            raise DeviceError(f"audio output '{self.device['name']}': cannot {action}: {reason}")

    def _open(self):
        parameters = self._ffi.new("PaStreamParameters*")
        parameters.device = self.device["index"]
        parameters.channelCount = OUTPUT_CHANNELS
        parameters.sampleFormat = PA_FLOAT32
        parameters.suggestedLatency = self.period / self.sample_rate
        parameters.hostApiSpecificStreamInfo = self._ffi.NULL
        stream_pointer = self._ffi.new("PaStream**")
        error = self._lib.Pa_OpenStream(
            stream_pointer, self._ffi.NULL, parameters, float(self.sample_rate), self.period, PA_NO_FLAG,
            self._ffi.cast("PaStreamCallback *", engine_stream_callback().address),
            self._ffi.cast("void *", self._table.ctypes.data),
        )
        if error == PA_INVALID_SAMPLE_RATE:
            raise DeviceError(f"--sample-rate: audio output '{self.device['name']}' runs at "
                              f"{self.device['default_sample_rate']:.0f} Hz and refuses {self.sample_rate} Hz "
                              f"(without --sample-rate the device's own rate is used)")
        self._check(error, f"open a {self.sample_rate} Hz stereo stream with {self.period}-frame periods")
        return stream_pointer[0]

    def start(self) -> EngineOutputStream:
        self._check(self._lib.Pa_StartStream(self._stream), "start the stream")
        self._started = True
        return self

    def close(self) -> None:
        """Stop (letting queued buffers play) and close; safe to call twice. A lost stream is only
        forgotten: stopping or closing it would block for ever."""
        if self.lost:
            self._stream = None
        if self._stream is not None:
            if self._lib.Pa_IsStreamActive(self._stream) == 1:
                self._lib.Pa_StopStream(self._stream)
            self._lib.Pa_CloseStream(self._stream)
            self._stream = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def output_latency_s(self) -> float:
        """PortAudio's estimate of the output latency (buffering in the host and device)."""
        return self._lib.Pa_GetStreamInfo(self._stream).outputLatency

    @property
    def active(self) -> bool:
        return self._stream is not None and self._lib.Pa_IsStreamActive(self._stream) == 1

    @property
    def lost(self) -> bool:
        """Started, never closed, yet no longer running: the host stopped it (our callback never does)."""
        return self._started and self._stream is not None and self._lib.Pa_IsStreamActive(self._stream) != 1

    @property
    def cpu_load(self) -> float:
        return self._lib.Pa_GetStreamCpuLoad(self._stream)

    @property
    def underflows(self) -> int:
        return int(self.clock[CLOCK_UNDERFLOWS])

    @property
    def callbacks(self) -> int:
        return int(self.clock[CLOCK_CALLBACKS])

    def time(self) -> float:
        """The stream clock now (the time base of the callback's ``currentTime``)."""
        return self._lib.Pa_GetStreamTime(self._stream)

    def follow_jack_cycles(self, last_frame_time_address: int, client_address: int) -> None:
        """Date each period by its JACK cycle's first frame, read with ``jack_last_frame_time`` (its address
        in the libjack PortAudio uses) on ``client_address``, a client of the same server. Before ``start``:
        the callback reads the two table entries without synchronisation."""
        if self._started:
            raise DeviceError("follow_jack_cycles: the stream is already running")
        self._table[TABLE_JACK_CLIENT] = client_address
        self._table[TABLE_JACK_LAST_FRAME_TIME] = last_frame_time_address

    def jack_event_frame(self, jack_frame: int, near: int) -> int | None:
        """Engine frame at which an event at JACK frame ``jack_frame`` plays: exactly one period after its
        cycle's engine frame (JACK's clock wraps: the one of its 2**32-apart candidates nearest to the engine
        frame ``near``). None until a period has been dated by JACK."""
        if self.clock[CLOCK_JACK_PERIODS] == 0:
            return None
        return max(0, nearest_on_wrapping_clock(int(self.clock[CLOCK_JACK_ORIGIN]) + jack_frame + self.latency_frames,
                                                near))

    @property
    def late_periods(self) -> dict:
        """Engine-late periods (the callback used more CPU time than the period lasts), stalled ones (it took
        longer in wall time), and the worst callback's CPU and wall times in milliseconds."""
        engine = self.synth.state.engine
        return {"late": int(engine[ENGINE_LATE_PERIODS]), "stalled": int(engine[ENGINE_STALLED_PERIODS]),
                "worst_ms": engine[ENGINE_WORST_PERIOD_NS] / 1e6,
                "worst_cpu_ms": engine[ENGINE_WORST_PERIOD_CPU_NS] / 1e6,
                "period_ms": 1000 * self.period / self.sample_rate}

    def event_frame(self, arrival_time: float) -> int:
        """Engine frame at which an event that arrived at stream time ``arrival_time`` is played."""
        return max(0, round(self.clock[CLOCK_FRAME_ORIGIN] + arrival_time * self.sample_rate)
                   + self.latency_frames)
