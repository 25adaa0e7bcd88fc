"""A small run folder with every step's outputs (tiny models), laid out as `quality.workspace`
says: what `quality report` and `quality robustness` read. Made by the same job functions the
CLIs and the pipeline call, so the report tests see what a real run writes."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pandas as pd

from annotate.formats.readers import import_set
from annotate.tables import store
from annotate.tables.views import gold_boxes
from quality import workspace
from quality.agreement.jobs import reliability_job
from quality.cascade.threshold import threshold_job
from quality.gold.jobs import consensus_job
from quality.splits.jobs import audit_job, split_job
from stage1_detect.jobs import evaluate_job, predict_job
from stage1_detect.train import DetectorConfig, train
from stage2_generate.baseline import rule_job
from stage2_generate.generate import generate_job
from stage2_generate.noise import Noise
from stage2_generate.train import TrainConfig
from stage2_generate.train import train as train_stage2
from tests.conftest import REPO


def make_run(run: Path) -> Path:
    ts, _ = import_set(REPO / "data/demo/export.json", workspace.path(run, "tables"))
    reliability_job(ts, workspace.path(run, "reliability"), n_boot=50)
    consensus_job(ts, workspace.path(run, "gold"))
    split_job(store.load(workspace.path(run, "gold")), workspace.path(run, "split"), val=0.15,
              test=0.15, n_boot=50)
    split = store.load(workspace.path(run, "split"))
    audit_job(split, workspace.path(run, "audit"), check_images=False)
    stage1 = run / "stage1"
    # as the smoke preset: fine-tuned from the shipped weights, so the detections are real
    train(split, stage1, DetectorConfig(model="shapes-tiny.pt", epochs=1, imgsz=96))
    for part in ("val", "test"):
        predict_job(stage1, split, stage1 / f"raw_{part}.parquet", split=part)
    for name, noise in (("gold", Noise()), ("noise", Noise(drop=0.2, jitter=0.05))):
        train_stage2(split, run / "stage2" / name, TrainConfig(preset="tiny", epochs=8,
                                                               noise=noise, progress=False))
    threshold_job(run / "stage2" / "gold", stage1, split)
    predicted = {part: pd.read_parquet(stage1 / f"predicted_{part}.parquet")
                 for part in ("val", "test")}
    evaluate_job(split, predicted["test"], run=stage1, split="test", imgsz=96,
                 errors_path=workspace.path(run, "errors"),
                 json_path=workspace.path(run, "evaluate"))
    evaluate_job(split, predicted["val"], split="val", errors_path=stage1 / "errors_val.parquet")
    for part, sub in (("test", ""), ("val", workspace.VAL)):
        images = split.images[split.images.split == part]
        for name in ("gold", "noise", "baseline"):
            folder = run / "stage2" / name / sub
            caption = (rule_job if name == "baseline" else partial(
                generate_job, run / "stage2" / name))
            caption(gold_boxes(split), images, folder / workspace.CAPTIONS_GOLD)
            caption(predicted[part], images, folder / workspace.CAPTIONS_PREDICTED)
    return run
