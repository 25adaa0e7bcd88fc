"""Reliability of a table set: known answers through the tables, the demo's careless annotator,
captions against a brute-force chrF alpha, the human ceiling."""

from __future__ import annotations

import itertools

import krippendorff
import numpy as np
import pytest
import sacrebleu

from annotate.formats.ls_import import import_export
from annotate.metrics.captions import caption_scores
from quality.agreement.ceiling import human_ceiling, leave_one_out
from quality.agreement.reliability import reliability
from quality.gold.consensus import build_consensus
from tests.conftest import LS_1_23, REPO
from tests.quality_sets import make_set
from tests.test_alpha import KRIPPENDORFF_2011


def worked_example_as_boxes():
    """Krippendorff's 12 units as 12 images; each coder who rated a unit drew one box there,
    labelled with the value; a coder with a missing value never saw the image."""
    seen, boxes = [], []
    for coder, unit in zip(*np.nonzero(~np.isnan(KRIPPENDORFF_2011)), strict=True):
        image, name = str(unit + 1), "ABCD"[coder]
        seen.append((image, name))
        boxes.append((image, name, f"v{int(KRIPPENDORFF_2011[coder, unit])}", 10, 10, 60, 60))
    return make_set(seen, boxes)


def test_nominal_worked_example_through_box_labels():
    result = reliability(worked_example_as_boxes(), n_boot=200)
    labels = result.alphas["labels"]
    assert round(labels.alpha, 3) == 0.743
    assert labels.n_units == 11 and labels.n_values == 40
    # Identical boxes: perfect box agreement; counts all 1: no variation, so alpha undefined.
    assert result.present_only["labels"].alpha == pytest.approx(labels.alpha)
    assert np.isnan(result.alphas["counts"].alpha)


def test_counts_alpha_equals_the_package():
    seen = [(str(i), a) for i in range(1, 7) for a in "abc"]
    rng = np.random.default_rng(0)
    boxes, matrix = [], np.zeros((3, 6))
    for i, a in seen:
        n = int(rng.integers(0, 4))
        matrix["abc".index(a), int(i) - 1] = n
        boxes += [(i, a, "x", 40 * k, 0, 40 * k + 30, 30) for k in range(n)]
    result = reliability(make_set(seen, boxes), n_boot=0)
    assert result.alphas["counts"].alpha == pytest.approx(
        krippendorff.alpha(matrix, level_of_measurement="interval"))


def test_caption_alpha_equals_brute_force_chrf():
    captions = [("1", "a", "a red circle"), ("1", "b", "a red circle left"),
                ("1", "c", "blue square"), ("2", "a", "two squares"),
                ("2", "b", "two blue squares"), ("3", "a", "nothing"), ("3", "c", "empty")]
    seen = [(i, a) for i, a, _ in captions]
    result = reliability(make_set(seen, captions=captions), n_boot=0)

    def distance(x: str, y: str) -> float:
        return 1 - (sacrebleu.sentence_chrf(x, [y]).score
                    + sacrebleu.sentence_chrf(y, [x]).score) / 200

    texts = [c for _, _, c in captions]
    units = [i for i, _, _ in captions]
    n = len(texts)
    sizes = {u: units.count(u) for u in units}
    observed = sum(distance(texts[i], texts[j]) / (sizes[units[i]] - 1)
                   for i, j in itertools.permutations(range(n), 2) if units[i] == units[j]) / n
    expected = sum(distance(texts[i], texts[j])
                   for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    assert result.alphas["captions"].alpha == pytest.approx(1 - observed / expected)


def test_demo_reliability_finds_the_careless_annotator():
    ts, _ = import_export(REPO / "data/demo/export.json")
    result = reliability(ts, n_boot=200)
    report = result.to_dict()
    for kind in ("labels", "boxes", "captions"):
        assert {"alpha", "ci_low", "ci_high", "n_units"} <= set(report[kind])
        assert report[kind]["ci_low"] <= report[kind]["alpha"] <= report[kind]["ci_high"]
        review = report[kind]["review"]
        assert review and review == sorted(review, key=lambda r: -r["disagreement"])
    # Absent counted as a category can only lower label agreement on the demo.
    assert report["labels"]["absent_excluded"]["alpha"] > report["labels"]["alpha"]
    # Present boxes matched at IoU >= 0.5 cannot disagree much: their alpha states its floor,
    # 1 - 0.5 / D_e, and a warning not to read it on the 0.667 / 0.8 scale.
    present = report["boxes"]["absent_excluded"]
    assert present["floor"] == pytest.approx(1 - 0.5 / present["expected"])
    assert present["floor"] < present["alpha"] and "floor" in present["warning"]
    assert set(report["per_class"]) == set(ts.labels)
    table = result.annotators.set_index("annotator")
    assert len(report["annotators"]) == 5
    eve = "eve@example.com"
    for kind in ("labels", "boxes", "captions"):
        assert table[f"{kind}_agreement"].idxmin() == eve
        assert table[f"{kind}_alpha_without"].idxmax() == eve
        assert table.loc[eve, f"{kind}_alpha_without"] > result.alphas[kind].alpha
    assert table.miss_rate.idxmax() == eve and table.spurious_rate.idxmax() == eve
    assert table.median_lead_time.idxmin() == eve


def test_reliability_and_consensus_on_a_real_label_studio_export():
    ts, _ = import_export(LS_1_23 / "snapshot_full.json")
    report = reliability(ts, n_boot=100).to_dict()
    assert report["labels"]["n_units"] >= 1
    assert len(report["annotators"]) == ts.annotations.annotator.nunique()
    gold = build_consensus(ts).tables
    assert (gold.boxes.source == "consensus").any()
    assert set(gold.annotations[gold.annotations.source == "consensus"].image_id) == set(
        ts.annotations.image_id)


def test_leave_one_out_references_are_the_other_annotators():
    ts = make_set([("1", "a"), ("1", "b"), ("1", "c"), ("2", "a")], captions=[
        ("1", "a", "x y"), ("1", "b", "y z"), ("1", "c", "z w"), ("2", "a", "alone")])
    items = leave_one_out(ts.captions).set_index("annotator")
    assert items.loc["a", "references"] == ["y z", "z w"]
    assert items.loc["c", "references"] == ["x y", "y z"]
    assert len(items) == 3  # image 2 has nobody to compare with


def test_human_ceiling_scores_each_annotator_against_the_others():
    ts, _ = import_export(REPO / "data/demo/export.json")
    ceiling = human_ceiling(ts, n_boot=50)
    items = leave_one_out(ts.captions)
    assert ceiling["n_items"] == len(items)
    alice = items[items.annotator == "alice@example.com"]
    expected = caption_scores(alice.hypothesis.tolist(), alice.references.tolist(), n_boot=50)
    assert ceiling["annotators"]["alice@example.com"]["cider_d"] == expected["cider_d"]
    scores = {name: s["cider_d"]["score"] for name, s in ceiling["annotators"].items()}
    assert min(scores, key=scores.get) == "eve@example.com"


def test_box_alphas_resample_images_and_say_so():
    """Box clusters of one image share the image and the annotators' session: the label and box
    intervals resample images (drawing their clusters together), which is wider on the demo
    than resampling clusters as if independent, and the JSON names the unit and its count."""
    from quality.agreement.alpha import alpha
    from quality.agreement.reliability import ratings_by_kind
    from quality.agreement.units import build_units

    ts, _ = import_export(REPO / "data/demo/export.json")
    result = reliability(ts, n_boot=400)
    labels = result.alphas["labels"]
    assert labels.resampled["unit"] == "image" and labels.resampled["n_boot"] == 400
    assert 190 < labels.resampled["count"] <= 200  # images with a unit rated twice
    assert result.to_dict()["labels"]["resampled"]["unit"] == "image"
    assert result.alphas["captions"].resampled["unit"] == "unit"  # captions: units are images
    rows, _ = ratings_by_kind(ts, build_units(ts))["labels"]
    by_cluster = alpha(rows.unit, rows.value, "nominal", n_boot=400)
    assert by_cluster.alpha == pytest.approx(labels.alpha)
    assert (labels.ci_high - labels.ci_low) > (by_cluster.ci_high - by_cluster.ci_low)


def test_equal_terms_scores_people_and_model_on_the_same_leave_one_out_references():
    """The model's caption of an image is scored once per annotator, against exactly the
    references that annotator was scored against (k - 1), in one corpus: the people's figure
    equals the human ceiling on those images, the model's equals CIDEr-D on those reference
    lists, and images without a model caption are left out of both."""
    import pandas as pd

    from annotate.metrics.captions import cider_d
    from quality.agreement.ceiling import equal_terms

    ts, _ = import_export(REPO / "data/demo/export.json")
    images = sorted(set(ts.captions.image_id))[:12]
    model = pd.DataFrame({"image_id": images[:10],
                          "caption": ["a red circle left of a blue square"] * 10})
    result = equal_terms(ts, {"gold input": model}, images, n_boot=100)
    kept = images[:10]
    items = leave_one_out(ts.captions[ts.captions.image_id.isin(kept)])
    assert result["n_items"] == len(items) and result["n_images"] == 10
    cider = result["metrics"]["cider_d"]
    people = caption_scores(items.hypothesis.tolist(), items.references.tolist(), n_boot=0)
    assert cider["people"]["score"] == pytest.approx(people["cider_d"]["score"])
    expected = cider_d(["a red circle left of a blue square"] * len(items),
                       items.references.tolist()).mean()
    found = cider["models"]["gold input"]
    assert found["score"] == pytest.approx(expected)
    assert found["minus_people"] == pytest.approx(expected - people["cider_d"]["score"])
    assert found["minus_people_ci_low"] <= found["minus_people"] <= found["minus_people_ci_high"]
    assert set(result["metrics"]) == {"cider_d", "rouge_l", "bleu_4"}
    assert result["resampled"] == {"unit": "image", "paired": True, "count": 10, "n_boot": 100}


def test_error_rates_judge_each_annotator_by_the_others_only():
    """X drawn by A and B, Y only by C, Z by all (C calls it a dog). C is judged by A and B:
    missed X, Y spurious, Z mislabelled. A is judged by B and C, who tie on X, Y and Z's label:
    those are not judged, so A has one judged object (Z, present) and no label verdict."""
    from quality.agreement.reliability import annotator_figures, ratings_by_kind
    from quality.agreement.units import build_units

    seen = [("1", a) for a in "ABC"]
    boxes = [("1", "A", "cat", 10, 10, 50, 50), ("1", "B", "cat", 11, 10, 50, 50),
             ("1", "C", "dog", 100, 100, 150, 150),
             ("1", "A", "cat", 60, 60, 90, 90), ("1", "B", "cat", 60, 61, 90, 90),
             ("1", "C", "dog", 61, 60, 90, 90)]
    ts = make_set(seen, boxes)
    units = build_units(ts)
    result = reliability(ts, n_boot=0)
    table = annotator_figures(ts, units, ratings_by_kind(ts, units), result.alphas, 0)
    rates = table.set_index("annotator")[["miss_rate", "spurious_rate", "label_error_rate"]]
    assert rates.loc["C"].tolist() == [0.5, 0.5, 1.0]
    assert rates.loc["A", "miss_rate"] == 0 and rates.loc["A", "spurious_rate"] == 0
    assert np.isnan(rates.loc["A", "label_error_rate"])


def test_demo_error_rates_are_near_the_truth():
    """On the demo the generator's truth is known: each annotator's miss rate against the
    others comes within 0.06 of the rate against the truth (the careless annotator's reads
    0.33 vs 0.38; counting her own vote, 0.31), and the careful ones' within 0.01."""
    import pandas as pd

    from annotate.tables import store
    from annotate.tables.schema import TableSet
    from quality.agreement.units import build_units

    ts, _ = import_export(REPO / "data/demo/export.json")
    truth = store.load(REPO / "data/demo/truth").boxes
    ours = reliability(ts, n_boot=0).annotators.set_index("annotator").miss_rate
    for name, rate in ours.items():
        seen = ts.annotations[ts.annotations.annotator == name]
        drawn = ts.boxes[ts.boxes.annotator == name]
        true = truth[truth.image_id.isin(seen.image_id)].assign(annotator="truth",
                                                                source="human")
        pair = TableSet(images=ts.images[ts.images.image_id.isin(seen.image_id)],
                        annotations=pd.concat([seen, seen.assign(annotator="truth")]),
                        boxes=pd.concat([drawn, true]), labels=ts.labels)
        r = build_units(pair).ratings.assign(drew=lambda x: x.box >= 0)
        found = r.pivot_table(index="cluster", columns="annotator", values="drew",
                              aggfunc="max")
        against_truth = (found.truth & ~found[name]).sum() / found.truth.sum()
        tolerance = 0.06 if name == "eve@example.com" else 0.01
        assert abs(rate - against_truth) < tolerance, (name, rate, against_truth)
