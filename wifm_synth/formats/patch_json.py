"""Patch files (docs/FORMATS.md): read and validated, and written, field by field as the schema declares.

Reading checks each field's type and range and fills in its default, naming the file and the field
path on error (``operators[1].ratio: must be > 0``), then checks the routing. Writing puts the fields
in schema order after the ``format`` and ``version`` header, and validates by reading back.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from wifm_synth.formats.atomic import atomic_write_bytes, read_json, readable_json
from wifm_synth.formats.fields import FieldReader, read_document
from wifm_synth.voice.patch import Patch, patch_classes
from wifm_synth.voice.schema import (
    PATCH,
    REQUIRED,
    SCHEMA,
    Kind,
    Parameter,
    PatchSchema,
)

PATCH_FORMAT = "wifm-patch"
PATCH_VERSION = 1


def patch_from_dict(document: Any, source: str | os.PathLike | None = None, schema: PatchSchema = SCHEMA) -> Patch:
    """Validate a patch document; raises PatchError naming ``source`` and the field path."""
    fields = read_document(document, source, "patch", PATCH_FORMAT, PATCH_VERSION)
    patch = _read_object(fields, schema, PATCH, operator_count=0)
    patch.check_routing(fields.source)
    return patch


def patch_to_dict(patch: Patch) -> dict[str, Any]:
    """The file's JSON document for ``patch``, by the schema its class was generated from."""
    return {"format": PATCH_FORMAT, "version": PATCH_VERSION, **_object_document(patch, type(patch).schema, PATCH)}


def load_patch(path: str | os.PathLike) -> Patch:
    return patch_from_dict(read_json(path), path)


def patch_document_bytes(patch: Patch, path: str | os.PathLike, check: bool = True) -> bytes:
    """The file's bytes for ``patch`` at ``path``; ``check``: validated by reading the document back."""
    document = patch_to_dict(patch)
    if check:
        patch_from_dict(document, path, type(patch).schema)
    return readable_json(document).encode()


def save_patch(patch: Patch, path: str | os.PathLike) -> None:
    """Validate (round-trip) then write atomically."""
    atomic_write_bytes(path, patch_document_bytes(patch, path))


def _read_object(fields: FieldReader, schema: PatchSchema, scope: str, operator_count: int):
    """The dataclass of ``scope`` from the JSON object ``fields`` reads; ``operator_count`` bounds operator indices."""
    values = {parameter.name: _read_field(fields, schema, parameter, operator_count)
              for parameter in schema.fields(scope)}
    return patch_classes(schema)[scope](**values)


def _count_problem(parameter: Parameter) -> str:
    return f"must have {parameter.low:g} to {parameter.high:g} {parameter.name}"


def _read_field(fields: FieldReader, schema: PatchSchema, parameter: Parameter, operator_count: int) -> Any:
    name, kind = parameter.name, parameter.kind
    default = None if parameter.default is REQUIRED or parameter.required_in_file else parameter.default
    if kind in (Kind.NUMBER, Kind.INTEGER):
        return fields.number(name, default=default, integer=kind is Kind.INTEGER, **parameter.limits)
    if kind in (Kind.OPTIONAL_NUMBER, Kind.OPTIONAL_INTEGER):
        return fields.optional_number(name, integer=kind is Kind.OPTIONAL_INTEGER, **parameter.limits)
    if kind is Kind.BOOLEAN:
        return fields.boolean(name, default)
    if kind is Kind.TEXT:
        return fields.text(name, default)
    if kind is Kind.JSON_OBJECT:
        value = fields.document.get(name, dict(default))
        if not isinstance(value, dict):
            fields.fail(fields.child(name), "must be a JSON object")
        return value
    if kind is Kind.OPERATOR_INDICES:
        indices = fields.array(name, default=list(default))
        for position, index in enumerate(indices):
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < operator_count:
                fields.fail(f"{fields.child(name)}[{position}]", f"must be an operator index 0..{operator_count - 1}")
        return sorted(set(indices))
    if kind is Kind.GROUP:
        return _read_object(fields.sub(name), schema, parameter.child, operator_count)
    if kind is Kind.GROUP_LIST:
        items = fields.objects(name, parameter.low, parameter.high, _count_problem(parameter))
        return [_read_object(item, schema, parameter.child, len(items)) for item in items]
    if kind is Kind.PAIR_LIST:
        return _read_tuples(fields, schema, parameter)
    raise AssertionError(f"{parameter.key}: no reader for {kind}")


def _read_tuples(fields: FieldReader, schema: PatchSchema, parameter: Parameter) -> list[tuple]:
    """A list of JSON arrays, each holding the fields of the ``child`` scope in order (envelope segments)."""
    items = fields.array(parameter.name, default=None if parameter.required_in_file else list(parameter.default))
    where = fields.child(parameter.name)
    if not parameter.low <= len(items) <= parameter.high:
        fields.fail(where, _count_problem(parameter))
    item_fields = schema.fields(parameter.child)
    names = [item.name for item in item_fields]
    tuples = []
    for index, raw in enumerate(items):
        item_where = f"{where}[{index}]"
        if not isinstance(raw, list) or len(raw) != len(names):
            fields.fail(item_where, f"must be [{', '.join(names)}]")
        item = FieldReader(dict(zip(names, raw)), item_where, fields.source)
        tuples.append(tuple(_read_field(item, schema, field, 0) for field in item_fields))
    return tuples


def _object_document(value: Any, schema: PatchSchema, scope: str) -> dict[str, Any]:
    return {parameter.name: _field_document(getattr(value, parameter.name), schema, parameter)
            for parameter in schema.fields(scope)}


def _field_document(value: Any, schema: PatchSchema, parameter: Parameter) -> Any:
    if parameter.kind is Kind.GROUP:
        return _object_document(value, schema, parameter.child)
    if parameter.kind is Kind.GROUP_LIST:
        return [_object_document(item, schema, parameter.child) for item in value]
    if parameter.kind is Kind.PAIR_LIST:
        return [list(item) for item in value]
    # A copy, so editing the document does not edit the patch.
    return copy.deepcopy(value)
