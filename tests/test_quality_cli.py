"""The `quality` command: reliability JSON, consensus folder, ceiling, clear errors."""

from __future__ import annotations

import json

from annotate.tables import store
from quality.cli import main
from tests.conftest import REPO

DEMO = str(REPO / "data/demo/export.json")


def test_reliability_json_and_plot(tmp_path, capsys):
    out, plot = tmp_path / "rel.json", tmp_path / "rel.png"
    assert main(["reliability", DEMO, "--json", str(out), "--plot", str(plot),
                 "--n-boot", "50", "--top", "3"]) == 0
    report = json.loads(out.read_text())
    for kind in ("labels", "boxes", "captions"):
        assert {"alpha", "ci_low", "ci_high", "n_units"} <= set(report[kind])
        assert len(report[kind]["review"]) == 3
    assert {a["annotator"] for a in report["annotators"]} >= {"eve@example.com"}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "labels" in printed and "eve@example.com" in printed


def test_reliability_reads_a_saved_set_and_adds_the_ceiling(tmp_path):
    from annotate.cli import main as annotate_main

    assert annotate_main(["import", DEMO, "--out", str(tmp_path / "set")]) == 0
    out = tmp_path / "rel.json"
    assert main(["reliability", str(tmp_path / "set"), "--json", str(out), "--n-boot", "20",
                 "--ceiling"]) == 0
    assert "pooled" in json.loads(out.read_text())["human_ceiling"]


def test_consensus_writes_a_loadable_set_with_flags(tmp_path, capsys):
    assert main(["consensus", DEMO, "--out", str(tmp_path / "gold")]) == 0
    ts = store.load(tmp_path / "gold")
    assert (ts.boxes.source == "consensus").sum() > 400
    assert (ts.captions.source == "consensus").sum() == ts.images.shape[0]
    assert (tmp_path / "gold" / "consensus_flags.csv").read_text().startswith("image_id,kind")
    assert "consensus boxes" in capsys.readouterr().out


def test_ceiling_prints_every_annotator(tmp_path, capsys):
    out = tmp_path / "ceiling.json"
    assert main(["ceiling", DEMO, "--n-boot", "20", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "pooled" in printed and "eve@example.com" in printed
    assert set(json.loads(out.read_text())["annotators"]) == {
        f"{n}@example.com" for n in ("alice", "bob", "carol", "dave", "eve")}


def test_missing_input_is_a_clear_error(tmp_path, capsys):
    assert main(["reliability", str(tmp_path / "nope")]) == 2
    assert "quality reliability: error:" in capsys.readouterr().err
    assert main(["consensus", DEMO, "--out", str(tmp_path / "x"), "--iou", "0"]) == 2
    assert "iou_threshold" in capsys.readouterr().err


def test_split_folds_and_audit_with_repair(tmp_path, capsys):
    split_dir = tmp_path / "split"
    assert main(["split", DEMO, "--out", str(split_dir), "--val", "0.1", "--test", "0.1",
                 "--n-boot", "50"]) == 0
    ts = store.load(split_dir)
    assert ts.images.split.value_counts().to_dict() == {"train": 160, "val": 20, "test": 20}
    report = json.loads((split_dir / "split_report.json").read_text())
    assert report["max_size_error_pp"] == 0 and "test" in report["adequacy"]
    assert "largest class-share difference" in capsys.readouterr().out

    assert main(["split", str(split_dir), "--out", str(tmp_path / "folds"), "--folds", "4"]) == 0
    assert store.load(tmp_path / "folds").images.fold.nunique() == 4

    out = tmp_path / "audit.json"
    assert main(["audit", str(split_dir), "--json", str(out), "--repair",
                 "--out", str(tmp_path / "fixed")]) == 0
    audit_report = json.loads(out.read_text())
    assert audit_report["counts"]["split_group"] == 0
    assert {"input_leaks", "identifier_leaks", "findings"} <= set(audit_report)
    assert (tmp_path / "fixed" / "repair_moves.csv").exists()
    assert main(["audit", str(split_dir), "--no-images", "--repair", "--repair-kinds", "all",
                 "--out", str(tmp_path / "all")]) == 0
    assert main(["audit", str(split_dir), "--repair", "--repair-kinds", "typo",
                 "--out", str(tmp_path / "bad")]) == 2


def test_audit_repair_needs_out(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["audit", DEMO, "--repair"])
    assert "--repair needs --out" in capsys.readouterr().err
