"""Stage 1: gold view and YOLO data set, tiny ultralytics training, prediction as a boxes table,
weights reload, fine-tuning, error table on hand-made cases, out-of-fold predictions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from annotate.formats.ls_import import import_export
from annotate.tables.schema import TableSet
from annotate.tables.views import gold_view
from quality.gold.consensus import build_consensus
from quality.splits.partition import split_set
from stage1_detect.cli import main
from stage1_detect.dataset import build_dataset
from stage1_detect.evaluate import error_rates, match_errors
from stage1_detect.predict import predict
from stage1_detect.train import DetectorConfig, train
from stage2_generate.noise import calibrate
from tests.conftest import REPO

TINY = {"model": "tiny", "epochs": 2, "imgsz": 64, "batch": 16}


@pytest.fixture(scope="module")
def small_demo() -> TableSet:
    """40 demo images with consensus boxes: 30 train, 10 val (and a test split for evaluate)."""
    ts, _ = import_export(REPO / "data/demo/export.json")
    ts = split_set(build_consensus(ts).tables, 0.2, 0.2)
    keep = ts.images.image_id.isin(ts.images.image_id.iloc[:40])
    return TableSet(ts.images[keep], ts.annotations[ts.annotations.image_id.isin(
        ts.images.image_id[keep])], ts.boxes[ts.boxes.image_id.isin(ts.images.image_id[keep])],
        ts.captions[ts.captions.image_id.isin(ts.images.image_id[keep])], ts.labels)


@pytest.fixture(scope="module")
def run(small_demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("stage1") / "run"
    return out, train(small_demo, out, DetectorConfig(**TINY))


def hand_made():
    gold = pd.DataFrame({"image_id": ["1"] * 4, "object_id": list("abcd"),
                         "label": ["cat", "dog", "cat", "cat"],
                         "x0": [0, 50, 100, 150.], "y0": [0.] * 4,
                         "x1": [20, 70, 120, 170.], "y1": [20.] * 4})
    predicted = pd.DataFrame({"image_id": ["1"] * 4 + ["2"], "object_id": list("pqrst"),
                              "label": ["cat", "cat", "cat", "cat", "dog"],
                              "x0": [0, 50, 103, 300, 0.], "y0": [0.] * 5,
                              "x1": [20, 70, 123, 320, 5.], "y1": [20, 20, 20, 20, 5.],
                              "score": [0.9, 0.8, 0.7, 0.6, 0.5]})
    return gold, predicted


def test_error_table_labels_a_hand_made_case():
    gold, predicted = hand_made()
    errors = match_errors(gold, predicted).set_index("gold_object_id", drop=False)
    assert errors.loc["a", "status"] == "matched" and errors.loc["a", "iou"] == 1
    assert errors.loc["b", "status"] == "wrong_label"  # a dog called a cat
    assert errors.loc["c", "status"] == "matched"  # shifted by 3 px: IoU 17/23
    assert errors.loc["c", "iou"] == pytest.approx(17 / 23)
    assert errors.loc["d", "status"] == "missed"
    spurious = errors[errors.status == "spurious"]
    assert sorted(spurious.pred_object_id) == ["s", "t"]
    assert (spurious.iou == 0).all()  # nowhere near a gold box (t: no gold in its image)
    doubled = match_errors(gold, pd.concat([predicted, predicted.iloc[[0]].assign(
        object_id="u", label="dog", x0=2.0, x1=22.0)]))
    second = doubled.set_index("pred_object_id").loc["u"]
    assert second.status == "spurious" and second.iou == pytest.approx(18 / 22)
    rates = error_rates(errors)
    assert rates.loc["all", "miss_rate"] == 0.25 and rates.loc["all", "spurious_rate"] == 0.4
    assert rates.loc["all", "wrong_label_rate"] == 0.25
    noise = calibrate(errors)
    assert noise.drop == 0.25 and noise.spurious == 1.0


def test_hungarian_beats_greedy_on_overlapping_boxes():
    gold = pd.DataFrame({"image_id": ["1", "1"], "object_id": ["g1", "g2"], "label": ["a", "a"],
                         "x0": [0., 10.], "y0": [0., 0.], "x1": [20., 30.], "y1": [20., 20.]})
    predicted = pd.DataFrame({"image_id": ["1", "1"], "object_id": ["p1", "p2"],
                              "label": ["a", "a"], "x0": [5., 18.], "y0": [0., 0.],
                              "x1": [25., 38.], "y1": [20., 20.], "score": [1., 1.]})
    errors = match_errors(gold, predicted, iou_threshold=0.3)
    assert (errors.status == "matched").sum() == 2  # greedy would pair g2-p1 and lose one


def test_gold_view_is_explicit(small_demo):
    assert gold_view(small_demo) == ("consensus", None)
    annotator = small_demo.annotations.annotator.iloc[0]
    assert gold_view(small_demo, annotator) == ("human", annotator)
    human_only = TableSet(small_demo.images, small_demo.annotations,
                          small_demo.boxes[small_demo.boxes.source == "human"],
                          small_demo.captions, small_demo.labels)
    with pytest.raises(ValueError, match="run `quality consensus` first"):
        gold_view(human_only)
    with pytest.raises(ValueError, match="not an annotator"):
        gold_view(small_demo, "nobody")


def test_dataset_keeps_the_label_map(small_demo, tmp_path):
    data_yaml = build_dataset(small_demo, tmp_path / "ds")
    spec = yaml.safe_load(data_yaml.read_text())
    assert spec["names"] == dict(enumerate(small_demo.labels))
    assert {"train", "val", "test"} <= set(spec)


def test_training_records_the_run(run, small_demo):
    out, _record = run
    saved = json.loads((out / "run.json").read_text())
    assert saved["config"]["model"] == "tiny" and saved["data_version"]
    assert saved["source_version"] and (out / "train" / "weights" / "best.pt").is_file()
    assert set(saved["val"]) == {"map50", "map50_95"}


def test_predictions_are_a_valid_boxes_table_and_reload_identically(run, small_demo):
    out, record = run
    images = small_demo.images[small_demo.images.split == "val"]
    boxes = predict(out, images, conf=0.001)
    again = predict(record["weights"], images, conf=0.001, batch=3)
    assert len(boxes) > 0
    TableSet(images=images, boxes=boxes, labels=small_demo.labels).validate()
    assert boxes.source.str.startswith("model:run-").all() and boxes.score.between(0, 1).all()
    pd.testing.assert_frame_equal(boxes.reset_index(drop=True), again.reset_index(drop=True))


def test_the_same_seed_trains_the_same_detector(run, small_demo, tmp_path):
    """Same machine, same seed: the same weights, so the same detections (the pipeline's step
    cache and its reruns rely on it)."""
    out, _ = run
    again = train(small_demo, tmp_path / "again", DetectorConfig(**TINY))
    images = small_demo.images[small_demo.images.split == "val"]
    first, second = (predict(path, images, conf=0.001) for path in (out, again["weights"]))
    assert len(first) > 0
    columns = ["image_id", "label", "x0", "y0", "x1", "y1", "score"]
    pd.testing.assert_frame_equal(first[columns].reset_index(drop=True),
                                  second[columns].reset_index(drop=True))


def test_fine_tuning_from_local_weights(run, small_demo, tmp_path):
    _, record = run
    tuned = train(small_demo, tmp_path / "tuned", DetectorConfig(
        **{**TINY, "model": record["weights"], "epochs": 1}))
    scratch = train(small_demo, tmp_path / "scratch", DetectorConfig(**{**TINY, "epochs": 1,
                                                                      "seed": 7}))

    def weights(path):
        import torch

        model = torch.load(path, map_location="cpu", weights_only=False)["model"]
        return torch.cat([p.float().flatten() for p in model.state_dict().values()])

    source = weights(record["weights"])
    # one epoch from the given weights stays near them; one from a fresh start does not
    assert (weights(tuned["weights"]) - source).abs().mean() < 0.2 * (
        weights(scratch["weights"]) - source).abs().mean()
    with pytest.raises(FileNotFoundError, match="no such weights"):
        train(small_demo, tmp_path / "x", DetectorConfig(**{**TINY, "model": "missing.pt"}))


def test_cli_evaluate_and_predict(run, small_demo, tmp_path, capsys):
    from annotate.tables import store

    out, _ = run
    store.save(small_demo, tmp_path / "set")
    boxes = tmp_path / "boxes.parquet"
    assert main(["predict", str(out), str(tmp_path / "set"), "--split", "val",
                 "--out", str(boxes), "--conf", "0.001"]) == 0
    report = tmp_path / "eval.json"
    assert main(["evaluate", str(out), str(tmp_path / "set"), "--split", "val", "--conf",
                 "0.001", "--errors", str(tmp_path / "errors.parquet"),
                 "--json", str(report)]) == 0
    figures = json.loads(report.read_text())
    assert set(figures["map"]) == {"map50", "map50_95"} and figures["errors"][0]["class"] == "all"
    errors = pd.read_parquet(tmp_path / "errors.parquet")
    assert set(errors.status) <= {"matched", "missed", "spurious", "wrong_label"}
    assert main(["evaluate", "--boxes", str(boxes), str(tmp_path / "set"), "--split",
                 "val"]) == 0
    assert main(["predict", str(tmp_path / "nothing"), str(tmp_path / "set"),
                 "--out", str(boxes)]) == 2


def test_crossfit_predicts_each_fold_with_a_detector_that_never_saw_it(small_demo, tmp_path):
    from stage1_detect.crossfit import crossfit

    # fine-tuned from the shipped weights (never trained on these images): each fold's
    # detector finds objects, so the disjointness below is checked on real detections
    boxes = crossfit(small_demo, tmp_path / "cf", DetectorConfig(
        **{**TINY, "model": "shapes-tiny.pt", "epochs": 1, "imgsz": 96}), folds=2)
    summary = json.loads((tmp_path / "cf" / "crossfit.json").read_text())
    assert summary["folds"] == [0, 1]
    for k in (0, 1):
        spec = yaml.safe_load((tmp_path / "cf" / f"fold_{k}" / "dataset" / "data.yaml")
                              .read_text())
        trained_on = {p.stem for p in (tmp_path / "cf" / f"fold_{k}" / "dataset" /
                                       spec["train"]).iterdir()}
        predicted_by_k = set(boxes.image_id[boxes.source.str.contains(f"fold_{k}")])
        assert predicted_by_k, f"fold {k}'s detector found nothing: the check below is empty"
        assert not trained_on & predicted_by_k
    assert np.isin(boxes.image_id, small_demo.images.image_id).all()
