"""The patch parameter schema: every field of the patch format (docs/FORMATS.md), declared once.

A :class:`Parameter` gives a field's scope (the JSON object it sits in), name, kind, unit, range,
default and a one-line description. ``SCHEMA`` lists them all, in the order files write them.
Everything else about patch fields is derived from a schema, by functions that take it as an
argument (``SCHEMA`` when left out), so a test can derive the same things from an extended schema:

- ``voice.patch.patch_classes`` generates the dataclasses (fields, types, defaults, docstrings);
- ``formats.patch_json`` reads files (types, ranges, defaults, errors naming the field path) and
  writes them;
- ``engine.tables.patch_table_layout`` gives every numeric field of the voice (``pitch``, ``lfo``)
  and of an operator (``operator``, ``envelope``) a ``patch_table`` column, in schema order;
- the fitter clamps what it writes with :meth:`Parameter.clip` and reads limits and defaults here;
- the report's operator table lists the numeric operator fields with their units.

Where a new parameter goes
--------------------------
Add one ``Parameter`` to ``SCHEMA`` at the end of its scope, with today's files in mind: its default
is what files written before it mean. That alone makes it a dataclass field, a JSON field that is
read, range-checked and written, a ``patch_table`` column (numeric kinds) and a column of the
report's operator table. What it does is then the engine's part: export its column as a named
constant in ``engine/tables.py`` (``LAYOUT.column("operator.NAME")``), read it in the kernels, and
describe it in docs/FORMATS.md.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import numpy as np

from wifm_synth.voice.topology import MAX_OPERATORS

# Scopes: the JSON objects of a patch file. The voice's own fields are in PATCH, PITCH, LFO and PITCH_ENVELOPE.
PATCH = "patch"
PITCH = "pitch"
LFO = "lfo"
PITCH_ENVELOPE = "pitch_envelope"
OPERATOR = "operator"
ENVELOPE = "envelope"
SEGMENT = "segment"  # one [duration_s, end_level_db] pair of an envelope
KEY_POINT = "key_point"  # one [key, level_db] pair of an operator's keyboard level scaling


class Kind(enum.Enum):
    NUMBER = "number"
    INTEGER = "integer"
    OPTIONAL_NUMBER = "number or null"
    OPTIONAL_INTEGER = "integer or null"
    BOOLEAN = "true or false"
    TEXT = "string"
    JSON_OBJECT = "free-form object"
    OPERATOR_INDICES = "list of operator indices"
    GROUP = "object"  # the fields of ``child`` scope, one object
    GROUP_LIST = "list of objects"  # ``low``..``high`` objects of ``child`` scope
    PAIR_LIST = "list of arrays"  # ``low``..``high`` arrays holding the ``child`` scope's fields in order


NUMERIC_KINDS = frozenset({Kind.NUMBER, Kind.INTEGER, Kind.OPTIONAL_NUMBER, Kind.OPTIONAL_INTEGER})


class _Required:
    """The default of a field every patch must give (it has no default)."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Parameter:
    """One patch field. For the list kinds ``low``..``high`` is the number of items."""

    scope: str
    name: str
    kind: Kind
    description: str
    unit: str = ""
    default: Any = REQUIRED  # immutable: tuples and read-only mappings; dataclasses get fresh copies
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False  # the range excludes ``low`` itself
    child: str | None = None  # the scope of the nested fields, for GROUP, GROUP_LIST and PAIR_LIST
    # A file must give it, although code building a Patch may leave it at its default.
    required_in_file: bool = False
    # False for numeric and boolean fields the engine does not read from patch_table (algorithm and carrier
    # go to routing_table).
    in_patch_table: bool = True

    @property
    def key(self) -> str:
        """``scope.name``, unique in a schema: ``operator.ratio``, ``envelope.release_s``."""
        return f"{self.scope}.{self.name}"

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC_KINDS

    @property
    def limits(self) -> dict[str, Any]:
        """The range as ``FieldReader.number`` keyword arguments."""
        return {"low": self.low, "high": self.high, "low_open": self.low_open}

    def clip(self, values):
        """``values`` (a number or array) moved into the range; an open ``low`` becomes the next number above it."""
        low = np.nextafter(self.low, math.inf) if self.low_open else self.low
        return np.clip(values, low, self.high)


@dataclass(frozen=True)
class Scope:
    name: str
    class_name: str | None  # the dataclass it reads into; None: a tuple of its fields (envelope segments)
    description: str


# Compared and hashed by identity: classes and table layouts derived from a schema are cached per schema.
@dataclass(frozen=True, eq=False)
class PatchSchema:
    scopes: tuple[Scope, ...]
    parameters: tuple[Parameter, ...]

    def __getitem__(self, key: str) -> Parameter:
        for parameter in self.parameters:
            if parameter.key == key:
                return parameter
        raise KeyError(key)

    def scope(self, name: str) -> Scope:
        return next(scope for scope in self.scopes if scope.name == name)

    def fields(self, scope: str) -> tuple[Parameter, ...]:
        """The fields of ``scope``, in file order."""
        return tuple(parameter for parameter in self.parameters if parameter.scope == scope)

    def with_parameter(self, parameter: Parameter) -> PatchSchema:
        """A new schema with ``parameter`` added after the last field of its scope."""
        if any(existing.key == parameter.key for existing in self.parameters):
            raise ValueError(f"{parameter.key} is already in the schema")
        last = max(index for index, existing in enumerate(self.parameters) if existing.scope == parameter.scope)
        return replace(self, parameters=self.parameters[:last + 1] + (parameter,) + self.parameters[last + 1:])


SCHEMA = PatchSchema(
    scopes=(
        Scope(PATCH, "Patch", "An FM voice: pitch reference, operators with their routing, LFO and free metadata."),
        Scope(PITCH, "Pitch", "The key and velocity the patch was fitted at, and its tuning."),
        Scope(LFO, "Lfo", "One LFO per voice, started at note-on: vibrato and tremolo."),
        Scope(PITCH_ENVELOPE, "PitchEnvelope",
              "A pitch offset of every operator over time: from start_cents through three stages, linear in "
              "cents, the third held while the key is down, then towards release_cents (all 0: none)."),
        Scope(OPERATOR, "Operator", "One sine oscillator: frequency, level, routing, envelope and key/velocity scaling."),
        Scope(ENVELOPE, "Envelope", "Segments after note-on (the first a linear attack from silence), then the release."),
        Scope(SEGMENT, None, "One envelope segment: how long it takes and the level it ends at."),
        Scope(KEY_POINT, None, "One point of keyboard level scaling: a key and the operator's gain there."),
    ),
    parameters=(
        Parameter(PATCH, "name", Kind.TEXT, "what reports and banks call the patch", default="untitled"),
        Parameter(PATCH, "pitch", Kind.GROUP, "reference key, velocity and tuning", child=PITCH),
        Parameter(PATCH, "algorithm", Kind.OPTIONAL_INTEGER,
                  "DX7 algorithm routing exactly 6 operators, or null for the operators' own routing",
                  default=None, low=1, high=32, in_patch_table=False),
        Parameter(PATCH, "operators", Kind.GROUP_LIST, "the operators, index 0 first", low=1, high=MAX_OPERATORS,
                  child=OPERATOR),
        Parameter(PATCH, "lfo", Kind.GROUP, "vibrato and tremolo", child=LFO),
        Parameter(PATCH, "metadata", Kind.JSON_OBJECT, "free-form; the fitter records its source and settings",
                  default=MappingProxyType({})),
        Parameter(PATCH, "pitch_envelope", Kind.GROUP, "pitch offset over time (a DX7 pitch EG)",
                  child=PITCH_ENVELOPE),
        Parameter(PATCH, "oscillator_key_sync", Kind.BOOLEAN,
                  "operators start at phase 0 on note-on; false: they run freely (a DX7's OSC KEY SYNC off)",
                  default=True),

        Parameter(PITCH, "reference_note", Kind.INTEGER, "the key the patch was fitted at; key scaling is relative to it",
                  unit="MIDI key", default=60, low=0, high=127),
        Parameter(PITCH, "reference_velocity", Kind.INTEGER, "the velocity at which operator levels are exact",
                  unit="MIDI velocity", default=100, low=1, high=127),
        Parameter(PITCH, "tune_cents", Kind.NUMBER, "tuning of every key, reproducing the fitted sample's",
                  unit="cents", default=0.0, low=-100.0, high=100.0),

        Parameter(LFO, "rate_hz", Kind.NUMBER, "LFO frequency", unit="Hz", default=5.5, low=0.0, high=50.0),
        Parameter(LFO, "delay_s", Kind.NUMBER, "time over which both depths fade in after note-on",
                  unit="s", default=0.0, low=0.0, high=10.0),
        Parameter(LFO, "pitch_depth_cents", Kind.NUMBER, "vibrato depth", unit="cents", default=0.0,
                  low=0.0, high=1200.0),
        Parameter(LFO, "amp_depth_db", Kind.NUMBER, "tremolo depth: carriers swing between 0 and -depth dB",
                  unit="dB", default=0.0, low=0.0, high=60.0),
        Parameter(LFO, "wave", Kind.INTEGER,
                  "0 sine, 1 triangle (lowest at phase 0, highest at 1/2), 2 saw down, 3 saw up, 4 square (high "
                  "for the first half cycle), 5 sample-and-hold (a pseudo-random level held for each cycle)",
                  default=0, low=0, high=5),
        Parameter(LFO, "start_phase", Kind.NUMBER, "where in its cycle the LFO is at note-on", unit="cycles",
                  default=0.0, low=0.0, high=1.0),

        Parameter(PITCH_ENVELOPE, "start_cents", Kind.NUMBER, "offset at note-on", unit="cents", default=0.0,
                  low=-4800.0, high=4800.0),
        *(parameter for stage in (1, 2, 3) for parameter in (
            Parameter(PITCH_ENVELOPE, f"stage_{stage}_s", Kind.NUMBER, f"time to move to stage {stage}'s offset",
                      unit="s", default=0.0, low=0.0, high=600.0),
            Parameter(PITCH_ENVELOPE, f"stage_{stage}_cents", Kind.NUMBER,
                      f"offset at the end of stage {stage}" + ("; held until the note-off" if stage == 3 else ""),
                      unit="cents", default=0.0, low=-4800.0, high=4800.0))),
        Parameter(PITCH_ENVELOPE, "release_cents", Kind.NUMBER, "offset the pitch moves to after note-off",
                  unit="cents", default=0.0, low=-4800.0, high=4800.0),
        Parameter(PITCH_ENVELOPE, "release_cents_per_s", Kind.NUMBER,
                  "how fast it moves there from wherever it is at note-off", unit="cents/s", default=0.0,
                  low=0.0, high=1.0e6),

        Parameter(OPERATOR, "ratio", Kind.NUMBER, "frequency as a multiple of the played note's",
                  unit="× f(n)", default=1.0, low=0.0, high=64.0, low_open=True),
        Parameter(OPERATOR, "fixed_hz", Kind.OPTIONAL_NUMBER, "a fixed frequency instead of the ratio, or null",
                  unit="Hz", default=None, low=0.0, high=20000.0, low_open=True),
        Parameter(OPERATOR, "detune_cents", Kind.NUMBER, "frequency offset", unit="cents", default=0.0,
                  low=-100.0, high=100.0),
        Parameter(OPERATOR, "level", Kind.NUMBER,
                  "a carrier's output amplitude (1 = full scale); a modulator's peak modulation index",
                  unit="amplitude or rad", default=1.0, low=0.0, high=64.0),
        Parameter(OPERATOR, "carrier", Kind.BOOLEAN, "summed to the output", default=True, in_patch_table=False),
        Parameter(OPERATOR, "modulators", Kind.OPERATOR_INDICES, "operators whose outputs modulate this one's phase",
                  default=()),
        Parameter(OPERATOR, "feedback", Kind.NUMBER, "self-modulation index", unit="rad", default=0.0,
                  low=0.0, high=16.0),
        Parameter(OPERATOR, "envelope", Kind.GROUP, "level over time", child=ENVELOPE),
        Parameter(OPERATOR, "velocity_sensitivity", Kind.NUMBER,
                  "gain of 40 · this · log10(velocity / reference_velocity) dB (with key level: at most "
                  "SCALING_GAIN_CEILING_DB)", default=1.0, low=0.0, high=2.0),
        Parameter(OPERATOR, "key_level_db_per_octave", Kind.NUMBER,
                  "gain per octave above the reference note (with velocity: at most SCALING_GAIN_CEILING_DB)",
                  unit="dB/octave", default=0.0, low=-24.0, high=24.0),
        Parameter(OPERATOR, "rate_scaling", Kind.NUMBER,
                  "envelope times × 2^(-this · octaves above the reference note)", default=0.0, low=0.0, high=1.0),
        Parameter(OPERATOR, "key_levels", Kind.PAIR_LIST,
                  "[key, level_db] points of keyboard level scaling, on top of key_level_db_per_octave: linear "
                  "between the points (in key order; at a key two points share, the later one), the first and "
                  "last level held beyond them",
                  default=(), low=0, high=96, child=KEY_POINT),

        Parameter(ENVELOPE, "segments", Kind.PAIR_LIST, "[duration_s, end_level_db] after note-on; the last level holds",
                  default=((0.005, 0.0),), low=1, high=8, child=SEGMENT, required_in_file=True),
        Parameter(ENVELOPE, "release_s", Kind.NUMBER, "after note-off the level falls 60 dB per this time",
                  unit="s", default=0.3, low=0.001, high=60.0),

        Parameter(SEGMENT, "duration_s", Kind.NUMBER, "segment length", unit="s", low=0.0, high=60.0),
        Parameter(SEGMENT, "end_level_db", Kind.NUMBER, "level at the segment's end, re the operator's level",
                  unit="dB", low=-120.0, high=24.0),

        Parameter(KEY_POINT, "key", Kind.NUMBER, "where the point is", unit="MIDI key", low=0.0, high=127.0),
        Parameter(KEY_POINT, "level_db", Kind.NUMBER, "the operator's gain at that key", unit="dB",
                  low=-120.0, high=96.0),
    ),
)

# Velocity and key scaling together may raise an operator's level by at most this (the engine clamps
# their sum, as a DX7's output level saturates): with ``reference_velocity`` 1 and the steepest key
# scaling, their product alone would reach +400 dB, and no range of a single field can prevent that.
SCALING_GAIN_CEILING_DB = 24.0


def db_gain(db: float) -> float:
    return 10.0 ** (db / 20.0)


def voice_peak_ceiling(schema: PatchSchema = SCHEMA) -> float:
    """The largest amplitude one voice can reach (1 = full scale), from the schema's ranges.

    A carrier's output is level × envelope × velocity-and-key gain × tremolo (at most 0 dB) × sin, and a
    voice sums at most ``operators.high`` carriers; feedback and modulation change only the sine's phase.
    A channel's volume, expression and pan only attenuate.
    """
    return (schema[f"{PATCH}.operators"].high * schema[f"{OPERATOR}.level"].high
            * db_gain(schema[f"{SEGMENT}.end_level_db"].high) * db_gain(SCALING_GAIN_CEILING_DB))
