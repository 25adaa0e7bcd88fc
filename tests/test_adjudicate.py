"""Adjudication offline: the review tasks show every annotator's version as a prediction and no
annotation; decisions become adjudicated rows; consensus takes them and counts what they
overturned."""

from __future__ import annotations

import pandas as pd
import pytest

from annotate.formats.ls_export import to_tasks
from annotate.tables.schema import ADJUDICATED, CONSENSUS, TableSet
from quality.gold.adjudicate import decisions, review_set, review_units, with_decisions
from quality.gold.consensus import build_consensus
from quality.gold.jobs import consensus_job
from tests.quality_sets import make_set

LABELS = ["cat", "dog"]


def disputed() -> TableSet:
    """Image 1: a, b draw a cat, c a dog (vote: cat). Image 2: a, b draw a box, c none."""
    seen = [(i, a) for i in ("1", "2") for a in "abc"]
    boxes = [("1", "a", "cat", 10, 10, 60, 60), ("1", "b", "cat", 11, 10, 61, 60),
             ("1", "c", "dog", 10, 11, 60, 61),
             ("2", "a", "dog", 100, 100, 150, 150), ("2", "b", "dog", 101, 100, 151, 150)]
    captions = [(i, a, f"{a} says {i}") for i, a in seen]
    return make_set(seen, boxes, captions, labels=LABELS)


def decided_by_reviewer(ts: TableSet, rows: list[tuple]) -> TableSet:
    """A pulled review set: the reviewer 'rev' decided each image as `rows` say."""
    seen = [("1", "rev"), ("2", "rev")]
    pulled = make_set(seen, rows, [("1", "rev", "a dog")], labels=LABELS)
    pulled.images = ts.images
    return pulled


def test_review_tasks_show_each_annotator_as_a_prediction_and_no_annotation():
    ts = disputed()
    units = review_units(ts, "labels", top=5)
    assert {u["image_id"] for u in units} == {"1", "2"}
    tasks = to_tasks(review_set(ts, ["1", "2"]), include_annotations=False)
    assert len(tasks) == 2 and all("annotations" not in t for t in tasks)
    first = next(t for t in tasks if t["data"]["image_id"] == "1")
    versions = {p["model_version"]: p["result"] for p in first["predictions"]}
    assert set(versions) == {"a", "b", "c"}
    labels = {v: [r["value"]["rectanglelabels"][0] for r in res if r["type"] ==
                  "rectanglelabels"] for v, res in versions.items()}
    assert labels == {"a": ["cat"], "b": ["cat"], "c": ["dog"]}
    assert any(r["type"] == "textarea" for r in versions["c"])


def test_consensus_takes_the_decision_and_counts_what_it_overturned(tmp_path):
    ts = disputed()
    vote = build_consensus(ts).tables.boxes
    assert vote[(vote.source == CONSENSUS) & (vote.image_id == "1")].label.tolist() == ["cat"]
    pulled = decided_by_reviewer(ts, [("1", "rev", "dog", 10, 10, 60, 60)])  # 2: no box
    rows, counts = decisions(pulled, ["1", "2"])
    assert counts == {"reviewed_images": 2, "reviews": 2, "several_reviews": 0,
                      "reviewers": ["rev"]}
    decided = with_decisions(ts, rows)
    assert set(decided.boxes.source) == {"human", ADJUDICATED}
    result = build_consensus(decided)
    gold = result.tables.boxes[result.tables.boxes.source == CONSENSUS]
    assert gold.label.tolist() == ["dog"] and gold.image_id.tolist() == ["1"]
    assert gold.score.tolist() == [1.0]
    caption = result.tables.captions[result.tables.captions.source == CONSENSUS]
    assert caption.set_index("image_id").caption["1"] == "a dog"
    assert result.adjudication == {
        "images": 2, "objects": 2, "upheld": 0, "relabelled": 1, "removed": 1, "added": 0,
        "overturned": 2, "overturned_share": 1.0, "captions": 1, "captions_overturned": 1}
    assert result.flags[result.flags.image_id.isin(["1", "2"])].empty  # decided: not flagged
    figures = consensus_job(decided, tmp_path / "gold")
    assert figures["adjudication"]["overturned"] == 2
    assert (tmp_path / "gold" / "consensus.json").exists()


def test_latest_decision_wins_and_a_new_round_replaces_the_old():
    ts = disputed()
    first = decided_by_reviewer(ts, [("1", "rev", "cat", 10, 10, 60, 60)])
    decided = with_decisions(ts, decisions(first, ["1"])[0])
    upheld = build_consensus(decided).adjudication
    assert (upheld["upheld"], upheld["overturned"], upheld["images"]) == (1, 0, 1)
    second = make_set([("1", "rev"), ("1", "boss")],
                      [("1", "rev", "cat", 10, 10, 60, 60), ("1", "boss", "dog", 10, 10, 60, 60)],
                      labels=LABELS)
    second.images = ts.images
    second.annotations["created_at"] = pd.to_datetime(["2026-01-01", "2026-01-02"], utc=True)
    rows, counts = decisions(second, ["1"])
    assert counts["several_reviews"] == 1 and counts["reviewers"] == ["boss"]
    again = with_decisions(decided, rows)
    assert again.annotations[again.annotations.source == ADJUDICATED].annotator.tolist() == [
        "boss"]
    assert build_consensus(again).adjudication["relabelled"] == 1


def test_reliability_ignores_decisions():
    from quality.agreement.reliability import reliability

    ts = disputed()
    decided = with_decisions(ts, decisions(decided_by_reviewer(
        ts, [("1", "rev", "dog", 10, 10, 60, 60)]), ["1", "2"])[0])
    assert reliability(decided, n_boot=0).alphas["labels"].alpha == pytest.approx(
        reliability(ts, n_boot=0).alphas["labels"].alpha)


def test_report_shows_what_adjudication_overturned(tmp_path):
    import json
    import re

    from annotate.tables import store
    from quality import workspace
    from quality.agreement.jobs import reliability_job
    from quality.cli import main
    from quality.report.page import _fmt
    from tests.test_report import lookup

    ts = disputed()
    decided = with_decisions(ts, decisions(decided_by_reviewer(
        ts, [("1", "rev", "dog", 10, 10, 60, 60)]), ["1", "2"])[0])
    run = tmp_path / "run"
    store.save(decided, workspace.path(run, "tables"))
    reliability_job(decided, workspace.path(run, "reliability"), n_boot=20, ceiling=False)
    consensus_job(decided, workspace.path(run, "gold"))
    assert main(["report", str(run), "--out", str(tmp_path / "report")]) == 0
    page = (tmp_path / "report" / "report.html").read_text()
    figures = json.loads((tmp_path / "report" / "report.json").read_text())
    assert figures["consensus"]["adjudication"]["overturned"] == 2
    assert "Adjudicated:" in page and "overturned" in page
    shown = dict(re.findall(r'<span class="fig" data-key="(consensus[^"]+)">([^<]*)</span>',
                            page))
    assert {"consensus.adjudication.overturned", "consensus.adjudication.images"} <= set(shown)
    for key, text in shown.items():
        assert _fmt(lookup(figures, key)) == text, key
