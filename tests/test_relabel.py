"""Re-labelling studies: the plan's sample size checked by simulation, the prior route, the
stratified sample, merging a re-labelled set and checking the target, and the CLI."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from annotate.formats.readers import read_tables
from annotate.runtime.errors import UserError
from annotate.runtime.records import read_sample
from annotate.tables.schema import TableSet
from quality.agreement.relabel import (
    _people,
    draw_sample,
    kind_alpha,
    merge_sets,
    plan_relabel,
    target_check,
)
from quality.agreement.units import human_subset
from quality.cli import main
from tests.conftest import REPO
from tests.quality_sets import make_set

CLASSES = ["cat", "dog", "cow", "owl"]


def population(n_images: int, seed: int = 0, flip: float = 0.3) -> TableSet:
    """`n_images` images, 1-4 objects each on a grid (skewed classes), labelled by a and b; b
    gives a random label with probability `flip` and misses 5% of the objects."""
    rng = np.random.default_rng(seed)
    seen, boxes = [], []
    for i in range(n_images):
        image = f"i{i:05d}"
        seen += [(image, "a"), (image, "b")]
        for k in range(int(rng.integers(1, 5))):
            label = CLASSES[rng.choice(4, p=[0.5, 0.3, 0.15, 0.05])]
            x0 = 45 * k
            boxes.append((image, "a", label, x0, 10, x0 + 40, 50))
            if rng.random() < 0.05:
                continue
            other = CLASSES[rng.integers(4)] if rng.random() < flip else label
            boxes.append((image, "b", other, x0 + 1, 10, x0 + 41, 51))
    return make_set(seen, boxes, labels=CLASSES)


def test_planned_sample_size_gives_intervals_of_the_planned_width():
    """Plan from a 60-image pilot of a known population, then draw the planned number of images
    from the population many times: the intervals are about the target wide."""
    world = population(2500)
    ids = world.images.image_id.to_numpy()
    pilot = world.subset(ids[:60])
    target = 0.06
    plan = plan_relabel(pilot, target, n_boot=500, assurance=0.5)
    needed = plan["needed_images"]
    assert plan["pilot"]["route"] == "observed" and plan["pilot"]["images"] == 60
    assert needed == int(np.ceil(60 * (plan["pilot"]["half_width"] / target) ** 2))
    sure = plan_relabel(pilot, target, n_boot=500, assurance=0.8)["needed_images"]
    z = 0.8416  # the margin: n = n_expected (1 + z / sqrt(2 n))^2
    assert sure == pytest.approx(needed * (1 + z / np.sqrt(2 * sure)) ** 2, abs=2)
    assert 100 < needed < 2000
    rng = np.random.default_rng(1)
    widths = [(lambda a: (a.ci_high - a.ci_low) / 2)(
        kind_alpha(world.subset(rng.choice(ids[60:], needed, replace=False)), "labels",
                   n_boot=500, seed=s)) for s in range(12)]
    assert np.mean(widths) == pytest.approx(target, rel=0.25)
    # and half as many images give an interval about sqrt(2) times wider
    half = [(lambda a: (a.ci_high - a.ci_low) / 2)(
        kind_alpha(world.subset(rng.choice(ids[60:], needed // 2, replace=False)), "labels",
                   n_boot=500, seed=s)) for s in range(12)]
    assert np.mean(half) / np.mean(widths) == pytest.approx(np.sqrt(2), rel=0.2)


def test_plan_counts_images_already_labelled_twice_and_samples_the_rest():
    world = population(400, seed=2)
    ids = world.images.image_id.to_numpy()
    pairs = world.annotations[["image_id", "annotator"]]
    keep = pairs[(pairs.annotator == "a") | pairs.image_id.isin(ids[:50])]
    ts = human_subset(world, keep)
    ts.images = world.images
    plan = plan_relabel(ts, 0.08, n_boot=300)
    assert plan["already_labelled"] == 50 and plan["assurance"] == 0.8
    assert plan["sample_size"] == plan["needed_images"] - 50 == plan["annotations"]
    sampled = {row["image_id"] for row in plan["sample"]}
    assert not sampled & set(ids[:50])  # only images labelled once so far
    assert plan["expected_half_width"] <= 0.08 + 1e-9 and plan["shortfall"] == 0
    assert plan["cost"]["hours"] == pytest.approx(plan["annotations"] * 10.0 / 3600)


def test_prior_route_simulates_the_stated_alpha_and_is_required_without_overlap():
    world = population(300, seed=3)
    single = human_subset(world, world.annotations[world.annotations.annotator == "a"])
    with pytest.raises(UserError, match="--prior-alpha"):
        plan_relabel(single, 0.05)
    plan = plan_relabel(single, 0.05, prior_alpha=0.7, n_boot=300)
    assert plan["pilot"]["route"] == "prior"
    assert plan["pilot"]["alpha"] == pytest.approx(0.7, abs=0.06)
    wider = plan_relabel(single, 0.05, prior_alpha=0.3, n_boot=300)
    assert wider["needed_images"] > plan["needed_images"]  # less agreement: more images
    with pytest.raises(UserError, match="prior-alpha must be in"):
        plan_relabel(single, 0.05, prior_alpha=1.5)


def test_sample_represents_rare_classes_and_takes_one_image_per_group():
    seen = [(f"{i}", "a") for i in range(40)]
    boxes = [(f"{i}", "a", "owl" if i in (3, 17, 29) else "cat", 10, 10, 50, 50)
             for i in range(40)]
    ts = make_set(seen, boxes, labels=["cat", "owl"])
    ts.images["group_id"] = [f"g{int(i) // 2}" for i in ts.images.image_id]  # pairs of frames
    frame = pd.Index(ts.images.image_id)
    sample = draw_sample(ts, frame, 10, per_group=1, min_per_class=3, seed=0)
    assert len(sample) == 10 and sample.group_id.is_unique
    owls = sample[sample.labels.apply(lambda v: "owl" in v)]
    assert set(owls.image_id) == {"3", "17", "29"}  # all three (a random 10 of 40: ~0.75)
    assert owls.reason.str.startswith("rare class 'owl'").all()
    assert (sample.reason[~sample.image_id.isin(owls.image_id)] == "random").all()
    everything = draw_sample(ts, frame, 100, per_group=None, seed=0)
    assert len(everything) == 40  # no more than the frame
    assert len(draw_sample(ts, frame, 100, per_group=1, seed=0)) == 20  # one per group
    again = draw_sample(ts, frame, 10, per_group=1, min_per_class=3, seed=0)
    pd.testing.assert_frame_equal(sample, again)  # seeded


def test_merge_and_target_check():
    base = make_set([("1", "a"), ("2", "a"), ("3", "a")],
                    [("1", "a", "cat", 0, 0, 50, 50), ("2", "a", "dog", 0, 0, 50, 50)],
                    labels=["cat", "dog"])
    added = make_set([("1", "b"), ("2", "a")],
                     [("1", "b", "cat", 1, 0, 51, 50), ("2", "a", "cat", 0, 0, 50, 50)],
                     labels=["cat", "dog"])
    merged, counts = merge_sets(base, added)
    assert counts == {"annotations_added": 2, "images": 2, "labelled_twice_by_one_person": 1}
    assert set(merged.annotations.annotator) == {"a", "b", "a (again)"}
    assert len(merged.images) == 3
    stranger = make_set([("9", "b")], labels=["cat", "dog"])
    with pytest.raises(UserError, match="not in the set it is added to"):
        merge_sets(base, stranger)
    world = population(200, seed=4)
    result = kind_alpha(world, "labels", n_boot=300)
    half = (result.ci_high - result.ci_low) / 2
    plan = {"kind": "labels", "target_ci": half * 1.01, "expected_half_width": half}
    assert target_check(result, plan)["met"] and target_check(result, plan)["more_images"] == 0
    missed = target_check(result, {**plan, "target_ci": half / 2})
    assert not missed["met"] and missed["images"] == 200
    assert missed["more_images"] == pytest.approx(600, abs=2)  # 4x the images for half the width


def single_demo(pilot_images: int = 40) -> TableSet:
    """The demo set as a team has it before a study: one label per image, two on a pilot."""
    ts = read_tables(REPO / "data/demo/export.json")
    two = _people(ts, 2, 0)
    pilot = two.image_id.drop_duplicates().head(pilot_images)
    first = two.groupby("image_id").head(1)
    keep = pd.concat([first[~first.image_id.isin(pilot)], two[two.image_id.isin(pilot)]])
    single = human_subset(ts, keep)
    single.images = ts.images
    return single


def test_cli_plan_writes_the_sample_and_records_it(tmp_path, capsys, monkeypatch):
    from annotate.tables import store

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the default: the study folder
    store.save(single_demo(), tmp_path / "set")
    study = tmp_path / "study"
    assert main(["plan-relabel", str(tmp_path / "set"), "--target-ci", "0.1", "--out",
                 str(study), "--cost-per-hour", "30", "--n-boot", "300"]) == 0
    out = capsys.readouterr().out
    plan = json.loads((study / "sample.json").read_text())
    assert plan["pilot"]["images"] == 40 and plan["sample_size"] > 0
    assert f"{plan['sample_size']} images" in out and "hours" in out
    assert plan["cost"]["total"] == pytest.approx(plan["cost"]["hours"] * 30)
    assert read_sample(study / "sample.json") == [r["image_id"] for r in plan["sample"]]
    assert plan["mlflow"]["run_id"] and (study / "mlflow.db").exists()
    import mlflow

    run = mlflow.MlflowClient(plan["mlflow"]["tracking_uri"]).get_run(plan["mlflow"]["run_id"])
    assert run.data.metrics["sample_size"] == plan["sample_size"]
    assert run.data.params["target_ci"] == "0.1"
    assert "MLFLOW_TRACKING_URI" not in os.environ  # the next study gets its own default
    assert main(["plan-relabel", str(tmp_path / "set"), "--target-ci", "0.2", "--out",
                 str(tmp_path / "other"), "--n-boot", "100"]) == 0
    assert (tmp_path / "other" / "mlflow.db").exists()
    assert main(["plan-relabel", str(tmp_path / "set"), "--target-ci", "0", "--out",
                 str(tmp_path / "bad")]) == 2
    assert "must be positive" in capsys.readouterr().err


def test_sample_files_and_push_refuse_what_does_not_fit(tmp_path, capsys):
    from annotate.cli import main as annotate
    from annotate.tables import store

    bad = tmp_path / "bad.json"
    bad.write_text('{"images": []}')
    with pytest.raises(UserError, match="not a sample file"):
        read_sample(bad)
    with pytest.raises(UserError, match="no such sample file"):
        read_sample(tmp_path / "nope.json")
    bad.write_text('{"sample": [{"image_id": "1"}, {"image_id": "1"}]}')
    with pytest.raises(UserError, match="more than once"):
        read_sample(bad)
    store.save(make_set([("1", "a")], labels=["cat"]), tmp_path / "set")
    stranger = tmp_path / "sample.json"
    stranger.write_text('{"sample": [{"image_id": "1"}, {"image_id": "42"}]}')
    assert annotate(["push", str(tmp_path / "set"), "--sample", str(stranger), "--project", "p",
                     "--url", "http://127.0.0.1:9", "--api-key", "k"]) == 2
    assert "1 sampled images are not in" in capsys.readouterr().err
    from annotate.formats.ls_client import push

    ts = make_set([("1", "a")], [("1", "a", "cat", 0, 0, 9, 9)], labels=["cat"])
    with pytest.raises(UserError, match="blind push shows no predictions"):
        push(None, ts, "p", None, predictions=ts.boxes, blind=True)
