import filecmp

import numpy as np
import pandas as pd
import pytest

from annotate.demo import CLASSES, generate
from annotate.demo.captions import phrasings
from annotate.demo.scenes import Obj
from annotate.formats.ls_import import import_export
from annotate.tables.store import load
from tests.conftest import REPO


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    export = generate(120, out, seed=3)
    ts, summary = import_export(export, labels=list(CLASSES))
    return out, ts, summary, load(out / "truth", validate=True)


def test_same_seed_same_bytes(demo, tmp_path):
    out, *_ = demo
    generate(120, tmp_path, seed=3)
    assert (out / "export.json").read_bytes() == (tmp_path / "export.json").read_bytes()
    match, mismatch, errors = filecmp.cmpfiles(out / "images", tmp_path / "images",
                                               [f"img_{i:05d}.jpg" for i in range(1, 121)],
                                               shallow=False)
    assert len(match) == 120 and not mismatch and not errors


def test_shipped_sample_is_the_generator_output(tmp_path):
    generate(200, tmp_path, seed=0)
    assert (REPO / "data/demo/export.json").read_bytes() == (tmp_path / "export.json").read_bytes()


def test_the_demo_preset_generates_its_larger_sample_once_and_whole(tmp_path):
    """`evaluate-pipeline --preset demo` reads a 500-image sample made on first use: the
    generator's bytes, written whole (no partial folder left), reused afterwards."""
    from quality.run.pipeline import DEMO_EXPORT, demo_data

    assert demo_data(0, tmp_path) == DEMO_EXPORT
    export = demo_data(12, tmp_path)
    assert export == tmp_path / "generated" / "demo-12" / "export.json"
    made = export.stat().st_mtime_ns
    assert demo_data(12, tmp_path).stat().st_mtime_ns == made
    assert export.read_bytes() == generate(12, tmp_path / "reference", seed=0).read_bytes()
    assert [p.name for p in (tmp_path / "generated").iterdir()] == ["demo-12"]


def test_shape_of_the_demo_set(demo):
    _, ts, summary, truth = demo
    assert len(ts.images) == 120 and summary.skipped > 0
    per_image = ts.annotations.groupby("image_id").size()
    assert per_image.max() == 3 and per_image.min() >= 1
    assert ts.annotations.annotator.nunique() == 5
    n_obj = truth.boxes.groupby("image_id").size()
    assert n_obj.min() >= 1 and n_obj.max() <= 4
    assert set(truth.boxes.label) <= set(CLASSES)
    groups = ts.images.group_id.value_counts()
    assert (groups >= 2).any(), "crops of one scene must share a group"
    dup = ts.images[ts.images.sha256.duplicated(keep=False)]
    assert dup.group_id.nunique() > 1, "exact copies must sit in different groups"
    caps = truth.captions.groupby("image_id").caption
    assert (caps.size() == 3).all() and (caps.nunique() == 3).all()


def _mean_iou_with_truth(ts, truth, annotator):
    human = ts.boxes[ts.boxes.annotator == annotator]
    pairs = human.merge(truth.boxes, on=["image_id", "label"], suffixes=("", "_t"))
    ix = (np.minimum(pairs.x1, pairs.x1_t) - np.maximum(pairs.x0, pairs.x0_t)).clip(0)
    iy = (np.minimum(pairs.y1, pairs.y1_t) - np.maximum(pairs.y0, pairs.y0_t)).clip(0)
    inter = ix * iy
    union = ((pairs.x1 - pairs.x0) * (pairs.y1 - pairs.y0)
             + (pairs.x1_t - pairs.x0_t) * (pairs.y1_t - pairs.y0_t) - inter)
    return pairs.assign(iou=inter / union).groupby(["image_id", "object_id"]).iou.max().mean()


def test_careless_annotator_is_measurably_worse(demo):
    _, ts, _, truth = demo
    careful = _mean_iou_with_truth(ts, truth, "alice@example.com")
    careless = _mean_iou_with_truth(ts, truth, "eve@example.com")
    assert careful > 0.85 and careless < careful - 0.1
    lead = ts.annotations.groupby("annotator").lead_time.median()
    assert lead["eve@example.com"] < lead["alice@example.com"]


def test_human_boxes_track_the_truth(demo):
    _, ts, _, truth = demo
    per_image_h = ts.boxes[ts.boxes.annotator == "alice@example.com"].groupby("image_id").size()
    per_image_t = truth.boxes.groupby("image_id").size().reindex(per_image_h.index)
    assert (per_image_h == per_image_t).mean() > 0.9


def test_phrasings_describe_the_arrangement():
    left, right = Obj("red circle", 0, 0, 10, 10), Obj("blue square", 50, 2, 60, 12)
    assert phrasings([right, left], 100, 100)[0] == "a red circle to the left of a blue square"
    two = [left, right, Obj("blue square", 80, 0, 90, 10)]
    assert phrasings(two, 100, 100)[2] == "from left to right: a red circle and two blue squares"
    top, low = Obj("red circle", 0, 0, 10, 10), Obj("green square", 2, 60, 12, 70)
    assert phrasings([low, top], 100, 100)[0] == "a red circle above a green square"
    assert phrasings([top], 100, 100)[0] == "a red circle in the top left"
    assert phrasings([], 100, 100)[0] == "an empty background"


def test_truth_paths_are_relative_to_the_demo_folder(demo):
    out, ts, _, truth = demo
    assert truth.images.path.iloc[0] == "images/img_00001.jpg"
    assert (out / truth.images.path.iloc[0]).is_file()
    merged = ts.images.merge(truth.images, on="image_id", suffixes=("", "_t"))
    assert (merged.sha256 == merged.sha256_t).all() and len(merged) == 120
    assert pd.api.types.is_integer_dtype(merged.width)
