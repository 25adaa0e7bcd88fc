"""Two runs side by side, honestly: paired differences on their common test images with
bootstrap intervals and a verdict per figure, refused when the test data differ.

A run folder (what `evaluate-pipeline` writes, see `workspace`) carries its split tables, its
stage-2 captions, its stage-1 error table and `run.json` (settings and versions). The test data
version is a content hash of the test split's rows (`annotate.tables.versions.split_versions`),
so two runs that evaluated on different images, or on the same images with different labels,
are never compared by accident.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from annotate.metrics.captions import bleu_from_stats, bleu_stats
from annotate.runtime.atomic import write_json, write_text
from annotate.runtime.capture import captured
from annotate.runtime.errors import MissingFileError, UserError
from annotate.runtime.records import metric_name
from annotate.runtime.tracking import tracking
from annotate.runtime.tracking import tracking_uri as resolve_uri
from annotate.stats.bootstrap import draws
from annotate.stats.replicates import (
    MIN_REPLICATES,
    UNKNOWN_TRAINING,
    compare_mean_scores,
    compare_replicates,
    minimum_detectable_difference,
    plan,
    replicate_verdict,
    rerun_agreement,
)
from annotate.tables import store
from annotate.tables.versions import split_versions
from annotate.tables.views import gold_boxes
from quality import workspace
from quality.cascade.replicates import REPLICATES_FILE
from quality.cascade.scoring import ITEM_METRICS, detector_counts, per_image, references
from quality.judging.analysis import arm_win_rates, check_judgments
from quality.judging.jobs import JUDGMENTS, SIMULATED, read_plan
from quality.splits.adequacy import paired_mdd

#: The metric and figure whose verdict names the comparison (tagged in MLflow).
PRIMARY = ("stage2", "gold", "predicted", "cider_d")
#: Settings in which the replicates of one arm may differ without changing what was trained:
#: the seed (what replicates vary) and how many replicates the run trained. A replicate
#: folder of `evaluate-pipeline --replicates` also names its parent's imported tables as its
#: data; the data path is ignored as well when the split versions (the content) agree.
REPLICATE_BOOKKEEPING = frozenset({"seed", "replicates"})


class DataMismatch(UserError):
    """The two runs were evaluated on different test data."""


def run_record(run: str | os.PathLike) -> dict:
    """A run's settings and versions: `run.json` when the pipeline wrote it, and always the
    split versions computed from the run's own split tables."""
    run = Path(run)
    if not workspace.exists(run, "split"):
        raise MissingFileError(f"{run}: no split tables ({workspace.path(run, 'split')}); is this "
                               "a run folder written by evaluate-pipeline?")
    record = {}
    if workspace.path(run, "run").exists():
        record = json.loads(workspace.path(run, "run").read_text())
    ts = store.load(workspace.path(run, "split"), validate=False)
    record["split_versions"] = split_versions(ts)
    return record


def settings_diff(a: dict, b: dict) -> dict[str, list]:
    """Every setting whose value differs (flattened keys), as {key: [a, b]}."""
    flat_a, flat_b = _flatten(a), _flatten(b)
    return {key: [flat_a.get(key), flat_b.get(key)] for key in sorted(set(flat_a) | set(flat_b))
            if flat_a.get(key) != flat_b.get(key)}


def _flatten(settings: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def compare_runs(run_a: str | os.PathLike | list, run_b: str | os.PathLike | list, *,
                 force: bool = False, n_boot: int = 1000, seed: int = 0,
                 images_only: bool = False, judgments: str | os.PathLike | None = None) -> dict:
    """Two arms of runs on their common test images, B - A.

    Parameters
    ----------
    run_a, run_b : path or list of paths
        Each arm: one run folder, or several that differ only in `--seed` (its training
        replicates; same data, same split).
    force : bool
        Compare even when the arms' test data versions differ (on the common images).
    n_boot : int
        Bootstrap resamples of the test images (paired across arms).
    seed : int
        Seed of the resampling.
    images_only : bool
        With one run in an arm, still give verdicts from the test images alone (labelled so);
        by default such a comparison says it cannot tell, since a trained model is one draw.
    judgments : path, optional
        A judgment study of these two arms (`quality plan-judging A1 A2 -- B1 B2`, judged
        and analysed): people's preference of B's captions over A's becomes the deciding
        figure, its interval over test images and training replicates.

    Returns
    -------
    dict
        Per stage-2 variant, input and metric, and for the detector's recall and precision:
        each arm's mean over its replicates and their spread, B - A with an interval over
        test images and training replicates (`annotate.stats.replicates`), the variance split
        (training vs test set), the MDD and a verdict; the settings that differ; notes; with
        `judgments`, `people` (per variant, B's win rate over A) and the verdict from it.

    Raises
    ------
    DataMismatch
        When the test data differ and `force` is not set.
    """
    arms = {"a": _arm(run_a), "b": _arm(run_b)}
    records = {side: [run_record(r) for r in runs] for side, runs in arms.items()}
    notes = []
    for side, runs in arms.items():
        tests = {r["split_versions"].get("test") for r in records[side]}
        if len(tests) > 1:
            raise DataMismatch(f"the replicates of arm {side.upper()} ({', '.join(map(str, runs))})"
                               " were evaluated on different test data: replicates of an arm "
                               "must differ only in --seed")
        same_data = all(r["split_versions"] == records[side][0]["split_versions"]
                        for r in records[side][1:])
        varied = {key for other in records[side][1:] for key in settings_diff(
            records[side][0].get("settings", {}), other.get("settings", {}))} - (
            REPLICATE_BOOKKEEPING | ({"data"} if same_data else set()))
        if varied:
            notes.append(f"the replicates of arm {side.upper()} differ in more than the seed: "
                         f"{sorted(varied)}")
    first_a, first_b = records["a"][0], records["b"][0]
    test_a, test_b = (r["split_versions"].get("test") for r in (first_a, first_b))
    if test_a != test_b:
        difference = _test_difference(arms["a"][0], arms["b"][0])
        message = (f"the runs were evaluated on different test data: {arms['a'][0]} test data "
                   f"version {test_a}, {arms['b'][0]} test data version {test_b} "
                   f"({difference})")
        if not force:
            raise DataMismatch(message + "; compare runs on the same test data, or pass --force")
        notes.append("FORCED: " + message + "; figures use the common test images only")
    if first_a["split_versions"].get("train") != first_b["split_versions"].get("train"):
        notes.append("different training data: a difference may come from the data, not the "
                     f"method (train data versions {first_a['split_versions'].get('train')} vs "
                     f"{first_b['split_versions'].get('train')})")
    replicates = {side: len(runs) for side, runs in arms.items()}
    if min(replicates.values()) < 2:
        notes.append("training variance not measured: an arm has one trained model; "
                     + ("verdicts use the test images only (--images-only)" if images_only else
                        "no verdict claims a difference; train each arm with other --seed "
                        "values and compare A1 A2 A3 -- B1 B2 B3 (or pass --images-only)"))
    measured = min(replicates.values()) >= 2
    out = {"runs": {side: [_describe(r, rec) for r, rec in zip(arms[side], records[side],
                                                                  strict=True)]
                    for side in arms}, "notes": notes, "replicates": replicates,
           "settings_diff": settings_diff(first_a.get("settings", {}),
                                          first_b.get("settings", {})),
           "difference": "B - A",
           "resampled": {"unit": "image x training replicate" if measured else "image",
                         "paired": True, "n_boot": n_boot, "training_variance":
                         "measured" if measured else "not measured"},
           "rule": ("verdict when the 95% interval over test images and training replicates "
                    "excludes 0 (annotate.stats.replicates); MDD: two-sided 5%, 80% power"),
           "stage2": _stage2(arms["a"], arms["b"], n_boot, seed, images_only),
           "stage1": _stage1(arms["a"], arms["b"], n_boot, seed, images_only)}
    out["verdict"] = _primary(out)
    if judgments is not None:
        out["people"] = _people(judgments, arms, n_boot, seed, images_only)
        out["verdict"] = _people_verdict(out["people"], out["verdict"])
    return out


def _people(study: str | os.PathLike, arms: dict[str, list[Path]], n_boot: int, seed: int,
            images_only: bool) -> dict:
    """People's preference of arm B's captions over arm A's, from a judgment study planned on
    exactly these arms: per variant B's win rate (ties half) with an interval over
    test images and each arm's training replicates, and a verdict by the same rule as the
    automatic figures (the interval excludes 0.5; one model per arm: cannot tell unless
    `images_only`; fewer than `MIN_REPLICATES` per arm: cannot tell)."""
    plan = read_plan(study)
    planned = {side.lower(): [str(Path(r).resolve()) for r in runs]
               for side, runs in (plan.get("arms") or {}).items()}
    given = {side: [str(r.resolve()) for r in runs] for side, runs in arms.items()}
    if not planned:
        raise UserError(f"{study}: a study of one run's systems, not of two arms; plan one with "
                        "`quality plan-judging A1 A2 ... -- B1 B2 ... --out STUDY`")
    if {k: sorted(v) for k, v in planned.items()} != {k: sorted(v) for k, v in given.items()}:
        raise UserError(f"{study}: judged the arms {planned}, not the arms compared {given}")
    path = Path(study) / JUDGMENTS
    if not path.exists():
        raise UserError(f"{study}: no {JUDGMENTS} (pull the study first: quality judge-pull)")
    table = check_judgments(pd.read_parquet(path), str(path))
    k_a, k_b = len(arms["a"]), len(arms["b"])
    rates = arm_win_rates(table, pd.DataFrame(plan["tasks"]), {"A": k_a, "B": k_b}, n_boot,
                          seed)
    figures = {r.pop("variant"): {**r, "verdict": replicate_verdict(
        r["ci_low"], r["ci_high"], k_a, k_b, images_only, centre=0.5),
        "rerun_same_call": rerun_agreement(r["win_rate"], r["ci_low"], r["ci_high"], r["df"],
                                           centre=0.5, replicates=(k_a, k_b))}
        for r in rates.to_dict("records")}
    simulated = (Path(study) / SIMULATED).exists()
    return {"study": str(Path(study).resolve()), "figures": figures,
            "layouts": plan.get("settings", {}).get("layouts"), "simulated": simulated,
            "rule": "B's win rate over A (ties half); verdict when its 95% interval excludes "
                    "0.5"}


def _people_verdict(people: dict, automatic: dict) -> dict:
    """The deciding figure is people's, for the primary variant when they judged it (else the
    first they judged); the automatic verdict stays beside it."""
    figures = people["figures"]
    if not figures:
        return automatic
    variant = PRIMARY[1] if PRIMARY[1] in figures else next(iter(figures))
    f = figures[variant]
    who = "simulated judges" if people["simulated"] else "people"
    line = (f"{f['verdict']} ({who}): B's {variant} caption preferred over A's in "
            f"{f['win_rate']:.3f} [{f['ci_low']:.3f}, {f['ci_high']:.3f}] of {f['judgments']} "
            f"judgments on {f['images']} images ({people['layouts']} layouts; intervals "
            f"resample {f['resampled']}s)")
    line += _rerun_clause(f)
    if automatic.get("line"):
        line += f"; automatic: {automatic['line']}"
    return {"figure": f"people.{variant}.win_rate", "verdict": f["verdict"], "line": line,
            "by": who, "automatic": automatic}


def _arm(runs: str | os.PathLike | list) -> list[Path]:
    runs = [runs] if isinstance(runs, str | os.PathLike) else list(runs)
    if not runs:
        raise UserError("an arm of the comparison has no run")
    return [Path(r) for r in runs]


def _describe(run, record: dict) -> dict:
    return {"path": str(Path(run).resolve()), "split_versions": record["split_versions"],
            "data_version": record.get("data_version"),
            "source_version": record.get("source_version"),
            "seed": record.get("settings", {}).get("seed"),
            "mlflow_run": record.get("mlflow_run")}


def _test_difference(run_a, run_b) -> str:
    """What differs between two test splits, in counts a person can check."""
    sets = [store.load(workspace.path(r, "split"), validate=False) for r in (run_a, run_b)]
    tests = [set(ts.images.image_id[ts.images.split == "test"]) for ts in sets]
    common = tests[0] & tests[1]
    changed = 0
    for table in ("annotations", "boxes", "captions"):
        rows = [ts.table(table)[ts.table(table).image_id.isin(common)] for ts in sets]
        hashes = [pd.util.hash_pandas_object(r[sorted(r.columns)], index=False).groupby(
            r.image_id.to_numpy()).sum() for r in rows]
        joined = pd.concat(hashes, axis=1).fillna(0)
        changed += int((joined.iloc[:, 0] != joined.iloc[:, 1]).sum()) if len(joined) else 0
    return (f"{len(tests[0] - tests[1])} test images only in A, {len(tests[1] - tests[0])} only "
            f"in B, {len(common)} in both, of which {changed} with different "
            "annotations, boxes or captions (counted per table)")


def _stage2(runs_a: list[Path], runs_b: list[Path], n_boot: int, seed: int,
            images_only: bool) -> dict:
    """Per variant every run has, per input (gold/predicted) and metric: B - A over the
    test images every run captioned and the training replicates."""
    ts = store.load(workspace.path(runs_a[0], "split"), validate=False)
    gold = gold_boxes(ts)
    runs = [*runs_a, *runs_b]
    variants = [{p.name: p for p in workspace.variants(r)} for r in runs]
    out: dict = {}
    for name in [n for n in variants[0] if all(n in v for v in variants)]:
        out[name] = {}
        for given, file in (("gold", workspace.CAPTIONS_GOLD),
                            ("predicted", workspace.CAPTIONS_PREDICTED)):
            captions = [pd.read_parquet(v[name] / file) for v in variants]
            common = sorted(set.intersection(*[set(c.image_id) for c in captions]))
            refs = references(ts, common)
            scores = [per_image(c, refs, gold, ts.labels) for c in captions]
            images = scores[0].index
            for s in scores[1:]:
                images = images.intersection(s.index)
            scores = [s.loc[images] for s in scores]
            arm_a, arm_b = scores[:len(runs_a)], scores[len(runs_a):]
            figures = {"images": len(images)}
            for metric in [m for m in ITEM_METRICS if m in scores[0]]:
                a = np.stack([s[metric].to_numpy(np.float64) for s in arm_a])
                b = np.stack([s[metric].to_numpy(np.float64) for s in arm_b])
                result = compare_mean_scores(a, b, n_boot=n_boot, seed=seed,
                                             images_only=images_only)
                figures[metric] = {**result.to_dict(), "mdd": _mdd(a, b, result.image_sd)}
            if len(images):
                ref_lists = refs.loc[images].tolist()
                stats = [bleu_stats(s.caption.tolist(), ref_lists) for s in scores]
                figures["bleu_4"] = _corpus_difference(
                    stats[:len(runs_a)], stats[len(runs_a):],
                    lambda rows: float(bleu_from_stats(rows.sum(axis=0))[-1]), n_boot, seed,
                    images_only)
            out[name][given] = figures
    return out


def _mdd(a: np.ndarray, b: np.ndarray, image_sd: float | None) -> float | None:
    """The difference these arms can resolve: with replicates in both, from the measured
    training spread and the per-image spread; with one model per arm, the images-only paired
    MDD."""
    per_image = b.mean(axis=0) - a.mean(axis=0)
    if min(len(a), len(b)) < 2:
        return paired_mdd(per_image)
    spread = np.sqrt((a.mean(axis=1).var(ddof=1) + b.mean(axis=1).var(ddof=1)) / 2)
    return minimum_detectable_difference(float(spread), image_sd, min(len(a), len(b)),
                                         len(per_image))


def _corpus_difference(rows_a: list[np.ndarray], rows_b: list[np.ndarray], figure,
                       n_boot: int, seed: int, images_only: bool) -> dict:
    """B - A of a figure computed over the images (a corpus BLEU, a recall: `figure` of each
    run's per-image rows), over test images and training replicates."""
    picked = draws(len(rows_a[0]), n_boot, seed)

    def mean_over(runs: list[np.ndarray], images) -> float:
        return float(np.mean([figure(rows[images]) for rows in runs]))

    boot = np.array([mean_over(rows_b, d) - mean_over(rows_a, d) for d in picked])
    every = np.arange(len(rows_a[0]))
    result = compare_replicates([figure(r[every]) for r in rows_a],
                                [figure(r[every]) for r in rows_b], boot,
                                images=len(every), images_only=images_only)
    return {**result.to_dict(), "mdd": None}


def _stage1(runs_a: list[Path], runs_b: list[Path], n_boot: int, seed: int,
            images_only: bool) -> dict:
    """The detector's recall and precision on the common test images (from each run's error
    table), B - A over images and replicates; mAP from `evaluate.json` without an interval
    (it has no per-image decomposition)."""
    runs = [*runs_a, *runs_b]
    if not all(workspace.exists(r, "errors") for r in runs):
        return {}
    counts = [detector_counts(pd.read_parquet(workspace.path(r, "errors"))) for r in runs]
    images = counts[0].index
    for c in counts[1:]:
        images = images.intersection(c.index)
    counts = [c.loc[images].to_numpy(np.float64) for c in counts]
    out: dict = {"images": len(images)}
    for name, (numerator, denominator) in {"recall": (0, 1), "precision": (0, 2)}.items():
        def ratio(rows: np.ndarray, num=numerator, den=denominator) -> float:
            total = rows[:, den].sum()
            return float(rows[:, num].sum() / total) if total else math.nan

        out[name] = _corpus_difference(counts[:len(runs_a)], counts[len(runs_a):], ratio,
                                       n_boot, seed, images_only)
    hand_overs = {side: [_hand_over(r) for r in runs] for side, runs in (("a", runs_a),
                                                                       ("b", runs_b))}
    out["hand_over"] = hand_overs
    if sorted(map(str, hand_overs["a"])) != sorted(map(str, hand_overs["b"])):
        out["hand_over_note"] = (
            "recall and precision are read at each run's own hand-over (threshold and "
            "suppression chosen on validation by its stage-2 model's score), and the arms' "
            "hand-overs differ, so these figures can differ even where the detectors are the "
            "same models")
    evaluated = [workspace.path(r, "evaluate") for r in (runs_a[0], runs_b[0])]
    if all(p.exists() for p in evaluated):
        maps = [json.loads(p.read_text()).get("map", {}) for p in evaluated]
        out["map50_95"] = {"a": maps[0].get("map50_95"), "b": maps[1].get("map50_95"),
                           "note": "no per-image decomposition: shown, not tested"}
    return out


def _hand_over(run: Path) -> dict | None:
    """The run's hand-over to stage 2 (`threshold.json`): threshold and suppression IoU."""
    path = workspace.path(run, "threshold")
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    return {"threshold": record.get("chosen"), "suppress_iou": record.get("suppress_iou")}


def _primary(result: dict) -> dict:
    """The verdict of the primary figure (CIDEr-D of the gold-trained variant from predicted
    layouts: what the deployed cascade scores), or of the first stage-2 figure there is."""
    stage, variant, given, metric = PRIMARY
    table = result[stage]
    if variant not in table:
        variant = next(iter(table), None)
    if variant is None:
        return {"figure": None, "verdict": "cannot tell (no stage-2 figures in common)"}
    figure = table[variant][given][metric]
    line = (f"{figure['verdict']}: {metric} ({variant}, {given} input) A {figure['a']:.3f}, "
            f"B {figure['b']:.3f}, B - A {figure['difference']:+.3f} "
            f"[{figure['ci_low']:.3f}, {figure['ci_high']:.3f}]")
    if figure["verdict"] == UNKNOWN_TRAINING:
        line += ("; measure it: rerun each arm with --seed 1 and 2, then quality compare "
                 "A A1 A2 -- B B1 B2 (or --images-only for the test-images-only comparison)")
    elif figure["verdict"].startswith("cannot tell") and "replicates per arm" in figure[
            "verdict"]:
        line += (f"; train each arm to {MIN_REPLICATES} replicates (another --seed) and "
                 "compare again")
    elif figure["verdict"].startswith("cannot tell") and figure.get("mdd") is not None:
        line += f"; differences under {figure['mdd']:.3f} cannot be detected here (MDD)"
    line += _rerun_clause(figure)
    return {"figure": f"{stage}.{variant}.{given}.{metric}", "verdict": figure["verdict"],
            "line": line}


def _rerun_clause(figure: dict) -> str:
    """The end of a verdict line: how likely a rerun makes the figure's call again (nothing
    when no claim can be made)."""
    if figure.get("rerun_same_call") is None:
        return ""
    return (f"; a rerun with other seeds would make this call again with probability "
            f"{figure['rerun_same_call']:.2f}, if the true difference is the one measured")


def plan_replicates(source: str | os.PathLike, target: float, *,
                    figure: str | None = None, max_replicates: int = 20) -> dict:
    """How many training replicates per arm a difference of `target` needs.

    Parameters
    ----------
    source : path
        What measured the training spread and the per-image spread: a comparison with
        replicates in both arms (`compare.json` of `quality compare A1 A2 ... -- B1 B2 ...`),
        or a pipeline run with replicates (its folder or its `replicates.json`).
    target : float
        The smallest difference worth finding, in the figure's units.
    figure : str, optional
        The figure's dotted path in the file (`stage2.gold.predicted.cider_d`,
        `gap.deployed detector.oof.predicted_change`); default: the comparison's verdict
        figure, or for a run the robust variant its verdict names, against the gold-trained
        model on the detector's output.
    max_replicates : int
        The most replicates considered.

    Returns
    -------
    dict
        The figure, the spreads used and `annotate.stats.replicates.plan`'s answer.
    """
    path = Path(source)
    if path.is_dir():
        path = path / REPLICATES_FILE
    try:
        result = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{source}: no compare.json or replicates.json there: run "
                        "`quality compare A1 A2 -- B1 B2` or `evaluate-pipeline --replicates "
                        "K` first") from None
    figure = figure or _planned_figure(result, path)
    node = result
    try:
        for key in figure.split("."):
            node = node[key]
    except (KeyError, TypeError):
        raise UserError(f"{path}: no figure {figure!r}") from None
    spreads = [(node.get("spread") or {}).get(k) for k in ("a_sd", "b_sd")]
    if None in spreads or node.get("image_sd") is None:
        raise UserError(f"{path}: {figure} has no measured training spread: compare arms with "
                        "replicates (A1 A2 ... -- B1 B2 ...), or run the pipeline with "
                        "--replicates K, first")
    training_sd = float(np.sqrt((spreads[0] ** 2 + spreads[1] ** 2) / 2))
    return {"figure": figure, "training_sd": training_sd, "image_sd": node["image_sd"],
            "plan": plan(training_sd, node["image_sd"], target,
                         images=node["resampled"]["count"], max_replicates=max_replicates)}


def _planned_figure(result: dict, path: Path) -> str:
    """The default figure to plan with: a comparison's verdict figure; in a run's
    replicates.json the best robust variant against the gold-trained model, on the deployed
    detector's output (the comparison its verdict states)."""
    if isinstance(result.get("verdict"), dict):
        return result["verdict"]["figure"]
    gap = result.get("gap", {}).get(workspace.DEPLOYED_DETECTOR, {})
    robust = {v: e for v, e in gap.items() if "predicted_change" in e and "reduction" in e}
    if not robust:
        raise UserError(f"{path}: no robust variant to plan with: name one with --figure")
    best = max(robust, key=lambda v: robust[v]["predicted"])
    return f"gap.{workspace.DEPLOYED_DETECTOR}.{best}.predicted_change"


def compare_job(run_a: str | os.PathLike | list, run_b: str | os.PathLike | list, *,
                json_path: str | os.PathLike | None = None,
                page_dir: str | os.PathLike | None = None, force: bool = False,
                n_boot: int = 1000, seed: int = 0, images_only: bool = False,
                judgments: str | os.PathLike | None = None,
                tracking_uri: str | None = None) -> dict:
    """The comparison job: two arms of runs paired on their common test images.

    Parameters
    ----------
    run_a, run_b : path or list of paths
        Run folders (`evaluate-pipeline --out`), or lists of them: each arm's training
        replicates (runs that differ only in --seed). B - A is reported.
    json_path : path, optional
        Where `compare.json` is written.
    page_dir : path, optional
        Folder for `compare.html`.
    force : bool
        Compare even when the test data versions differ (on the common images, noted first).
    n_boot : int
        Bootstrap resamples (test images, paired).
    seed : int
        Seed of the resampling.
    images_only : bool
        With one run in an arm, give verdicts from the test images alone (labelled so).
    judgments : path, optional
        A judgment study of the two arms: people's preference decides (`compare_runs`).
    tracking_uri : str, optional
        MLflow store for the comparison's run (default: $MLFLOW_TRACKING_URI, else run B's).

    Returns
    -------
    dict
        `compare_runs`' figures, the overall verdict and the MLflow run.

    Raises
    ------
    DataMismatch
        When the runs' test data differ and `force` is not set.
    """
    from quality.report.compare_page import render

    result = compare_runs(run_a, run_b, force=force, n_boot=n_boot, seed=seed,
                          images_only=images_only, judgments=judgments)
    if json_path is not None:
        write_json(json_path, result)
    if page_dir is not None:
        write_text(Path(page_dir) / "compare.html", render(result))
    uri = resolve_uri(tracking_uri) or run_record(_arm(run_b)[0]).get("tracking_uri")
    if uri:
        result["mlflow"] = _record_comparison(result, uri, json_path, page_dir)
        if json_path is not None:
            write_json(json_path, result)
    return result


def _record_comparison(result: dict, uri: str, json_path, page_dir) -> dict:
    """An MLflow run for the comparison: tags name both runs (folders, MLflow run ids, data
    versions) and the verdict; metrics are the differences (B - A)."""
    runs = result["runs"]
    tags = {"run_a": ",".join(r["path"] for r in runs["a"]),
            "run_b": ",".join(r["path"] for r in runs["b"]),
            "mlflow_run_a": ",".join(str(r.get("mlflow_run")) for r in runs["a"]),
            "mlflow_run_b": ",".join(str(r.get("mlflow_run")) for r in runs["b"]),
            "replicates_a": str(len(runs["a"])), "replicates_b": str(len(runs["b"])),
            "test_data_version": str(runs["a"][0]["split_versions"].get("test")),
            "verdict": result["verdict"]["verdict"],
            "forced": str(any(n.startswith("FORCED") for n in result["notes"]))}
    metrics = {f"{variant}.{given}.{metric}.difference": f["difference"]
               for variant, inputs in result["stage2"].items()
               for given, figures in inputs.items()
               for metric, f in figures.items() if isinstance(f, dict)}
    for variant, f in (result.get("people") or {}).get("figures", {}).items():
        metrics.update({f"people.{variant}.win_rate_b": f["win_rate"],
                        f"people.{variant}.ci_low": f["ci_low"],
                        f"people.{variant}.ci_high": f["ci_high"]})
        tags["judgment_study"] = result["people"]["study"]
    log = (Path(page_dir) / "mlflow.log" if page_dir is not None else
           Path(json_path).with_suffix(".mlflow.log") if json_path is not None else os.devnull)
    with captured(log), tracking(uri) as mlflow:
        mlflow.set_experiment("twostage-compare")
        with mlflow.start_run(run_name="compare", tags=tags) as run:
            mlflow.log_metrics({metric_name(k): float(v) for k, v in metrics.items()
                                if pd.notna(v)})
            for path in (json_path, page_dir and Path(page_dir) / "compare.html"):
                if path is not None and Path(path).exists():
                    mlflow.log_artifact(str(path))
    return {"tracking_uri": uri, "run_id": run.info.run_id}


def resolve_run(value: str, tracking_uri: str | None) -> str:
    """A run folder, or an MLflow run id whose run names its folder (tag run_folder)."""
    if Path(value).is_dir():
        return value
    uri = resolve_uri(tracking_uri)
    if not uri:
        raise UserError(f"{value}: no such run folder (an MLflow run id needs --tracking-uri)")
    import mlflow

    try:
        run = mlflow.MlflowClient(uri).get_run(value)
    except mlflow.exceptions.MlflowException as err:
        raise UserError(f"{value}: no such run folder, nor an MLflow run at {uri}") from err
    folder = run.data.tags.get("run_folder")
    if not folder or not Path(folder).is_dir():
        raise UserError(f"MLflow run {value} names no run folder here (tag run_folder: "
                        f"{folder!r})")
    return folder
