"""Compile a Patch or Bank into the flat, read-only arrays the engine's kernels index.

All patches of an instrument go into one ``patch_table`` (float64, one row per patch) and one
``routing_table`` (int64, one row per patch); the programs and their key × velocity zones go into
``program_table`` and ``zone_table``. Column offsets are the named constants below, so a Numba
kernel (or a C callback) reads ``patch_table[slot, OPERATORS + k * OPERATOR_WIDTH + OP_LEVEL]``.

Units are converted once here: envelope segments become absolute start times, durations, end
levels and the loudest level still to come (which lets the engine free a voice as soon as it can
never be heard again); a modulator's level is kept in radians (the engine converts to cycles).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from wifm_synth.errors import PatchError
from wifm_synth.formats.bank_json import Bank
from wifm_synth.voice.patch import MAX_ENVELOPE_SEGMENTS, MAX_OPERATORS, Patch

# --- patch_table columns: per patch ---
REFERENCE_NOTE = 0
REFERENCE_VELOCITY = 1
TUNE_CENTS = 2
LFO_RATE_HZ = 3
LFO_DELAY_S = 4
LFO_PITCH_CENTS = 5
LFO_AMP_DB = 6
OPERATORS = 8  # first operator block

# --- offsets inside one operator block ---
OP_RATIO = 0
OP_FIXED_HZ = 1  # 0 = follows the key
OP_DETUNE_CENTS = 2
OP_LEVEL = 3  # carrier: linear amplitude; modulator: peak index in radians
OP_FEEDBACK = 4  # self-modulation index, radians
OP_VELOCITY_SENSITIVITY = 5
OP_KEY_LEVEL_DB_PER_OCTAVE = 6
OP_RATE_SCALING = 7
OP_RELEASE_S = 8
OP_SEGMENT_COUNT = 9
OP_SEGMENTS = 10  # then SEGMENT_WIDTH values per segment
SEG_START_S = 0
SEG_DURATION_S = 1
SEG_END_DB = 2
SEG_FUTURE_PEAK_DB = 3  # loudest end level of this and all later segments
SEGMENT_WIDTH = 4
OPERATOR_WIDTH = OP_SEGMENTS + SEGMENT_WIDTH * MAX_ENVELOPE_SEGMENTS
PATCH_WIDTH = OPERATORS + OPERATOR_WIDTH * MAX_OPERATORS

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


def _patch_row(patch: Patch) -> np.ndarray:
    row = np.zeros(PATCH_WIDTH)
    row[REFERENCE_NOTE] = patch.pitch.reference_note
    row[REFERENCE_VELOCITY] = patch.pitch.reference_velocity
    row[TUNE_CENTS] = patch.pitch.tune_cents
    row[LFO_RATE_HZ] = patch.lfo.rate_hz
    row[LFO_DELAY_S] = patch.lfo.delay_s
    row[LFO_PITCH_CENTS] = patch.lfo.pitch_depth_cents
    row[LFO_AMP_DB] = patch.lfo.amp_depth_db
    for index, operator in enumerate(patch.operators):
        block = row[OPERATORS + index * OPERATOR_WIDTH: OPERATORS + (index + 1) * OPERATOR_WIDTH]
        block[OP_RATIO] = operator.ratio
        block[OP_FIXED_HZ] = 0.0 if operator.fixed_hz is None else operator.fixed_hz
        block[OP_DETUNE_CENTS] = operator.detune_cents
        block[OP_LEVEL] = operator.level
        block[OP_FEEDBACK] = operator.feedback
        block[OP_VELOCITY_SENSITIVITY] = operator.velocity_sensitivity
        block[OP_KEY_LEVEL_DB_PER_OCTAVE] = operator.key_level_db_per_octave
        block[OP_RATE_SCALING] = operator.rate_scaling
        block[OP_RELEASE_S] = operator.envelope.release_s
        segments = operator.envelope.segments
        block[OP_SEGMENT_COUNT] = len(segments)
        start = 0.0
        end_levels = [level for _, level in segments]
        for number, (duration, level) in enumerate(segments):
            cell = block[OP_SEGMENTS + number * SEGMENT_WIDTH: OP_SEGMENTS + (number + 1) * SEGMENT_WIDTH]
            cell[SEG_START_S] = start
            cell[SEG_DURATION_S] = duration
            cell[SEG_END_DB] = level
            cell[SEG_FUTURE_PEAK_DB] = max(end_levels[number:])
            start += duration
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
        patch_table=np.ascontiguousarray([_patch_row(patch) for patch in patches], dtype=np.float64),
        routing_table=np.ascontiguousarray([_routing_row(patch) for patch in patches], dtype=np.int64),
        program_table=program_table,
        zone_table=np.asarray(zone_rows, dtype=np.int64).reshape(-1, ZONE_WIDTH),
        drum_program=drum_program,
        patches=tuple(patches),
        plays_every_program=isinstance(instrument, Patch),
    )
