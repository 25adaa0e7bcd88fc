"""Two runs side by side, honestly: paired differences on their common test images with
bootstrap intervals and a verdict per figure, refused when the test data differ.

A run folder (what `evaluate-pipeline` writes, see `workspace`) carries its split tables, its
stage-2 captions, its stage-1 error table and `run.json` (settings and versions). The test data
version is a content hash of the test split's rows (`annotate.versions.split_versions`), so two
runs that evaluated on different images, or on the same images with different labels, are
never compared by accident.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from annotate import store
from annotate.atomic import write_json, write_text
from annotate.bootstrap import draws, percentile_interval
from annotate.caption_metrics import paired_bleu_4
from annotate.capture import captured
from annotate.errors import MissingFileError, UserError
from annotate.versions import split_versions
from annotate.views import gold_boxes

from . import workspace
from .adequacy import paired_mdd
from .robustness import ITEM_METRICS, per_image, references

#: The metric and figure whose verdict names the comparison (tagged in MLflow).
PRIMARY = ("stage2", "gold", "predicted", "cider_d")
RUN_RECORD = "run.json"
_ZERO = 1e-9  # an interval bound this close to 0 is 0 (sums of equal floats)


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
    if (run / RUN_RECORD).exists():
        record = json.loads((run / RUN_RECORD).read_text())
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


def compare_runs(run_a: str | os.PathLike, run_b: str | os.PathLike, *, force: bool = False,
                 n_boot: int = 1000, seed: int = 0) -> dict:
    """Every stage-2 metric (gold and predicted input, per variant both runs have) and the
    detector's recall and precision, as B - A on the common test images with a paired
    bootstrap interval, the paired MDD and a verdict. Raises `DataMismatch` when the test data
    differ, unless `force`."""
    a, b = run_record(run_a), run_record(run_b)
    test_a, test_b = (r["split_versions"].get("test") for r in (a, b))
    notes = []
    if test_a != test_b:
        difference = _test_difference(run_a, run_b)
        message = (f"the runs were evaluated on different test data: {run_a} test data version "
                   f"{test_a}, {run_b} test data version {test_b} ({difference})")
        if not force:
            raise DataMismatch(message + "; compare runs on the same test data, or pass --force")
        notes.append("FORCED: " + message + "; figures use the common test images only")
    if a["split_versions"].get("train") != b["split_versions"].get("train"):
        notes.append("different training data: a difference may come from the data, not the "
                     f"method (train data versions {a['split_versions'].get('train')} vs "
                     f"{b['split_versions'].get('train')})")
    out = {"runs": {"a": _describe(run_a, a), "b": _describe(run_b, b)}, "notes": notes,
           "settings_diff": settings_diff(a.get("settings", {}), b.get("settings", {})),
           "difference": "B - A",
           "resampled": {"unit": "image", "paired": True, "n_boot": n_boot},
           "rule": "verdict when the paired 95% interval excludes 0; MDD: two-sided 5%, 80% power",
           "stage2": _stage2(run_a, run_b, n_boot, seed), "stage1": _stage1(run_a, run_b, n_boot,
                                                                              seed)}
    out["verdict"] = _primary(out)
    return out


def _describe(run, record: dict) -> dict:
    return {"path": str(Path(run).resolve()), "split_versions": record["split_versions"],
            "data_version": record.get("data_version"),
            "source_version": record.get("source_version"),
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


def _stage2(run_a, run_b, n_boot: int, seed: int) -> dict:
    """Per variant both runs have, per input (gold/predicted) and metric: A, B, B - A."""
    ts = store.load(workspace.path(run_a, "split"), validate=False)
    gold = gold_boxes(ts)
    names_a = {p.name: p for p in workspace.variants(run_a)}
    names_b = {p.name: p for p in workspace.variants(run_b)}
    out: dict = {}
    for name in [n for n in names_a if n in names_b]:
        out[name] = {}
        for given, file in (("gold", workspace.CAPTIONS_GOLD),
                            ("predicted", workspace.CAPTIONS_PREDICTED)):
            captions = [pd.read_parquet(folder / file) for folder in (names_a[name],
                                                                      names_b[name])]
            common = sorted(set(captions[0].image_id) & set(captions[1].image_id))
            refs = references(ts, common)
            scores = [per_image(c, refs, gold, ts.labels) for c in captions]
            images = scores[0].index.intersection(scores[1].index)
            scores = [s.loc[images] for s in scores]
            picked = draws(len(images), n_boot, seed) if len(images) else None
            figures = {"images": len(images)}
            for metric in [m for m in ITEM_METRICS if m in scores[0]]:
                values = [s[metric].to_numpy(np.float64) for s in scores]
                boot = ((values[1] - values[0])[picked].mean(axis=1) if picked is not None
                        else [])
                figures[metric] = _verdict(values[0].mean(), values[1].mean(), boot,
                                           paired_mdd(values[1] - values[0]))
            if len(images):
                ref_lists = refs.loc[images].tolist()
                b, a, boot = paired_bleu_4(scores[1].caption.tolist(),
                                           scores[0].caption.tolist(), ref_lists, picked)
                figures["bleu_4"] = _verdict(a, b, boot, None)
            out[name][given] = figures
    return out


def _stage1(run_a, run_b, n_boot: int, seed: int) -> dict:
    """The detector's recall and precision on the common test images (from each run's error
    table), B - A with paired intervals; mAP from `evaluate.json` without an interval (it has
    no per-image decomposition)."""
    if not (workspace.exists(run_a, "errors") and workspace.exists(run_b, "errors")):
        return {}
    counts = [_detector_counts(pd.read_parquet(workspace.path(r, "errors")))
              for r in (run_a, run_b)]
    images = counts[0].index.intersection(counts[1].index)
    counts = [c.loc[images].to_numpy(np.float64) for c in counts]
    picked = draws(len(images), n_boot, seed) if len(images) else []
    out: dict = {"images": len(images)}
    for name, (numerator, denominator) in {"recall": (0, 1), "precision": (0, 2)}.items():
        def ratio(rows: np.ndarray, num=numerator, den=denominator) -> float:
            total = rows[:, den].sum()
            return float(rows[:, num].sum() / total) if total else math.nan

        boot = [ratio(counts[1][d]) - ratio(counts[0][d]) for d in picked]
        out[name] = _verdict(ratio(counts[0]), ratio(counts[1]), boot, None)
    evaluated = [workspace.path(r, "evaluate") for r in (run_a, run_b)]
    if all(p.exists() for p in evaluated):
        maps = [json.loads(p.read_text()).get("map", {}) for p in evaluated]
        out["map50_95"] = {"a": maps[0].get("map50_95"), "b": maps[1].get("map50_95"),
                           "note": "no per-image decomposition: shown, not tested"}
    return out


def _detector_counts(errors: pd.DataFrame) -> pd.DataFrame:
    """Per image: correct detections (matched, right label), gold objects, predictions."""
    return pd.DataFrame({
        "correct": (errors.status == "matched").groupby(errors.image_id).sum(),
        "gold": errors.gold_object_id.notna().groupby(errors.image_id).sum(),
        "predicted": errors.pred_object_id.notna().groupby(errors.image_id).sum()})


def _verdict(a: float, b: float, boot, mdd: float | None) -> dict:
    low, high = percentile_interval(boot)
    difference = float(b - a)
    if not np.isfinite(low):
        verdict = "cannot tell (no interval)"
    elif low > _ZERO:
        verdict = "B better"
    elif high < -_ZERO:
        verdict = "A better"
    else:
        verdict = "cannot tell at this evaluation size"
    return {"a": float(a), "b": float(b), "difference": difference, "ci_low": low,
            "ci_high": high, "mdd": mdd, "verdict": verdict}


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
    if figure["verdict"].startswith("cannot tell") and figure.get("mdd") is not None:
        line += f"; differences under {figure['mdd']:.3f} cannot be detected here (MDD)"
    return {"figure": f"{stage}.{variant}.{given}.{metric}", "verdict": figure["verdict"],
            "line": line}


def metric_name(key: str) -> str:
    """`key` with the characters MLflow refuses in metric names (e.g. `+`) replaced by `_`."""
    return re.sub(r"[^\w\-. :/]", "_", key)


def compare_job(run_a: str | os.PathLike, run_b: str | os.PathLike, *,
                json_path: str | os.PathLike | None = None,
                page_dir: str | os.PathLike | None = None, force: bool = False,
                n_boot: int = 1000, seed: int = 0, tracking_uri: str | None = None) -> dict:
    """`compare_runs` written to `json_path` (compare.json) and `page_dir/compare.html`, and
    recorded as an MLflow run (experiment `twostage-compare`) that links both runs and carries
    the verdict as a tag. The tracking URI defaults to run B's own."""
    from .compare_page import render

    result = compare_runs(run_a, run_b, force=force, n_boot=n_boot, seed=seed)
    if json_path is not None:
        write_json(json_path, result)
    if page_dir is not None:
        write_text(Path(page_dir) / "compare.html", render(result))
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or run_record(run_b).get(
        "tracking_uri")
    if uri:
        result["mlflow"] = _record_comparison(result, uri, json_path, page_dir)
        if json_path is not None:
            write_json(json_path, result)
    return result


def _record_comparison(result: dict, uri: str, json_path, page_dir) -> dict:
    """An MLflow run for the comparison: tags name both runs (folders, MLflow run ids, data
    versions) and the verdict; metrics are the differences (B - A)."""
    import mlflow

    runs = result["runs"]
    tags = {"run_a": runs["a"]["path"], "run_b": runs["b"]["path"],
            "mlflow_run_a": str(runs["a"].get("mlflow_run")),
            "mlflow_run_b": str(runs["b"].get("mlflow_run")),
            "test_data_version": str(runs["a"]["split_versions"].get("test")),
            "verdict": result["verdict"]["verdict"],
            "forced": str(any(n.startswith("FORCED") for n in result["notes"]))}
    metrics = {f"{variant}.{given}.{metric}.difference": f["difference"]
               for variant, inputs in result["stage2"].items()
               for given, figures in inputs.items()
               for metric, f in figures.items() if isinstance(f, dict)}
    log = (Path(page_dir) / "mlflow.log" if page_dir is not None else
           Path(json_path).with_suffix(".mlflow.log") if json_path is not None else os.devnull)
    with captured(log):
        mlflow.set_tracking_uri(uri)
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
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
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
