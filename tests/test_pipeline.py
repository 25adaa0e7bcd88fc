"""`evaluate-pipeline --preset smoke`: the whole chain, MLflow records, the step cache, and the
same figures from the same seed twice."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from annotate.stats.replicates import FEW_REPLICATES, UNKNOWN_TRAINING
from quality import workspace
from quality.report.page import _fmt
from quality.run.cli import main
from quality.run.pipeline import Pipeline, Settings
from stage2_generate.train import run_record


def figures_of(run) -> dict:
    report = json.loads((run / "report" / "report.json").read_text())
    report.pop("mlflow")
    report.pop("run")
    return report


def reran_steps(lines: list[str]) -> list[str]:
    """The steps a run's step lines (`[ i/n] name   seconds ...`) say were run, not cached."""
    return [line[8:30].strip() for line in lines if not line.endswith("cached")]


def test_the_smoke_preset_exercises_every_path_with_data(two_runs):
    """The smoke detector finds objects (recall >= 0.5 on the test split at its operating
    threshold), its threshold choice is not at the edge of the candidates, and captions from
    its layouts differ from captions of the gold layouts: the paths after stage 1 see data."""
    run = two_runs[0]
    summary = json.loads((run / "robustness.json").read_text())["summary"]
    deployed = summary["detectors"]["deployed detector"]
    assert deployed["recall"] >= 0.5, deployed
    threshold = json.loads((run / "stage1" / "threshold.json").read_text())
    assert not threshold["at_edge"], threshold["curve"]
    gold = pd.read_parquet(run / "stage2" / "gold" / "captions_gold.parquet")
    predicted = pd.read_parquet(run / "stage2" / "gold" / "captions_predicted.parquet")
    assert len(gold) and len(predicted)
    both = gold.merge(predicted, on="image_id", suffixes=("_gold", "_predicted"))
    assert (both.caption_gold != both.caption_predicted).any()
    for variant, reads in (("scores", 5), ("scores+oof", 5), ("noise+oof", 0)):
        record = run_record(run / "stage2" / variant)
        assert record["input"]["score_bins"] == reads, variant
        assert (record["config"]["scores"] is not None) == bool(reads)
    assert record["config"]["extra_share"] == 0.5


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two smoke runs one after the other in this process, neither naming a tracking URI:
    seed 0, then seed 1 on the same data, compared with the first (`--baseline`). That the
    same seed gives the same figures is checked by the killed-run test (its rerun against the
    first run)."""
    first = tmp_path_factory.mktemp("pipeline") / "a"
    second = tmp_path_factory.mktemp("pipeline") / "seed1"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        assert main(["--preset", "smoke", "--out", str(first)]) == 0
        assert main(["--preset", "smoke", "--seed", "1", "--out", str(second),
                     "--baseline", str(first)]) == 0
    return first, second


def test_two_runs_in_one_process_record_into_their_own_stores(two_runs):
    """mlflow exports MLFLOW_TRACKING_URI when a URI is set: without the restore the second
    run recorded into the first one's database."""
    for run in two_runs:
        record = json.loads((run / "run.json").read_text())
        assert record["tracking_uri"] == f"sqlite:///{(run / 'mlflow.db').resolve()}"
        client = mlflow.MlflowClient(tracking_uri=record["tracking_uri"])
        experiment = client.get_experiment_by_name(f"twostage-{record['data_version']}")
        parents = {r.info.run_id for r in client.search_runs(
            [experiment.experiment_id], "attributes.run_name LIKE 'evaluate-pipeline%'")}
        assert parents == {record["mlflow_run"]}
    assert "MLFLOW_TRACKING_URI" not in os.environ


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


def test_variants_are_chosen_by_name_and_a_folder_of_other_variants_is_refused(tmp_path,
                                                                             capsys):
    assert main(["--out", str(tmp_path / "r"), "--preset", "smoke", "--variants",
                 "gold,typo"]) == 2
    assert "unknown typo" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "r"), "--preset", "smoke", "--variants", "oof"]) == 2
    assert "gold is needed" in capsys.readouterr().err
    settings = Settings(preset="smoke", options={"variants": ["scores", "gold"]})
    assert settings.options["variants"] == ["gold", "scores"]  # in training order
    steps = Pipeline(tmp_path / "r", settings).steps
    assert [s for s in steps if s.startswith("stage2")] == ["stage2 gold", "stage2 scores",
                                                            "stage2 captions"]
    (tmp_path / "r" / "stage2" / "noise").mkdir(parents=True)
    (tmp_path / "r" / "stage2" / "noise" / "model.safetensors").write_bytes(b"weights")
    assert main(["--out", str(tmp_path / "r"), "--preset", "smoke", "--variants",
                 "gold,scores"]) == 2
    err = capsys.readouterr().err
    assert "holds stage-2 variants this run does not train (noise" in err
    assert "--variants gold,scores,noise" in err
    assert (tmp_path / "r" / "stage2" / "noise" / "model.safetensors").read_bytes() == b"weights"


def test_bad_data_is_a_clear_error(tmp_path, capsys):
    assert main(["--data", str(tmp_path / "missing.json"), "--out", str(tmp_path / "r"),
                 "--preset", "smoke"]) == 2
    assert "evaluate-pipeline: error:" in capsys.readouterr().err


def test_each_job_gives_the_same_artifact_through_its_cli_and_the_pipeline(two_runs, tmp_path):
    """Parity: every job, run by hand with its CLI on the pipeline's own inputs (smoke preset
    settings), writes exactly what the pipeline's step wrote."""
    from annotate.cli import main as annotate
    from annotate.tables import store
    from quality.cli import main as quality
    from quality.run.pipeline import DEMO_EXPORT
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

    def same_frames(made, written, keys):
        a, b = pd.read_parquet(made), pd.read_parquet(written)
        assert len(a) and len(b), f"{written} is empty: the comparison would prove nothing"
        frames_equal(a, b, keys)

    smoke = ["--n-boot", "100", "--seed", "0"]
    assert annotate(["import", str(DEMO_EXPORT), "--out", str(out / "tables")]) == 0
    same_set(out / "tables", run / "tables")
    same_json(out / "tables" / "import_summary.json", run / "tables" / "import_summary.json",
              drop=("source",))
    assert quality(["reliability", str(run / "tables"), "--json", str(out / "rel.json"),
                    *smoke]) == 0  # the ceiling is the job's default, as in the pipeline
    same_json(out / "rel.json", run / "reliability.json")
    assert quality(["consensus", str(run / "tables"), "--out", str(out / "gold")]) == 0
    same_set(out / "gold", run / "gold")
    same_json(out / "gold" / "consensus.json", run / "gold" / "consensus.json")
    assert quality(["split", str(run / "gold"), "--out", str(out / "split"), "--val", "0.15",
                    "--test", "0.15", *smoke]) == 0
    same_set(out / "split", run / "split")
    same_json(out / "split" / "split_report.json", run / "split" / "split_report.json")
    assert quality(["audit", str(run / "split"), "--json", str(out / "audit.json")]) == 0
    same_json(out / "audit.json", run / "audit.json")
    # stage 1: raw detections at the shared default confidence, the threshold, evaluation
    assert stage1(["predict", str(run / "stage1"), str(run / "split"), "--split", "test",
                   "--imgsz", "96", "--out", str(out / "raw_test.parquet")]) == 0
    same_frames(out / "raw_test.parquet", run / "stage1" / "raw_test.parquet",
                ["image_id", "object_id"])
    copy = out / "run"
    shutil.copytree(run, copy)
    for part in ("val", "test"):
        (copy / "stage1" / f"predicted_{part}.parquet").unlink()
    assert quality(["threshold", str(copy)]) == 0
    same_json(copy / "stage1" / "threshold.json", run / "stage1" / "threshold.json")
    for part in ("val", "test"):
        same_frames(copy / "stage1" / f"predicted_{part}.parquet",
                    run / "stage1" / f"predicted_{part}.parquet", ["image_id", "object_id"])
    assert stage1(["evaluate", str(run / "stage1"), str(run / "split"), "--split", "test",
                   "--boxes", str(run / "stage1" / "predicted_test.parquet"), "--imgsz", "96",
                   "--errors", str(out / "errors.parquet"), "--json", str(out / "eval.json")]) == 0
    same_json(out / "eval.json", run / "stage1" / "evaluate.json")
    same_frames(out / "errors.parquet", run / "stage1" / "errors_test.parquet",
                ["image_id", "status", "gold_object_id", "pred_object_id"])
    assert (pd.read_parquet(out / "errors.parquet").status == "matched").any()
    # stage 2: captions from gold and from the detector's layouts, and the rule baseline
    for name, boxes in (("captions_gold", []), ("captions_predicted", [
            "--boxes", str(run / "stage1" / "predicted_test.parquet")])):
        assert stage2(["generate", str(run / "stage2" / "gold"), str(run / "split"), "--split",
                       "test", *boxes, "--out", str(out / f"{name}.parquet")]) == 0
        same_frames(out / f"{name}.parquet", run / "stage2" / "gold" / f"{name}.parquet",
                    ["image_id"])
        assert stage2(["baseline", str(run / "split"), "--split", "test", *boxes, "--out",
                       str(out / f"baseline_{name}.parquet")]) == 0
        same_frames(out / f"baseline_{name}.parquet",
                    run / "stage2" / "baseline" / f"{name}.parquet", ["image_id"])
    assert quality(["sanity", str(run / "split"), "--json", str(out / "sanity.json")]) == 0
    same_json(out / "sanity.json", run / "sanity.json", drop=("overfit_tiny_batch",))
    assert quality(["robustness", str(copy), "--no-perturbation", *smoke]) == 0
    same_json(copy / "robustness.json", run / "robustness.json")
    assert quality(["gallery", str(run), "--out", str(out / "gallery")]) == 0
    same_json(out / "gallery" / "gallery.json", run / "gallery" / "gallery.json")
    assert quality(["report", str(run), "--out", str(out / "report")]) == 0
    # `mlflow` names the pipeline invocation that made the page; a later, fully cached rerun
    # of this folder (an earlier test) recorded a new one in run.json
    # ... and its gallery links are relative to where the page is
    same_json(out / "report" / "report.json", run / "report" / "report.json",
              drop=("mlflow", "gallery"))
    made, written = (json.loads((folder / "report" / "report.json").read_text())["gallery"]
                     for folder in (out, run))
    assert made["links"] == written["links"] and made["links"]
    assert (out / "report" / made["href"] / "index.html").resolve() == (
        run / "gallery" / "index.html").resolve()


def _leaky_demo(root: Path) -> Path:
    """The demo with two planted leaks: images showing a green triangle are named
    `triangle_*.jpg` (an identifier leak), and annotator eve is renamed "circle", a word of the
    stage-2 input (an input leak)."""
    from tests.conftest import REPO

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
    return data / "export.json"


def test_the_main_job_is_quiet_and_planted_leaks_reach_the_report(tmp_path, capfd):
    """Only step lines and the closing summary reach the terminal; library output (training
    tables, warnings, MLflow messages) is in the step logs. The data carry two planted leaks
    (`_leaky_demo`): the audit finds both and the report shows its counts. (One smoke run
    for both, training the gold-trained stage 2 only: each run costs minutes of CI.)"""
    from quality.cli import main as quality

    run = tmp_path / "run"
    assert main(["--data", str(_leaky_demo(tmp_path)), "--preset", "smoke", "--out",
                 str(run), "--variants", "gold"]) == 0
    out, err = capfd.readouterr()
    lines = out.splitlines()
    steps = [line for line in lines if line.startswith("[")]
    assert len(steps) == 18 and err == ""  # 23 steps less the five other stage-2 variants
    assert not any("stage2 noise" in line or "stage2 scores" in line for line in steps)
    assert sorted(p.name for p in (run / "stage2").iterdir()) == ["baseline", "gold"]
    rest = [line for line in lines if not line.startswith("[")]
    assert rest[0].startswith("deployed detector: mAP50")
    assert rest[1].startswith("With the deployed detector") and "human ceiling" in rest[-2]
    assert rest[-1].startswith("report: ")
    logs = {p.name: p.read_text() for p in (run / "logs").iterdir()}
    assert "mAP50" in logs["stage1_train.log"]  # ultralytics' training output went here

    report = json.loads((run / "report" / "report.json").read_text())
    counts = report["audit"]["counts"]
    assert counts["identifier_leaks"] > 0 and counts["input_leaks"] > 0
    assert quality(["audit", str(run / "split"), "--json", str(tmp_path / "a.json")]) == 0
    by_hand = json.loads((tmp_path / "a.json").read_text())
    assert by_hand["counts"] == counts
    assert any(leak["token"] == "triangle" for leak in by_hand["identifier_leaks"])
    assert {leak["evidence"] for leak in by_hand["input_leaks"]} == {"circle"}
    page = (run / "report" / "report.html").read_text()
    for kind in ("identifier_leaks", "input_leaks"):
        assert (f'data-key="audit.counts.{kind}">{counts[kind]}</span>') in page


def test_a_changed_setting_reruns_only_the_steps_that_use_it(two_runs, tmp_path):

    run = tmp_path / "run"
    shutil.copytree(two_runs[0], run)

    def rerun(**options) -> set[str]:
        lines: list[str] = []
        Pipeline(run, Settings(preset="smoke", options=options), echo=lines.append).run()
        return set(reran_steps(lines))

    # robustness and the judgment study read n_boot; so do reliability and split (whose
    # tables do not change, so nothing downstream of them reruns); the report reads what
    # changed
    assert rerun(n_boot=60) == {"reliability", "split", "robustness", "judging", "report"}
    # a stage-2 setting reruns the six variants, the threshold choice (the gold-trained
    # model captions it) and what reads their captions; the error tables only if the chosen
    # threshold moved, the report only if the figures did
    reran = rerun(n_boot=60, stage2_epochs=1)
    assert reran - {"report", "stage1 evaluate"} == {
        "stage2 gold", "stage1 threshold", "stage2 noise", "stage2 oof", "stage2 noise+oof",
        "stage2 scores", "stage2 scores+oof", "stage2 captions", "robustness", "judging",
        "gallery"}
    assert rerun(n_boot=60, stage2_epochs=1) == set()


def test_a_changed_input_reruns_its_step_and_the_steps_after_it(two_runs, tmp_path):
    """The detector's raw test detections change (as if predicted again): the threshold step
    that filters them, evaluation, the stage-2 captions and what reads those rerun; training
    and everything before do not."""

    run = tmp_path / "run"
    shutil.copytree(two_runs[0], run)
    from annotate.tables import store
    from annotate.tables.schema import coerce

    split = store.load(run / "split")
    image = split.images[split.images.split == "test"].image_id.iloc[0]
    predicted = run / "stage1" / "raw_test.parquet"
    extra = coerce("boxes", [{"image_id": image, "annotator": "model:edit", "object_id": "e1",
                              "label": split.labels[0], "x0": 10, "y0": 10, "x1": 50, "y1": 50,
                              "score": 0.9, "source": "model:edit"}])
    pd.concat([pd.read_parquet(predicted), extra]).to_parquet(predicted)
    lines: list[str] = []
    Pipeline(run, Settings(preset="smoke"), echo=lines.append).run()
    reran = set(reran_steps(lines))
    assert reran - {"report"} == {"stage1 threshold", "stage1 evaluate", "stage2 captions",
                                  "robustness", "judging", "gallery"}


@pytest.fixture(scope="module")
def seed_one(two_runs):
    """The smoke run with seed 1 on the same data, compared at the end with the seed-0 run."""
    return two_runs[1]


def test_two_single_runs_that_differ_in_seed_cannot_tell(two_runs, seed_one):
    """--baseline wrote compare.json and the page; the split has its own seed, so the test data
    are the same; the settings diff lists exactly the seed; a trained model is one draw, so
    with one run per arm no verdict claims a difference (training variance unknown); MLflow
    holds the comparison with both runs and the verdict as tags."""
    result = json.loads((seed_one / "compare.json").read_text())
    assert (seed_one / "compare" / "compare.html").exists()
    versions = result["runs"]["a"][0]["split_versions"], result["runs"]["b"][0]["split_versions"]
    assert versions[0] == versions[1]
    assert result["settings_diff"] == {"seed": [0, 1]}
    assert result["notes"] and result["notes"][0].startswith("training variance not measured")
    assert result["resampled"]["training_variance"] == "not measured"
    for inputs in result["stage2"].values():
        for figures in inputs.values():
            for figure in (f for f in figures.values() if isinstance(f, dict)):
                assert figure["verdict"] == UNKNOWN_TRAINING
                assert figure["difference"] == pytest.approx(figure["b"] - figure["a"])
    assert result["verdict"]["figure"] == "stage2.gold.predicted.cider_d"
    assert "rerun each arm with --seed" in result["verdict"]["line"]
    assert set(result["stage1"]) >= {"recall", "precision"}
    client = mlflow.MlflowClient(tracking_uri=result["mlflow"]["tracking_uri"])
    tags = client.get_run(result["mlflow"]["run_id"]).data.tags
    assert tags["verdict"] == result["verdict"]["verdict"] == UNKNOWN_TRAINING
    assert tags["run_a"] == str(two_runs[0].resolve()) and tags["run_b"] == str(seed_one.resolve())
    run_json = json.loads((seed_one / "run.json").read_text())
    assert client.get_run(run_json["mlflow_run"]).data.tags["data_version.test"] == \
        versions[1]["test"]


def test_the_images_only_comparison_is_given_when_asked_and_labelled(two_runs, seed_one,
                                                                      tmp_path):
    from quality.cli import main as quality

    assert quality(["compare", str(two_runs[0]), str(seed_one), "--images-only", "--n-boot",
                    "100", "--json", str(tmp_path / "c.json")]) == 0
    result = json.loads((tmp_path / "c.json").read_text())
    figure = result["stage2"]["gold"]["predicted"]["rouge_l"]
    assert figure["resampled"]["unit"] == "image"
    expected = ("B better" if figure["ci_low"] > 1e-9 else "A better"
                if figure["ci_high"] < -1e-9 else "cannot tell at this evaluation size")
    assert figure["verdict"] == expected + " (test images only: training variance not measured)"


def test_arms_of_replicates_get_intervals_over_images_and_seeds(two_runs, seed_one, tmp_path,
                                                               capsys):
    """A = (seed 0, seed 1), B = (seed 1, seed 0): the same models, so every difference is
    0, the interval includes it, and the variance is split by source."""
    from quality.cli import main as quality

    assert quality(["compare", str(two_runs[0]), str(seed_one), "--", str(seed_one),
                    str(two_runs[0]), "--n-boot", "100", "--json", str(tmp_path / "c.json")]) == 0
    assert "replicates: A 2, B 2; intervals resample: image x training replicate" in \
        capsys.readouterr().out
    result = json.loads((tmp_path / "c.json").read_text())
    assert result["replicates"] == {"a": 2, "b": 2} and result["notes"] == []
    figure = result["stage2"]["gold"]["predicted"]["cider_d"]
    assert figure["difference"] == pytest.approx(0, abs=1e-12)
    assert figure["ci_low"] < 0 < figure["ci_high"]
    assert figure["verdict"] == FEW_REPLICATES.format(k=2)  # 2 per arm: shown, not claimed
    assert 0 < figure["variance"]["training_share"] <= 1
    assert figure["spread"]["a_sd"] > 0  # seed 0 and seed 1 trained different models
    assert quality(["compare", str(two_runs[0]), "--", "--n-boot", "10"]) == 2
    # planning from the measured spreads: how many replicates a difference needs
    assert quality(["plan-replicates", str(tmp_path / "c.json"), "--target", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "stage2.gold.predicted.cider_d: training spread" in out and "replicates per arm" in out
    assert quality(["plan-replicates", str(seed_one / "compare.json"), "--target", "0.5"]) == 2
    assert "no measured training spread" in capsys.readouterr().err


def test_people_decide_a_comparison_of_two_arms_over_images_and_replicates(
        two_runs, seed_one, tmp_path, capsys):
    """plan-judging A1 A2 -- B1 B2: each task shows arm A's and arm B's gold caption of one
    image, each from a drawn replicate of its arm; simulated judges judge them; `quality
    compare --judgments` then decides by people's win rate, its interval over images and
    replicates, and the simulation's truth lies inside it."""
    from quality.cli import main as quality

    arm_a, arm_b = [str(two_runs[0]), str(seed_one)], [str(seed_one), str(two_runs[0])]
    study = tmp_path / "study"
    assert quality(["plan-judging", *arm_a, "--", *arm_b, "--out", str(study),
                    "--target-ci", "0.1"]) == 0
    plan = json.loads((study / "plan.json").read_text())
    assert plan["systems"] == ["A:gold", "B:gold"] and plan["pairs"] == 1
    assert plan["arms"] == {"A": [str(Path(r).resolve()) for r in arm_a],
                            "B": [str(Path(r).resolve()) for r in arm_b]}
    tasks = pd.DataFrame(plan["tasks"])
    sides = {"A": arm_a, "B": arm_b}
    for t in tasks.itertuples():  # each caption is its drawn replicate's caption of the image
        for side in ("left", "right"):
            arm = getattr(t, side)[0]
            run = Path(sides[arm][getattr(t, f"{side}_replicate")])
            made = pd.read_parquet(run / "stage2" / "gold" / "captions_predicted.parquet")
            assert made.set_index("image_id").caption[t.image_id] == getattr(t, f"{side}_caption")
    assert set(tasks.left_replicate) == {0, 1} and set(tasks.right_replicate) == {0, 1}
    assert quality(["judge-simulate", str(study)]) == 0
    assert quality(["judgments", str(study), "--n-boot", "100"]) == 0
    capsys.readouterr()
    assert quality(["compare", *arm_a, "--", *arm_b, "--judgments", str(study), "--n-boot",
                    "200", "--json", str(tmp_path / "c.json"), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    result = json.loads((tmp_path / "c.json").read_text())
    people = result["people"]["figures"]["gold"]
    truth = 1 - json.loads((study / "simulated.json").read_text())["truth"][0]["win_rate"]
    assert people["resampled"] == "image x training replicate"
    assert people["ci_low"] <= truth <= people["ci_high"]
    assert people["judgments"] == 3 * len(tasks) and result["people"]["simulated"]
    verdict = FEW_REPLICATES.format(k=2)  # two replicates per arm: never a claim
    assert result["verdict"]["figure"] == "people.gold.win_rate"
    assert result["verdict"]["verdict"] == people["verdict"] == verdict
    assert result["verdict"]["automatic"]["figure"] == "stage2.gold.predicted.cider_d"
    assert f"verdict: {verdict} (simulated judges): B's gold caption preferred" in out
    page = (tmp_path / "compare.html").read_text()
    shown = re.findall(r'<span class="fig" data-key="(people[^"]+)">([^<]*)</span>', page)
    assert len(shown) == 8 and "Judged by simulated judges" in page
    for key, text in shown:
        assert text == _fmt(result["people"]["figures"]["gold"][key.split(".")[-1]])
    run = mlflow.MlflowClient(result["mlflow"]["tracking_uri"]).get_run(
        result["mlflow"]["run_id"])
    assert run.data.metrics["people.gold.win_rate_b"] == pytest.approx(people["win_rate"])
    assert run.data.tags["judgment_study"] == str(study.resolve())
    # a study of other arms does not decide this comparison
    assert quality(["compare", str(two_runs[0]), str(seed_one), "--judgments", str(study),
                    "--n-boot", "10"]) == 2
    assert "judged the arms" in capsys.readouterr().err


@pytest.fixture(scope="module")
def replicated(two_runs, tmp_path_factory):
    """The seed-0 smoke run again with --replicates 2: its own steps are reused, the seed-1000
    replicate is trained in its own folder, and the replicates step combines them."""
    run = tmp_path_factory.mktemp("replicated") / "run"
    shutil.copytree(two_runs[0], run)
    assert main(["--preset", "smoke", "--replicates", "2", "--out", str(run)]) == 0
    return run


def test_replicates_give_intervals_over_test_images_and_seeds(replicated):
    block = json.loads((replicated / "replicates.json").read_text())
    assert block["replicates"] == 2 and block["seeds"] == [0, 1000]
    drop = block["gap"]["deployed detector"]["gold"]["drop"]
    assert drop["resampled"]["unit"] == "image x training replicate"
    assert drop["ci_low"] <= drop["value"] <= drop["ci_high"]
    assert drop["sd"] > 0 and 0 < drop["variance"]["training_share"] <= 1
    change = block["gap"]["deployed detector"]["oof"]["predicted_change"]
    assert change["replicates"] == {"a": 2, "b": 2} and change["image_sd"] > 0
    assert not change["verdict"].startswith("cannot tell: training variance unknown")
    assert block["verdict"][0].startswith("Over 2 training replicates (seeds 0, 1000)")
    assert block["verdict"][1].startswith("With 2 replicates no difference is claimed")
    assert "baseline" in block["verdict"][-1]  # the rule baseline, in every replicate
    effect = block["threshold_effect"]  # chosen hand-over vs ultralytics' 0.25, seed by seed
    assert effect["against"] == 0.25
    assert effect["chosen"] == pytest.approx(block["gap"]["deployed detector"]["gold"][
        "predicted"])
    assert effect["difference"]["value"] == pytest.approx(effect["chosen"] - effect["default"])
    assert effect["difference"]["resampled"]["unit"] == "image x training replicate"
    assert any("ultralytics' default confidence 0.25" in line for line in block["verdict"])
    suppression = block["suppression_effect"]  # chosen hand-over vs its threshold unsuppressed
    assert suppression["chosen"] == effect["chosen"]
    assert suppression["difference"]["value"] == pytest.approx(
        suppression["chosen"] - suppression["default"])
    assert any("without suppression" in line for line in block["verdict"])
    for run in block["runs"]:
        run = Path(run)
        record = json.loads((run / "stage1" / "threshold.json").read_text())
        unsuppressed = pd.read_parquet(run / "stage1" / "raw_test.parquet").query(
            f"score >= {record['chosen']}")
        handed = pd.read_parquet(run / "stage1" / "predicted_test.parquet")
        captions = [pd.read_parquet(run / "stage2" / "gold" / name).caption.tolist() for name in
                    ("captions_predicted.parquet", "captions_predicted_unsuppressed.parquet")]
        if record["suppress_iou"] is None:  # the same boxes, so the same captions
            assert len(unsuppressed) == len(handed) and captions[0] == captions[1]
        else:
            assert len(unsuppressed) > len(handed)
    report = json.loads((replicated / "report" / "report.json").read_text())
    assert report["replicates"]["verdict"] == block["verdict"]
    page = (replicated / "report" / "report.html").read_text()
    assert html.escape(block["verdict"][0]) in page


def test_a_replicate_is_its_own_run_recorded_under_the_pipeline_run(replicated):
    parent = json.loads((replicated / "run.json").read_text())
    child = json.loads((replicated / "replicates" / "seed-1000" / "run.json").read_text())
    assert child["settings"]["seed"] == 1000 and child["tracking_uri"] == parent["tracking_uri"]
    assert child["split_versions"] == parent["split_versions"]  # the same split
    client = mlflow.MlflowClient(tracking_uri=parent["tracking_uri"])
    assert client.get_run(child["mlflow_run"]).data.tags["mlflow.parentRunId"] == \
        parent["mlflow_run"]
    # a replicate holds its trained chain; what describes the data or makes the page is the
    # parent's alone
    folder = replicated / "replicates" / "seed-1000"
    for name in ("stage1", "evaluate", "captions", "errors", "predicted"):
        assert workspace.exists(folder, name), name
    for name in ("reliability", "audit", "robustness", "sanity", "judging", "gallery"):
        assert workspace.exists(replicated, name) and not workspace.exists(folder, name), name
    assert not (folder / "report").exists() and (replicated / "report" / "report.html").exists()


def test_a_run_and_its_replicate_folders_pool_as_one_arm(replicated, two_runs, seed_one,
                                                         tmp_path, capsys):
    """The parent and its replicate differ in seed, replicates and the data path (the child
    reads the parent's tables): bookkeeping, not a difference in what was trained. A real
    setting that differs is still named. With three replicates per arm the verdict says how
    likely a rerun makes its call again: the same three models on both sides differ by 0,
    which a rerun calls "not told apart" with probability 0.95, the interval's level; people
    judging the same arms get the figure for their win rate, called against 0.5."""
    from quality.cli import main as quality
    from quality.compare import compare_runs

    arm = [replicated, replicated / "replicates" / "seed-1000"]
    same = compare_runs(arm, arm, n_boot=10)
    assert same["notes"] == [] and "hand_over_note" not in same["stage1"]
    three = [two_runs[0], seed_one, arm[1]]
    arms = [*map(str, three), "--", *map(str, three[1:] + three[:1])]  # rotated
    assert quality(["compare", *arms, "--n-boot", "10", "--json",
                    str(tmp_path / "three.json")]) == 0
    assert "a rerun makes this call 95%" in capsys.readouterr().out
    result = json.loads((tmp_path / "three.json").read_text())
    figure = result["stage2"]["gold"]["predicted"]["cider_d"]
    assert figure["difference"] == pytest.approx(0, abs=1e-12)
    assert figure["verdict"] == "cannot tell at this evaluation size"
    assert figure["rerun_same_call"] == pytest.approx(0.95, abs=1e-6)
    assert result["verdict"]["line"].endswith(
        "; a rerun with other seeds would make this call again with probability 0.95, if the "
        "true difference is the one measured")
    # people decide: their win rate gets the same figure, called against 0.5
    study = tmp_path / "study"
    assert quality(["plan-judging", *arms, "--out", str(study), "--target-ci", "0.1"]) == 0
    assert quality(["judge-simulate", str(study)]) == 0
    capsys.readouterr()
    assert quality(["compare", *arms, "--judgments", str(study), "--n-boot", "100",
                    "--json", str(tmp_path / "judged.json")]) == 0
    out = capsys.readouterr().out
    people = json.loads((tmp_path / "judged.json").read_text())["people"]["figures"]["gold"]
    assert people["df"] == 2 and people["verdict"] == "cannot tell at this evaluation size"
    # a "not told apart" call is repeated at most at the interval's level (at 0.5 exactly),
    # and more often than not while 0.5 is inside the interval; against 0 it would be ~1
    assert 0.5 < people["rerun_same_call"] <= 0.95 + 1e-9, people
    assert f"a rerun makes this call {people['rerun_same_call']:.0%}" in out
    assert (f"a rerun with other seeds would make this call again with probability "
            f"{people['rerun_same_call']:.2f}, if the true difference is the one measured; "
            "automatic:") in out
    edited = tmp_path / "edited"
    shutil.copytree(arm[1], edited)
    record = json.loads((edited / "run.json").read_text())
    record["settings"]["stage2_epochs"] += 1
    (edited / "run.json").write_text(json.dumps(record))
    hand_over = json.loads((edited / "stage1" / "threshold.json").read_text())
    hand_over["chosen"] = 0.99  # as if its stage 2 had chosen another operating threshold
    (edited / "stage1" / "threshold.json").write_text(json.dumps(hand_over))
    result = compare_runs([replicated, edited], arm, n_boot=10)
    assert result["notes"] == [
        "the replicates of arm A differ in more than the seed: ['stage2_epochs']"]
    assert {"threshold": 0.99, "suppress_iou": hand_over["suppress_iou"]} in \
        result["stage1"]["hand_over"]["a"]
    assert "the arms' hand-overs differ" in result["stage1"]["hand_over_note"]


def test_a_rerun_with_replicates_reuses_every_step(replicated, capsys):
    assert main(["--preset", "smoke", "--replicates", "2", "--out", str(replicated)]) == 0
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()
             if line.lstrip().startswith(("[", "replicate"))]
    assert lines and all(line.endswith("cached") for line in lines), lines


def _edit_split(run, split: str) -> None:
    """Remove the boxes of three images of one split (as if annotations were dropped)."""
    from annotate.tables import store

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
    assert json.loads((tmp_path / "c.json").read_text())["runs"]["a"][0]["path"] == \
        str(two_runs[0].resolve())
    assert quality(["compare", "no-such-run", str(seed_one), "--tracking-uri", uri]) == 2
    assert "no such run folder, nor an MLflow run" in capsys.readouterr().err


def test_a_run_killed_mid_step_reruns_to_the_same_report(two_runs, tmp_path):
    """SIGKILL while a stage-2 model trains (its first epoch's checkpoint written), then the
    same command again: the steps that had finished are reused, the interrupted one is done
    again from scratch (its half-written outputs never count), and the report equals an
    uninterrupted run's. The run is the seed-0 smoke run with its last trained step and those
    after it undone (CI time: a whole run again costs minutes; `test_stage1` checks that the
    detector's training repeats too)."""
    import signal
    import subprocess
    import sys
    import time

    from quality.run.pipeline import STEPS

    out = tmp_path / "killed"
    shutil.copytree(two_runs[0], out)
    killed = "stage2 scores+oof"
    shutil.rmtree(out / "stage2" / "scores+oof")
    for name in STEPS[STEPS.index(killed):]:
        (out / ".cache" / f"{name}.json").unlink()
    command = [sys.executable, "-c", "import sys; from quality.run.cli import main; "
               f"sys.exit(main(['--preset', 'smoke', '--out', {str(out)!r}]))"]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={k: v for k, v in os.environ.items()
                                  if k != "MLFLOW_TRACKING_URI"})
    checkpoints = out / "stage2" / "scores+oof" / "checkpoints"
    deadline = time.monotonic() + 240
    while not (checkpoints.is_dir() and any(checkpoints.glob("checkpoint-*"))):
        assert child.poll() is None and time.monotonic() < deadline, "never reached training"
        time.sleep(0.1)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not (out / ".cache" / f"{killed}.json").exists()  # not recorded as done
    assert not (out / "stage2" / "scores+oof" / "twostage.json").exists()  # nor finished
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        Pipeline(out, Settings(preset="smoke"), echo=lines.append).run()
    reran = reran_steps(lines)
    assert reran[0] == killed and "stage2 scores" not in reran  # the finished ones reused
    first, again = figures_of(two_runs[0]), figures_of(out)
    for figures in (first, again):
        figures["provenance"]["settings"].pop("data")
    assert again == first  # and so the same seed gives the same figures
    names = {"gold", "noise", "oof", "noise+oof", "scores", "scores+oof", "baseline"}
    assert set(first["robustness"]["variants"]) == names | {f"{n}, strong detector"
                                                            for n in names}
    assert not first["missing"]


def test_source_fingerprint_follows_the_code_bytes_only(tmp_path):
    from annotate.tables.versions import PACKAGES, source_fingerprint

    def tree(name: str, code: str) -> Path:
        root = tmp_path / name
        for package in PACKAGES:
            (root / package / "sub").mkdir(parents=True)
            (root / package / "sub" / "m.py").write_text(f"X = {package!r}\n")
        (root / "annotate" / "a.py").write_text(code)
        return root

    first = source_fingerprint(tree("one", "A = 1\n"))
    assert source_fingerprint(tree("two", "A = 1\n")) == first  # another checkout, same code
    assert source_fingerprint(tree("three", "A = 2\n")) != first  # one byte of code
    four = tree("four", "A = 1\n")
    (four / "annotate" / "notes.md").write_text("not code")
    (four / "docs").mkdir()
    (four / "docs" / "x.py").write_text("outside the packages")
    assert source_fingerprint(four) == first


def test_a_step_made_by_other_code_reruns(tmp_path, monkeypatch):
    from quality.run import pipeline as pipeline_module

    lines: list[str] = []
    runner = Pipeline(tmp_path / "run", Settings(preset="smoke"), echo=lines.append)
    runner.mlflow, runner.tags = pipeline_module._NoTracking(), {}
    made = tmp_path / "made.txt"
    calls: list[int] = []

    def step() -> None:
        calls.append(1)
        made.write_text("artifact")

    runner._step("import", [], [made], step)
    runner._step("import", [], [made], step)
    assert len(calls) == 1 and lines[-1].endswith("cached")
    monkeypatch.setattr(pipeline_module, "source_fingerprint", lambda: "other code")
    runner._step("import", [], [made], step)
    assert len(calls) == 2 and not lines[-1].endswith("cached")
