"""Atomic file writes: write to a temp file beside the target, then rename over it.

A crash mid-write leaves the previous file (or nothing), never a half-written file that looks
complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path in the target's folder; on success rename it to `target`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; files should follow the umask
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(target: str | os.PathLike, text: str) -> Path:
    """Atomically write `text` (UTF-8) to `target`."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_json(target: str | os.PathLike, obj: object, indent: int | None = 2) -> Path:
    """Atomically write `obj` as JSON to `target`."""
    text = json.dumps(obj, indent=indent, ensure_ascii=False, default=str)
    return write_text(target, text + "\n")


def write_parquet(target: str | os.PathLike, frame) -> Path:
    """Atomically write a DataFrame as Parquet (without its index) to `target`."""
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False)
    return Path(target)
