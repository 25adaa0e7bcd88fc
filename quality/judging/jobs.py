"""The judgment-study jobs: `quality plan-judging`, `judge-push`, `judge-pull` and
`judgments` (and the pipeline's demo study with simulated judges) call these; nothing else
writes a study folder. Each step is recorded as `<step>.json` in the study folder and as an
MLflow run (`annotate.runtime.records.record_step`).

The study folder holds `plan.json` (the systems, the tasks with their left/right order, the
images, the expected interval and cost), `scores.parquet` (each system's caption of each image
scored by the automatic metrics against the references left after holding a human caption
out), `judgments.parquet` (from Label Studio, or simulated) and `judgments.json` (the
analysis).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from annotate.runtime.atomic import write_json, write_parquet
from annotate.runtime.errors import UserError
from annotate.runtime.jsonable import records
from annotate.runtime.records import record_step
from annotate.tables.views import gold_boxes
from quality.cascade.scoring import per_image
from quality.judging import analysis
from quality.judging.design import (
    HUMAN_SYSTEM,
    ICC,
    SECONDS_PER_JUDGMENT,
    draw_tasks,
    half_width,
    half_width_for_mdd,
    system_captions,
    tasks_needed,
)
from quality.judging.labelstudio import pull_judgments, push_tasks
from quality.judging.simulate import Judges, expected_win_rates, simulate

PLAN, SCORES, JUDGMENTS, ANALYSIS = "plan.json", "scores.parquet", "judgments.parquet", \
    "judgments.json"
SIMULATED = "simulated.json"
SYSTEMS = ("gold", "oof", HUMAN_SYSTEM, "baseline")
METRICS = ("cider_d", "rouge_l", "content")


def plan_judging(run: str | os.PathLike, out: str | os.PathLike, *,
                 systems: tuple[str, ...] = SYSTEMS, layouts: str = "detector",
                 target_ci: float = 0.05, mdd: float | None = None,
                 raters_per_item: int = 3, icc: float = ICC,
                 seconds_per_judgment: float = SECONDS_PER_JUDGMENT, seed: int = 0,
                 tracking_uri: str | None = None, log: bool = True) -> dict:
    """Plan a blind pairwise study of a run's captions.

    Parameters
    ----------
    run : path
        A pipeline run folder (its test images and each system's captions).
    out : path
        The study folder.
    systems : tuple of str
        Variants of the run (`gold`, `noise`, `oof`, `noise+oof`, `baseline`) and `human` (one
        human caption per image, held out of the references).
    layouts : {"detector", "gold"}
        Judge the captions of the deployed detector's layouts (what users get) or of gold.
    target_ci : float
        Half-width of the 95% interval wanted on each pair's win rate (worst case: 0.5).
    mdd : float, optional
        Instead of `target_ci`: the difference in win rate from 0.5 to detect with 80% power
        at the 5% level (`design.half_width_for_mdd`).
    raters_per_item : int
        Judgments per task (different judges).
    icc : float
        Assumed correlation of judgments of one task (it inflates the tasks needed).
    seconds_per_judgment : float
        Assumed time per judgment, for the cost (a pull reports the measured one).
    seed : int
        Seed of the held-out human caption, the images drawn and the left/right order.
    tracking_uri : str, optional
        MLflow (default: $MLFLOW_TRACKING_URI, else the study folder's `mlflow.db`).
    log : bool
        Record the step as an MLflow run (the pipeline logs its own step run instead).

    Returns
    -------
    dict
        What `plan.json` holds: tasks per pair needed and planned, the expected half-width,
        judgments and hours of judging, the tasks and the images.
    """
    if mdd is not None:
        target_ci = half_width_for_mdd(mdd)
    captions, references, split = system_captions(run, list(systems), layouts, seed)
    if captions.empty:
        raise UserError(f"{run}: no test image has a caption from every system {systems}")
    images = captions.image_id.nunique()
    needed = tasks_needed(target_ci, raters_per_item, icc)
    per_pair = min(needed, images)
    tasks = draw_tasks(captions, list(systems), per_pair, seed)
    scores = _scores(captions, references, split)
    write_parquet(Path(out) / SCORES, scores)
    judgments = len(tasks) * raters_per_item
    paths = split.images.set_index("image_id").path
    plan = {
        "run": str(Path(run).resolve()), "systems": list(systems), "design": "pairwise",
        "pairs": len(systems) * (len(systems) - 1) // 2, "test_images": images,
        "tasks_per_pair_needed": needed, "tasks_per_pair": per_pair,
        "half_width_expected": half_width(per_pair, raters_per_item, icc),
        "target_met": per_pair >= needed, "tasks": records(tasks), "judgments": judgments,
        "judging_hours": judgments * seconds_per_judgment / 3600,
        "images": {str(i): str(paths[i]) for i in tasks.image_id.unique()},
        "settings": {"layouts": layouts, "target_ci": target_ci, "mdd": mdd,
                     "raters_per_item": raters_per_item, "icc": icc,
                     "seconds_per_judgment": seconds_per_judgment, "seed": seed}}
    if not plan["target_met"]:
        plan["note"] = (f"{needed} tasks per pair are needed for +-{target_ci}; the test set "
                        f"has {images} images, which give +-{plan['half_width_expected']:.3f}")
    return _record(out, PLAN, plan, tracking_uri, log)


def _scores(captions: pd.DataFrame, references: pd.Series, split) -> pd.DataFrame:
    """Each system's caption of each image scored against the references left (every system
    against the same ones, so a held-out human caption is scored like a model's)."""
    gold = gold_boxes(split)
    frames = [per_image(group, references, gold, split.labels).drop(columns="caption")
              .reset_index().assign(system=name)
              for name, group in captions.groupby("system", sort=False)]
    scores = pd.concat(frames, ignore_index=True)
    return scores[["image_id", "system", *[m for m in METRICS if m in scores]]]


def _record(study, name: str, record: dict, tracking_uri: str | None, log: bool) -> dict:
    """`name` in the study folder, and (with `log`) its MLflow run."""
    if log:
        return record_step(study, Path(name).stem, record, tracking_uri)
    write_json(Path(study) / name, record)
    return record


def read_plan(study: str | os.PathLike) -> dict:
    path = Path(study) / PLAN
    if not path.exists():
        raise UserError(f"{study}: no {PLAN} (make one with `quality plan-judging RUN --out "
                        f"{study}`)")
    return json.loads(path.read_text())


def push_judging(connection, study: str | os.PathLike, project: str,
                 document_root: str | None = None, tracking_uri: str | None = None) -> dict:
    """Push the plan's tasks to a Label Studio project, blind (`judge-push`)."""
    plan = read_plan(study)
    pushed = push_tasks(connection, plan, project, document_root)
    return record_step(study, "push", {**pushed, "tasks": len(plan["tasks"]), "settings": {
        "url": connection.url, "project": project, "blind": True}}, tracking_uri)


def pull_judging(connection, study: str | os.PathLike, timeout: float = 600,
                 tracking_uri: str | None = None) -> dict:
    """Read the judges' answers back (`judge-pull`): `judgments.parquet` and `pull.json` (read,
    kept, skipped with reasons; the judges; the measured time per judgment)."""
    plan = read_plan(study)
    pushed = Path(study) / "push.json"
    if not pushed.exists():
        raise UserError(f"{study}: no push.json (push the study first: quality judge-push)")
    project = json.loads(pushed.read_text())["project_id"]
    judgments, counts = pull_judgments(connection, plan, project,
                                       Path(study) / "ls_export.json", timeout)
    write_parquet(Path(study) / JUDGMENTS, judgments)
    (Path(study) / SIMULATED).unlink(missing_ok=True)  # people's answers replace a simulation
    seconds = judgments.lead_time.median() if len(judgments) else None
    return record_step(study, "pull", {
        **counts, "judges": int(judgments.judge.nunique()), "tasks_judged":
        int(judgments.task.nunique()), "tasks": len(plan["tasks"]),
        "median_seconds_per_judgment": None if pd.isna(seconds) else float(seconds),
        "settings": {"url": connection.url, "project_id": project}}, tracking_uri)


def simulate_judging(study: str | os.PathLike, judges: Judges | None = None, seed: int = 0,
                     tracking_uri: str | None = None, log: bool = True) -> dict:
    """Judgments of the plan's tasks by simulated judges (`simulate.py`), written as a pull
    would write them, with the simulation's truth (each pair's expected win rate)."""
    judges = judges or Judges()
    plan = read_plan(study)
    tasks = pd.DataFrame(plan["tasks"])
    scores = pd.read_parquet(Path(study) / SCORES)
    quality = scores.set_index(["image_id", "system"]).content
    judgments = simulate(tasks, quality, judges, seed)
    write_parquet(Path(study) / JUDGMENTS, judgments)
    truth = expected_win_rates(tasks, quality, judges)
    return _record(study, SIMULATED, {
        "judgments": len(judgments), "truth": [
            {"a": a, "b": b, "win_rate": float(v)} for (a, b), v in truth.items()],
        "settings": {"judges": judges.judges, "raters_per_item": judges.raters_per_item,
                     "temperature": judges.temperature, "left_bias": judges.left_bias,
                     "lapse": str(judges.lapse), "tie_band": judges.tie_band, "seed": seed,
                     "quality": "content F1 against the gold objects"}}, tracking_uri, log)


def judgments_job(study: str | os.PathLike, n_boot: int = 1000, seed: int = 0,
                  tracking_uri: str | None = None, log: bool = True) -> dict:
    """Analyse a study's judgments (`quality judgments`): `judgments.json` and its MLflow run.

    Returns
    -------
    dict
        `win_rates` per pair (ties half, with their count), `bradley_terry` per system,
        `position_bias`, `judges` (alpha among them, per judge), `metrics` (Kendall tau-b and
        tau-c of each automatic metric against the judges per task, and system-level
        agreement), each interval resampling images; `warnings` for small samples.
    """
    plan = read_plan(study)
    path = Path(study) / JUDGMENTS
    if not path.exists():
        raise UserError(f"{study}: no {JUDGMENTS} (pull the study: quality judge-pull)")
    judgments = analysis.check_judgments(pd.read_parquet(path), str(path))
    if judgments.empty:
        raise UserError(f"{path}: no judgments yet")
    scores = pd.read_parquet(Path(study) / SCORES)
    images = judgments.image_id.nunique()
    result = {
        "judgments": len(judgments), "images": images, "tasks": int(judgments.task.nunique()),
        "judges_count": int(judgments.judge.nunique()),
        "ties": int((judgments.choice == analysis.TIE).sum()),
        "win_rates": records(analysis.win_rates(judgments, n_boot, seed)),
        "bradley_terry": records(analysis.bradley_terry(judgments, min(n_boot, 200), seed)),
        "position_bias": analysis.position_bias(judgments, n_boot, seed),
        "judges": analysis.judge_agreement(judgments, n_boot, seed),
        "metrics": analysis.metric_agreement(judgments, scores, n_boot, seed),
        "resampled": {"unit": "image", "count": images, "n_boot": n_boot},
        "settings": {"n_boot": n_boot, "seed": seed, "systems": ",".join(plan["systems"])}}
    result["warnings"] = [
        f"{pair['a']} vs {pair['b']}: {pair['images']} images (< 30): read the interval"
        for pair in result["win_rates"] if pair["images"] < 30]
    truth = Path(study) / SIMULATED  # simulated judges: the truth beside the estimates
    if truth.exists():
        result["simulated"] = json.loads(truth.read_text())
    return _record(study, ANALYSIS, result, tracking_uri, log)
