"""Find the local file behind an image reference, safely, and read its size and hash.

Label Studio refers to images as local-file URLs (`/data/local-files/?d=dir/a.png`, relative to
its LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT), upload paths (`/data/upload/3/1a2b3c4d-a.png`, files
it stored under its media folder with an 8-hex-digit prefix), plain URLs, relative paths, and
inline `data:image/...;base64,...` URLs (images pasted into a task).

Confinement: a reference is only ever opened when it resolves inside the images root (`../`
chains, absolute paths and `file://` URLs that leave it are reported as "outside", never read)
unless the caller opts in with `allow_outside`. Links are resolved before that check: a link
inside the root that points outside it is "outside" too. No probe raises: a name too long for
the file system, a NUL byte or an unreadable file is a status, not an exception.

Identity: a reference resolves to the file it names; a file found by its name alone (a remote
URL's basename in the root, an upload without its hash prefix) only when no other reference of
the same import would find the same file that way. A relative path resolves only to itself.

What an image is: its size is the displayed size (EXIF orientations 5-8 swap width and height,
as Label Studio, browsers and ultralytics' loader show it); a JPEG or PNG cut short (a JPEG
decoded at 1/8 scale raises on missing data; a PNG must end with its IEND chunk) is
"unreadable", counted.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import io
import mimetypes
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from annotate.runtime.pillow import open_image

UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")
DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?),", re.I)

FOUND, MISSING, OUTSIDE, INLINE, UNREADABLE = "found", "missing", "outside", "inline", "unreadable"


@dataclass(frozen=True)
class Located:
    """What one reference turned out to be: `path` is the absolute local path (found), else the
    reference as given; `detail` says why an image is unreadable."""

    path: str
    status: str
    width: int | None = None
    height: int | None = None
    sha256: str | None = None
    detail: str = ""


def candidates(ref: str, root: Path | None) -> list[Path]:
    """Local paths that `ref` may point to, most specific first (not checked for confinement):
    the paths it names, then the by-name guesses (`_candidates`)."""
    exact, guesses = _candidates(ref, None if root is None else os.fspath(root))
    return [Path(p) for p in exact + guesses]


_LOCAL_FILES = "/data/local-files/?d="


def _candidates(ref: str, root: str | None) -> tuple[list[str], list[str]]:
    """(paths the reference names, by-name guesses). A guess is a file found by its name alone
    (a remote URL's basename in the root, an upload without its hash prefix); `locate_all`
    refuses a guess that several different references would share."""
    join = os.path.join
    if ref.startswith(_LOCAL_FILES) and "&" not in ref:  # the common case, without urlparse
        rel = unquote(ref[len(_LOCAL_FILES):])
        return ([join(root, rel) if root else rel] if rel else []), []
    parsed = urlparse(ref)
    if "local-files" in parsed.path:
        rel = unquote(parse_qs(parsed.query).get("d", [""])[0])
        return ([join(root, rel) if root else rel] if rel else []), []
    name = unquote(os.path.basename(parsed.path))
    if parsed.path.startswith("/data/upload/"):
        upload = unquote(parsed.path[len("/data/"):])
        return ([join(root, upload), join(root, name)],
                [join(root, UPLOAD_PREFIX.sub("", name))]) if root else ([], [])
    if parsed.scheme in ("http", "https", "s3", "gs", "azure-blob"):
        mirrored = join(root, parsed.netloc, unquote(parsed.path).lstrip("/")) if root else None
        return ([mirrored], [join(root, name)]) if root and name else ([], [])
    path = unquote(ref[len("file://"):] if ref.startswith("file://") else ref)
    if os.path.isabs(path):
        return [path], []
    return [join(root, path) if root else path], []


def _plain_local(ref: str) -> str | None:
    """The path of a local-files URL that needs no decoding or normalising (relative; no `%`
    escape, other query parameter or backslash; no empty, `.` or `..` segment; no trailing
    `/`), else None: the common case, taken without parsing the URL."""
    if not ref.startswith(_LOCAL_FILES):
        return None
    rel = ref[len(_LOCAL_FILES):]
    wrapped = f"/{rel}/"
    if ("%" in rel or "&" in rel or "\\" in rel or "//" in wrapped or "/./" in wrapped
            or "/../" in wrapped):
        return None
    return rel


@functools.lru_cache(maxsize=8)
def _top(root: str | os.PathLike) -> str:
    """The root as a normalised absolute path (once per root, not once per image)."""
    return os.path.normpath(os.path.abspath(root))


def _inside(normalised: str, top: str) -> bool:
    return normalised == top or normalised.startswith(top.rstrip(os.sep) + os.sep)


def _is_file(path: str) -> bool:
    try:
        return os.path.isfile(path)
    except (OSError, ValueError):  # name too long, NUL byte, permission denied on a parent
        return False


def resolve(ref: str, root: Path | None, allow_outside: bool = False) -> Path | None:
    """The first existing local file for `ref` inside `root` (anywhere with `allow_outside`),
    as an absolute path, or None."""
    found = _find(ref, None if root is None else os.fspath(root),
                  None if root is None or allow_outside else _top(root))[0]
    return None if found is None else Path(found)


def _find(ref: str, root: str | None, top: str | None, guess: bool = True
          ) -> tuple[str | None, bool]:
    """(the file's absolute path, whether a candidate was refused as outside `top`); `top` is
    the normalised root to confine to, None for no confinement; `guess`: whether by-name
    guesses may be used. Links are resolved before the confinement check, so a link inside
    the root that points outside it is outside."""
    plain = _plain_local(ref) if root is not None else None
    if plain:  # the common case: no URL parsing, no normpath
        path = f"{_top(root).rstrip(os.sep)}{os.sep}{plain}"
        if not _is_file(path):
            return None, False
        if top is not None and not _inside(os.path.realpath(path), _real(top)):
            return None, True  # a link out of the root
        return path, False
    refused = False
    try:
        exact, guesses = _candidates(ref, root)
    except ValueError:  # a malformed URL (e.g. an unbalanced IPv6 bracket)
        return None, False
    for path in exact + (guesses if guess else []):
        normalised = os.path.normpath(os.path.abspath(path))
        if top is not None and not _inside(normalised, top):
            refused = True
            continue
        if _is_file(normalised):
            if top is not None and not _inside(os.path.realpath(normalised), _real(top)):
                refused = True  # a link out of the root
                continue
            return normalised, refused
    return None, refused


@functools.lru_cache(maxsize=8)
def _real(top: str) -> str:
    """The root with its own links resolved (a root under /tmp -> /private/tmp, say), once per
    root rather than once per image."""
    return os.path.realpath(top)


def decode_data_url(ref: str) -> bytes:
    """The bytes of a base64 `data:` URL; ValueError if it is not one we can read."""
    match = DATA_URL.match(ref)
    if not match:
        raise ValueError("not a data: URL")
    mime = (match["mime"] or "").lower()
    if mime and not mime.startswith("image/"):
        raise ValueError(f"inline data is {mime}, not an image")
    if ";base64" not in match["params"].lower():
        raise ValueError("inline image is not base64-encoded")
    try:
        return base64.b64decode(ref[match.end():], validate=False)
    except (binascii.Error, ValueError) as err:
        raise ValueError(f"inline image: invalid base64 ({err})") from err


def data_url_suffix(ref: str) -> str:
    """File suffix for an inline image's MIME type ('.png' for data:image/png)."""
    match = DATA_URL.match(ref)
    mime = (match["mime"] or "").lower() if match else ""
    return {"image/jpeg": ".jpg"}.get(mime) or mimetypes.guess_extension(mime) or ".img"


#: EXIF orientations that turn the picture a quarter (5-8): shown with width and height swapped.
_QUARTER_TURNS = {5, 6, 7, 8}
_EXIF_ORIENTATION = 0x0112


def _header_size(source: str | os.PathLike | io.BytesIO) -> tuple[int, int]:
    """The size the image is shown at: its stored size, with width and height swapped when its
    EXIF orientation turns it a quarter (as Label Studio, browsers and ultralytics' loader
    show it). A file cut short raises (`_check_complete`)."""
    with open_image(source) as image:
        width, height = image.size
        # a PNG's getexif() decodes the whole image unless its eXIf chunk came before the data
        exif = image.getexif() if image.format != "PNG" or "exif" in image.info else {}
        orientation = exif.get(_EXIF_ORIENTATION)
        _check_complete(image, source)
    return (height, width) if orientation in _QUARTER_TURNS else (width, height)


def _check_complete(image: Image.Image, source: str | os.PathLike | io.BytesIO) -> None:
    """Raise when the file was cut short: a JPEG is decoded at 1/8 scale (cheap; PIL raises on
    missing data), a PNG must end with its IEND chunk. Other formats are not checked."""
    if image.format == "JPEG":
        image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
        image.load()  # OSError "image file is truncated" when data is missing
    elif image.format == "PNG":
        if isinstance(source, io.BytesIO):
            tail = source.getvalue()[-64:]
        else:
            with open(source, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - 64))
                tail = handle.read()
        if b"IEND" not in tail:
            raise ValueError("truncated PNG (no IEND chunk at its end: the file was cut short)")


def locate(ref: object, root: Path | None, *, allow_outside: bool = False,
           hash_images: bool = True) -> Located:
    """Resolve one reference and read its displayed size (from the header) and SHA-256, never
    raising."""
    top = None if root is None or allow_outside else _top(root)
    return Located(*_locate(ref, None if root is None else os.fspath(root), top, hash_images))


def _locate(ref: object, root: str | None, top: str | None, hash_images: bool,
            guess: bool = True) -> tuple:
    if not isinstance(ref, str) or not ref:
        return str(ref), MISSING, None, None, None, ""
    if ref[:5].lower() == "data:":
        try:
            raw = decode_data_url(ref)
            width, height = _header_size(io.BytesIO(raw))
        except (ValueError, OSError, UnidentifiedImageError, Image.DecompressionBombError) as err:
            return ref, UNREADABLE, None, None, None, str(err) or type(err).__name__
        return ref, INLINE, width, height, hashlib.sha256(raw).hexdigest(), ""
    path, refused = _find(ref, root, top, guess)
    if path is None:
        detail = "" if guess else "its file name is shared by other references: not guessed"
        return ref, OUTSIDE if refused else MISSING, None, None, None, detail
    try:
        width, height = _header_size(path)
        digest = sha256(path) if hash_images else None
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError) as err:
        reason = "not an image PIL can read" if isinstance(err, UnidentifiedImageError) else err
        return path, UNREADABLE, None, None, None, f"{path}: {reason}"
    return path, FOUND, width, height, digest, ""


def locate_all(refs: Iterable[object], root: Path | None, *, allow_outside: bool = False,
               hash_images: bool = True) -> pd.DataFrame:
    """`locate` for many references: columns path, status, width, height, sha256, detail.

    A by-name guess (a remote URL's basename, an upload without its prefix) is used only when no
    other reference here would guess the same file: two different URLs that end in `a.png`
    both stay "missing" rather than both becoming the one local `a.png`."""
    refs = list(refs)
    root_str = None if root is None else os.fspath(root)
    top = None if root is None or allow_outside else _top(root)
    shared = _shared_guesses(refs, root_str)
    absent = _in_absent_folders(refs, root_str)
    probe = np.flatnonzero(~absent)
    found = [_locate(refs[k], root_str, top, hash_images, refs[k] not in shared)
             for k in tqdm(probe, desc="images", unit="img", leave=False,
                           disable=len(probe) < 2000 or None)]
    columns = ["path", "status", "width", "height", "sha256", "detail"]
    frame = pd.DataFrame({"path": pd.Series(refs, dtype=object), "status": MISSING,
                          "width": None, "height": None, "sha256": None, "detail": ""},
                         columns=columns)
    if found:  # the probed rows in their places; the rest are in absent folders: missing
        frame.iloc[probe] = pd.DataFrame(found, columns=columns).astype(object).to_numpy()
    frame["width"] = pd.to_numeric(frame.width, errors="coerce")
    frame["height"] = pd.to_numeric(frame.height, errors="coerce")
    return frame


def _in_absent_folders(refs: list, root: str | None) -> np.ndarray:
    """Per reference: whether it is a plain local-files path (`_plain_local`) whose folder under
    `root` is not a directory, so that no file can be there. Checked once per folder, not once
    per image: an export whose images are not on this machine (on the Label Studio server, in
    a bucket) is a common import, and probing each of its references would cost more than
    reading the whole file."""
    if root is None:
        return np.zeros(len(refs), dtype=bool)
    rels = [_plain_local(ref) if ref.__class__ is str else None for ref in refs]
    folders = [rel.rpartition("/")[0] if rel else None for rel in rels]
    top = _top(root).rstrip(os.sep)
    is_dir = {None: True} | {name: os.path.isdir(f"{top}{os.sep}{name}" if name else top)
                             for name in set(folders) - {None}}
    return ~np.fromiter(map(is_dir.__getitem__, folders), dtype=bool, count=len(refs))


def _shared_guesses(refs: list, root: str | None) -> set[str]:
    """The references whose by-name guess another, different reference shares."""
    if root is None:
        return set()
    guesses: dict[str, set[str]] = {}
    for ref in set(r for r in refs if isinstance(r, str) and r[:5].lower() != "data:"
                   and not r.startswith(_LOCAL_FILES)):  # a local-files path is never a guess
        try:
            for guess in _candidates(ref, root)[1]:
                guesses.setdefault(os.path.normpath(guess), set()).add(ref)
        except ValueError:
            continue
    return {ref for owners in guesses.values() if len(owners) > 1 for ref in owners}


def sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of the file's bytes (exact-duplicate detection)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
