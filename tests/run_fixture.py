"""A small run folder with every step's outputs (tiny models), laid out as `quality.workspace`
says: what `quality report` and `quality robustness` read."""

from __future__ import annotations

from pathlib import Path

from annotate import store
from annotate.atomic import write_json
from annotate.ls_import import import_export
from annotate.views import reference_boxes
from quality import workspace
from quality.audit import audit
from quality.ceiling import human_ceiling
from quality.consensus import build_consensus
from quality.reliability import reliability
from quality.splits import split_report, split_set
from stage1_detect.evaluate import error_rates, match_errors
from stage1_detect.predict import predict
from stage1_detect.train import DetectorConfig, train
from stage2_generate.generate import generate_captions
from stage2_generate.noise import Noise
from stage2_generate.train import TrainConfig
from stage2_generate.train import train as train_stage2
from tests.conftest import REPO


def make_run(run: Path, stage2: bool = True) -> Path:
    ts, _ = import_export(REPO / "data/demo/export.json")
    store.save(ts, run / "tables")
    figures = reliability(ts, n_boot=50).to_dict()
    figures["human_ceiling"] = human_ceiling(ts, n_boot=20)
    write_json(workspace.path(run, "reliability"), figures)
    gold = build_consensus(ts).tables
    store.save(gold, run / "gold")
    split = split_set(gold, 0.15, 0.15)
    out = store.save(split, run / "split")
    write_json(out / "split_report.json", split_report(split).to_dict())
    write_json(workspace.path(run, "audit"), audit(split, check_images=False).to_dict())
    record = train(split, run / "stage1", DetectorConfig(model="tiny", epochs=1, imgsz=64))
    test = split.images[split.images.split == "test"]
    predicted = predict(record["weights"], test, conf=0.001)
    predicted = predicted.sort_values("score", ascending=False).groupby("image_id").head(3)
    predicted.to_parquet(workspace.path(run, "predicted"))
    errors = match_errors(reference_boxes(split), predicted, test.image_id)
    errors.to_parquet(workspace.path(run, "errors"))
    write_json(workspace.path(run, "evaluate"), {
        "map": {"map50": 0.0, "map50_95": 0.0},
        "errors": error_rates(errors).reset_index(names="class").to_dict("records")})
    if stage2:
        for name, noise in (("gold", Noise()), ("noise", Noise(drop=0.2, jitter=0.05))):
            folder = run / "stage2" / name
            train_stage2(split, folder, TrainConfig(preset="tiny", epochs=2, noise=noise,
                                                    progress=False))
            generate_captions(folder, reference_boxes(split), test).to_parquet(
                folder / workspace.CAPTIONS_GOLD)
            generate_captions(folder, predicted, test).to_parquet(
                folder / workspace.CAPTIONS_PREDICTED)
    return run
