"""The export job: a table set written as Label Studio tasks, COCO or YOLO. `annotate export`
and the tests call `export_job`; the format modules (`ls_export`, `coco`, `yolo`) convert."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from annotate.formats import coco, ls_export, yolo
from annotate.runtime.atomic import write_json
from annotate.tables.schema import HUMAN, TableSet

FORMATS = ("labelstudio", "coco", "yolo")


def export_job(ts: TableSet, out: str | os.PathLike, fmt: str = "labelstudio", *,
               predictions: pd.DataFrame | None = None,
               document_root: str | os.PathLike | None = None,
               include_annotations: bool = True, source: str = HUMAN,
               annotator: str | None = None, copy: bool = False) -> list[Path]:
    """Write `ts` in an exchange format.

    Parameters
    ----------
    ts : TableSet
        The set to write.
    out : path
        labelstudio: the tasks JSON file; coco: a folder for `instances.json` and
        `captions.json`; yolo: a folder for the data set (`data.yaml`, images, labels).
    fmt : {"labelstudio", "coco", "yolo"}
        The format.
    predictions : pandas.DataFrame, optional
        labelstudio: boxes (stage-1 output) attached as pre-annotations.
    document_root : path, optional
        labelstudio: the server's local-files document root; image paths under it become
        `/data/local-files/` URLs.
    include_annotations : bool
        labelstudio: include the human annotations (False: fresh tasks for a new round).
    source, annotator : str
        yolo: which boxes (human, consensus, model:<version>) and, for human boxes, whose.
    copy : bool
        yolo: copy the images instead of linking them.

    Returns
    -------
    list of Path
        The files written (the tasks file, the two COCO files, or the YOLO `data.yaml`).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}: use one of {FORMATS}")
    out = Path(out)
    if fmt == "labelstudio":
        tasks = ls_export.to_tasks(ts, predictions, document_root,
                                   include_annotations=include_annotations)
        return [write_json(out, tasks)]
    if fmt == "coco":
        instances, captions = coco.to_coco(ts)
        return [write_json(out / "instances.json", instances),
                write_json(out / "captions.json", captions)]
    return [yolo.to_yolo(ts, out, source, annotator, copy)]
