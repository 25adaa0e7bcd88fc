"""Read and write a whole table set: a folder with four Parquet files and `meta.json`.

`meta.json` is written last and records the row counts, so a folder whose tables do not match
their meta (an interrupted write) is refused on load instead of being read as complete.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from annotate.runtime.atomic import atomic_path, write_json
from annotate.runtime.errors import UserError
from annotate.tables.schema import TABLES, TableSet, coerce

META = "meta.json"
LOCK = ".lock"
FORMAT_VERSION = 1


class StoreError(UserError):
    """A table-set folder that is missing, incomplete or inconsistent."""


def save(ts: TableSet, folder: str | os.PathLike, validate: bool = True) -> Path:
    """Validate `ts` and write it to `folder` (created if needed); return the folder."""
    if validate:
        ts.validate()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with _writer_lock(folder):  # two writers of one folder take turns, never interleave
        (folder / META).unlink(missing_ok=True)  # the set is incomplete until meta is back
        for name in TABLES:
            with atomic_path(folder / f"{name}.parquet") as tmp:
                ts.table(name).to_parquet(tmp, index=False)
        meta = {**ts.meta, "format_version": FORMAT_VERSION, "labels": ts.labels,
                "counts": ts.counts()}
        write_json(folder / META, meta)
    return folder


@contextlib.contextmanager
def _writer_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on `folder/.lock` for the whole write (POSIX `flock`; elsewhere no
    lock): a second import into the same folder waits for the first to finish, so the folder
    always holds one whole set, the last one written."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock
        yield
        return
    with open(folder / LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load(folder: str | os.PathLike, validate: bool = True) -> TableSet:
    """Read a table set written by `save`; refuse a folder whose files do not match its meta."""
    folder = Path(folder)
    meta_path = folder / META
    if not meta_path.exists():
        hint = "not a table set" if not folder.exists() else "incomplete or interrupted write"
        raise StoreError(f"{folder}: no {META} ({hint}); write it with `annotate import`")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise StoreError(f"{meta_path}: not valid JSON ({err})") from err
    tables = {}
    for name in TABLES:
        path = folder / f"{name}.parquet"
        if not path.exists():
            raise StoreError(f"{folder}: {path.name} is missing")
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
            raise StoreError(f"{path}: not a readable Parquet file ({str(err).splitlines()[0]}); "
                             "the set is damaged: write it again with `annotate import`") from err
        tables[name] = coerce(name, frame)
        expected = meta.get("counts", {}).get(name)
        if expected is not None and expected != len(tables[name]):
            raise StoreError(f"{path}: {len(tables[name])} rows but {META} says {expected} "
                             "(interrupted write?)")
    labels = meta.pop("labels", [])
    meta.pop("counts", None)
    meta.pop("format_version", None)
    ts = TableSet(**tables, labels=labels, meta=meta)
    if validate:
        ts.validate()
    return ts
