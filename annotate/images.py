"""Find the local file behind a Label Studio image reference, and read its size and hash.

Label Studio refers to images as local-file URLs (`/data/local-files/?d=dir/a.png`, relative to
its LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT), upload paths (`/data/upload/3/1a2b3c4d-a.png`, files
it stored under its media folder with an 8-hex-digit prefix), plain URLs or relative paths.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from PIL import Image

UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")


def candidates(ref: str, root: Path | None) -> list[Path]:
    """Local paths that `ref` may point to, most specific first."""
    parsed = urlparse(ref)
    if parsed.path.rstrip("/").endswith("/data/local-files") or "local-files" in parsed.path:
        rel = unquote(parse_qs(parsed.query).get("d", [""])[0])
        return [root / rel] if root and rel else [Path(rel)] if rel else []
    name = unquote(Path(parsed.path).name)
    if parsed.path.startswith("/data/upload/"):
        upload = unquote(parsed.path[len("/data/"):])
        found = [root / upload, root / name, root / UPLOAD_PREFIX.sub("", name)] if root else []
        return found
    if parsed.scheme in ("http", "https", "s3", "gs", "azure-blob"):
        return [root / name] if root and name else []
    path = Path(unquote(ref[len("file://"):] if ref.startswith("file://") else ref))
    if path.is_absolute():
        return [path]
    return [root / path, root / path.name] if root else [path]


def resolve(ref: str, root: Path | None) -> Path | None:
    """The first existing local file for `ref`, as an absolute path, or None."""
    for path in candidates(ref, root):
        if path.is_file():
            return path.resolve()
    return None


def size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) read from the file header, without decoding the pixels."""
    with Image.open(path) as image:
        return image.size


def sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of the file's bytes (exact-duplicate detection)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
