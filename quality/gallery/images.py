"""The gallery's picture files: each image's bytes copied once into `img/` and, where it is
larger than the thumbnail size or stored rotated (EXIF), a thumbnail in `thumb/`; both named by
the image's content hash, so a rerun (or another view of the same image) reads nothing again.

Browsers apply a JPEG's EXIF orientation when they show it (CSS `image-orientation:
from-image`, the default), so the copied file is displayed in the frame the boxes use; the
thumbnail is written already rotated.
"""

from __future__ import annotations

import hashlib
import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import ImageOps, UnidentifiedImageError
from tqdm.auto import tqdm

from annotate.runtime.atomic import atomic_path
from annotate.runtime.pillow import open_image

FULL, THUMBS = "img", "thumb"
#: EXIF orientation tag (rotated or mirrored when not 1).
ORIENTATION = 0x0112


@dataclass(frozen=True)
class Picture:
    """Where one image's files are, relative to the gallery folder (None: not readable)."""

    full: str | None
    thumb: str | None
    width: int
    height: int
    problem: str = ""


def write_pictures(images: pd.DataFrame, out: Path, thumb: int, progress: bool = True,
                   workers: int | None = None) -> dict[str, Picture]:
    """Copy each image of `images` (image_id, path, width, height, sha256) into `out` once.

    Parameters
    ----------
    images : pd.DataFrame
        The images to show (the set's images table, or part of it).
    out : Path
        The gallery folder (`img/` and `thumb/` are made in it).
    thumb : int
        Longest side of a thumbnail; smaller images are shown from their copy.
    progress : bool
        Show a progress bar.
    workers : int, optional
        Threads (Pillow decodes and encodes outside the GIL); default: the CPUs.

    Returns
    -------
    dict
        image_id -> Picture. An unreadable or missing file gives a Picture without files and
        its reason (the pages say so; nothing is raised).
    """
    rows = images.drop_duplicates("image_id")
    todo = list(rows[["image_id", "path", "width", "height", "sha256"]].itertuples(index=False))
    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        done = pool.map(lambda r: _picture(r, out, thumb), todo)
        pictures = dict(zip((str(r.image_id) for r in todo),
                            tqdm(done, total=len(todo), desc="gallery images", unit="image",
                                 disable=not progress), strict=True))
    return pictures


def _picture(row, out: Path, thumb: int) -> Picture:
    width, height = int(row.width), int(row.height)
    path = Path(str(row.path)) if isinstance(row.path, str) else None
    suffix = (path.suffix.lower() if path is not None else "") or ".img"
    digest = row.sha256 if isinstance(row.sha256, str) and row.sha256 else None
    if digest is not None:  # the set knows the content: a copy made earlier serves
        full = f"{FULL}/{digest[:24]}{suffix}"
        small = f"{THUMBS}/{digest[:24]}.jpg"
        if (out / full).exists():  # the thumbnail was decided before the copy was written
            return Picture(full, small if (out / small).exists() else full, width, height)
    if path is None or not path.is_file():
        return Picture(None, None, width, height, f"image file not found: {row.path}")
    data = path.read_bytes()
    digest = digest or hashlib.sha256(data).hexdigest()
    full, small = f"{FULL}/{digest[:24]}{suffix}", f"{THUMBS}/{digest[:24]}.jpg"
    try:
        with open_image(io.BytesIO(data)) as image:
            rotated = image.getexif().get(ORIENTATION, 1) not in (1, None)
            if rotated or max(image.size) > thumb:
                image.draft("RGB", (thumb, thumb))  # JPEG: decode at a reduced scale
                picture = ImageOps.exif_transpose(image).convert("RGB")
                picture.thumbnail((thumb, thumb))
                with atomic_path(out / small) as tmp:
                    picture.save(tmp, format="JPEG", quality=85)
            else:
                image.load()  # small: a full decode proves the file is whole
                small = full
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        return Picture(None, None, width, height, f"image file not readable: {path} ({error})")
    with atomic_path(out / full) as tmp:  # written last: its presence marks the image done
        tmp.write_bytes(data)
    return Picture(full, small, width, height)
