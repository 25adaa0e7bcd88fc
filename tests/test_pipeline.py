"""`evaluate-pipeline --preset smoke`: the whole chain, MLflow records, the step cache, and the
same figures from the same seed twice."""

from __future__ import annotations

import json
import shutil

import mlflow
import pandas as pd
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
    names = {"gold", "noise", "oof", "noise+oof", "baseline"}
    assert set(a["robustness"]["variants"]) == names | {f"{n}, strong detector" for n in names}
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


def test_each_job_gives_the_same_artifact_through_its_cli_and_the_pipeline(two_runs, tmp_path):
    """Parity: every job, run by hand with its CLI on the pipeline's own inputs (smoke preset
    settings), writes exactly what the pipeline's step wrote."""
    from annotate import store
    from annotate.cli import main as annotate
    from quality.cli import main as quality
    from quality.pipeline import DEMO_EXPORT
    from stage1_detect.cli import main as stage1
    from stage2_generate.cli import main as stage2
    from tests.conftest import frames_equal

    run, out = two_runs[0], tmp_path

    def same_json(made, written, drop=()):
        a, b = json.loads(made.read_text()), json.loads(written.read_text())
        for key in drop:
            a.pop(key, None)
            b.pop(key, None)
        assert a == b, made

    def same_set(made, written):
        a, b = store.load(made), store.load(written)
        keys = {"images": ["image_id"], "annotations": ["image_id", "annotator", "source"],
                "boxes": ["image_id", "annotator", "source", "object_id"],
                "captions": ["image_id", "annotator", "source", "caption"]}
        for name, columns in keys.items():
            frames_equal(getattr(a, name), getattr(b, name), columns)
        assert a.labels == b.labels

    smoke = ["--n-boot", "100", "--seed", "0"]
    assert quality(["reliability", str(run / "tables"), "--json", str(out / "rel.json"),
                    "--ceiling", *smoke]) == 0
    same_json(out / "rel.json", run / "reliability.json")
    assert quality(["consensus", str(run / "tables"), "--out", str(out / "gold")]) == 0
    same_set(out / "gold", run / "gold")
    assert quality(["split", str(run / "gold"), "--out", str(out / "split"), "--val", "0.15",
                    "--test", "0.15", *smoke]) == 0
    same_set(out / "split", run / "split")
    same_json(out / "split" / "split_report.json", run / "split" / "split_report.json")
    assert quality(["audit", str(run / "split"), "--json", str(out / "audit.json")]) == 0
    same_json(out / "audit.json", run / "audit.json")
    assert stage1(["evaluate", str(run / "stage1"), str(run / "split"), "--split", "test",
                   "--boxes", str(run / "stage1" / "predicted_test.parquet"), "--imgsz", "64",
                   "--errors", str(out / "errors.parquet"), "--json", str(out / "eval.json")]) == 0
    same_json(out / "eval.json", run / "stage1" / "evaluate.json")
    frames_equal(pd.read_parquet(out / "errors.parquet"),
                 pd.read_parquet(run / "stage1" / "errors_test.parquet"),
                 ["image_id", "status", "gold_object_id", "pred_object_id"])
    assert quality(["sanity", str(run / "split"), "--json", str(out / "sanity.json")]) == 0
    same_json(out / "sanity.json", run / "sanity.json", drop=("overfit_tiny_batch",))
    assert annotate(["import", str(DEMO_EXPORT), "--out", str(out / "tables")]) == 0
    same_set(out / "tables", run / "tables")
    assert stage1(["predict", str(run / "stage1"), str(run / "split"), "--split", "test",
                   "--imgsz", "64", "--out", str(out / "predicted.parquet")]) == 0
    frames_equal(pd.read_parquet(out / "predicted.parquet"),
                 pd.read_parquet(run / "stage1" / "predicted_test.parquet"),
                 ["image_id", "object_id"])
    assert stage2(["generate", str(run / "stage2" / "gold"), str(run / "split"), "--split",
                   "test", "--out", str(out / "captions.parquet")]) == 0
    frames_equal(pd.read_parquet(out / "captions.parquet"),
                 pd.read_parquet(run / "stage2" / "gold" / "captions_gold.parquet"), ["image_id"])
    copy = out / "run"
    shutil.copytree(run, copy)
    assert quality(["robustness", str(copy), "--no-perturbation", *smoke]) == 0
    same_json(copy / "robustness.json", run / "robustness.json")


@pytest.fixture(scope="module")
def leaky_run(tmp_path_factory):
    """The demo with two planted leaks: images showing a green triangle are named
    `triangle_*.jpg` (an identifier leak), and annotator eve is renamed "circle", a word of the
    stage-2 input (an input leak)."""
    from tests.conftest import REPO

    root = tmp_path_factory.mktemp("leaky")
    data = root / "demo"
    shutil.copytree(REPO / "data/demo", data, ignore=shutil.ignore_patterns("truth"))
    tasks = json.loads((data / "export.json").read_text())
    for task in tasks:
        votes = sum(any("green triangle" in r.get("value", {}).get("rectanglelabels", [])
                        for r in a["result"]) for a in task["annotations"])
        if votes >= 2:
            old = task["data"]["image"].rsplit("/", 1)[1]
            (data / "images" / old).rename(data / "images" / f"triangle_{old}")
            task["data"]["image"] = task["data"]["image"].replace(old, f"triangle_{old}")
        for a in task["annotations"]:
            if a["completed_by"]["email"] == "eve@example.com":
                a["completed_by"]["email"] = "circle"
    (data / "export.json").write_text(json.dumps(tasks))
    run = root / "run"
    assert main(["--data", str(data / "export.json"), "--preset", "smoke", "--out", str(run)]) == 0
    return run


def test_planted_leaks_reach_the_report_with_the_audit_counts(leaky_run, tmp_path):
    from quality.cli import main as quality

    report = json.loads((leaky_run / "report" / "report.json").read_text())
    counts = report["audit"]["counts"]
    assert counts["identifier_leaks"] > 0 and counts["input_leaks"] > 0
    assert quality(["audit", str(leaky_run / "split"), "--json", str(tmp_path / "a.json")]) == 0
    by_hand = json.loads((tmp_path / "a.json").read_text())
    assert by_hand["counts"] == counts
    assert any(leak["token"] == "triangle" for leak in by_hand["identifier_leaks"])
    assert {leak["evidence"] for leak in by_hand["input_leaks"]} == {"circle"}
    page = (leaky_run / "report" / "report.html").read_text()
    for kind in ("identifier_leaks", "input_leaks"):
        assert (f'data-key="audit.counts.{kind}">{counts[kind]}</span>') in page


def test_the_main_job_is_quiet(tmp_path, capfd):
    """Only step lines and the closing summary reach the terminal; library output (training
    tables, warnings, MLflow messages) is in the step logs."""
    assert main(["--preset", "smoke", "--out", str(tmp_path / "run")]) == 0
    out, err = capfd.readouterr()
    lines = out.splitlines()
    steps = [line for line in lines if line.startswith("[")]
    assert len(steps) == 19 and err == ""
    rest = [line for line in lines if not line.startswith("[")]
    assert rest[0].startswith("deployed detector: mAP50")
    assert rest[1].startswith("With the deployed detector") and "human ceiling" in rest[-2]
    assert rest[-1].startswith("report: ")
    logs = {p.name: p.read_text() for p in (tmp_path / "run" / "logs").iterdir()}
    assert "mAP50" in logs["stage1_train.log"]  # ultralytics' training output went here


def test_a_changed_setting_reruns_only_the_steps_that_use_it(two_runs, tmp_path):
    from quality.pipeline import Pipeline, Settings

    run = tmp_path / "run"
    shutil.copytree(two_runs[0], run)

    def rerun(**options) -> set[str]:
        lines: list[str] = []
        Pipeline(run, Settings(preset="smoke", options=options), echo=lines.append).run()
        return {line[8:30].strip() for line in lines if not line.endswith("cached")}

    # robustness reads n_boot; so do reliability and split (whose tables do not change, so
    # nothing downstream of them reruns); the report reads what changed
    assert rerun(n_boot=60) == {"reliability", "split", "robustness", "report"}
    # a stage-2 setting reruns the four variants, the threshold choice (the gold-trained
    # model captions it) and what reads their captions; the error tables only if the chosen
    # threshold moved, the report only if the figures did
    reran = rerun(n_boot=60, stage2_epochs=1)
    assert reran - {"report", "stage1 evaluate"} == {
        "stage2 gold", "stage1 threshold", "stage2 noise", "stage2 oof", "stage2 noise+oof",
        "stage2 captions", "robustness"}
    assert rerun(n_boot=60, stage2_epochs=1) == set()


def test_a_changed_input_reruns_its_step_and_the_steps_after_it(two_runs, tmp_path):
    """The detector's raw test detections change (as if predicted again): the threshold step
    that filters them, evaluation, the stage-2 captions and what reads those rerun; training
    and everything before do not."""
    from quality.pipeline import Pipeline, Settings

    run = tmp_path / "run"
    shutil.copytree(two_runs[0], run)
    from annotate import store
    from annotate.schema import coerce

    split = store.load(run / "split")
    image = split.images[split.images.split == "test"].image_id.iloc[0]
    predicted = run / "stage1" / "raw_test.parquet"
    extra = coerce("boxes", [{"image_id": image, "annotator": "model:edit", "object_id": "e1",
                              "label": split.labels[0], "x0": 10, "y0": 10, "x1": 50, "y1": 50,
                              "score": 0.9, "source": "model:edit"}])
    pd.concat([pd.read_parquet(predicted), extra]).to_parquet(predicted)
    lines: list[str] = []
    Pipeline(run, Settings(preset="smoke"), echo=lines.append).run()
    reran = {line[8:30].strip() for line in lines if not line.endswith("cached")}
    assert reran - {"report"} == {"stage1 threshold", "stage1 evaluate", "stage2 captions",
                                  "robustness"}


@pytest.fixture(scope="module")
def seed_one(two_runs, tmp_path_factory):
    """A smoke run with seed 1 on the same data, compared at the end with the seed-0 run."""
    run = tmp_path_factory.mktemp("pipeline") / "seed1"
    assert main(["--preset", "smoke", "--seed", "1", "--out", str(run),
                 "--baseline", str(two_runs[0])]) == 0
    return run


def test_runs_with_other_seeds_compare_with_paired_intervals_and_a_verdict(two_runs, seed_one):
    """--baseline wrote compare.json and the page; the split has its own seed, so the test data
    are the same; the settings diff lists exactly the seed; MLflow holds the comparison with
    both runs and the verdict as tags."""
    result = json.loads((seed_one / "compare.json").read_text())
    assert (seed_one / "compare" / "compare.html").exists()
    versions = result["runs"]["a"]["split_versions"], result["runs"]["b"]["split_versions"]
    assert versions[0] == versions[1] and result["notes"] == []
    assert result["settings_diff"] == {"seed": [0, 1]}
    figure = result["stage2"]["gold"]["predicted"]["rouge_l"]
    assert figure["difference"] == pytest.approx(figure["b"] - figure["a"])
    assert figure["ci_low"] <= figure["difference"] <= figure["ci_high"]
    assert figure["verdict"] in {"A better", "B better", "cannot tell at this evaluation size"}
    assert result["verdict"]["figure"] == "stage2.gold.predicted.cider_d"
    assert set(result["stage1"]) >= {"recall", "precision"}
    client = mlflow.MlflowClient(tracking_uri=result["mlflow"]["tracking_uri"])
    tags = client.get_run(result["mlflow"]["run_id"]).data.tags
    assert tags["verdict"] == result["verdict"]["verdict"]
    assert tags["run_a"] == str(two_runs[0].resolve()) and tags["run_b"] == str(seed_one.resolve())
    run_json = json.loads((seed_one / "run.json").read_text())
    assert client.get_run(run_json["mlflow_run"]).data.tags["data_version.test"] == \
        versions[1]["test"]


def _edit_split(run, split: str) -> None:
    """Remove the boxes of three images of one split (as if annotations were dropped)."""
    from annotate import store

    ts = store.load(run / "split")
    images = ts.images[ts.images.split == split].image_id.iloc[:3]
    ts.boxes = ts.boxes[~ts.boxes.image_id.isin(images)]
    store.save(ts, run / "split")


def test_different_test_data_are_refused_unless_forced(two_runs, seed_one, tmp_path, capsys):
    from quality.cli import main as quality

    changed = tmp_path / "changed"
    shutil.copytree(seed_one, changed)
    _edit_split(changed, "test")
    assert quality(["compare", str(two_runs[0]), str(changed), "--n-boot", "50"]) == 2
    error = capsys.readouterr().err
    a = json.loads((seed_one / "run.json").read_text())["split_versions"]["test"]
    assert "different test data" in error and a in error and "test data version" in error
    assert quality(["compare", str(two_runs[0]), str(changed), "--n-boot", "50", "--force",
                    "--json", str(tmp_path / "c.json")]) == 0
    assert "FORCED" in capsys.readouterr().out
    assert json.loads((tmp_path / "c.json").read_text())["notes"][0].startswith("FORCED")


def test_different_training_data_compare_with_a_warning_first(two_runs, seed_one, tmp_path,
                                                              capsys):
    from quality.cli import main as quality

    changed = tmp_path / "changed"
    shutil.copytree(seed_one, changed)
    _edit_split(changed, "train")
    assert quality(["compare", str(two_runs[0]), str(changed), "--n-boot", "50"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("NOTE: different training data: a difference may come from the data")


def test_settings_diff_lists_exactly_the_changed_options():
    from quality.compare import settings_diff

    a = {"seed": 0, "preset": "smoke", "n_boot": 100, "nested": {"x": 1, "y": 2}}
    b = {"seed": 0, "preset": "smoke", "n_boot": 200, "nested": {"x": 1, "y": 3}, "new": True}
    assert settings_diff(a, b) == {"n_boot": [100, 200], "nested.y": [2, 3], "new": [None, True]}


def test_compare_takes_mlflow_run_ids(two_runs, seed_one, tmp_path, capsys):
    from quality.cli import main as quality

    records = [json.loads((r / "run.json").read_text()) for r in (two_runs[0], seed_one)]
    uri = records[0]["tracking_uri"]
    assert quality(["compare", records[0]["mlflow_run"], str(seed_one), "--tracking-uri", uri,
                    "--n-boot", "20", "--json", str(tmp_path / "c.json")]) == 0
    assert json.loads((tmp_path / "c.json").read_text())["runs"]["a"]["path"] == \
        str(two_runs[0].resolve())
    assert quality(["compare", "no-such-run", str(seed_one), "--tracking-uri", uri]) == 2
    assert "no such run folder, nor an MLflow run" in capsys.readouterr().err
