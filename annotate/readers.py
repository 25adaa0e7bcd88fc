"""Read a table set from wherever it is: a saved set folder, or an exchange file (Label Studio
JSON / JSON-MIN export, COCO instances JSON, YOLO data.yaml) converted on the way in."""

from __future__ import annotations

import os
from pathlib import Path

from . import coco, ls_import, store, yolo
from .ls_import import ImportSummary
from .schema import TableSet

FORMATS = ("auto", "labelstudio", "coco", "yolo")


def detect_format(path: str | os.PathLike) -> str:
    """'yolo' for a .yaml, 'coco' for a JSON object with "images", else 'labelstudio'."""
    path = Path(path)
    if path.suffix in (".yaml", ".yml"):
        return "yolo"
    try:
        with open(path, encoding="utf-8") as handle:
            head = handle.read(4096).lstrip()
    except OSError as err:
        raise ls_import.ExportError(f"{path}: cannot read ({err.strerror})") from err
    return "coco" if head.startswith("{") and '"images"' in head else "labelstudio"


def import_file(path: str | os.PathLike, fmt: str = "auto", *, labels: list[str] | None = None,
                images_root: str | None = None, caption_field: str = "caption",
                image_field: str | None = None, coco_captions: str | None = None
                ) -> tuple[TableSet, ImportSummary]:
    """Convert one exchange file into a validated set, with the import summary."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {FORMATS}")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "coco":
        return coco.from_coco(path, coco_captions, images_root)
    if fmt == "yolo":
        return yolo.from_yolo(path)
    return ls_import.import_export(path, images_root, labels, caption_field, image_field)


def read_tables(path: str | os.PathLike) -> TableSet:
    """A saved set folder (`annotate import --out`), or an exchange file imported on the fly."""
    if Path(path).is_dir():
        return store.load(path)
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: no such table set folder or export file")
    return import_file(path)[0]
