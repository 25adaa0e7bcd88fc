"""Leakage audit and repair on the demo data, target-leakage checks, eval-set adequacy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from annotate.formats.layout import EMPTY, encode_layouts
from annotate.formats.ls_import import import_export
from annotate.tables.schema import TableSet
from annotate.tables.views import reference_boxes
from quality.splits.adequacy import adequacy, ci_width
from quality.splits.audit import FINDING_KINDS, audit, repair, thumbnail_correlation
from quality.splits.leakage import identifier_leaks, input_leaks
from quality.splits.partition import split_set
from tests.conftest import REPO


@pytest.fixture(scope="module")
def demo() -> TableSet:
    return import_export(REPO / "data/demo/export.json")[0]


def naive_split(ts: TableSet, seed: int = 0) -> TableSet:
    """What a random image-level split does: crops and copies land on both sides."""
    rng = np.random.default_rng(seed)
    split = rng.choice(["train", "val", "test"], len(ts.images), p=[0.8, 0.1, 0.1])
    return TableSet(ts.images.assign(split=split), ts.annotations, ts.boxes, ts.captions,
                    ts.labels)


def test_naive_split_leaks_are_found_and_repair_removes_them(demo):
    leaky = naive_split(demo)
    found = audit(leaky)
    counts = found.counts()
    assert counts["split_group"] > 0  # the simulated crops of one scene
    assert counts["exact_duplicate_image"] > 0  # a copy filed under another group
    f = found.findings
    for row in f.itertuples():
        assert row.split != row.other_split  # every finding names both items and splits
    copy = f[f.kind == "exact_duplicate_image"].iloc[0]
    sha = demo.images.set_index("image_id").sha256
    assert sha[copy.image_id] == sha[copy.other_image_id]
    crops = f[f.kind == "split_group"].iloc[0]
    group = demo.images.set_index("image_id").group_id
    assert group[crops.image_id] == group[crops.other_image_id]

    repaired, moves = repair(leaky, found)
    after = audit(repaired).counts()
    assert after["split_group"] == after["exact_duplicate_image"] == 0
    assert after["near_duplicate_image"] == 0
    assert 0 < len(moves) <= counts["split_group"] + counts["exact_duplicate_image"] + counts[
        "near_duplicate_image"]
    changed = leaky.images.split.to_numpy() != repaired.images.split.to_numpy()
    assert changed.sum() == len(moves)


def test_repair_of_every_kind_leaves_no_finding(demo):
    leaky = naive_split(demo, seed=1)
    repaired, moves = repair(leaky, audit(leaky), FINDING_KINDS)
    assert len(moves) > 0
    assert sum(audit(repaired).counts().values()) == 0


def test_our_split_has_no_image_leaks(demo):
    counts = audit(split_set(demo)).counts()
    assert counts["split_group"] == counts["exact_duplicate_image"] == 0
    assert counts["near_duplicate_image"] == 0


def test_near_duplicates_need_similar_thumbnails(tmp_path, demo):
    source = Image.open(demo.images.path.iloc[0]).convert("RGB")
    source.save(tmp_path / "a.png")
    source.resize((source.width // 2, source.height // 2)).save(tmp_path / "b.jpg", quality=70)
    Image.new("RGB", source.size, (230, 230, 230)).save(tmp_path / "plain.png")
    ts = TableSet(images=[
        {"image_id": k, "path": str(tmp_path / name), "width": 10, "height": 10,
         "split": split}
        for k, name, split in (("a", "a.png", "train"), ("b", "b.jpg", "test"),
                               ("p", "plain.png", "val"))])
    found = audit(ts).findings
    near = found[found.kind == "near_duplicate_image"]
    assert {frozenset((r.image_id, r.other_image_id)) for r in near.itertuples()} == {
        frozenset(("a", "b"))}
    assert audit(ts, check_images=False).counts()["near_duplicate_image"] == 0
    same = np.array([[1, 2, 3, 4]], np.uint8)
    assert thumbnail_correlation(np.r_[same, same], np.array([0]), np.array([1]))[0] == 1


def test_unreadable_images_are_reported(tmp_path):
    ts = TableSet(images=[{"image_id": "x", "path": str(tmp_path / "missing.png"), "width": 5,
                           "height": 5}])
    assert audit(ts).unreadable.image_id.tolist() == ["x"]


def test_layout_encoding_is_stable_and_quantised():
    images = pd.DataFrame({"image_id": ["1", "2"], "width": [100, 100], "height": [50, 50]})
    boxes = pd.DataFrame({"image_id": ["1", "1"], "label": ["blue square", "red circle"],
                          "x0": [60.0, 0.0], "y0": [0.0, 25.0], "x1": [100.0, 10.0],
                          "y1": [10.0, 50.0]})
    encoded = encode_layouts(boxes, images, bins=4)
    assert encoded["1"] == "red circle x0 y2 x0 y3 ; blue square x2 y0 x3 y0"
    assert encoded["2"] == EMPTY
    assert encode_layouts(boxes.iloc[::-1], images, bins=4)["1"] == encoded["1"]


def test_input_leaks_find_caption_text_and_annotator_names(demo):
    assert input_leaks(demo).empty
    encoded = encode_layouts(demo.boxes[demo.boxes.source == "human"].drop_duplicates(
        "image_id"), demo.images)
    first = demo.captions.iloc[0]
    encoded[first.image_id] += " " + first.caption + " by " + first.annotator
    leaks = input_leaks(demo, encoded)
    assert set(leaks[leaks.image_id == first.image_id].kind) == {"caption_text", "annotator"}


def test_identifier_leaks_find_file_names_that_encode_the_label(demo):
    assert identifier_leaks(demo).empty
    images = demo.images.copy()
    boxes = reference_boxes(demo)
    has_it = set(boxes[boxes.label == "green triangle"].image_id)
    images["path"] = [p.replace("img_", "pointy_") if i in has_it else p
                      for i, p in zip(images.image_id, images.path, strict=True)]
    leaky = TableSet(images, demo.annotations, demo.boxes, demo.captions, demo.labels)
    found = identifier_leaks(leaky)
    assert "pointy" in set(found.token)
    assert (found[found.token == "pointy"].label == "green triangle").all()


def test_adequacy_shrinks_with_the_split_size(demo):
    scores = np.random.default_rng(0).normal(0, 1, 2000)
    assert ci_width(scores, 400) < ci_width(scores, 25) / 3
    figures = adequacy(split_set(demo, 0.1, 0.3), n_boot=200)
    assert figures["test"]["images"] == 60 and figures["val"]["images"] == 20
    assert figures["test"]["cider_d"]["ci_width"] < figures["val"]["cider_d"]["ci_width"]
    assert figures["test"]["cider_d"]["paired_mdd"] == pytest.approx(
        figures["val"]["cider_d"]["paired_mdd"] * np.sqrt(20 / 60))


def test_paired_mdd_known_answer_and_on_the_split():
    """(z_.975 + z_.8) * sd / sqrt(n): differences of sd 1 on 100 images give 0.2802; the
    split's paired MDD shrinks with the square root of its size."""
    from quality.splits.adequacy import paired_mdd

    d = np.r_[np.ones(50), -np.ones(50)]
    assert paired_mdd(d) == pytest.approx(2.8016 * d.std(ddof=1) / 10, abs=1e-4)
    assert paired_mdd(d, n=400) == pytest.approx(paired_mdd(d) / 2)
    assert np.isnan(paired_mdd([1.0]))
