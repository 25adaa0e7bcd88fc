"""Read a table set from wherever it is: a saved set folder, or an exchange file (Label Studio
JSON / JSON-MIN export, COCO instances or captions JSON, YOLO data.yaml) converted on the way in.

`import_set` is the one entry of the import job: it converts, checks, writes the set (inline
images under `<out>/media/`) and its `import_summary.json`. The CLI, `annotate pull` and the
pipeline all call it.
"""

from __future__ import annotations

import os
from pathlib import Path

from annotate.formats import coco_import, jsonio, ls_import, yolo_import
from annotate.formats.images import DATA_URL, data_url_suffix, decode_data_url
from annotate.formats.jsonio import ExportError
from annotate.formats.labels import Controls
from annotate.formats.summary import ImportSummary
from annotate.runtime.atomic import atomic_path, write_json
from annotate.runtime.errors import MissingFileError, UserError
from annotate.tables import store
from annotate.tables.schema import TableSet

#: `tables`: a saved table-set folder (`annotate import --out`, `annotate pull --out`).
FORMATS = ("auto", "labelstudio", "coco", "yolo", "tables")
MEDIA = "media"


def _detect(path: Path) -> tuple[str, object, list[str]]:
    """(format, the parsed file when detection had to parse it, what parsing noted)."""
    if path.is_dir() and (path / store.META).exists():
        return "tables", None, []
    if path.suffix in (".yaml", ".yml") or path.is_dir():
        return "yolo", None, []
    if jsonio.first_char_of_file(path) == "{":  # COCO, or tasks wrapped in an object
        notes: list[str] = []
        data = jsonio.read_json(path, notes)
        return ("coco" if coco_import.is_coco(data) else "labelstudio"), data, notes
    return "labelstudio", None, []  # a list: parsed by the Label Studio reader itself


def import_file(path: str | os.PathLike, fmt: str = "auto", *, labels: list[str] | None = None,
                images_root: str | None = None, caption_field: str = "caption",
                image_field: str | None = None, coco_captions: str | None = None,
                allow_outside_root: bool = False, image_size: tuple[int, int] | None = None,
                annotator: str | None = None, controls: Controls | None = None
                ) -> tuple[TableSet, ImportSummary]:
    """Convert one exchange file into a validated set, with the import summary. A set that
    keeps no image is an `ExportError`."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}: use one of {FORMATS}")
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{path}: no such file or folder")
    data, notes = None, None
    if fmt == "auto":
        fmt, data, notes = _detect(path)
    if fmt == "tables":
        ts = store.load(path)  # validated: a hand-edited table is refused with its rows
        summary = ImportSummary(source=str(path), shape="table set",
                                tasks_read=len(ts.images), annotations_read=len(ts.annotations))
        summary.count_kept(ts)
        return ts, summary
    if fmt == "yolo":
        return yolo_import.from_yolo(path, annotator or yolo_import.PLAIN_YOLO_ANNOTATOR,
                                     image_size=image_size)
    if fmt == "coco":
        return coco_import.from_coco(path, coco_captions, images_root, data=data,
                                     allow_outside_root=allow_outside_root, notes=notes)
    del data  # the Label Studio reader parses the file its own (typed, lean) way
    ts, summary = ls_import.import_export(path, images_root, labels, caption_field, image_field,
                                          allow_outside_root=allow_outside_root,
                                          controls=controls)
    summary.require_something_kept()
    return ts, summary


def import_set(path: str | os.PathLike, out: str | os.PathLike, *, strict: bool = False,
               **options) -> tuple[TableSet, ImportSummary]:
    """The import job: an exchange file (or a saved table set) into a validated table set.

    The import runs in memory first: a failure leaves an existing set in `out` as it was (the
    error says so). Inline (data: URL) images are written to `out/media/<sha256><suffix>` and
    the set points at them.

    Parameters
    ----------
    path : path
        A Label Studio export (JSON, snapshot, JSON-MIN), COCO instances or captions, a YOLO
        `data.yaml` or folder of per-annotator sets, or a table-set folder.
    out : path
        Folder for the set and `import_summary.json`.
    strict : bool
        Refuse the import when anything was rejected, nulled or left outside the images root.
    **options
        `import_file`'s options (format, labels, images_root, caption_field, image_field,
        coco_captions, allow_outside_root, image_size, annotator, controls: the labelling
        config's `Controls`, which decide what a Label Studio result belongs to).

    Returns
    -------
    ts : TableSet
        The set as written.
    summary : ImportSummary
        What was read, kept, nulled and rejected, with reasons and locations.
    """
    out = Path(out)
    try:
        ts, summary = import_file(path, **options)
        if strict:
            _check_strict(summary)
    except UserError as err:
        if (out / store.META).exists():
            raise type(err)(f"{err}\n(the set already in {out} was left as it was)") from err
        raise
    ts = _write_inline_images(ts, out / MEDIA)
    store.save(ts, out, validate=False)  # validated when it was built
    write_json(out / "import_summary.json", summary.to_dict())
    return ts, summary


def _check_strict(summary: ImportSummary) -> None:
    problems = [f"{n} rejected: {r}" for r, n in summary.rejected.items()]
    problems += [f"{n} nulled: {r}" for r, n in summary.nulled.items()]
    if summary.images_outside_root:
        problems.append(f"{summary.images_outside_root} images outside the images root")
    if problems:
        raise ExportError(f"{summary.source}: --strict and the import was not clean:\n  "
                          + "\n  ".join(problems))


def _write_inline_images(ts: TableSet, media: Path) -> TableSet:
    """Decode inline images into content-addressed files (same bytes, same name) and point
    the set's `path` at them."""
    inline = ts.images.path.str.match(DATA_URL.pattern, case=False).fillna(False)
    if not inline.any():
        return ts
    images = ts.images.copy()
    for i in inline[inline].index:
        ref, digest = images.at[i, "path"], images.at[i, "sha256"]
        target = media / f"{digest}{data_url_suffix(ref)}"
        if not target.exists():
            with atomic_path(target) as tmp:
                tmp.write_bytes(decode_data_url(ref))
        images.at[i, "path"] = str(target.resolve())
    return TableSet(images, ts.annotations, ts.boxes, ts.captions, ts.labels, ts.meta)


def read_tables(path: str | os.PathLike) -> TableSet:
    """A saved set folder (`annotate import --out`), or an exchange file imported on the fly."""
    if Path(path).is_dir() and (Path(path) / store.META).exists():
        return store.load(path)
    if not Path(path).exists():
        raise MissingFileError(f"{path}: no such table set folder or export file")
    if Path(path).is_dir() and not any(Path(path).glob("*/data.yaml")) \
            and not (Path(path) / "data.yaml").exists():
        return store.load(path)  # explains what is missing
    return import_file(path)[0]
