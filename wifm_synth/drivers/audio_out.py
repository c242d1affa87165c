"""Audio output: a PortAudio stream whose callback is a Numba ``@cfunc`` (DESIGN.md §4).

The callback is machine code registered directly with PortAudio through sounddevice's own cffi handle,
so the audio thread never runs Python bytecode and never waits for the GIL: a busy Python main thread
cannot make it miss a period. Everything it touches is preallocated: ``userData`` points to a small
int64 table of array addresses (engine state, event ring, the stream clock), and the
callback rebuilds NumPy views on them with ``numba.carray``. It must not read mutable globals, because
Numba freezes global arrays into the compiled code as constants.

Event timing uses PortAudio's stream clock on both sides: the callback records, once per period, which
engine frame corresponds to stream time 0 (from ``timeInfo->currentTime`` at block start), and the MIDI
thread reads the same clock with ``Pa_GetStreamTime`` (PortAudio documents the two as one time base; with
JACK it is JACK's frame clock, with ALSA the system clock). An event arriving at stream time t is played
at frame ``origin + t·rate + period``: one period after it arrived, at the matching offset in the block,
so the latency is constant instead of jittering with the arrival's position in the period.

If the host dies under a running stream (the JACK server quits), PortAudio would block for ever stopping
or closing it, and its exit hook can abort on the dead client: ``close`` then abandons the stream, and
the process should leave without PortAudio's exit hook (``os._exit``; see ``AudioHostLost``).
"""

from __future__ import annotations

import functools

import numpy as np
from numba import carray, cfunc, njit, types
from numba.extending import intrinsic

from wifm_synth.checks import integer_in
from wifm_synth.engine import EngineState, Synth, process_block
from wifm_synth.engine.state import BLOCK, ENGINE_FRAMES_OUT
from wifm_synth.errors import DeviceError

NO_DEVICE_MESSAGE = "no audio output device (is a sound server running?)"
CHANNELS = 2
PA_FLOAT32 = 0x00000001
PA_NO_FLAG = 0
PA_OUTPUT_UNDERFLOW = 0x00000004
PA_CONTINUE = 0
PA_NO_ERROR = 0
PA_INVALID_SAMPLE_RATE = -9997
TIME_INFO_CURRENT_TIME = 1  # PaStreamCallbackTimeInfo: inputBufferAdcTime, currentTime, outputBufferDacTime
TIME_INFO_FIELDS = 3

# The stream clock: written by the callback, read by the MIDI thread (each field is one aligned
# 8-byte store, so a reader never sees a torn value) and by the main thread for statistics.
CLOCK_FRAME_ORIGIN = 0  # engine frame at stream time 0
CLOCK_SAMPLE_RATE = 1
CLOCK_UNDERFLOWS = 2  # periods PortAudio flagged as output underflow
CLOCK_CALLBACKS = 3
CLOCK_FIELDS = 4

# userData: the clock's address, then each engine array as (address, shape padded to 3 dims), in
# EngineState field order (= process_block's argument order).
TABLE_CLOCK = 0
TABLE_ENGINE_FIRST = 1
TABLE_ENTRY_WIDTH = 4
ENGINE_ARRAY_LAYOUT = {  # field → (ndim, dtype) the callback rebuilds; checked against the real state
    "patch_table": (2, np.float64),
    "routing_table": (2, np.int64),
    "program_table": (2, np.int64),
    "zone_table": (2, np.int64),
    "voice_ints": (2, np.int64),
    "voice_floats": (2, np.float64),
    "operators": (3, np.float64),
    "channels": (2, np.float64),
    "engine": (1, np.int64),
    "scratch": (2, np.float64),
    "ring_events": (2, np.int64),
    "ring_indices": (1, np.int64),
}
TABLE_SIZE = TABLE_ENGINE_FIRST + TABLE_ENTRY_WIDTH * len(ENGINE_ARRAY_LAYOUT)
SLOT_ENGINE = list(ENGINE_ARRAY_LAYOUT).index("engine")

PA_STREAM_CALLBACK = types.intc(types.voidptr, types.voidptr, types.ulong, types.voidptr, types.ulong, types.voidptr)


@intrinsic
def address_as_voidptr(typingctx, address):
    """``(void *) address`` — turns an address stored in the pointer table back into a pointer."""
    signature = types.voidptr(types.int64)

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], context.get_value_type(types.voidptr))

    return signature, codegen


@njit(cache=True, nogil=True)
def _table_array_1d(table, index, dtype):
    entry = TABLE_ENGINE_FIRST + TABLE_ENTRY_WIDTH * index
    return carray(address_as_voidptr(table[entry]), table[entry + 1], dtype)


@njit(cache=True, nogil=True)
def _table_array_2d(table, index, dtype):
    entry = TABLE_ENGINE_FIRST + TABLE_ENTRY_WIDTH * index
    return carray(address_as_voidptr(table[entry]), (table[entry + 1], table[entry + 2]), dtype)


@njit(cache=True, nogil=True)
def _table_array_3d(table, index, dtype):
    entry = TABLE_ENGINE_FIRST + TABLE_ENTRY_WIDTH * index
    return carray(address_as_voidptr(table[entry]), (table[entry + 1], table[entry + 2], table[entry + 3]), dtype)


def _stream_callback(input_buffer, output_buffer, frame_count, time_info, status_flags, user_data):
    """PortAudio callback: render ``frame_count`` interleaved stereo float32 frames with the engine."""
    table = carray(user_data, TABLE_SIZE, np.int64)
    clock = carray(address_as_voidptr(table[TABLE_CLOCK]), CLOCK_FIELDS, np.float64)
    engine = _table_array_1d(table, SLOT_ENGINE, np.int64)
    times = carray(time_info, TIME_INFO_FIELDS, np.float64)
    clock[CLOCK_FRAME_ORIGIN] = engine[ENGINE_FRAMES_OUT] - times[TIME_INFO_CURRENT_TIME] * clock[CLOCK_SAMPLE_RATE]
    if status_flags & PA_OUTPUT_UNDERFLOW:
        clock[CLOCK_UNDERFLOWS] += 1
    clock[CLOCK_CALLBACKS] += 1
    # The engine writes the two channels straight into the interleaved buffer through strided views.
    frames = carray(output_buffer, (frame_count, CHANNELS), np.float32)
    process_block(  # the engine arrays in ENGINE_ARRAY_LAYOUT order
        _table_array_2d(table, 0, np.float64),
        _table_array_2d(table, 1, np.int64),
        _table_array_2d(table, 2, np.int64),
        _table_array_2d(table, 3, np.int64),
        _table_array_2d(table, 4, np.int64),
        _table_array_2d(table, 5, np.float64),
        _table_array_3d(table, 6, np.float64),
        _table_array_2d(table, 7, np.float64),
        engine,
        _table_array_2d(table, 9, np.float64),
        _table_array_2d(table, 10, np.int64),
        _table_array_1d(table, 11, np.int64),
        frames[:, 0],
        frames[:, 1],
        frame_count,
    )
    return PA_CONTINUE


@functools.cache
def engine_stream_callback():
    """The compiled callback (``.address`` for PortAudio, ``.ctypes`` to call it from Python).

    Compiled, or loaded from Numba's cache, on first use, so listing devices doesn't pay for it.
    """
    return cfunc(PA_STREAM_CALLBACK, cache=True)(_stream_callback)


def engine_pointer_table(state: EngineState, clock: np.ndarray) -> np.ndarray:
    """The callback's ``userData``: addresses and shapes of the clock and every engine array.

    The arrays must outlive the stream (the caller keeps ``state`` and ``clock``).
    """
    if tuple(state._fields) != tuple(ENGINE_ARRAY_LAYOUT):
        raise DeviceError(f"engine state fields {state._fields} do not match the audio callback's layout")
    table = np.zeros(TABLE_SIZE, dtype=np.int64)
    table[TABLE_CLOCK] = clock.ctypes.data
    for index, (name, (ndim, dtype)) in enumerate(ENGINE_ARRAY_LAYOUT.items()):
        array = getattr(state, name)
        if array.ndim != ndim or array.dtype != dtype or not array.flags.c_contiguous:
            raise DeviceError(f"engine array {name} is {array.dtype} {array.shape}, the audio callback expects "
                              f"a C-contiguous {np.dtype(dtype)} array with {ndim} dimensions")
        entry = TABLE_ENGINE_FIRST + TABLE_ENTRY_WIDTH * index
        table[entry] = array.ctypes.data
        table[entry + 1:entry + 1 + ndim] = array.shape
    return table


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
        parameters.channelCount = CHANNELS
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

    def event_frame(self, arrival_time: float) -> int:
        """Engine frame at which an event that arrived at stream time ``arrival_time`` is played."""
        return max(0, round(self.clock[CLOCK_FRAME_ORIGIN] + arrival_time * self.sample_rate)
                   + self.latency_frames)
