"""The engine's whole state: a fixed set of preallocated, C-contiguous NumPy arrays.

Nothing is allocated after ``allocate_state``; the audio kernel ``process_block`` only reads and
writes these arrays, so a live driver can hand their pointers to a Numba ``@cfunc`` (rebuilding
each with ``numba.carray(pointer, shape, dtype)``) without touching Python objects or globals.

Arrays (``EngineState`` field order is the argument order of ``process_block``):

=================  =======  =============================  =======================================
name               dtype    shape                          contents
=================  =======  =============================  =======================================
patch_table        float64  (patches, PATCH_WIDTH)         compiled patches (patch/compile.py)
routing_table      int64    (patches, ROUTING_WIDTH)       operator order, carriers, modulators
program_table      int64    (programs, PROGRAM_WIDTH)      (bank, program) → zone range
zone_table         int64    (zones, ZONE_WIDTH)            key/velocity range → patch row
voice_ints         int64    (VOICE_INT_FIELDS, voices)     stage, channel, key, patch, frames …
voice_floats       float64  (VOICE_FLOAT_FIELDS, voices)   loudness
operators          float64  (OPERATOR_FIELDS, 6, voices)   operator-major: [field, k, voice]
channels           float64  (CHANNEL_FIELDS, 16)           MIDI controller state per channel
engine             int64    (ENGINE_FIELDS,)               clock, counters, notices
scratch            float64  (SCRATCH_ROWS, BLOCK)          block buffers (operators, mixes, fifo)
ring_events        int64    (capacity, RING_FIELDS)        event records (frame, status, d1, d2)
ring_indices       int64    (RING_INDEX_WIDTH,)            write / read counters (own cache lines)
=================  =======  =============================  =======================================

``voices`` is the polyphony plus STEAL_FADE_VOICES columns where stolen voices fade out.

Event ring protocol (single producer, single consumer): the producer writes record
``ring_events[write % capacity]`` and only then publishes ``ring_indices[RING_WRITE] = write + 1``;
the engine consumes records up to the published index and advances ``ring_indices[RING_READ]``.
The ring is full when ``write - read == capacity``; ``capacity`` is a power of two.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from wifm_synth.engine.kernels import channel_gains
from wifm_synth.engine.tables import CompiledInstrument
from wifm_synth.errors import InputError
from wifm_synth.voice.patch import MAX_OPERATORS

BLOCK = 64  # internal block on the absolute sample grid
MIDI_CHANNELS = 16
DRUM_CHANNEL = 9
DEFAULT_POLYPHONY = 256
DEFAULT_EVENT_CAPACITY = 1 << 14
# A stolen voice is not cut dead (a click): it moves to one of these extra voice columns, after the
# playable ones, and fades out linearly over STEAL_FADE_S while its column plays the new note.
STEAL_FADE_VOICES = 4
STEAL_FADE_S = 0.002

# --- voice stages ---
FREE = 0
HELD = 1  # key down
SUSTAINED = 2  # key up, held by the sustain or sostenuto pedal
RELEASED = 3
FADING = 4  # a stolen voice fading out in one of the extra fade columns

# --- voice_ints rows ---
VOICE_STAGE = 0
VOICE_CHANNEL = 1
VOICE_KEY = 2
VOICE_PATCH = 3
VOICE_START_FRAME = 4  # absolute frame of the note-on
VOICE_RELEASE_FRAME = 5  # absolute frame of the release (valid when RELEASED)
VOICE_SOSTENUTO = 6  # 1 while the sostenuto pedal holds this note
VOICE_SERIAL = 7  # note-on counter: lower is older
VOICE_FADE_FRAME = 8  # absolute frame where a FADING voice began to fade
VOICE_INT_FIELDS = 9

# --- voice_floats rows ---
VOICE_LOUDNESS = 0  # loudest carrier amplitude at the end of the last rendered span (for stealing)
VOICE_FLOAT_FIELDS = 1

# --- operators rows: [row, operator, voice] ---
OPERATOR_PHASE = 0  # cycles in [0, 1)
OPERATOR_HZ = 1  # frequency before pitch bend and vibrato
OPERATOR_SCALE = 2  # velocity × key-level gain (linear)
OPERATOR_TIME_RATE = 3  # envelope clock speed from rate scaling
OPERATOR_ENVELOPE = 4  # envelope amplitude at the current frame
OPERATOR_GAIN = 5  # envelope × scale × tremolo at the current frame (per-sample ramps start here)
OPERATOR_RELEASE_DB = 6  # envelope level at note-off, dB
OPERATOR_FEEDBACK_1 = 7  # last two outputs (unit level) for feedback
OPERATOR_FEEDBACK_2 = 8
OPERATOR_SPAN_GAIN = 9  # unit-level gain at the first sample of the span being rendered …
OPERATOR_SPAN_GAIN_STEP = 10  # … its change per sample …
OPERATOR_SPAN_INCREMENT = 11  # … and the phase increment (cycles per sample) incl. bend and vibrato
OPERATOR_FIELDS = 12

# --- channels rows ---
CHANNEL_VOLUME = 0  # CC7
CHANNEL_EXPRESSION = 1  # CC11
CHANNEL_PAN = 2  # CC10
CHANNEL_MOD_WHEEL = 3  # CC1
CHANNEL_PRESSURE = 4  # channel aftertouch
CHANNEL_BEND = 5  # −1 … +1
CHANNEL_BEND_RANGE = 6  # semitones
CHANNEL_SUSTAIN = 7  # 0/1, CC64
CHANNEL_SOSTENUTO = 8  # 0/1, CC66
CHANNEL_BANK_MSB = 9
CHANNEL_BANK_LSB = 10
CHANNEL_PROGRAM = 11  # requested program number
CHANNEL_PROGRAM_ROW = 12  # program_table row that plays
CHANNEL_RPN_MSB = 13
CHANNEL_RPN_LSB = 14
CHANNEL_GAIN_LEFT = 15  # output gains applied at the current frame (ramps start here)
CHANNEL_GAIN_RIGHT = 16
CHANNEL_FIELDS = 17

# --- engine entries ---
ENGINE_SAMPLE_RATE = 0
ENGINE_BLOCK_FRAME = 1  # absolute frame where the next internal block starts
ENGINE_FIFO_POSITION = 2  # samples of the last rendered block already handed out
ENGINE_FRAMES_OUT = 3  # frames handed to the host so far
ENGINE_NOTE_SERIAL = 4
ENGINE_DRUM_PROGRAM = 5  # program_table row for channel 10, or −1 (silent)
ENGINE_ACTIVE_VOICES = 6
ENGINE_PEAK_VOICES = 7
ENGINE_STOLEN_VOICES = 8
ENGINE_EVENTS_APPLIED = 9
ENGINE_UNKNOWN_PROGRAMS = 10  # notice counter: a program change asked for a program the bank lacks
ENGINE_UNKNOWN_CHANNEL = 11  # … details of the latest one
ENGINE_UNKNOWN_BANK = 12
ENGINE_UNKNOWN_PROGRAM = 13
ENGINE_UNKNOWN_PLAYING_ROW = 14
ENGINE_SILENT_DRUM_NOTES = 15  # notice counter: channel 10 notes without a drum program
ENGINE_DROPPED_NOTES = 16  # note-ons with every voice started in the same frame
ENGINE_EVERY_PROGRAM = 17  # 1 for a single patch: every program is its own, no notices
ENGINE_FIELDS = 18

# --- scratch rows (each BLOCK long) ---
SCRATCH_OPERATOR_OUT = 0  # MAX_OPERATORS rows: the current voice's operator outputs
SCRATCH_MODULATION = SCRATCH_OPERATOR_OUT + MAX_OPERATORS
SCRATCH_SILENCE = SCRATCH_MODULATION + 1  # always zero
SCRATCH_CHANNEL_MIX = SCRATCH_SILENCE + 1  # MIDI_CHANNELS rows
SCRATCH_FIFO_LEFT = SCRATCH_CHANNEL_MIX + MIDI_CHANNELS
SCRATCH_FIFO_RIGHT = SCRATCH_FIFO_LEFT + 1
# Voices render in groups of up to VOICE_GROUP; the group's lane feedback operators run side by side
# ("lanes"). Rows below are indexed by group member or by lane.
VOICE_GROUP = BLOCK
SCRATCH_GROUP_VOICE = SCRATCH_FIFO_RIGHT + 1  # voice index of each group member
SCRATCH_GROUP_LANE = SCRATCH_GROUP_VOICE + 1  # lane of each group member, −1 if it has no lane operator
SCRATCH_GROUP_AUDIBLE = SCRATCH_GROUP_LANE + 1  # 0 once a member can never be heard again
SCRATCH_LANE_PHASE = SCRATCH_GROUP_AUDIBLE + 1
SCRATCH_LANE_INCREMENT = SCRATCH_LANE_PHASE + 1
SCRATCH_LANE_GAIN = SCRATCH_LANE_INCREMENT + 1
SCRATCH_LANE_GAIN_STEP = SCRATCH_LANE_GAIN + 1
SCRATCH_LANE_LEVEL = SCRATCH_LANE_GAIN_STEP + 1
SCRATCH_LANE_FEEDBACK = SCRATCH_LANE_LEVEL + 1  # feedback index in cycles, halved (mean of two)
SCRATCH_LANE_PREVIOUS_1 = SCRATCH_LANE_FEEDBACK + 1
SCRATCH_LANE_PREVIOUS_2 = SCRATCH_LANE_PREVIOUS_1 + 1
SCRATCH_LANE_OUT = SCRATCH_LANE_PREVIOUS_2 + 1  # BLOCK rows: [sample][lane]
SCRATCH_ROWS = SCRATCH_LANE_OUT + BLOCK

# --- event ring ---
RING_FRAME = 0
RING_STATUS = 1
RING_DATA1 = 2
RING_DATA2 = 3
RING_FIELDS = 4
RING_WRITE = 0
RING_READ = 8  # a separate cache line from RING_WRITE: producer and consumer don't share one
RING_INDEX_WIDTH = 16

RPN_NULL = 127


class EngineState(NamedTuple):
    patch_table: np.ndarray
    routing_table: np.ndarray
    program_table: np.ndarray
    zone_table: np.ndarray
    voice_ints: np.ndarray
    voice_floats: np.ndarray
    operators: np.ndarray
    channels: np.ndarray
    engine: np.ndarray
    scratch: np.ndarray
    ring_events: np.ndarray
    ring_indices: np.ndarray


def reset_channel(channels: np.ndarray, channel: int, program_row: int) -> None:
    """Power-on MIDI state of one channel (GM defaults: volume 100, pan centre, expression 127)."""
    channels[:, channel] = 0.0
    channels[CHANNEL_VOLUME, channel] = 100
    channels[CHANNEL_EXPRESSION, channel] = 127
    channels[CHANNEL_PAN, channel] = 64
    channels[CHANNEL_BEND_RANGE, channel] = 2.0
    channels[CHANNEL_PROGRAM_ROW, channel] = program_row
    channels[CHANNEL_RPN_MSB, channel] = RPN_NULL
    channels[CHANNEL_RPN_LSB, channel] = RPN_NULL
    left, right = channel_gains(channels[CHANNEL_VOLUME, channel], channels[CHANNEL_EXPRESSION, channel],
                                channels[CHANNEL_PAN, channel])
    channels[CHANNEL_GAIN_LEFT, channel] = left
    channels[CHANNEL_GAIN_RIGHT, channel] = right


def default_program_row(program_table: np.ndarray) -> int:
    """Row of bank 0 program 0, else the first program (what a channel plays before any program change)."""
    for row, (bank, program) in enumerate(program_table[:, :2]):
        if bank == 0 and program == 0:
            return row
    return 0


def allocate_state(compiled: CompiledInstrument, sample_rate: int = 48000, polyphony: int = DEFAULT_POLYPHONY,
                   event_capacity: int = DEFAULT_EVENT_CAPACITY) -> EngineState:
    """Allocate every array the engine will ever use."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) \
            or not 8000 <= sample_rate <= 384000:
        raise InputError(f"sample rate: must be an integer 8000..384000 Hz, got {sample_rate!r}")
    if isinstance(polyphony, bool) or not isinstance(polyphony, (int, np.integer)) or not 1 <= polyphony <= 65536:
        raise InputError(f"polyphony: must be an integer 1..65536, got {polyphony!r}")
    if isinstance(event_capacity, bool) or not isinstance(event_capacity, (int, np.integer)) \
            or event_capacity < 1 or event_capacity & (event_capacity - 1):
        raise InputError(f"event capacity: must be a power of two, got {event_capacity!r}")
    channels = np.zeros((CHANNEL_FIELDS, MIDI_CHANNELS))
    program_row = default_program_row(compiled.program_table)
    for channel in range(MIDI_CHANNELS):
        reset_channel(channels, channel, program_row)
    engine = np.zeros(ENGINE_FIELDS, dtype=np.int64)
    engine[ENGINE_SAMPLE_RATE] = sample_rate
    engine[ENGINE_FIFO_POSITION] = BLOCK  # nothing rendered yet
    engine[ENGINE_DRUM_PROGRAM] = compiled.drum_program
    engine[ENGINE_EVERY_PROGRAM] = compiled.plays_every_program
    return EngineState(
        patch_table=np.ascontiguousarray(compiled.patch_table, dtype=np.float64),
        routing_table=np.ascontiguousarray(compiled.routing_table, dtype=np.int64),
        program_table=np.ascontiguousarray(compiled.program_table, dtype=np.int64),
        zone_table=np.ascontiguousarray(compiled.zone_table, dtype=np.int64),
        voice_ints=np.zeros((VOICE_INT_FIELDS, polyphony + STEAL_FADE_VOICES), dtype=np.int64),
        voice_floats=np.zeros((VOICE_FLOAT_FIELDS, polyphony + STEAL_FADE_VOICES)),
        operators=np.zeros((OPERATOR_FIELDS, MAX_OPERATORS, polyphony + STEAL_FADE_VOICES)),
        channels=channels,
        engine=engine,
        scratch=np.zeros((SCRATCH_ROWS, BLOCK)),
        ring_events=np.zeros((event_capacity, RING_FIELDS), dtype=np.int64),
        ring_indices=np.zeros(RING_INDEX_WIDTH, dtype=np.int64),
    )
