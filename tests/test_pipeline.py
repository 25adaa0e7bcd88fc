"""`evaluate-pipeline --preset smoke`: the whole chain, MLflow records, the step cache, and the
same figures from the same seed twice."""

from __future__ import annotations

import json

import mlflow
import pytest

from quality.pipeline_cli import main


def figures_of(run) -> dict:
    report = json.loads((run / "report" / "report.json").read_text())
    report.pop("mlflow")
    report.pop("run")
    return report


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    first = tmp_path_factory.mktemp("pipeline") / "a"
    second = tmp_path_factory.mktemp("pipeline") / "b"
    assert main(["--preset", "smoke", "--out", str(first)]) == 0
    assert main(["--preset", "smoke", "--out", str(second)]) == 0
    return first, second


def test_same_seed_same_figures(two_runs):
    first, second = two_runs
    a, b = figures_of(first), figures_of(second)
    assert a == b
    names = {"gold", "noise", "oof"}
    assert set(a["robustness"]["variants"]) == names | {f"{n}, weak detector" for n in names}
    assert not a["missing"]


def test_mlflow_records_every_step_with_versions(two_runs):
    first, _ = two_runs
    report = json.loads((first / "report" / "report.json").read_text())
    records = report["mlflow"]
    client = mlflow.MlflowClient(tracking_uri=records["tracking_uri"])
    experiment = client.get_experiment_by_name(f"twostage-{records['data_version']}")
    runs = client.search_runs([experiment.experiment_id])
    by_id = {r.info.run_id: r for r in runs}
    assert records["parent_run"] in by_id
    for step, run_id in records["steps"].items():
        run = by_id[run_id]
        assert run.data.tags["data_version"] == records["data_version"], step
        assert run.data.tags["src_version"] and run.data.tags["preset"] == "smoke"
    assert "map50_95" in by_id[records["steps"]["stage1 evaluate"]].data.metrics
    artifacts = [a.path for a in client.list_artifacts(records["parent_run"])]
    assert {"report.html", "report.json"} <= set(artifacts)


def test_rerun_reuses_every_step(two_runs, capsys):
    first, _ = two_runs
    assert main(["--preset", "smoke", "--out", str(first)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert lines and all(line.endswith("cached") for line in lines)


def test_bad_data_is_a_clear_error(tmp_path, capsys):
    assert main(["--data", str(tmp_path / "missing.json"), "--out", str(tmp_path / "r"),
                 "--preset", "smoke"]) == 2
    assert "evaluate-pipeline: error:" in capsys.readouterr().err
