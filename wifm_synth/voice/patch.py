"""The patch model (docs/FORMATS.md): dataclasses generated from the parameter schema, and routing checks.

``Patch``, ``Operator``, ``Envelope``, ``Pitch`` and ``Lfo`` are generated from ``voice.schema.SCHEMA``
(field order, types, defaults and docstrings all come from there); ``patch_classes`` generates them for
any schema. Reading and writing files is ``formats.patch_json``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping
from typing import Any

from wifm_synth.errors import PatchError
from wifm_synth.voice.schema import (
    ENVELOPE,
    LFO,
    OPERATOR,
    PATCH,
    PITCH,
    PITCH_ENVELOPE,
    REQUIRED,
    SCHEMA,
    Kind,
    Parameter,
    PatchSchema,
)
from wifm_synth.voice.topology import MAX_OPERATORS, Topology


class PatchMethods:
    """What a generated Patch class does beyond holding its fields: its routing, and itself as JSON."""

    operators: list[Any]
    algorithm: int | None
    name: str

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
        """The patch as a file's JSON document."""
        # Imported here: formats.patch_json imports this module for the classes.
        from wifm_synth.formats.patch_json import patch_to_dict

        return patch_to_dict(self)


_ANNOTATIONS = {
    Kind.NUMBER: float,
    Kind.INTEGER: int,
    Kind.OPTIONAL_NUMBER: float | None,
    Kind.OPTIONAL_INTEGER: int | None,
    Kind.BOOLEAN: bool,
    Kind.TEXT: str,
    Kind.JSON_OBJECT: dict[str, Any],
    Kind.OPERATOR_INDICES: list[int],
    Kind.PAIR_LIST: list[tuple[float, ...]],
}
# The schema holds immutable defaults; each instance gets its own mutable copy.
_MUTABLE_COPY = {Kind.JSON_OBJECT: dict, Kind.OPERATOR_INDICES: list, Kind.PAIR_LIST: list}


def _dataclass_field(parameter: Parameter, classes: Mapping[str, type]) -> tuple:
    if parameter.kind is Kind.GROUP:
        child = classes[parameter.child]
        return parameter.name, child, dataclasses.field(default_factory=child)
    if parameter.kind is Kind.GROUP_LIST:
        annotation = list[classes[parameter.child]]
    else:
        annotation = _ANNOTATIONS[parameter.kind]
    if parameter.default is REQUIRED:
        return parameter.name, annotation
    if parameter.kind in _MUTABLE_COPY:
        copy = functools.partial(_MUTABLE_COPY[parameter.kind], parameter.default)
        return parameter.name, annotation, dataclasses.field(default_factory=copy)
    return parameter.name, annotation, dataclasses.field(default=parameter.default)


def _docstring(schema: PatchSchema, scope: str) -> str:
    lines = [schema.scope(scope).description, ""]
    for parameter in schema.fields(scope):
        unit = f" ({parameter.unit})" if parameter.unit else ""
        lines.append(f"``{parameter.name}``{unit}: {parameter.description}.")
    return "\n".join(lines)


@functools.cache
def patch_classes(schema: PatchSchema = SCHEMA) -> Mapping[str, type]:
    """The dataclass of every scope of ``schema`` that has one, keyed by scope name (``"operator"`` …).

    Fields follow the schema's order, except that fields without a default come first (Python requires
    it: ``Patch(operators, name=…)``). Each class's ``schema`` attribute is the schema it was made from.
    """
    classes: dict[str, type] = {}

    def build(scope: str) -> None:
        for parameter in schema.fields(scope):
            if parameter.kind in (Kind.GROUP, Kind.GROUP_LIST) and parameter.child not in classes:
                build(parameter.child)
        fields = [_dataclass_field(parameter, classes) for parameter in schema.fields(scope)]
        fields.sort(key=lambda spec: len(spec) > 2)  # stable: required fields first, else schema order
        class_name = schema.scope(scope).class_name
        cls = dataclasses.make_dataclass(class_name, fields, bases=(PatchMethods,) if scope == PATCH else (),
                                         namespace={"schema": schema, "__doc__": _docstring(schema, scope)})
        cls.__module__ = __name__  # pickle finds the SCHEMA classes by this module's names
        classes[scope] = cls

    build(PATCH)
    return classes


_CLASSES = patch_classes(SCHEMA)
Patch = _CLASSES[PATCH]
Pitch = _CLASSES[PITCH]
Lfo = _CLASSES[LFO]
PitchEnvelope = _CLASSES[PITCH_ENVELOPE]
Operator = _CLASSES[OPERATOR]
Envelope = _CLASSES[ENVELOPE]
