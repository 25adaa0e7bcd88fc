"""Read JSON files people hand us, fast (msgspec) and with errors that name the file and place.

Accepts a UTF-8 byte-order mark (Windows tools write one); refuses UTF-16/32 with the file named
(re-save as UTF-8) rather than failing somewhere inside the parser; a syntax error names the
line and column; nesting too deep for any real export is an error, not a crash.
"""

from __future__ import annotations

import codecs
import json
import math
import os
from pathlib import Path
from typing import Any

import msgspec

from annotate.runtime.errors import MissingFileError, UserError

_UTF8_BOM = codecs.BOM_UTF8
_WIDE_BOMS = {codecs.BOM_UTF32_LE: "UTF-32", codecs.BOM_UTF32_BE: "UTF-32",
              codecs.BOM_UTF16_LE: "UTF-16", codecs.BOM_UTF16_BE: "UTF-16"}


class ExportError(UserError):
    """A file that cannot be read as what it claims to be (not JSON, wrong shape, bad YAML)."""


def read_bytes(path: str | os.PathLike) -> bytes:
    """The file's bytes as UTF-8 JSON text (BOM removed); clear errors for the rest."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as err:
        raise MissingFileError(f"{path}: no such file") from err
    except IsADirectoryError as err:
        raise ExportError(f"{path}: is a folder, not an export file") from err
    except OSError as err:
        raise ExportError(f"{path}: cannot read ({err.strerror})") from err
    for bom, name in _WIDE_BOMS.items():  # UTF-32 BOMs start with the UTF-16 ones: check first
        if raw.startswith(bom):
            raise ExportError(f"{path}: the file is {name} text; save it as UTF-8 and retry")
    if raw.startswith(_UTF8_BOM):
        return raw[len(_UTF8_BOM):]
    if len(raw) >= 4 and (raw[0] == 0 or raw[1] == 0):  # UTF-16/32 without a BOM
        raise ExportError(f"{path}: the file is UTF-16 or UTF-32 text (NUL bytes); save it as "
                          "UTF-8 and retry")
    return raw


def first_char_of_file(path: str | os.PathLike, limit: int = 1 << 16) -> str:
    """The first non-blank character of a file (after a UTF-8 BOM), reading only its start."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(limit)
    except OSError as err:
        raise ExportError(f"{path}: cannot read ({err.strerror})") from err
    return first_char(head.removeprefix(_UTF8_BOM))


def first_char(raw: bytes) -> str:
    """The first non-blank character ('[' or '{' for JSON we read), '' for an empty file."""
    stripped = raw.lstrip()
    return chr(stripped[0]) if stripped else ""


#: Number tokens JavaScript and Python write but JSON does not have (`json.dumps` of a NaN).
NONSTANDARD = (b"NaN", b"Infinity", b"-Infinity")


def decode(raw: bytes, path: str | os.PathLike, decoder: msgspec.json.Decoder | None = None,
           notes: list[str] | None = None) -> Any:
    """Parse `raw` (with `decoder` for typed decoding); every failure names the file.

    `NaN` / `Infinity` tokens (not JSON, but what `json.dumps` writes for a NaN) do not refuse
    the file: they are read as missing values (null), so the importer nulls or rejects the one
    value they stand in, with its reason and location; `notes` gets how many there were."""
    try:
        return (decoder or _ANY).decode(raw)
    except msgspec.ValidationError as err:
        if "out of range" not in str(err):
            raise
        # A number past float range (1e400): the standard library reads it as inf; retype it.
        data = _stdlib(raw, path)
        return data if decoder is None else decoder.decode(msgspec.json.encode(data))
    except msgspec.DecodeError as err:
        if not _nonstandard_at(raw, str(err)):
            raise ExportError(f"{path}: {_where(raw, str(err))}") from err
        data, count = _missing_numbers(_stdlib(raw, path))
        if notes is not None:
            notes.append(f"{count} NaN/Infinity number tokens (not JSON) read as missing "
                         "values; the items they stood in are nulled or rejected below")
        return data if decoder is None else decoder.decode(msgspec.json.encode(data))
    except RecursionError as err:
        raise ExportError(f"{path}: JSON nested too deeply to be an export") from err


def _byte_offset(message: str) -> int | None:
    """The byte msgspec's message names ('... (byte N)'), if any."""
    marker = "(byte "
    return int(message.rsplit(marker, 1)[1].rstrip(")")) if marker in message else None


def _nonstandard_at(raw: bytes, message: str) -> bool:
    """Whether msgspec stopped at a NaN / Infinity token."""
    offset = _byte_offset(message)
    if offset is None:
        return False
    return any(raw.startswith(token, offset) or raw.startswith(token, offset - 1)
               for token in NONSTANDARD)


def _missing_numbers(data: Any) -> tuple[Any, int]:
    """`data` with every non-finite float as None, and how many there were."""
    count = 0

    def walk(node: Any) -> Any:
        nonlocal count
        if isinstance(node, float) and not math.isfinite(node):
            count += 1
            return None
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        return node

    return walk(data), count


def read_json(path: str | os.PathLike, notes: list[str] | None = None) -> Any:
    """Parse a whole JSON file into Python objects (`notes`: see `decode`)."""
    return decode(read_bytes(path), path, notes=notes)


def read_records(path: str | os.PathLike, expected: str) -> list[dict]:
    """A JSON file that must be a list of objects (a COCO results file): the list, or an
    `ExportError` naming the file and what was `expected`."""
    rows = read_json(path)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ExportError(f"{path}: expected {expected}")
    return rows


def _stdlib(raw: bytes, path: str | os.PathLike) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as err:
        raise ExportError(f"{path}: not valid JSON at line {err.lineno}, column {err.colno}: "
                          f"{err.msg}") from err
    except (RecursionError, UnicodeDecodeError) as err:
        raise ExportError(f"{path}: not readable JSON ({type(err).__name__})") from err


def _where(raw: bytes, message: str) -> str:
    """msgspec says 'byte N'; people want line and column."""
    if not raw.strip():
        return "empty file: not valid JSON"
    marker = "(byte "
    if "truncated" in message:
        message = f"the file ends early {marker}{len(raw.rstrip())})"
    offset = _byte_offset(message)
    if offset is None:
        return f"not valid JSON: {message}"
    line = raw.count(b"\n", 0, offset) + 1
    column = offset - (raw.rfind(b"\n", 0, offset) + 1) + 1
    reason = message.split(marker)[0].removeprefix("JSON is malformed: ").strip()
    hint = " (truncated?)" if "ends early" in reason else ""
    return f"not valid JSON at line {line}, column {column}: {reason}{hint}"


_ANY = msgspec.json.Decoder()
