"""The patch model (docs/FORMATS.md): dataclasses, validation with field paths, JSON io."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from wifm_synth.errors import PatchError
from wifm_synth.formats.atomic import atomic_write_json, read_json
from wifm_synth.formats.fields import FieldReader, read_document
from wifm_synth.voice.topology import Topology

PATCH_FORMAT = "wifm-patch"
PATCH_VERSION = 1
MAX_OPERATORS = 6
MAX_ENVELOPE_SEGMENTS = 8
LEVEL_DB_RANGE = (-120.0, 24.0)
SEGMENT_SECONDS_RANGE = (0.0, 60.0)
RELEASE_SECONDS_RANGE = (0.001, 60.0)


@dataclass
class Envelope:
    """``segments``: ``(duration_s, end_level_db)``; first one is a linear attack from silence."""

    segments: list[tuple[float, float]] = field(default_factory=lambda: [(0.005, 0.0)])
    release_s: float = 0.3


@dataclass
class Operator:
    ratio: float = 1.0
    fixed_hz: float | None = None
    detune_cents: float = 0.0
    level: float = 1.0
    carrier: bool = True
    modulators: list[int] = field(default_factory=list)
    feedback: float = 0.0
    envelope: Envelope = field(default_factory=Envelope)
    velocity_sensitivity: float = 1.0
    key_level_db_per_octave: float = 0.0
    rate_scaling: float = 0.0


@dataclass
class Pitch:
    reference_note: int = 60
    reference_velocity: int = 100
    tune_cents: float = 0.0


@dataclass
class Lfo:
    rate_hz: float = 5.5
    delay_s: float = 0.0
    pitch_depth_cents: float = 0.0
    amp_depth_db: float = 0.0


@dataclass
class Patch:
    operators: list[Operator]
    name: str = "untitled"
    pitch: Pitch = field(default_factory=Pitch)
    algorithm: int | None = None
    lfo: Lfo = field(default_factory=Lfo)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def topology(self) -> Topology:
        """The operator graph: the DX7 algorithm's when ``algorithm`` is set, else the operators' own fields."""
        if self.algorithm is not None:
            if len(self.operators) != MAX_OPERATORS:
                raise PatchError(f"operators: algorithm {self.algorithm} needs exactly {MAX_OPERATORS} operators")
            return Topology.from_algorithm(self.algorithm)
        return Topology.from_routing([operator.carrier for operator in self.operators],
                                     [operator.modulators for operator in self.operators])

    def check_routing(self, source: str | os.PathLike | None = None) -> Topology:
        """The topology, after checking that only operators it lets feed back have feedback."""
        try:
            topology = self.topology
        except PatchError as error:
            raise PatchError(error.reason, source if source is not None else self.name) from None
        for index, operator in enumerate(self.operators):
            if operator.feedback != 0.0 and not topology.allows_feedback(index):
                allowed = ", ".join(map(str, topology.feedback_operators))
                raise PatchError(f"operators[{index}].feedback: algorithm {self.algorithm} feeds back operator "
                                 f"{allowed} only, so this must be 0", source if source is not None else self.name)
        return topology

    def to_dict(self) -> dict[str, Any]:
        document = {"format": PATCH_FORMAT, "version": PATCH_VERSION}
        document.update(dataclasses.asdict(self))
        for operator in document["operators"]:
            operator["envelope"]["segments"] = [list(s) for s in operator["envelope"]["segments"]]
        # Keep the documented key order: header, name, pitch, algorithm, operators, lfo, metadata.
        order = ["format", "version", "name", "pitch", "algorithm", "operators", "lfo", "metadata"]
        return {key: document[key] for key in order}


def _envelope_from(fields: FieldReader) -> Envelope:
    raw_segments = fields.array("segments")
    if not 1 <= len(raw_segments) <= MAX_ENVELOPE_SEGMENTS:
        fields.fail(fields.child("segments"), f"must have 1 to {MAX_ENVELOPE_SEGMENTS} segments")
    segments = []
    for index, raw in enumerate(raw_segments):
        where = f"{fields.child('segments')}[{index}]"
        if not isinstance(raw, list) or len(raw) != 2:
            fields.fail(where, "must be [duration_s, end_level_db]")
        pair = FieldReader({"duration_s": raw[0], "end_level_db": raw[1]}, where, fields.source)
        segments.append(
            (pair.number("duration_s", low=SEGMENT_SECONDS_RANGE[0], high=SEGMENT_SECONDS_RANGE[1]),
             pair.number("end_level_db", low=LEVEL_DB_RANGE[0], high=LEVEL_DB_RANGE[1]))
        )
    release = fields.number("release_s", default=0.3, low=RELEASE_SECONDS_RANGE[0], high=RELEASE_SECONDS_RANGE[1])
    return Envelope(segments=segments, release_s=release)


def _operator_from(fields: FieldReader, count: int) -> Operator:
    modulators = fields.array("modulators", default=[])
    for position, index in enumerate(modulators):
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            fields.fail(f"{fields.child('modulators')}[{position}]", f"must be an operator index 0..{count - 1}")
    return Operator(
        ratio=fields.number("ratio", default=1.0, low=0.0, high=64.0, low_open=True),
        fixed_hz=fields.optional_number("fixed_hz", low=0.0, high=20000.0, low_open=True),
        detune_cents=fields.number("detune_cents", default=0.0, low=-100.0, high=100.0),
        level=fields.number("level", default=1.0, low=0.0, high=64.0),
        carrier=fields.boolean("carrier", default=True),
        modulators=sorted(set(modulators)),
        feedback=fields.number("feedback", default=0.0, low=0.0, high=16.0),
        envelope=_envelope_from(fields.sub("envelope")),
        velocity_sensitivity=fields.number("velocity_sensitivity", default=1.0, low=0.0, high=2.0),
        key_level_db_per_octave=fields.number("key_level_db_per_octave", default=0.0, low=-24.0, high=24.0),
        rate_scaling=fields.number("rate_scaling", default=0.0, low=0.0, high=1.0),
    )


def patch_from_dict(document: Any, source: str | os.PathLike | None = None) -> Patch:
    """Validate a patch document; raises PatchError naming ``source`` and the field path."""
    fields = read_document(document, source, "patch", PATCH_FORMAT, PATCH_VERSION)
    operator_fields = fields.objects("operators", 1, MAX_OPERATORS, f"must have 1 to {MAX_OPERATORS} operators")
    operators = [_operator_from(operator, len(operator_fields)) for operator in operator_fields]
    algorithm = fields.optional_number("algorithm", integer=True, low=1, high=32)
    pitch = fields.sub("pitch")
    lfo = fields.sub("lfo")
    metadata = document.get("metadata", {})
    if not isinstance(metadata, dict):
        fields.fail("metadata", "must be a JSON object")
    patch = Patch(
        operators=operators,
        name=fields.text("name", "untitled"),
        pitch=Pitch(
            reference_note=pitch.number("reference_note", default=60, low=0, high=127, integer=True),
            reference_velocity=pitch.number("reference_velocity", default=100, low=1, high=127, integer=True),
            tune_cents=pitch.number("tune_cents", default=0.0, low=-100.0, high=100.0),
        ),
        algorithm=algorithm,
        lfo=Lfo(
            rate_hz=lfo.number("rate_hz", default=5.5, low=0.0, high=50.0),
            delay_s=lfo.number("delay_s", default=0.0, low=0.0, high=10.0),
            pitch_depth_cents=lfo.number("pitch_depth_cents", default=0.0, low=0.0, high=1200.0),
            amp_depth_db=lfo.number("amp_depth_db", default=0.0, low=0.0, high=60.0),
        ),
        metadata=metadata,
    )
    patch.check_routing(fields.source)
    return patch


def load_patch(path: str | os.PathLike) -> Patch:
    return patch_from_dict(read_json(path), path)


def save_patch(patch: Patch, path: str | os.PathLike) -> None:
    """Validate (round-trip) then write atomically."""
    document = patch.to_dict()
    patch_from_dict(document, path)
    atomic_write_json(path, document)
