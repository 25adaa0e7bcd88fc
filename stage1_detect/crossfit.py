"""Out-of-fold predictions: K detectors on grouped folds, each predicting the fold it never saw,
so stage 2 can train on realistic stage-1 output for its own training images."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from annotate.runtime.atomic import write_json, write_parquet
from annotate.tables.schema import TableSet
from quality.splits.partition import fold_set
from stage1_detect.predict import RAW_CONF, predict
from stage1_detect.train import DetectorConfig, train

OOF_BOXES = "oof_boxes.parquet"


def crossfit(ts: TableSet, out: str | os.PathLike, config: DetectorConfig | None = None, *,
             folds: int = 5, conf: float = RAW_CONF, progress: bool = False) -> pd.DataFrame:
    """Out-of-fold detections: every image predicted by a detector that never saw it.

    Parameters
    ----------
    ts : TableSet
        The images to predict (usually the train split), with gold boxes.
    out : path
        Folder for the K fold runs, `oof_boxes.parquet` and `crossfit.json`.
    config : DetectorConfig, optional
        The recipe each fold's detector is trained with (its seed is offset by the fold).
    folds : int
        K, when the images carry no `fold` column yet.
    conf : float
        Least confidence kept (`RAW_CONF`).
    progress : bool
        Show progress bars.

    Returns
    -------
    pandas.DataFrame
        The out-of-fold boxes table.

    Notes
    -----
    Folds come from the images' `fold` column, or are made (grouped, stratified) with `folds`.
    Each detector trains on the other folds with its last-epoch weights kept as they are and
    no validation until the last epoch (its own training images stand in for validation), so
    nothing of the held-out fold steers it. Detections at or above `conf` are kept: predict at
    a low `conf` to choose the operating threshold later (`quality.cascade.threshold`).
    """
    out, config = Path(out), config or DetectorConfig()
    if "fold" not in ts.images.columns or ts.images.fold.isna().any():
        ts = fold_set(ts, folds, config.seed)
    k_values = sorted(int(k) for k in ts.images.fold.unique())
    predictions = []
    for k in k_values:
        held_out = (ts.images.fold == k).to_numpy()
        images = ts.images.assign(split=np.where(held_out, "test", "train"))
        fold_ts = TableSet(images, ts.annotations, ts.boxes, ts.captions, ts.labels, ts.meta)
        record = train(fold_ts, out / f"fold_{k}",
                       replace(config, seed=config.seed + k, val=False))
        last = Path(record["weights"]).with_name("last.pt")
        predictions.append(predict(last, ts.images[held_out], conf=conf,
                                   imgsz=config.imgsz, device=config.device,
                                   progress=progress))
    boxes = pd.concat(predictions, ignore_index=True)
    write_parquet(out / OOF_BOXES, boxes)
    write_json(out / "crossfit.json", {"folds": k_values, "images": len(ts.images),
                                       "boxes": len(boxes)})
    return boxes
