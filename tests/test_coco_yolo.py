import json

import numpy as np
import pytest
import yaml
from label_studio_sdk.converter import Converter

from annotate.formats.coco import from_coco, to_coco
from annotate.formats.ls_export import labeling_config
from annotate.formats.ls_import import import_export
from annotate.formats.yolo import from_yolo, to_yolo
from tests.conftest import LS_1_23, frames_equal


@pytest.fixture
def real_set():
    ts, _ = import_export(LS_1_23 / "snapshot_full.json", labels=["red circle", "blue square"])
    return ts


def test_coco_round_trip_keeps_every_annotator(real_set, tmp_path):
    instances, captions = to_coco(real_set)
    assert [c["name"] for c in instances["categories"]] == ["red circle", "blue square"]
    first = instances["annotations"][0]
    assert first["bbox"] == pytest.approx([10.0, 10.0, 40.0, 30.0]) and first["area"] == 1200
    (tmp_path / "i.json").write_text(json.dumps(instances))
    (tmp_path / "c.json").write_text(json.dumps(captions))
    back, summary = from_coco(tmp_path / "i.json", tmp_path / "c.json", images_root=LS_1_23)
    for name, keys in [("images", ["image_id"]), ("annotations", ["image_id", "annotator"]),
                       ("boxes", ["image_id", "annotator", "object_id"]),
                       ("captions", ["image_id", "annotator"])]:
        frames_equal(back.table(name), real_set.table(name), keys)
    assert summary.prediction_boxes == 6


def test_plain_coco_is_one_annotator_who_saw_every_image(tmp_path):
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10},
                       {"id": 2, "file_name": "b.png", "width": 10, "height": 10}],
            "categories": [{"id": 3, "name": "cat"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 1, 2, 2]},
                            {"id": 2, "image_id": 1, "category_id": 9, "bbox": [1, 1, 2, 2]},
                            {"id": 3, "image_id": 2, "category_id": 3, "bbox": [1, 1, 0, 2]}]}
    (tmp_path / "c.json").write_text(json.dumps(coco))
    ts, summary = from_coco(tmp_path / "c.json")
    assert ts.annotations.annotator.tolist() == ["coco", "coco"]  # image 2: seen, no valid box
    assert ts.boxes[["x0", "y0", "x1", "y1"]].iloc[0].tolist() == [1, 1, 3, 3]
    assert summary.rejected == {"box: category_id not in `categories`": 1,
                                "box: bbox width or height <= 0": 1}


def test_yolo_needs_one_view(real_set, tmp_path):
    with pytest.raises(ValueError, match="several annotators"):
        to_yolo(real_set, tmp_path / "y")
    data_yaml = to_yolo(real_set, tmp_path / "y", annotator="ann2@example.com")
    spec = yaml.safe_load(data_yaml.read_text())
    assert spec["names"] == {0: "red circle", 1: "blue square"}
    # ann2 drew one red circle at x=6% y=10% w=20% h=30% on a (200x100)
    assert (tmp_path / "y/labels/train/a.txt").read_text() == \
        "0 0.160000 0.250000 0.200000 0.300000\n"
    back, _ = from_yolo(data_yaml, annotator="ann2@example.com")
    mine = real_set.boxes[real_set.boxes.annotator == "ann2@example.com"]
    frames_equal(back.boxes.drop(columns="object_id"),
                 mine.drop(columns="object_id").reset_index(drop=True),
                 ["image_id", "x0"])


def test_yolo_per_annotator_leaves_out_unseen_images(real_set, tmp_path):
    to_yolo(real_set, tmp_path / "y", annotator="ann3@example.com")  # skipped task b
    assert sorted(p.name for p in (tmp_path / "y/labels/train").iterdir()) == ["a.txt", "c.txt"]


def test_yolo_matches_label_studio_converter_for_one_annotator(tmp_path):
    """Label Studio's own converter is the oracle where it applies: one annotation per task."""
    tasks = json.loads((LS_1_23 / "snapshot_full.json").read_text())
    for task in tasks:
        task["annotations"] = [a for a in task["annotations"]
                               if a["completed_by"]["email"] == "ann1@example.com"]
        task["predictions"] = []
    (tmp_path / "one.json").write_text(json.dumps(tasks))
    labels = ["red circle", "blue square"]
    ours, _ = import_export(tmp_path / "one.json", images_root=LS_1_23, labels=labels)
    to_yolo(ours, tmp_path / "ours")
    converter = Converter(labeling_config(labels), project_dir=None, download_resources=False)
    converter.convert_to_yolo(str(tmp_path / "one.json"), str(tmp_path / "sdk"), is_dir=False)
    for name in ("a", "b", "c"):
        sdk = np.loadtxt(tmp_path / "sdk" / "labels" / f"{name}.txt", ndmin=2)
        mine = np.loadtxt(tmp_path / "ours" / "labels" / "train" / f"{name}.txt", ndmin=2)
        sdk_names = (tmp_path / "sdk" / "classes.txt").read_text().split("\n")
        sdk[:, 0] = [labels.index(sdk_names[int(i)]) for i in sdk[:, 0]]
        np.testing.assert_allclose(sorted(map(tuple, mine)), sorted(map(tuple, sdk)), atol=1e-6)
