import json
import subprocess
import sys

import pandas as pd
import pytest
from label_studio_sdk.label_interface import LabelInterface

from annotate.cli import main
from annotate.tables.store import load
from tests.conftest import LS_1_23, REPO


def test_import_summary_and_export(tmp_path, capsys):
    assert main(["import", str(LS_1_23 / "snapshot_full.json"), "--out", str(tmp_path / "set"),
                 "--labels", "red circle,blue square"]) == 0
    out = capsys.readouterr().out
    assert "annotations: 9 read, 8 kept, 1 skipped" in out
    assert "boxes:       13 human, 6 predicted" in out
    summary = json.loads((tmp_path / "set" / "import_summary.json").read_text())
    assert summary["skipped"] == 1 and summary["rejected"] == {}
    assert main(["summary", str(tmp_path / "set"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["counts"] == {"images": 3, "annotations": 8, "boxes": 19, "captions": 8}
    assert {a["annotator"]: a["images"] for a in info["annotators"]}["ann3@example.com"] == 2

    preds = load(tmp_path / "set").boxes
    preds = preds[preds.source != "human"].assign(source="model:new", annotator="model:new")
    preds.to_parquet(tmp_path / "preds.parquet")
    assert main(["export", str(tmp_path / "set"), "--out", str(tmp_path / "tasks.json"),
                 "--predictions", str(tmp_path / "preds.parquet"), "--no-annotations",
                 "--document-root", str(LS_1_23)]) == 0
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    assert tasks[0]["data"]["image"] == "/data/local-files/?d=imgs/a.png"
    assert {p["model_version"] for p in tasks[0]["predictions"]} == {"yolo-v1", "new"}
    assert all("annotations" not in t for t in tasks)

    assert main(["export", str(tmp_path / "set"), "--format", "coco",
                 "--out", str(tmp_path / "coco")]) == 0
    assert main(["import", str(tmp_path / "coco" / "instances.json"), "--captions",
                 str(tmp_path / "coco" / "captions.json"), "--images-root", str(LS_1_23),
                 "--out", str(tmp_path / "back")]) == 0
    pd.testing.assert_frame_equal(load(tmp_path / "back").images, load(tmp_path / "set").images)


def test_yolo_through_the_cli(tmp_path, capsys):
    main(["import", str(LS_1_23 / "snapshot_full.json"), "--out", str(tmp_path / "set")])
    assert main(["export", str(tmp_path / "set"), "--format", "yolo", "--out",
                 str(tmp_path / "y")]) == 2
    assert "--annotator" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "set"), "--format", "yolo", "--out",
                 str(tmp_path / "y"), "--annotator", "ann1@example.com", "--copy"]) == 0
    assert main(["import", str(tmp_path / "y" / "data.yaml"), "--out", str(tmp_path / "b")]) == 0
    assert len(load(tmp_path / "b").boxes) == 6


def test_config_from_the_demo_label_config(capsys, tmp_path):
    assert main(["config", "--labels", str(REPO / "data/demo/label_config.xml")]) == 0
    labels = LabelInterface(capsys.readouterr().out).get_control("label").labels
    assert list(labels) == ["red circle", "yellow circle", "blue square", "green square",
                            "green triangle"]
    (tmp_path / "l.txt").write_text("a\nb\n")
    assert main(["config", "--labels", str(tmp_path / "l.txt"), "--out",
                 str(tmp_path / "c.xml")]) == 0
    assert 'value="b"' in (tmp_path / "c.xml").read_text()


def test_demo_command(tmp_path, capsys):
    assert main(["demo", "--n", "12", "--out", str(tmp_path)]) == 0
    assert len(list((tmp_path / "images").iterdir())) == 12
    assert main(["import", str(tmp_path / "export.json"), "--out", str(tmp_path / "t")]) == 0


@pytest.mark.parametrize(("content", "message"), [
    ("[{", "not valid JSON at line 1"),
    ('[{"id": 1, "data": {"image": "nowhere.png"}, "annotations": []}]', "image size unknown"),
])
def test_bad_input_gives_one_clear_line(tmp_path, capsys, content, message):
    (tmp_path / "e.json").write_text(content)
    code = main(["import", str(tmp_path / "e.json"), "--out", str(tmp_path / "o")])
    captured = capsys.readouterr()
    assert message in captured.out + captured.err
    assert "Traceback" not in captured.err
    if code == 0:  # a rejected task is counted, not fatal
        assert "rejected:    1" in captured.out


def test_unknown_label_against_the_label_map_is_counted(tmp_path, capsys):
    assert main(["import", str(LS_1_23 / "snapshot_full.json"), "--out", str(tmp_path / "o"),
                 "--labels", "red circle"]) == 0
    assert "label not in the label map" in capsys.readouterr().out


def test_installed_entry_point_runs():
    bin_dir = __import__("pathlib").Path(sys.executable).parent
    result = subprocess.run([str(bin_dir / "annotate"), "load-nothing"], capture_output=True,
                            text=True)
    assert result.returncode == 2 and "invalid choice" in result.stderr
    result = subprocess.run([str(bin_dir / "annotate"), "summary", "/no/such/set"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "not a table set" in result.stderr
    assert "Traceback" not in result.stderr


def test_output_piped_into_head_exits_quietly(tmp_path):
    bin_dir = __import__("pathlib").Path(sys.executable).parent
    result = subprocess.run(
        f"set -o pipefail; '{bin_dir / 'annotate'}' import '{LS_1_23 / 'plain.json'}' "
        f"--out '{tmp_path / 'o'}' | head -1", shell=True, executable="/bin/bash",
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and result.stdout.count("\n") == 1
