"""Typed, range-checked reading of JSON documents (patches, banks), naming the field path on error."""

from __future__ import annotations

import math
import os
from typing import Any

from wifm_synth.errors import PatchError

# Integers beyond this have no float (float() raises); a patch field never needs one.
_LARGEST_INTEGER = 2**1023


class FieldReader:
    """Reads the fields of one JSON object found at ``path`` (e.g. ``operators[1].envelope``) in ``source``."""

    def __init__(self, document: Any, path: str, source: str | None):
        self.path = path
        self.source = source
        if not isinstance(document, dict):
            self.fail(path, "must be a JSON object")
        self.document = document

    def fail(self, field_path: str, problem: str):
        raise PatchError(f"{field_path}: {problem}", self.source)

    def child(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def number(self, key, default=None, low=-math.inf, high=math.inf, low_open=False, integer=False):
        where = self.child(key)
        value = self.document.get(key, default)
        if value is None:
            self.fail(where, "is required")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(where, f"must be a number, got {type(value).__name__}")
        if isinstance(value, int) and abs(value) > _LARGEST_INTEGER:  # beyond float: isfinite would overflow
            self.fail(where, f"is out of range ({len(str(abs(value)))}-digit integer)")
        if not math.isfinite(value):
            self.fail(where, "must be finite")
        if integer and value != int(value):
            self.fail(where, "must be an integer")
        if (value <= low) if low_open else (value < low):
            self.fail(where, f"must be {'>' if low_open else '>='} {low:g}")
        if value > high:
            self.fail(where, f"must be <= {high:g}")
        return int(value) if integer else float(value)

    def optional_number(self, key, **limits):
        return None if self.document.get(key) is None else self.number(key, **limits)

    def boolean(self, key, default):
        value = self.document.get(key, default)
        if not isinstance(value, bool):
            self.fail(self.child(key), "must be true or false")
        return value

    def text(self, key, default):
        value = self.document.get(key, default)
        if not isinstance(value, str):
            self.fail(self.child(key), "must be a string")
        if not _encodes(value):
            self.fail(self.child(key), "is not valid Unicode (an unpaired surrogate escape)")
        return value

    def array(self, key, default=None):
        value = self.document.get(key, default)
        if not isinstance(value, list):
            self.fail(self.child(key), "must be a list")
        return value

    def sub(self, key, default=None):
        value = self.document.get(key, default if default is not None else {})
        return FieldReader(value, self.child(key), self.source)

    def objects(self, key: str, fewest: int, most: float, count_problem: str) -> list[FieldReader]:
        """A reader for each JSON object in the list ``key``, which must hold ``fewest``..``most`` of them."""
        items = self.array(key)
        where = self.child(key)
        if not fewest <= len(items) <= most:
            self.fail(where, count_problem)
        return [FieldReader(item, f"{where}[{index}]", self.source) for index, item in enumerate(items)]


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_document(document: Any, source: str | os.PathLike | None, kind: str, file_format: str,
                  newest_version: int) -> FieldReader:
    """A reader for a whole ``kind`` document, once its ``format`` and ``version`` are ones this code reads."""
    source = os.fspath(source) if source is not None else None
    if not isinstance(document, dict):
        raise PatchError(f"{kind}: must be a JSON object", source)
    fields = FieldReader(document, "", source)
    if document.get("format") != file_format:
        fields.fail("format", f'must be "{file_format}"')
    version = fields.number("version", integer=True, low=1)
    if version > newest_version:
        fields.fail("version", f"{version} is newer than this wifm_synth understands ({newest_version})")
    return fields
