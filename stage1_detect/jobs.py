"""The stage-1 jobs that write artifacts beyond training itself: detections as a boxes table,
and the evaluation (mAP from ultralytics' validator plus the per-object error table).

`stage1-detect predict | evaluate`, the pipeline and the test fixtures call these; gold boxes
are always `annotate.tables.views.gold_boxes` (consensus unless `gold` names another).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from annotate.runtime.atomic import write_json, write_parquet
from annotate.runtime.errors import UserError
from annotate.tables.schema import TableSet
from annotate.tables.views import gold_boxes, gold_name, split_images
from stage1_detect.coco_eval import coco_scores, excluded_detections
from stage1_detect.dataset import build_dataset
from stage1_detect.evaluate import MATCH_IOU, error_rates, map_scores, match_errors
from stage1_detect.predict import RAW_CONF, predict

EVAL_DATASET = "eval_dataset"


def predict_job(run: str | os.PathLike, ts: TableSet, out: str | os.PathLike, *,
                split: str | None = None, conf: float = RAW_CONF, imgsz: int | None = None,
                batch: int = 32, device: str | None = None, progress: bool = False
                ) -> pd.DataFrame:
    """Detections of a trained run on a set's images, as a boxes table.

    Parameters
    ----------
    run : path
        A run folder of `stage1-detect train` (its best weights) or a weights file.
    ts : TableSet
        The images to detect on.
    out : path
        Where the boxes table is written (Parquet, atomically).
    split : str, optional
        Only the images of this split (all when None).
    conf : float
        Least confidence kept (`RAW_CONF`: every box an operating threshold may keep).
    imgsz : int, optional
        Inference size (default: the training size).
    batch : int
        Images per forward pass.
    device : str, optional
        "cpu", "0", ...; default: the first GPU when there is one.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        The boxes table written: absolute pixels, confidence as `score`, source
        `model:<run>-<weights hash>`.
    """
    boxes = predict(run, split_images(ts, split), conf=conf, imgsz=imgsz, batch=batch,
                    device=device, progress=progress)
    write_parquet(out, boxes)
    return boxes


def evaluate_job(ts: TableSet, predicted: pd.DataFrame | None = None, *,
                 run: str | os.PathLike | None = None, split: str | None = None,
                 gold: str | None = None, iou: float = MATCH_IOU, conf: float = RAW_CONF,
                 imgsz: int | None = None, device: str | None = None,
                 errors_path: str | os.PathLike | None = None,
                 json_path: str | os.PathLike | None = None) -> tuple[dict, pd.DataFrame]:
    """Stored or fresh detections matched against the gold boxes of a split.

    Parameters
    ----------
    ts : TableSet
        The set with its gold boxes (`annotate.tables.views.gold_boxes`).
    predicted : pandas.DataFrame, optional
        Detections to score (a boxes table); None predicts with `run` at `conf`.
    run : path, optional
        A trained run: predicts when `predicted` is None, and adds ultralytics' mAP50 /
        mAP50-95 on the split over the same gold (its validator re-predicts; docs/stage1.md
        says why the two differ).
    split : str, optional
        The images of this split (all when None).
    gold : str, optional
        Which boxes are gold: consensus (default), truth or an annotator.
    iou : float
        IoU at which a detection matches a gold object.
    conf : float
        Least confidence kept when predicting.
    imgsz, device
        Inference size and device for `run`.
    errors_path : path, optional
        Where the per-object error table is written (Parquet).
    json_path : path, optional
        Where the figures are written.

    Returns
    -------
    figures : dict
        Error rates per class and overall, COCOeval's twelve numbers of the stored boxes
        (pycocotools, crowd regions ignored; `coco_eval.COCO_STATS`), the detections left out
        (`excluded_detections`: on unknown images, of unknown classes) and, with `run`, `map`.
    errors : pandas.DataFrame
        The stage-1 error table (`annotate.tables.schema.ERROR_COLUMNS`).
    """
    images = split_images(ts, split)
    if predicted is None:
        if run is None:
            raise UserError("nothing to evaluate: give detections (--predictions) or a run "
                            "to predict with")
        predicted = predict(run, images, conf=conf, imgsz=imgsz, device=device)
    truth = gold_boxes(ts, gold)
    predicted, excluded = excluded_detections(ts, predicted)
    errors = match_errors(truth, predicted, images.image_id, iou)
    rates = error_rates(errors)
    report: dict = {"split": split, "images": len(images), "gold": gold_name(ts, gold),
                    "iou": iou, "errors": rates.reset_index(names="class").to_dict("records"),
                    "coco": coco_scores(ts, truth, predicted, images),
                    "excluded_detections": excluded}
    if run is not None:
        data_yaml = build_dataset(ts, Path(run) / EVAL_DATASET, gold)
        report["map"] = map_scores(run, data_yaml, split or "val", imgsz=imgsz, device=device)
    if errors_path is not None:
        write_parquet(errors_path, errors)
    if json_path is not None:
        write_json(json_path, report)
    return report, errors
