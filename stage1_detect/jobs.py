"""The stage-1 jobs that write artifacts beyond training itself: detections as a boxes table,
and the evaluation (mAP from ultralytics' validator plus the per-object error table).

`stage1-detect predict | evaluate`, the pipeline and the test fixtures call these; gold boxes
are always `annotate.views.gold_boxes` (consensus unless `gold` names another).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from annotate.atomic import write_json, write_parquet
from annotate.schema import TableSet
from annotate.views import gold_boxes, split_images

from .coco_eval import coco_scores
from .dataset import build_dataset
from .evaluate import DEFAULT_IOU, error_rates, map_scores, match_errors
from .predict import predict

EVAL_DATASET = "eval_dataset"


def predict_job(run: str | os.PathLike, ts: TableSet, out: str | os.PathLike, *,
                split: str | None = None, conf: float = 0.25, imgsz: int | None = None,
                batch: int = 32, device: str | None = None, progress: bool = False
                ) -> pd.DataFrame:
    """Detections on the images of `split` (all when None), written to `out` (Parquet)."""
    boxes = predict(run, split_images(ts, split), conf=conf, imgsz=imgsz, batch=batch,
                    device=device, progress=progress)
    write_parquet(out, boxes)
    return boxes


def evaluate_job(ts: TableSet, predicted: pd.DataFrame, *, run: str | os.PathLike | None = None,
                 split: str | None = None, gold: str | None = None, iou: float = DEFAULT_IOU,
                 imgsz: int | None = None, device: str | None = None,
                 errors_path: str | os.PathLike | None = None,
                 json_path: str | os.PathLike | None = None) -> tuple[dict, pd.DataFrame]:
    """Match `predicted` against the gold boxes of `split`: the error table (written to
    `errors_path`) and its rates, COCO AP / AP50 / AP75 of the stored boxes (pycocotools, crowd
    regions ignored); with `run`, also mAP50 / mAP50-95 on that split from ultralytics'
    validator over the same gold (it re-predicts; docs/stage1.md says why the two differ).
    Figures written to `json_path`. Returns the figures and the error table."""
    images = split_images(ts, split)
    truth = gold_boxes(ts, gold)
    errors = match_errors(truth, predicted, images.image_id, iou)
    rates = error_rates(errors)
    report: dict = {"split": split, "images": len(images), "gold": gold or "consensus",
                    "iou": iou, "errors": rates.reset_index(names="class").to_dict("records"),
                    "coco": coco_scores(ts, truth, predicted, images)}
    if run is not None:
        data_yaml = build_dataset(ts, Path(run) / EVAL_DATASET, gold)
        report["map"] = map_scores(run, data_yaml, split or "val", imgsz=imgsz, device=device)
    if errors_path is not None:
        write_parquet(errors_path, errors)
    if json_path is not None:
        write_json(json_path, report)
    return report, errors
