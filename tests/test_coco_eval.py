"""COCO scores of stored boxes on hand-made cases: perfect detections, a crowd region ignored,
a false positive counted, and COCO results files read with the set's category ids."""

import json

import pytest

from annotate.tables.schema import TableSet
from stage1_detect.coco_eval import coco_scores, read_predictions


def box(image, label, x0, y0, x1, y1, source="human", annotator="a", score=None, oid="1"):
    return {"image_id": image, "annotator": annotator, "object_id": oid, "label": label,
            "x0": x0, "y0": y0, "x1": x1, "y1": y1, "score": score, "source": source}


@pytest.fixture
def scene():
    gold = [box("1", "cat", 10, 10, 40, 40), box("2", "dog", 50, 50, 90, 90, oid="2")]
    crowd = [box("2", "cat", 0, 0, 30, 30, source="crowd", oid="c")]
    return TableSet(images=[{"image_id": i, "path": f"{i}.png", "width": 100, "height": 100}
                            for i in ("1", "2")],
                    annotations=[{"image_id": i, "annotator": "a", "source": "human"}
                                 for i in ("1", "2")],
                    boxes=gold + crowd, labels=["cat", "dog"],
                    meta={"coco_categories": {"cat": 17, "dog": 18}})


def test_perfect_detections_and_a_crowd_region_score_ap_one(scene):
    gold = scene.boxes[scene.boxes.source == "human"]
    found = TableSet(images=scene.images, boxes=[
        box("1", "cat", 10, 10, 40, 40, "model:m", "model:m", 0.9),
        box("2", "dog", 50, 50, 90, 90, "model:m", "model:m", 0.8, oid="2"),
        box("2", "cat", 1, 1, 29, 29, "model:m", "model:m", 0.95, oid="3")]).boxes  # on crowd
    scores = coco_scores(scene, gold, found, scene.images)
    assert scores["ap"] == pytest.approx(1.0)
    assert scores["per_class"] == pytest.approx({"cat": 1.0, "dog": 1.0})


def test_a_confident_false_positive_lowers_ap(scene):
    gold = scene.boxes[scene.boxes.source == "human"]
    found = TableSet(images=scene.images, boxes=[
        box("1", "cat", 10, 10, 40, 40, "model:m", "model:m", 0.5),
        box("1", "cat", 60, 60, 90, 90, "model:m", "model:m", 0.9, oid="2"),
        box("2", "dog", 50, 50, 90, 90, "model:m", "model:m", 0.8, oid="3")]).boxes
    scores = coco_scores(scene, gold, found, scene.images)
    assert scores["per_class"]["dog"] == pytest.approx(1.0)
    assert scores["per_class"]["cat"] == pytest.approx(0.5, abs=0.01)  # precision 1/2 at recall 1


def test_results_files_use_the_imported_category_ids(scene, tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps([{"image_id": 1, "category_id": 18, "bbox": [50, 50, 40, 40],
                                 "score": 0.7}]))
    boxes = read_predictions(path, scene)
    assert boxes[["image_id", "label", "x1", "score"]].values.tolist() == [["1", "dog", 90, 0.7]]
    path.write_text(json.dumps([{"image_id": 1, "category_id": 99, "bbox": [1, 1, 2, 2]}]))
    with pytest.raises(ValueError, match="unknown category_id"):
        read_predictions(path, scene)
