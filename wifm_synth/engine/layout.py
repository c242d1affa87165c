"""The engine state's declared layout: every array's name, dtype, shape rule and named rows, in one spec.

Everything else is generated from ``ENGINE_ARRAYS``: the ``EngineState`` NamedTuple (field order =
spec order), ``allocate_arrays`` (zeros of the right shapes), the row-index constants
(``VOICE_STAGE``, ``OPERATOR_PHASE``, ``CHANNEL_PROGRAM_ROW``, ``ENGINE_FRAMES_OUT``,
``SCRATCH_FIFO_LEFT``, ``RING_WRITE`` …, each numbered once, by its position in an ordered name
list) and, in ``engine/abi.py``, the audio callback's pointer table and the rebuilding of the
state from it.

A shape rule is a tuple of dimensions: an int, the name of a ``Sizes`` field (known at allocation),
or ``NAMED`` — the axis whose entries are the spec's named rows. A row entry is a name, or
``(name, count)`` for a run of rows (``SCRATCH_CHANNEL_MIX + channel``).

``voices`` is the polyphony plus STEAL_FADE_VOICES columns where stolen voices fade out.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from wifm_synth.engine.tables import (
    PATCH_WIDTH,
    PROGRAM_WIDTH,
    ROUTING_WIDTH,
    ZONE_WIDTH,
)
from wifm_synth.midi import (
    MIDI_CHANNELS,
)
from wifm_synth.voice.patch import MAX_OPERATORS

BLOCK = 64  # internal block on the absolute sample grid
# A stolen voice is not cut dead (a click): it moves to one of these extra voice columns, after the
# playable ones, and fades out while its column plays the new note.
STEAL_FADE_VOICES = 4
# Voices render in groups of up to VOICE_GROUP; the group's lane feedback operators run side by side.
VOICE_GROUP = BLOCK
CACHE_LINE_INT64S = 8
NAMED = "named rows"


class Sizes(NamedTuple):
    """The sizes an engine is allocated for; shape rules name these fields."""

    patches: int  # patch_table / routing_table rows
    programs: int
    zones: int
    voices: int  # polyphony + STEAL_FADE_VOICES
    events: int  # event ring capacity (a power of two)
    staged_patches: int  # staging rows for patch loads posted through the ring


class RowNames(NamedTuple):
    """Named entries along one axis: constants ``prefix + name``, their count as ``count_name``."""

    prefix: str
    count_name: str
    entries: tuple  # name or (name, count)


class ArraySpec(NamedTuple):
    name: str
    dtype: type
    shape: tuple  # ints, Sizes field names, NAMED
    rows: RowNames | None
    contents: str

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def shape_for(self, sizes: Sizes) -> tuple[int, ...]:
        return tuple(_row_count(self.rows) if dimension == NAMED else
                     getattr(sizes, dimension) if isinstance(dimension, str) else dimension
                     for dimension in self.shape)


def _row_count(rows: RowNames) -> int:
    return sum(1 if isinstance(entry, str) else entry[1] for entry in rows.entries)


def _row_constants(rows: RowNames) -> dict[str, int]:
    constants, index = {}, 0
    for entry in rows.entries:
        name, count = (entry, 1) if isinstance(entry, str) else entry
        constants[rows.prefix + name] = index
        index += count
    constants[rows.count_name] = index
    return constants


ENGINE_ARRAYS = (
    ArraySpec("patch_table", np.float64, ("patches", PATCH_WIDTH), None, "compiled patches (engine/tables.py)"),
    ArraySpec("routing_table", np.int64, ("patches", ROUTING_WIDTH), None, "operator order, carriers, modulators"),
    ArraySpec("program_table", np.int64, ("programs", PROGRAM_WIDTH), None, "(bank, program) → zone range"),
    ArraySpec("zone_table", np.int64, ("zones", ZONE_WIDTH), None, "key/velocity range → patch row"),
    ArraySpec("voice_ints", np.int64, (NAMED, "voices"), RowNames("VOICE_", "VOICE_INT_FIELDS", (
        "STAGE",
        "CHANNEL",
        "KEY",
        "PATCH",
        "START_FRAME",  # absolute frame of the note-on
        "RELEASE_FRAME",  # absolute frame of the release (valid when RELEASED)
        "SOSTENUTO",  # 1 while the sostenuto pedal holds this note
        "SERIAL",  # note-on counter: lower is older
        "FADE_FRAME",  # absolute frame where a FADING voice began to fade
        "PRESSURE",  # polyphonic aftertouch of the voice's key
    )), "per-voice integers"),
    ArraySpec("voice_floats", np.float64, (NAMED, "voices"), RowNames("VOICE_", "VOICE_FLOAT_FIELDS", (
        "LOUDNESS",  # loudest carrier amplitude at the end of the last rendered span (for stealing)
    )), "per-voice floats"),
    ArraySpec("operators", np.float64, (NAMED, MAX_OPERATORS, "voices"), RowNames("OPERATOR_", "OPERATOR_FIELDS", (
        "PHASE",  # cycles in [0, 1)
        "HZ",  # frequency before pitch bend and vibrato
        "SCALE",  # velocity × key-level gain (linear)
        "TIME_RATE",  # envelope clock speed from rate scaling
        "ENVELOPE",  # envelope amplitude at the current frame
        "GAIN",  # envelope × scale × tremolo at the current frame (per-sample ramps start here)
        "RELEASE_DB",  # envelope level at note-off, dB
        "FEEDBACK_1",  # last two outputs (unit level) for feedback
        "FEEDBACK_2",
        "SPAN_GAIN",  # unit-level gain at the first sample of the span being rendered …
        "SPAN_GAIN_STEP",  # … its change per sample …
        "SPAN_INCREMENT",  # … and the phase increment (cycles per sample) incl. bend and vibrato
    )), "operator-major: [field, operator, voice]"),
    ArraySpec("channel_ints", np.int64, (NAMED, MIDI_CHANNELS), RowNames("CHANNEL_", "CHANNEL_INT_FIELDS", (
        "VOLUME",  # CC7
        "EXPRESSION",  # CC11
        "PAN",  # CC10
        "MOD_WHEEL",  # CC1
        "PRESSURE",  # channel aftertouch
        "SUSTAIN",  # 0/1, CC64
        "SOSTENUTO",  # 0/1, CC66
        "SOFT",  # 0/1, CC67
        "BANK_MSB",
        "BANK_LSB",
        "PROGRAM",  # requested program number
        "PROGRAM_ROW",  # program_table row that plays
        "RPN_MSB",
        "RPN_LSB",
    )), "MIDI controller values and selections per channel"),
    ArraySpec("channel_floats", np.float64, (NAMED, MIDI_CHANNELS), RowNames("CHANNEL_", "CHANNEL_FLOAT_FIELDS", (
        "BEND",  # −1 … +1
        "BEND_RANGE",  # semitones (RPN 0: CC6 semitones + CC38 cents)
        "GAIN_LEFT",  # output gains applied at the current frame (ramps start here)
        "GAIN_RIGHT",
    )), "pitch bend and output gains per channel"),
    ArraySpec("master", np.float64, (NAMED,), RowNames("MASTER_", "MASTER_FIELDS", (
        "GAIN",  # linear, on every channel's output gain (so it ramps with them)
        "A4_HZ",  # tuning: every voice's pitch follows it
    )), "the player's master settings"),
    ArraySpec("engine", np.int64, (NAMED,), RowNames("ENGINE_", "ENGINE_FIELDS", (
        "SAMPLE_RATE",
        "BLOCK_FRAME",  # absolute frame where the next internal block starts
        "FIFO_POSITION",  # samples of the last rendered block already handed out
        "FRAMES_OUT",  # frames handed to the host so far
        "NOTE_SERIAL",
        "DRUM_PROGRAM",  # program_table row for channel 10, or −1 (silent)
        "ACTIVE_VOICES",
        "PEAK_VOICES",
        "STOLEN_VOICES",
        "EVENTS_APPLIED",
        "UNKNOWN_PROGRAMS",  # notice counter: a program change asked for a program the bank lacks
        "UNKNOWN_CHANNEL",  # … details of the latest one
        "UNKNOWN_BANK",
        "UNKNOWN_PROGRAM",
        "UNKNOWN_PLAYING_ROW",
        "SILENT_DRUM_NOTES",  # notice counter: channel 10 notes without a drum program
        "DROPPED_NOTES",  # note-ons with every voice started in the same frame
        "EVERY_PROGRAM",  # 1 for a single patch: every program is its own, no notices
        "PATCHES_LOADED",  # patch-load commands applied
        "REFUSED_COMMANDS",  # command records with an unknown kind or out-of-range rows
        "INSTRUMENTS_LOADED",  # instrument-load commands applied
        "STAGED_ZONE_ROWS",  # the staged instrument (staged_programs, staged_zones): its zone count …
        "STAGED_DRUM_PROGRAM",
        "STAGED_EVERY_PROGRAM",
        "LIMITED_SAMPLES",  # output samples the safety stage (engine/safety.py) changed, live output
        "LIMITED_PEAK_CENTI_DBFS",  # … the loudest of them before limiting, 1/100 dBFS
        "LATE_PERIODS",  # engine-late: periods whose callback used more CPU time than the period lasts
        "STALLED_PERIODS",  # periods whose callback took longer than the period in wall time (engine/period_clock.py)
        "WORST_PERIOD_CPU_NS",  # the most CPU time one callback used, nanoseconds
        "WORST_PERIOD_NS",  # the longest callback, wall time, nanoseconds
    )), "clock, counters, notices"),
    ArraySpec("scratch", np.float64, (NAMED, BLOCK), RowNames("SCRATCH_", "SCRATCH_ROWS", (
        ("OPERATOR_OUT", MAX_OPERATORS),  # the current voice's operator outputs
        "MODULATION",
        "SILENCE",  # always zero
        ("CHANNEL_MIX", MIDI_CHANNELS),
        "FIFO_LEFT",  # the last rendered block, handed out to the host
        "FIFO_RIGHT",
        "LANE_PHASE",  # rows below are indexed by lane
        "LANE_INCREMENT",
        "LANE_GAIN",
        "LANE_GAIN_STEP",
        "LANE_LEVEL",
        "LANE_FEEDBACK",  # feedback index in cycles, halved (mean of two)
        "LANE_PREVIOUS_1",
        "LANE_PREVIOUS_2",
        ("LANE_OUT", BLOCK),  # [sample][lane]
    )), "block buffers (operators, mixes, fifo, lanes)"),
    ArraySpec("group_ints", np.int64, (NAMED, VOICE_GROUP), RowNames("GROUP_", "GROUP_FIELDS", (
        "VOICE",  # voice index of each group member
        "LANE",  # lane of each group member, −1 if it has no lane operator
        "AUDIBLE",  # 0 once a member can never be heard again
    )), "the voice group being rendered"),
    ArraySpec("staged_patches", np.float64, ("staged_patches", PATCH_WIDTH), None,
              "patch rows the control thread stages for a load command"),
    ArraySpec("staged_routing", np.int64, ("staged_patches", ROUTING_WIDTH), None, "their routing rows"),
    ArraySpec("staged_programs", np.int64, ("programs", PROGRAM_WIDTH), None,
              "program rows of an instrument staged for a load command"),
    ArraySpec("staged_zones", np.int64, ("zones", ZONE_WIDTH), None, "its zone rows"),
    ArraySpec("ring_events", np.int64, ("events", NAMED), RowNames("RING_", "RING_FIELDS", (
        "FRAME",
        "STATUS",  # MIDI status byte, or a command kind (engine/commands.py)
        "DATA1",
        "DATA2",
    )), "event ring records"),
    ArraySpec("ring_indices", np.int64, (NAMED,), RowNames("RING_", "RING_INDEX_WIDTH", (
        ("WRITE", CACHE_LINE_INT64S),  # producer and consumer indices on separate cache lines
        ("READ", CACHE_LINE_INT64S),
    )), "write / read counters (engine/ring.py)"),
)

ARRAY_SPECS = {spec.name: spec for spec in ENGINE_ARRAYS}
for _spec in ENGINE_ARRAYS:
    if _spec.rows is not None:
        globals().update(_row_constants(_spec.rows))
del _spec

EngineState = NamedTuple("EngineState", [(spec.name, np.ndarray) for spec in ENGINE_ARRAYS])
EngineState.__doc__ = "The engine's whole state: one preallocated C-contiguous array per ENGINE_ARRAYS entry."


def allocate_arrays(sizes: Sizes) -> EngineState:
    """Zeroed arrays of every spec, shaped for ``sizes``."""
    return EngineState(*(np.zeros(spec.shape_for(sizes), dtype=spec.dtype) for spec in ENGINE_ARRAYS))


def layout_mismatches(state: EngineState) -> list[str]:
    """Arrays of ``state`` that are not C-contiguous arrays of their spec's dtype and dimensions."""
    return [f"{spec.name} is {array.dtype} {array.shape}, the layout declares a C-contiguous "
            f"{np.dtype(spec.dtype)} array with {spec.ndim} dimensions"
            for spec, array in zip(ENGINE_ARRAYS, state, strict=True)
            if array.dtype != spec.dtype or array.ndim != spec.ndim or not array.flags.c_contiguous]


def describe_layout() -> str:
    """The layout as a table (name, dtype, shape rule, contents), for docs and debugging."""
    return "\n".join(f"{spec.name:15} {np.dtype(spec.dtype).name:8} "
                     f"{'(' + ', '.join(str(d) if d != NAMED else spec.rows.count_name for d in spec.shape) + ')':42}"
                     f"{spec.contents}" for spec in ENGINE_ARRAYS)
