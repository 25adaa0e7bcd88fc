"""A small run folder with every step's outputs (tiny models), laid out as `quality.workspace`
says: what `quality report` and `quality robustness` read. Made by the same job functions the
CLIs and the pipeline call, so the report tests see what a real run writes."""

from __future__ import annotations

from pathlib import Path

from annotate import store
from annotate.readers import import_set
from annotate.views import gold_boxes
from quality import workspace
from quality.jobs import audit_job, consensus_job, reliability_job, split_job
from stage1_detect.jobs import evaluate_job, predict_job
from stage1_detect.train import DetectorConfig, train
from stage2_generate.baseline import rule_job
from stage2_generate.generate import generate_job
from stage2_generate.noise import Noise
from stage2_generate.train import TrainConfig
from stage2_generate.train import train as train_stage2
from tests.conftest import REPO


def make_run(run: Path, stage2: bool = True) -> Path:
    ts, _ = import_set(REPO / "data/demo/export.json", workspace.path(run, "tables"))
    reliability_job(ts, workspace.path(run, "reliability"), n_boot=50)
    consensus_job(ts, workspace.path(run, "gold"))
    split_job(store.load(workspace.path(run, "gold")), workspace.path(run, "split"), val=0.15,
              test=0.15, n_boot=50)
    split = store.load(workspace.path(run, "split"))
    audit_job(split, workspace.path(run, "audit"), check_images=False)
    stage1 = run / "stage1"
    train(split, stage1, DetectorConfig(model="tiny", epochs=1, imgsz=64))
    predicted = predict_job(stage1, split, workspace.path(run, "predicted"), split="test",
                            conf=0.001)
    evaluate_job(split, predicted, run=stage1, split="test", imgsz=64,
                 errors_path=workspace.path(run, "errors"),
                 json_path=workspace.path(run, "evaluate"))
    if stage2:
        test = split.images[split.images.split == "test"]
        for name, noise in (("gold", Noise()), ("noise", Noise(drop=0.2, jitter=0.05))):
            folder = run / "stage2" / name
            train_stage2(split, folder, TrainConfig(preset="tiny", epochs=2, noise=noise,
                                                    progress=False))
            generate_job(folder, gold_boxes(split), test, folder / workspace.CAPTIONS_GOLD)
            generate_job(folder, predicted, test, folder / workspace.CAPTIONS_PREDICTED)
        baseline = run / "stage2" / "baseline"
        rule_job(gold_boxes(split), test, baseline / workspace.CAPTIONS_GOLD)
        rule_job(predicted, test, baseline / workspace.CAPTIONS_PREDICTED)
    return run
