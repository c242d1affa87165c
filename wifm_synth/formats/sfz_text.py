"""SFZ text before parsing: comments removed, ``#include`` files spliced in, ``#define`` macros expanded.

As in sfizz: ``#define $NAME value`` applies to the text after it, also in files included later;
``#include "path"`` is relative to the root SFZ file's folder. Included paths must stay inside that
folder (a library is one folder tree), and a file that includes itself, directly or not, is an error.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from wifm_synth.errors import InputError
from wifm_synth.formats.inputs import open_input

_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_DEFINE = re.compile(r"#define\s+(\$[A-Za-z0-9_]+)\s+(.*?)\s*$")
_INCLUDE = re.compile(r'#include\s+"([^"]+)"\s*$')
# Nesting real libraries never reach; deeper chains are a generated or broken file.
MAX_INCLUDE_DEPTH = 32


class SourceLine(NamedTuple):
    """One line of SFZ text and where it was written, for error messages."""

    file: Path
    number: int
    text: str


def read_text(path: Path) -> str:
    with open_input(path, "an .sfz file") as stream:
        raw = stream.read()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # older SFZ files are often Windows-1252 text


def _strip_comments(text: str) -> list[str]:
    # Keep the newlines of block comments so that line numbers stay right.
    text = _BLOCK_COMMENT.sub(lambda match: "\n" * match.group().count("\n"), text)
    return [line.split("//", 1)[0] for line in text.split("\n")]


def _expand(line: str, defines: dict[str, str]) -> str:
    # Longest names first, so that $KEY does not eat the start of $KEYCENTER.
    for name in sorted(defines, key=len, reverse=True):
        line = line.replace(name, defines[name])
    return line


def sfz_lines(root: Path) -> list[SourceLine]:
    """The root SFZ file's lines with includes spliced in and macros expanded; InputError names the file and line."""
    library = root.parent.resolve()
    defines: dict[str, str] = {}
    lines: list[SourceLine] = []

    def splice(path: Path, chain: tuple[Path, ...]) -> None:
        for number, raw in enumerate(_strip_comments(read_text(path)), start=1):
            stripped = raw.strip()
            if not stripped.startswith("#"):
                lines.append(SourceLine(path, number, _expand(raw, defines)))
                continue
            define, include = _DEFINE.match(stripped), _INCLUDE.match(stripped)
            if define:
                defines[define.group(1)] = _expand(define.group(2), defines)
            elif include:
                splice(_included_file(_expand(include.group(1), defines), path, number, chain, library),
                       chain + (path.resolve(),))
            else:
                directive = stripped.split()[0]
                raise InputError(f"line {number}: {directive} is not understood "
                                 f"(expected #define $NAME value or #include \"file.sfz\")", path)
            lines.append(SourceLine(path, number, ""))  # keeps the line count of the including file

    splice(root, ())
    return lines


def _included_file(name: str, including: Path, number: int, chain: tuple[Path, ...], library: Path) -> Path:
    def fail(problem: str):
        raise InputError(f"line {number}: #include \"{name}\": {problem}", including)

    target = (library / name.replace("\\", "/")).resolve()
    if not target.is_relative_to(library):
        fail(f"leaves the library folder {library}")
    if target in chain or target == including.resolve():
        fail("includes itself (an include loop)")
    if len(chain) >= MAX_INCLUDE_DEPTH:
        fail(f"includes nest deeper than {MAX_INCLUDE_DEPTH} files")
    if not target.is_file():
        fail(f"not found (looked for {target})")
    return target
