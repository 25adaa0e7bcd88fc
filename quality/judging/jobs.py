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
from annotate.runtime.records import metric_name, record_step
from annotate.tables.views import gold_boxes
from quality.cascade.scoring import per_image
from quality.judging import analysis, ratings
from quality.judging.design import (
    ARMS,
    DESIGNS,
    HUMAN_SYSTEM,
    ICC,
    RATING_SD,
    RUBRIC,
    SECONDS_PER_JUDGMENT,
    arm_captions,
    draw_rating_tasks,
    draw_tasks,
    half_width,
    half_width_for_mdd,
    rating_half_width,
    rating_images_needed,
    system_captions,
    tasks_needed,
)
from quality.judging.labelstudio import pull_judgments, push_tasks
from quality.judging.simulate import (
    Judges,
    RatingJudges,
    expected_ratings,
    expected_win_rates,
    simulate,
    simulate_ratings,
)

PLAN, SCORES, JUDGMENTS, ANALYSIS = "plan.json", "scores.parquet", "judgments.parquet", \
    "judgments.json"
SIMULATED = "simulated.json"
SYSTEMS = ("gold", "oof", HUMAN_SYSTEM, "baseline")
#: The half-width wanted when none is asked: on a win rate, and on a mean-rating difference.
TARGET_CI = {"pairwise": 0.05, "rating": 0.2}
METRICS = ("cider_d", "rouge_l", "content")


def plan_judging(run: str | os.PathLike | list, out: str | os.PathLike, *,
                 systems: tuple[str, ...] | None = None, design: str = "pairwise",
                 versus: list | None = None, layouts: str = "detector",
                 target_ci: float | None = None, mdd: float | None = None,
                 raters_per_item: int = 3, icc: float = ICC,
                 seconds_per_judgment: float = SECONDS_PER_JUDGMENT, seed: int = 0,
                 tracking_uri: str | None = None, log: bool = True) -> dict:
    """Plan a blind study of a run's captions (or of two runs' captions against each other).

    Parameters
    ----------
    run : path or list of paths
        A pipeline run folder (its test images and each system's captions); with `versus`,
        arm A: one run or its training replicates (runs that differ only in --seed).
    out : path
        The study folder.
    systems : tuple of str, optional
        Variants of the run (`gold`, `noise`, `oof`, `noise+oof`, `baseline`) and `human` (one
        human caption per image, held out of the references). Default: `SYSTEMS`; with
        `versus`, `gold`.
    design : {"pairwise", "rating"}
        Pairwise choices between two captions (left/right drawn per task), or 1-5 ratings
        of one caption against a rubric (every system's caption of each chosen image).
    versus : list of paths, optional
        Arm B's run folders: the study judges each variant of arm A (`A:gold`) against the
        same variant of arm B (`B:gold`) on the same test images, each task's captions taken
        from a drawn replicate of each arm (pairwise only). `quality compare A -- B
        --judgments STUDY` then decides by it.
    layouts : {"detector", "gold"}
        Judge the captions of the deployed detector's layouts (what users get) or of gold.
    target_ci : float, optional
        Half-width of the 95% interval wanted: on each pair's win rate (pairwise, default
        0.05, worst case 0.5) or on the difference of two systems' mean ratings (rating,
        default 0.2 points).
    mdd : float, optional
        Instead of `target_ci`: the difference to detect with 80% power at the 5% level (win
        rate from 0.5, or rating points; `design.half_width_for_mdd`).
    raters_per_item : int
        Judgments per task (different judges).
    icc : float
        Assumed correlation of judgments of one task (it inflates the tasks needed).
    seconds_per_judgment : float
        Assumed time per judgment, for the cost (a pull reports the measured one).
    seed : int
        Seed of the held-out human caption, the replicates and images drawn and the
        left/right order.
    tracking_uri : str, optional
        MLflow (default: $MLFLOW_TRACKING_URI, else the study folder's `mlflow.db`).
    log : bool
        Record the step as an MLflow run (the pipeline logs its own step run instead).

    Returns
    -------
    dict
        What `plan.json` holds: the design, the tasks needed and planned, the expected
        half-width, judgments and hours of judging, the tasks and the images.
    """
    if design not in DESIGNS:
        raise UserError(f"design must be one of {DESIGNS}, got {design!r}")
    if target_ci is None:
        target_ci = TARGET_CI[design]
    if mdd is not None:
        target_ci = half_width_for_mdd(mdd, design)
    arms = None
    if versus is not None:
        if design != "pairwise":
            raise UserError("a study of two runs is pairwise (people choose between arm A's "
                            "and arm B's caption of the same image)")
        arms = {"A": [Path(r) for r in _runs(run)], "B": [Path(r) for r in _runs(versus)]}
        variants = list(systems or ("gold",))
        captions, references, split = arm_captions(arms, variants, layouts, seed)
        systems = tuple(f"{arm}:{v}" for v in variants for arm in ARMS)
        pairs = [(f"A:{v}", f"B:{v}") for v in variants]
    else:
        systems = tuple(systems or SYSTEMS)
        captions, references, split = system_captions(run, list(systems), layouts, seed)
        pairs = None
    if captions.empty:
        raise UserError(f"{run}: no test image has a caption from every system {systems}")
    images = captions.image_id.nunique()
    plan = {"run": str(Path(_runs(run)[0]).resolve()), "systems": list(systems),
            "design": design, "test_images": images}
    if design == "pairwise":
        needed = tasks_needed(target_ci, raters_per_item, icc)
        per_pair = min(needed, images)
        tasks = draw_tasks(captions, list(systems), per_pair, seed, pairs)
        plan.update({"pairs": len(pairs) if pairs else len(systems) * (len(systems) - 1) // 2,
                     "tasks_per_pair_needed": needed, "tasks_per_pair": per_pair,
                     "half_width_expected": half_width(per_pair, raters_per_item, icc),
                     "target_met": per_pair >= needed})
        shortfall = f"{needed} tasks per pair are needed"
    else:
        needed = rating_images_needed(target_ci, raters_per_item, icc)
        chosen = min(needed, images)
        tasks = draw_rating_tasks(captions, list(systems), chosen, seed)
        plan.update({"images_needed": needed, "images_planned": chosen,
                     "half_width_expected": rating_half_width(chosen, raters_per_item, icc),
                     "target_met": chosen >= needed, "rubric": list(RUBRIC),
                     "rating_sd_assumed": RATING_SD})
        shortfall = f"{needed} images are needed"
    if arms:
        plan["arms"] = {arm: [str(r.resolve()) for r in runs] for arm, runs in arms.items()}
    scores = _scores(captions, references, split)
    write_parquet(Path(out) / SCORES, scores)
    judgments = len(tasks) * raters_per_item
    paths = split.images.set_index("image_id").path
    plan.update({
        "tasks": records(tasks), "judgments": judgments,
        "judging_hours": judgments * seconds_per_judgment / 3600,
        "images": {str(i): str(paths[i]) for i in tasks.image_id.unique()},
        "settings": {"design": design, "layouts": layouts, "target_ci": target_ci, "mdd": mdd,
                     "raters_per_item": raters_per_item, "icc": icc,
                     "seconds_per_judgment": seconds_per_judgment, "seed": seed,
                     "versus": None if versus is None else [str(r) for r in _runs(versus)]}})
    if not plan["target_met"]:
        plan["note"] = (f"{shortfall} for +-{target_ci}; the test set has {images} images, "
                        f"which give +-{plan['half_width_expected']:.3f}")
    return _record(out, PLAN, plan, tracking_uri, log)


def _runs(run) -> list:
    return [run] if isinstance(run, str | os.PathLike) else list(run)


def _scores(captions: pd.DataFrame, references: pd.Series, split) -> pd.DataFrame:
    """Each system's caption of each image scored against the references left (every system
    against the same ones, so a held-out human caption is scored like a model's)."""
    gold = gold_boxes(split)
    frames = [per_image(group, references, gold, split.labels).drop(columns="caption")
              .reset_index().assign(system=name)
              for name, group in captions.groupby("system", sort=False)]
    scores = pd.concat(frames, ignore_index=True)
    return scores[["image_id", "system", *[m for m in METRICS if m in scores]]]


def _record(study, name: str, record: dict, tracking_uri: str | None, log: bool,
            figures: dict[str, float] | None = None) -> dict:
    """`name` in the study folder, and (with `log`) its MLflow run with `figures` as metrics."""
    if log:
        return record_step(study, Path(name).stem, record, tracking_uri, figures)
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


def simulate_judging(study: str | os.PathLike, judges: Judges | RatingJudges | None = None,
                     seed: int = 0, tracking_uri: str | None = None, log: bool = True) -> dict:
    """Judgments of the plan's tasks by simulated judges (`simulate.py`: `Judges` for a
    pairwise study, `RatingJudges` for a rating study), written as a pull would write them,
    with the simulation's truth (each pair's expected win rate; or each system's expected
    mean rating and each pair's expected difference)."""
    plan = read_plan(study)
    rating = plan.get("design") == "rating"
    judges = judges or (RatingJudges() if rating else Judges())
    if isinstance(judges, RatingJudges) != rating:
        raise UserError(f"{study}: a {plan.get('design', 'pairwise')} study needs "
                        f"{'RatingJudges' if rating else 'Judges'}, got {type(judges).__name__}")
    tasks = pd.DataFrame(plan["tasks"])
    scores = pd.read_parquet(Path(study) / SCORES)
    quality = scores.set_index(["image_id", "system"]).content
    if rating:
        judgments = simulate_ratings(tasks, quality, judges, seed)
        truth = _rating_truth(tasks, expected_ratings(tasks, quality, judges))
        settings = {"judges": judges.judges, "raters_per_item": judges.raters_per_item,
                    "noise": judges.noise, "leniency": str(judges.leniency),
                    "lapse": str(judges.lapse)}
    else:
        judgments = simulate(tasks, quality, judges, seed)
        truth = [{"a": a, "b": b, "win_rate": float(v)}
                 for (a, b), v in expected_win_rates(tasks, quality, judges).items()]
        settings = {"judges": judges.judges, "raters_per_item": judges.raters_per_item,
                    "temperature": judges.temperature, "left_bias": judges.left_bias,
                    "lapse": str(judges.lapse), "tie_band": judges.tie_band}
    write_parquet(Path(study) / JUDGMENTS, judgments)
    return _record(study, SIMULATED, {
        "judgments": len(judgments), "truth": truth,
        "settings": {**settings, "seed": seed,
                     "quality": "content F1 against the gold objects"}}, tracking_uri, log)


def _rating_truth(tasks: pd.DataFrame, expected: pd.Series) -> dict:
    """Each system's expected mean rating and each pair's expected difference (a - b, name
    order, per image then averaged over the images both were rated on), over the tasks."""
    per_image = pd.Series(expected.to_numpy()).groupby(
        [tasks.image_id.to_numpy(), tasks.system.to_numpy()]).mean().unstack()
    means = [{"system": str(k), "mean": float(v)} for k, v in
             pd.Series(expected.to_numpy()).groupby(tasks.system.to_numpy()).mean().items()]
    names = sorted(per_image.columns)
    differences = [{"a": a, "b": b, "difference": float((per_image[a] - per_image[b]).mean())}
                   for i, a in enumerate(names) for b in names[i + 1:]]
    return {"means": means, "differences": differences}


def judgments_job(study: str | os.PathLike, n_boot: int = 1000, seed: int = 0,
                  tracking_uri: str | None = None, log: bool = True) -> dict:
    """Analyse a study's judgments (`quality judgments`): `judgments.json` and its MLflow run.

    Returns
    -------
    dict
        Pairwise: `win_rates` per pair (ties half, with their count), `bradley_terry` per
        system, `position_bias`, `judges` (nominal alpha among them, per judge), `metrics`
        (Kendall tau-b and tau-c of each automatic metric against the judges per task, and
        system-level agreement). Rating: `means` per system, `differences` per pair,
        `judges` (ordinal alpha, per judge with leniency), `metrics` (tau-b and tau-c per
        caption, system-level agreement). Both: `verdict` (one sentence per pair),
        `warnings` for small samples; every interval resamples images.
    """
    plan = read_plan(study)
    path = Path(study) / JUDGMENTS
    if not path.exists():
        raise UserError(f"{study}: no {JUDGMENTS} (pull the study: quality judge-pull)")
    rating = plan.get("design") == "rating"
    table = pd.read_parquet(path)
    judgments = (ratings.check_ratings(table, str(path)) if rating else
                 analysis.check_judgments(table, str(path)))
    if judgments.empty:
        raise UserError(f"{path}: no judgments yet")
    scores = pd.read_parquet(Path(study) / SCORES)
    images = judgments.image_id.nunique()
    result = {
        "design": "rating" if rating else "pairwise",
        "judgments": len(judgments), "images": images, "tasks": int(judgments.task.nunique()),
        "judges_count": int(judgments.judge.nunique())}
    if rating:
        differences = ratings.rating_differences(judgments, n_boot, seed)
        result.update({
            "means": records(ratings.rating_means(judgments, n_boot, seed)),
            "differences": records(differences),
            "judges": ratings.rating_agreement(judgments, n_boot, seed),
            "metrics": ratings.rating_metric_agreement(judgments, scores, n_boot, seed),
            "verdict": ratings.rating_verdict_lines(differences)})
        small = [(f"{d['a']} vs {d['b']}", d["images"]) for d in result["differences"]]
    else:
        rates = analysis.win_rates(judgments, n_boot, seed)
        result.update({
            "ties": int((judgments.choice == analysis.TIE).sum()),
            "win_rates": records(rates),
            "bradley_terry": records(analysis.bradley_terry(judgments, min(n_boot, 200), seed)),
            "position_bias": analysis.position_bias(judgments, n_boot, seed),
            "judges": analysis.judge_agreement(judgments, n_boot, seed),
            "metrics": analysis.metric_agreement(judgments, scores, n_boot, seed),
            "verdict": analysis.verdict_lines(rates)})
        small = [(f"{r['a']} vs {r['b']}", r["images"]) for r in result["win_rates"]]
    result["resampled"] = {"unit": "image", "count": images, "n_boot": n_boot}
    result["settings"] = {"n_boot": n_boot, "seed": seed, "systems": ",".join(plan["systems"])}
    result["warnings"] = [f"{pair}: {n} images (< 30): read the interval"
                          for pair, n in small if n < 30]
    truth = Path(study) / SIMULATED  # simulated judges: the truth beside the estimates
    if truth.exists():
        result["simulated"] = json.loads(truth.read_text())
        result["verdict"] = [f"(simulated judges) {line}" for line in result["verdict"]]
    return _record(study, ANALYSIS, result, tracking_uri, log, judgment_figures(result))


def judgment_figures(result: dict) -> dict[str, float]:
    """Every figure of an analysis under a flat MLflow metric name (`win_rate/gold over oof`,
    `win_rate/gold over oof/ci_low`, `bradley_terry/gold`, `judges/alpha`, ...)."""
    out: dict[str, float] = {}

    def put(name: str, entry: dict, keys: tuple[str, ...]) -> None:
        for key in keys:
            value = entry.get(key)
            if isinstance(value, list):  # [low, high]
                out[f"{name}/{key}_low"], out[f"{name}/{key}_high"] = value
            elif value is not None:
                out[f"{name}/{key}" if key != keys[0] else name] = value

    interval = ("ci_low", "ci_high")
    for r in result.get("win_rates", []):
        put(f"win_rate/{r['a']} over {r['b']}", r, ("win_rate", *interval))
    for r in result.get("bradley_terry", []):
        put(f"bradley_terry/{r['system']}", r, ("score", *interval))
    for r in result.get("means", []):
        put(f"mean_rating/{r['system']}", r, ("mean", *interval))
    for r in result.get("differences", []):
        put(f"rating_difference/{r['a']} minus {r['b']}", r, ("difference", *interval))
    if "position_bias" in result:
        put("position_bias/left_share", result["position_bias"], ("left_share", *interval))
    put("judges/alpha", result["judges"], ("alpha", *interval))
    for name, m in result["metrics"]["metrics"].items():
        put(f"metric/{name}/tau_b", m, ("tau_b", "tau_b_ci"))
        put(f"metric/{name}/tau_c", m, ("tau_c", "tau_c_ci"))
        put(f"metric/{name}/system_agreement", m, ("system_agreement",
                                                   "system_agreement_ci"))
    return {metric_name(k): float(v) for k, v in out.items()}
