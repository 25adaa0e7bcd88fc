"""COCO scores of stored boxes on hand-made cases: perfect detections, a crowd region ignored,
a false positive counted, and COCO results files read with the set's category ids."""

import json

import numpy as np
import pytest

from annotate.tables.schema import TableSet
from stage1_detect.coco_eval import COCO_STATS, coco_scores, excluded_detections, read_predictions


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
    path.write_text(json.dumps([{"image_id": 1, "category_id": 99, "bbox": [1, 1, 2, 2]},
                                {"image_id": 7, "category_id": 17, "bbox": [1, 1, 2, 2]}]))
    boxes = read_predictions(path, scene)  # kept under a name that says so, not fatal
    assert boxes.label.tolist() == ["unknown category 99", "cat"]
    kept, excluded = excluded_detections(scene, boxes)
    assert excluded == {"unknown_image": 1, "unknown_category": 1} and kept.empty
    path.write_text(json.dumps([{"image_id": 1, "category_id": 17, "bbox": [1, 1, 2]}]))
    with pytest.raises(ValueError, match="not four numbers"):
        read_predictions(path, scene)


def random_coco(seed: int) -> tuple[dict, list]:
    """A COCO ground truth and results of the kinds COCOeval distinguishes: objects of all
    three area ranges (segmentation areas unlike box areas), crowd regions, images without
    objects, tied scores, and an image with more than 100 detections."""
    rng = np.random.default_rng(seed)
    images = [{"id": int(i), "width": 640, "height": 480} for i in rng.permutation(40) + 1]
    annotations, results = [], []
    for image in images:
        for _ in range(int(rng.integers(0, 6)) if image["id"] % 7 else 0):  # some empty
            side = float(rng.choice([12, 20, 40, 70, 120, 200]) * rng.uniform(0.8, 1.2))
            w, h = side * rng.uniform(0.6, 1.4), side * rng.uniform(0.6, 1.4)
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            annotations.append({"id": len(annotations) + 1, "image_id": image["id"],
                                "category_id": int(rng.integers(1, 4)), "bbox": [x, y, w, h],
                                "area": w * h * rng.uniform(0.5, 1.0),
                                "iscrowd": int(rng.random() < 0.05)})
            if rng.random() < 0.8:
                jitter = rng.normal(0, 0.08 * side, 2)
                results.append({"image_id": image["id"], "bbox": [max(0.0, x + jitter[0]),
                                max(0.0, y + jitter[1]), w, h],
                                "category_id": annotations[-1]["category_id"]
                                if rng.random() < 0.9 else int(rng.integers(1, 4)),
                                "score": round(float(rng.uniform(0.3, 1)), 1)})  # ties
        crowded = 130 if image["id"] == 5 else int(rng.integers(0, 4))
        for _ in range(crowded):
            w, h = rng.uniform(8, 150, 2)
            results.append({"image_id": image["id"], "category_id": int(rng.integers(1, 4)),
                            "bbox": [rng.uniform(0, 640 - w), rng.uniform(0, 480 - h), w, h],
                            "score": round(float(rng.uniform(0, 0.6)), 2)})
    categories = [{"id": k, "name": name} for k, name in enumerate(["a", "b", "c"], start=1)]
    return {"images": images, "annotations": annotations, "categories": categories}, results


@pytest.mark.parametrize("seed", range(6))
def test_all_twelve_numbers_equal_pycocotools_on_random_sets(seed, tmp_path):
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from annotate.formats.readers import import_file
    from annotate.tables.views import gold_boxes

    truth, results = random_coco(seed)
    (tmp_path / "gt.json").write_text(json.dumps(truth))
    (tmp_path / "res.json").write_text(json.dumps(results))
    with contextlib.redirect_stdout(io.StringIO()):
        ground = COCO(str(tmp_path / "gt.json"))
        evaluation = COCOeval(ground, ground.loadRes(str(tmp_path / "res.json")), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    ts, _ = import_file(tmp_path / "gt.json")
    assert "area" in ts.boxes.columns
    ours = coco_scores(ts, gold_boxes(ts), read_predictions(tmp_path / "res.json", ts),
                       ts.images)
    assert (evaluation.stats >= 0).all()  # every area range has objects
    assert [ours[name] for name in COCO_STATS] == pytest.approx(list(evaluation.stats),
                                                                abs=1e-12)
