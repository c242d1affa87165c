"""Compile a Patch or Bank into the flat, read-only arrays the engine's kernels index.

All patches of an instrument go into one ``patch_table`` (float64, one row per patch) and one
``routing_table`` (int64, one row per patch); the programs and their key × velocity zones go into
``program_table`` and ``zone_table``. Column offsets are the named constants below, so a Numba
kernel (or a C callback) reads ``patch_table[slot, OPERATORS + k * OPERATOR_WIDTH + OP_LEVEL]``.
The patch_table's columns come from the parameter schema (``patch_table_layout``): every numeric
field of the voice, then blocks of every numeric field of an operator, in schema order; the
constants name the columns the engine reads.

Units are converted once here: envelope segments become absolute start times, durations, end
levels and the loudest level still to come (which lets the engine free a voice as soon as it can
never be heard again); a modulator's level is kept in radians (the engine converts to cycles).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from wifm_synth.errors import PatchError
from wifm_synth.formats.bank_json import Bank
from wifm_synth.voice.patch import Patch
from wifm_synth.voice.schema import OPERATOR, PATCH, SCHEMA, Kind, PatchSchema
from wifm_synth.voice.topology import MAX_OPERATORS


@dataclass(frozen=True)
class Column:
    """A patch_table column holding the schema field ``key``, found at ``attributes`` below the patch or operator."""

    key: str
    attributes: tuple[str, ...]
    index: int


@dataclass(frozen=True)
class PatchTableLayout:
    """Where each field sits in a patch_table row: the voice's columns, then ``operator_count`` operator blocks.

    An operator block is its schema columns, the segment count, then ``max_segments`` cells of
    SEGMENT_WIDTH values, then the key-level point count and ``max_key_points`` cells of
    KEY_POINT_WIDTH values (in key order).
    """

    voice_columns: tuple[Column, ...]
    operator_columns: tuple[Column, ...]
    operator_count: int
    max_segments: int
    max_key_points: int

    @property
    def operators(self) -> int:
        return len(self.voice_columns)

    @property
    def segment_count(self) -> int:
        return len(self.operator_columns)

    @property
    def segments(self) -> int:
        return self.segment_count + 1

    @property
    def key_point_count(self) -> int:
        return self.segments + SEGMENT_WIDTH * self.max_segments

    @property
    def key_points(self) -> int:
        return self.key_point_count + 1

    @property
    def operator_width(self) -> int:
        return self.key_points + KEY_POINT_WIDTH * self.max_key_points

    @property
    def patch_width(self) -> int:
        return self.operators + self.operator_width * self.operator_count

    def column(self, key: str) -> int:
        """The column of schema field ``key``: in the row for a voice field, in an operator block for an operator's."""
        for column in self.voice_columns + self.operator_columns:
            if column.key == key:
                return column.index
        raise KeyError(f"{key}: not a patch_table column")


def _numeric_fields(schema: PatchSchema, scope: str, attributes: tuple[str, ...] = ()) -> list[tuple[str, tuple]]:
    """(key, attributes) of the numeric and boolean (0/1) fields of ``scope``, then of the objects nested in it
    (not in lists)."""
    fields = schema.fields(scope)
    found = [(field.key, (*attributes, field.name)) for field in fields
             if (field.numeric or field.kind is Kind.BOOLEAN) and field.in_patch_table]
    for field in fields:
        if field.kind is Kind.GROUP:
            found += _numeric_fields(schema, field.child, (*attributes, field.name))
    return found


def _columns(fields: list[tuple[str, tuple]]) -> tuple[Column, ...]:
    return tuple(Column(key, attributes, index) for index, (key, attributes) in enumerate(fields))


@functools.cache
def patch_table_layout(schema: PatchSchema = SCHEMA) -> PatchTableLayout:
    """The patch_table layout for ``schema``: adding a numeric field to it adds a column."""
    return PatchTableLayout(
        voice_columns=_columns(_numeric_fields(schema, PATCH)),
        operator_columns=_columns(_numeric_fields(schema, OPERATOR)),
        operator_count=int(schema["patch.operators"].high),
        max_segments=int(schema["envelope.segments"].high),
        max_key_points=int(schema["operator.key_levels"].high),
    )


# Cells of one envelope segment: the engine's own quantities, derived from the segment's fields.
SEG_START_S = 0
SEG_DURATION_S = 1
SEG_END_DB = 2
SEG_FUTURE_PEAK_DB = 3  # loudest end level of this and all later segments
SEGMENT_WIDTH = 4
# Cells of one keyboard level-scaling point: its key and level, as in the patch.
KEY_POINT_KEY = 0
KEY_POINT_LEVEL_DB = 1
KEY_POINT_WIDTH = 2

LAYOUT = patch_table_layout(SCHEMA)
# --- patch_table columns: per patch ---
REFERENCE_NOTE = LAYOUT.column("pitch.reference_note")
REFERENCE_VELOCITY = LAYOUT.column("pitch.reference_velocity")
TUNE_CENTS = LAYOUT.column("pitch.tune_cents")
LFO_RATE_HZ = LAYOUT.column("lfo.rate_hz")
LFO_DELAY_S = LAYOUT.column("lfo.delay_s")
LFO_PITCH_CENTS = LAYOUT.column("lfo.pitch_depth_cents")
LFO_AMP_DB = LAYOUT.column("lfo.amp_depth_db")
LFO_WAVE = LAYOUT.column("lfo.wave")
LFO_START_PHASE = LAYOUT.column("lfo.start_phase")
OSCILLATOR_KEY_SYNC = LAYOUT.column("patch.oscillator_key_sync")  # 1: phases start at 0; 0: free-running
LFO_SINE, LFO_TRIANGLE, LFO_SAW_DOWN, LFO_SAW_UP, LFO_SQUARE, LFO_SAMPLE_AND_HOLD = range(6)  # lfo.wave codes
PITCH_ENV_START_CENTS = LAYOUT.column("pitch_envelope.start_cents")
PITCH_ENV_STAGES = LAYOUT.column("pitch_envelope.stage_1_s")  # then (seconds, cents) for stages 1, 2, 3
PITCH_ENV_STAGE_COUNT = 3
PITCH_ENV_RELEASE_CENTS = LAYOUT.column("pitch_envelope.release_cents")
PITCH_ENV_RELEASE_CENTS_PER_S = LAYOUT.column("pitch_envelope.release_cents_per_s")
assert [LAYOUT.column(f"pitch_envelope.stage_{stage}_{unit}") for stage in (1, 2, 3) for unit in ("s", "cents")] == \
    list(range(PITCH_ENV_STAGES, PITCH_ENV_STAGES + 2 * PITCH_ENV_STAGE_COUNT)), "pitch EG stages must be adjacent"
OPERATORS = LAYOUT.operators  # first operator block

# --- offsets inside one operator block ---
OP_RATIO = LAYOUT.column("operator.ratio")
OP_FIXED_HZ = LAYOUT.column("operator.fixed_hz")  # 0 = follows the key
OP_DETUNE_CENTS = LAYOUT.column("operator.detune_cents")
OP_LEVEL = LAYOUT.column("operator.level")  # carrier: linear amplitude; modulator: peak index in radians
OP_FEEDBACK = LAYOUT.column("operator.feedback")  # self-modulation index, radians
OP_VELOCITY_SENSITIVITY = LAYOUT.column("operator.velocity_sensitivity")
OP_KEY_LEVEL_DB_PER_OCTAVE = LAYOUT.column("operator.key_level_db_per_octave")
OP_RATE_SCALING = LAYOUT.column("operator.rate_scaling")
OP_RELEASE_S = LAYOUT.column("envelope.release_s")
OP_SEGMENT_COUNT = LAYOUT.segment_count
OP_SEGMENTS = LAYOUT.segments  # then SEGMENT_WIDTH values per segment
OP_KEY_POINT_COUNT = LAYOUT.key_point_count
OP_KEY_POINTS = LAYOUT.key_points  # then KEY_POINT_WIDTH values per point, in key order
OPERATOR_WIDTH = LAYOUT.operator_width
PATCH_WIDTH = LAYOUT.patch_width

# --- routing_table columns: per patch ---
OPERATOR_COUNT = 0
EVALUATION_ORDER = 1  # MAX_OPERATORS operator indices, modulators before the operators they modulate
IS_CARRIER = EVALUATION_ORDER + MAX_OPERATORS  # MAX_OPERATORS flags
MODULATOR_COUNT = IS_CARRIER + MAX_OPERATORS  # MAX_OPERATORS counts
MODULATORS = MODULATOR_COUNT + MAX_OPERATORS  # MAX_OPERATORS rows of MAX_OPERATORS - 1 indices
# The first operator with feedback and no modulation input, or NO_OPERATOR: the engine renders it for
# many voices at once, because a feedback loop is otherwise limited by one sample's latency.
LANE_FEEDBACK_OPERATOR = MODULATORS + MAX_OPERATORS * (MAX_OPERATORS - 1)
ROUTING_WIDTH = LANE_FEEDBACK_OPERATOR + 1
NO_OPERATOR = -1

# --- program_table columns ---
PROGRAM_BANK = 0
PROGRAM_NUMBER = 1
PROGRAM_FIRST_ZONE = 2
PROGRAM_ZONE_COUNT = 3
PROGRAM_WIDTH = 4

# --- zone_table columns ---
ZONE_KEY_LO = 0
ZONE_KEY_HI = 1
ZONE_VEL_LO = 2
ZONE_VEL_HI = 3
ZONE_PATCH = 4
ZONE_WIDTH = 5

NO_DRUM_PROGRAM = -1

ZoneEntry = tuple[int, int, int, int, int, int, Patch]  # (bank, program, key_lo, key_hi, vel_lo, vel_hi, patch)
Instrument = Patch | Bank | Sequence[ZoneEntry]


class CompiledInstrument(NamedTuple):
    patch_table: np.ndarray  # float64 (patches, PATCH_WIDTH)
    routing_table: np.ndarray  # int64 (patches, ROUTING_WIDTH)
    program_table: np.ndarray  # int64 (programs, PROGRAM_WIDTH), sorted by (bank, program)
    zone_table: np.ndarray  # int64 (zones, ZONE_WIDTH)
    drum_program: int  # row of program_table that plays MIDI channel 10, or NO_DRUM_PROGRAM
    patches: tuple[Patch, ...]  # patch_table row → Patch
    plays_every_program: bool  # a single Patch: its one program row answers every program change


def _field_value(owner: Any, attributes: tuple[str, ...]) -> float:
    for attribute in attributes:
        owner = getattr(owner, attribute)
    # An optional number left out (null) is 0 in the table: fixed_hz 0 means "follows the key".
    return 0.0 if owner is None else owner


def patch_row(patch: Patch, layout: PatchTableLayout = LAYOUT) -> np.ndarray:
    """``patch`` as one patch_table row laid out by ``layout``."""
    row = np.zeros(layout.patch_width)
    for column in layout.voice_columns:
        row[column.index] = _field_value(patch, column.attributes)
    for index, operator in enumerate(patch.operators):
        block = row[layout.operators + index * layout.operator_width: layout.operators + (index + 1) * layout.operator_width]
        for column in layout.operator_columns:
            block[column.index] = _field_value(operator, column.attributes)
        segments = operator.envelope.segments
        block[layout.segment_count] = len(segments)
        start = 0.0
        end_levels = [level for _, level in segments]
        for number, (duration, level) in enumerate(segments):
            first = layout.segments + number * SEGMENT_WIDTH
            cell = block[first: first + SEGMENT_WIDTH]
            cell[SEG_START_S] = start
            cell[SEG_DURATION_S] = duration
            cell[SEG_END_DB] = level
            cell[SEG_FUTURE_PEAK_DB] = max(end_levels[number:])
            start += duration
        points = sorted(operator.key_levels, key=lambda point: point[0])  # stable: equal keys keep file order
        block[layout.key_point_count] = len(points)
        for number, (key, level_db) in enumerate(points):
            first = layout.key_points + number * KEY_POINT_WIDTH
            block[first + KEY_POINT_KEY] = key
            block[first + KEY_POINT_LEVEL_DB] = level_db
    return row


def _routing_row(patch: Patch) -> np.ndarray:
    topology = patch.check_routing()
    row = np.zeros(ROUTING_WIDTH, dtype=np.int64)
    row[OPERATOR_COUNT] = len(patch.operators)
    row[LANE_FEEDBACK_OPERATOR] = next(
        (index for index, operator in enumerate(patch.operators)
         if operator.feedback > 0.0 and not topology.modulators[index]), NO_OPERATOR)
    for slot, index in enumerate(topology.order):
        row[EVALUATION_ORDER + slot] = index
    for index, sources in enumerate(topology.modulators):
        row[IS_CARRIER + index] = int(topology.carriers[index])
        row[MODULATOR_COUNT + index] = len(sources)
        for position, source in enumerate(sources):
            row[MODULATORS + index * (MAX_OPERATORS - 1) + position] = source
    return row


def _zone_entries(instrument: Instrument) -> tuple[list[ZoneEntry], tuple[int, int] | None]:
    if isinstance(instrument, Patch):
        return [(0, 0, 0, 127, 1, 127, instrument)], None
    if isinstance(instrument, Bank):
        drums = instrument.drum_program()
        return instrument.zone_entries(), None if drums is None else (drums.bank, drums.program)
    if not isinstance(instrument, (list, tuple)):
        raise PatchError(f"instrument: must be a Patch, a Bank or a list of zone entries, got {type(instrument).__name__}")
    entries = list(instrument)
    if not entries:
        raise PatchError("instrument: no zones to play")
    for number, entry in enumerate(entries):
        if len(entry) != 7 or not isinstance(entry[6], Patch):
            raise PatchError(f"zones[{number}]: must be (bank, program, key_lo, key_hi, vel_lo, vel_hi, Patch)")
        bank, program, key_lo, key_hi, vel_lo, vel_hi, _ = entry
        if not (0 <= key_lo <= key_hi <= 127 and 1 <= vel_lo <= vel_hi <= 127
                and 0 <= bank <= 16383 and 0 <= program <= 127):
            raise PatchError(f"zones[{number}]: bank/program/key/velocity out of range")
    return entries, None


def compile_instrument(instrument: Instrument) -> CompiledInstrument:
    """Flatten a Patch (plays every program and key), a Bank, or a list of zone entries."""
    entries, drums = _zone_entries(instrument)
    patches: list[Patch] = []
    slot_of: dict[int, int] = {}
    for entry in entries:
        if id(entry[6]) not in slot_of:
            slot_of[id(entry[6])] = len(patches)
            patches.append(entry[6])
    programs = sorted({(entry[0], entry[1]) for entry in entries})
    program_table = np.zeros((len(programs), PROGRAM_WIDTH), dtype=np.int64)
    zone_rows = []
    for row, (bank, program) in enumerate(programs):
        zones = [entry for entry in entries if (entry[0], entry[1]) == (bank, program)]
        program_table[row] = (bank, program, len(zone_rows), len(zones))
        zone_rows += [(key_lo, key_hi, vel_lo, vel_hi, slot_of[id(patch)])
                      for _, _, key_lo, key_hi, vel_lo, vel_hi, patch in zones]
    drum_program = NO_DRUM_PROGRAM
    if drums is not None:
        drum_program = programs.index(drums) if drums in programs else NO_DRUM_PROGRAM
    return CompiledInstrument(
        patch_table=np.ascontiguousarray([patch_row(patch) for patch in patches], dtype=np.float64),
        routing_table=np.ascontiguousarray([_routing_row(patch) for patch in patches], dtype=np.int64),
        program_table=program_table,
        zone_table=np.asarray(zone_rows, dtype=np.int64).reshape(-1, ZONE_WIDTH),
        drum_program=drum_program,
        patches=tuple(patches),
        plays_every_program=isinstance(instrument, Patch),
    )
