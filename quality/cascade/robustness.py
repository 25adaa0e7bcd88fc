"""Stage-2 robustness: how much the cascade loses because stage 2 reads stage-1 predictions,
why (which stage-1 errors), and how sensitive stage 2 is to each error type.

- `compare`: captions from gold layouts vs from predicted layouts of the same images; every
  metric both ways and the drop, with a paired bootstrap interval over images.
- `attribute`: images bucketed by the stage-1 errors they contain, with the drop per bucket.
- `perturbation_curves`: one error type at a time injected into gold layouts at rising rates.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from annotate.metrics.captions import TOKENIZATION, paired_bleu_4
from annotate.runtime.errors import MissingFileError
from annotate.runtime.jsonable import records
from annotate.stats.bootstrap import draws, percentile_interval
from annotate.tables.schema import TableSet, check_errors
from quality.agreement.ceiling import equal_terms
from quality.agreement.units import COORDS
from quality.cascade import summary as cascade
from quality.cascade.scoring import ITEM_METRICS, per_image, references
from quality.splits.adequacy import paired_mdd
from quality.workspace import DEPLOYED_DETECTOR, DETECTORS, STRONG_DETECTOR
from stage2_generate.noise import Noise, corrupt

#: A matched box with IoU below this counts as mislocated.
MISLOCATED_IOU = 0.75
#: An attribution bucket with fewer images carries a warning.
FEW_IMAGES = 5
#: Perturbation curves: injected errors per gold object, and how many seeds each point averages.
RATES = (0.0, 0.1, 0.2, 0.4)
SEEDS = 3
ERROR_TYPES = ("missed", "spurious", "wrong_label", "mislocated")


def compare(gold_captions: pd.DataFrame, predicted_captions: pd.DataFrame, ts: TableSet,
            gold_boxes: pd.DataFrame, n_boot: int = 1000, seed: int = 0
            ) -> tuple[dict, pd.DataFrame]:
    """Every metric with gold and with predicted input on the same images, the drop (gold -
    predicted) and its paired bootstrap interval. Also returns the per-image table."""
    common = sorted(set(gold_captions.image_id) & set(predicted_captions.image_id))
    refs = references(ts, common)
    gold = per_image(gold_captions, refs, gold_boxes, ts.labels)
    pred = per_image(predicted_captions, refs, gold_boxes, ts.labels).reindex(gold.index)
    images = gold.index.to_numpy()
    picked = draws(len(images), n_boot, seed) if len(images) else None  # images, paired
    figures = {"n_images": len(images)}
    for metric in [m for m in ITEM_METRICS if m in gold]:
        a, b = gold[metric].to_numpy(), pred[metric].to_numpy()
        figures[metric] = {**_paired(a.mean(), b.mean(), (a - b)[picked].mean(axis=1)
                                     if picked is not None else []),
                           "mdd": paired_mdd(a - b)}
    ref_lists = refs.loc[images].tolist()
    if len(images):
        figures["bleu_4"] = _paired(*paired_bleu_4(gold.caption.tolist(), pred.caption.tolist(),
                                                   ref_lists, picked))
    table = gold.drop(columns="caption").add_suffix("_gold").join(
        pred.drop(columns="caption").add_suffix("_predicted"))
    table["caption_gold"], table["caption_predicted"] = gold.caption, pred.caption
    return figures, table


def between_variants(tables: dict[str, pd.DataFrame]) -> dict:
    """The paired MDD of a comparison between two stage-2 variants on the same detector's
    output (predicted input), from their per-image differences on these test images: a
    difference between two variants below it cannot be told from noise here."""
    out: dict = {"rule": "paired, two-sided 5%, 80% power", "pairs": {}}
    names = list(tables)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            detector = (first.partition(", ")[2], second.partition(", ")[2])
            if detector[0] != detector[1]:
                continue
            a, b = tables[first], tables[second].reindex(tables[first].index)
            out["pairs"][f"{first} vs {second}"] = {
                "images": len(a), **{m: paired_mdd(a[f"{m}_predicted"] - b[f"{m}_predicted"])
                                     for m in ITEM_METRICS if f"{m}_predicted" in a}}
    return out


def _paired(gold: float, predicted: float, boot) -> dict:
    low, high = percentile_interval(boot)
    return {"gold": float(gold), "predicted": float(predicted), "drop": float(gold - predicted),
            "ci_low": low, "ci_high": high}


def error_buckets(errors: pd.DataFrame, image_ids, mislocated_iou: float = MISLOCATED_IOU
                  ) -> pd.Series:
    """Each image's stage-1 error bucket: none, missed, spurious, wrong_label, mislocated, or
    several (more than one type)."""
    kinds = errors.status.where(~((errors.status == "matched") & (errors.iou < mislocated_iou)),
                                "mislocated")
    kinds = kinds[kinds != "matched"]
    per = pd.DataFrame({"image_id": errors.image_id[kinds.index], "kind": kinds})
    types = per.drop_duplicates().groupby("image_id").kind.agg(list)
    bucket = types.map(lambda k: k[0] if len(k) == 1 else "several")
    return pd.Series(bucket.reindex(list(image_ids)).fillna("none").to_numpy(),
                     index=list(image_ids), name="bucket")


def attribute(table: pd.DataFrame, errors: pd.DataFrame, n_boot: int = 1000, seed: int = 0
              ) -> pd.DataFrame:
    """The stage-2 drop per stage-1 error bucket: images, and per metric the mean drop with a
    bootstrap interval over the bucket's images; a bucket under `FEW_IMAGES` images carries a
    warning (its mean is one or two captions, not a pattern)."""
    bucket = error_buckets(errors, table.index)
    drops = pd.DataFrame({m: table[f"{m}_gold"] - table[f"{m}_predicted"]
                          for m in ITEM_METRICS if f"{m}_gold" in table}, index=table.index)
    rows = []
    for name, group in drops.groupby(bucket):
        picked = draws(len(group), n_boot, seed)
        row: dict = {"bucket": name, "images": len(group)}
        for metric in drops.columns:
            values = group[metric].to_numpy()
            low, high = percentile_interval(values[picked].mean(axis=1) if len(picked) else [])
            row.update({f"drop_{metric}": float(values.mean()), f"drop_{metric}_ci_low": low,
                        f"drop_{metric}_ci_high": high})
        row["warning"] = (f"{len(group)} image{'s' if len(group) > 1 else ''}: too few to "
                          "read" if len(group) < FEW_IMAGES else None)
        rows.append(row)
    return pd.DataFrame(rows)


def perturbation_curves(generate, ts: TableSet, gold_boxes: pd.DataFrame, images: pd.DataFrame,
                        rates=RATES, seeds: int = SEEDS, seed: int = 0, n_boot: int = 1000
                        ) -> pd.DataFrame:
    """Per-image metrics when one error type alone is injected into gold layouts, at each rate
    in errors per gold object (the same scale for every type), averaged over `seeds` draws per
    image, with bootstrap intervals over images. `generate(boxes, images)` returns a captions
    table (a stage-2 model)."""
    refs = references(ts, images.image_id)
    labels = list(ts.labels) or sorted(gold_boxes.label.unique())
    gold = gold_boxes[gold_boxes.image_id.isin(images.image_id)]
    clean = per_image(generate(gold, images), refs, gold_boxes, ts.labels)
    rows = []
    for kind in ERROR_TYPES:
        for rate in rates:
            runs = [clean] if rate == 0 else [
                per_image(generate(inject(gold, images, kind, rate, labels,
                                          np.random.default_rng([seed, k])), images),
                          refs, gold_boxes, ts.labels) for k in range(seeds)]
            per = pd.concat([r.drop(columns="caption") for r in runs]).groupby(level=0).mean()
            picked = draws(len(per), n_boot, seed)
            row = {"error": kind, "rate": rate, "seeds": len(runs), "images": len(per)}
            for metric in per.columns:
                values = per[metric].to_numpy()
                low, high = percentile_interval(values[picked].mean(axis=1) if len(picked)
                                                else [])
                row.update({metric: float(values.mean()), f"{metric}_ci_low": low,
                            f"{metric}_ci_high": high})
            rows.append(row)
    return pd.DataFrame(rows)


def inject(gold: pd.DataFrame, images: pd.DataFrame, kind: str, rate: float,
           labels: list[str], rng: np.random.Generator) -> pd.DataFrame:
    """Gold layouts with about `rate` errors of one type per gold object: objects missed,
    spurious objects added, labels changed, or boxes moved to an IoU between 0.5 and
    `MISLOCATED_IOU` with where they were (what the error table calls mislocated)."""
    if kind not in ERROR_TYPES:
        raise ValueError(f"unknown error type {kind!r}: use one of {ERROR_TYPES}")
    if rate == 0 or gold.empty:
        return gold
    if kind == "mislocated":
        return _mislocate(gold, images, rate, rng)
    per_image_objects = len(gold) / gold.image_id.nunique()
    noise = {"missed": Noise(drop=rate), "wrong_label": Noise(swap=rate),
             "spurious": Noise(spurious=rate * per_image_objects)}[kind]
    return corrupt(gold, images, noise, labels, rng)


def _mislocate(gold: pd.DataFrame, images: pd.DataFrame, rate: float,
               rng: np.random.Generator) -> pd.DataFrame:
    """A share `rate` of the boxes shifted along x or y so that their IoU with the original is
    drawn uniformly in [0.5, MISLOCATED_IOU): a shift of s box sizes gives IoU (1-s)/(1+s)."""
    out = gold.copy()
    moved = np.flatnonzero(rng.random(len(out)) < rate)
    target = rng.uniform(0.5, MISLOCATED_IOU, len(moved))
    shift = (1 - target) / (1 + target) * rng.choice([-1.0, 1.0], len(moved))
    along_x = rng.random(len(moved)) < 0.5
    coords = out[COORDS].to_numpy(np.float64)
    size = np.where(along_x, coords[moved, 2] - coords[moved, 0],
                    coords[moved, 3] - coords[moved, 1]) * shift
    coords[moved, 0] += np.where(along_x, size, 0)
    coords[moved, 2] += np.where(along_x, size, 0)
    coords[moved, 1] += np.where(along_x, 0, size)
    coords[moved, 3] += np.where(along_x, 0, size)
    image_size = images.drop_duplicates("image_id").set_index("image_id")
    width = out.image_id.map(image_size.width).to_numpy(np.float64)
    height = out.image_id.map(image_size.height).to_numpy(np.float64)
    # shift back inside the image rather than clip, so the box keeps its size
    dx = np.minimum(0, width - coords[:, 2]) + np.maximum(0, -coords[:, 0])
    dy = np.minimum(0, height - coords[:, 3]) + np.maximum(0, -coords[:, 1])
    coords[:, [0, 2]] += dx[:, None]
    coords[:, [1, 3]] += dy[:, None]
    out[COORDS] = coords
    return out


def analyse_run(run, n_boot: int = 1000, seed: int = 0, perturb: bool = True) -> dict:
    """Robustness figures of a run folder (see `workspace`). Writes nothing.

    Parameters
    ----------
    run : path
        A run folder with its split set, the detectors' error tables and the stage-2
        variants' captions of the test (and validation) images.
    n_boot : int
        Bootstrap resamples for every interval (test images, paired across inputs).
    seed : int
        Seed of the resampling and of the injected errors.
    perturb : bool
        Add the perturbation curves of the gold-trained variant (it generates captions).

    Returns
    -------
    dict
        JSON-ready: per variant and detector the gold-vs-predicted comparison and its
        attribution to stage-1 errors (`variants`), the MDDs between variants (`adequacy`),
        the verdict block (`summary`), validation against test (`val_vs_test`) and the
        perturbation curves.
    """
    from annotate.tables import store
    from annotate.tables.views import gold_boxes
    from quality import workspace

    missing = [name for name in ("split", "errors") if not workspace.exists(run, name)]
    found = workspace.variants(run)
    if missing or not found:
        needs = [*missing, *([] if found else ["stage2"])]
        raise MissingFileError("robustness needs " + "; ".join(
            f"{n} ({workspace.ARTIFACTS[n].command_for(run)})" for n in needs))
    ts = store.load(workspace.path(run, "split"))
    gold = gold_boxes(ts)
    detectors = _detectors(Path(run))
    variants, by_detector, val_tables = _variant_figures(found, detectors, ts, gold, n_boot,
                                                         seed)
    out: dict = {"variants": variants, "mislocated_iou": MISLOCATED_IOU,
                 "tokenization": TOKENIZATION, "detectors": {
                     name: {"folder": d["folder"], "threshold": d["threshold"],
                            "suppress_iou": d["suppress_iou"]}
                     for name, d in detectors.items()}}
    out["adequacy"] = between_variants({name: v.pop("table") for name, v in variants.items()})
    evaluated = {n: d["errors"] for n, d in detectors.items()
                 if any(n == k for k, _ in by_detector)}
    perturbation, curves = (_perturbation(found[0], ts, gold, n_boot, seed) if perturb
                            else (None, None))
    out["summary"] = _summary(by_detector, evaluated, detectors, ts, variants, curves, n_boot,
                              seed)
    out["val_vs_test"] = cascade.agreement(
        val_tables, by_detector, {n: d["errors_val"] for n, d in detectors.items()
                                  if d["errors_val"] is not None}, evaluated, n_boot, seed)
    if perturbation is not None:
        out["perturbation"] = perturbation
    return out


def _variant_figures(found: list[Path], detectors: dict, ts: TableSet, gold: pd.DataFrame,
                     n_boot: int, seed: int) -> tuple[dict, dict, dict]:
    """Per variant folder and detector: the gold-vs-predicted comparison of the test images,
    its attribution and the model against people (with its per-image `table`, popped by the
    caller); the per-image tables by (detector, variant) for test and for validation."""
    from quality import workspace

    variants, by_detector, val_tables = {}, {}, {}
    for folder in found:
        for detector, d in detectors.items():
            if not (folder / d["captions"]).exists():
                continue
            gold_captions = pd.read_parquet(folder / workspace.CAPTIONS_GOLD)
            predicted_captions = pd.read_parquet(folder / d["captions"])
            figures, table = compare(gold_captions, predicted_captions, ts, gold, n_boot, seed)
            by_detector[detector, folder.name] = table
            val = folder / workspace.VAL
            if (val / d["captions"]).exists() and d["errors_val"] is not None:
                val_tables[detector, folder.name] = compare(
                    pd.read_parquet(val / workspace.CAPTIONS_GOLD),
                    pd.read_parquet(val / d["captions"]), ts, gold, n_boot, seed)[1]
            order = "content_predicted" if "content_predicted" in table else table.columns[0]
            variants[folder.name + d["suffix"]] = {
                "figures": figures, "detector": detector,
                # each drop's interval: the same test images drawn for gold and predicted input
                "resampled": {"unit": "image", "paired": True, "count": figures["n_images"],
                              "n_boot": n_boot, **cascade.training_record(1)},
                "attribution": records(attribute(table, d["errors"], n_boot, seed)),
                "attribution_resampled": {"unit": "image, within its bucket",
                                          "n_boot": n_boot},
                "versus_people": equal_terms(
                    ts, {"gold input": gold_captions, "predicted input": predicted_captions},
                    table.index, n_boot, seed),
                "worst": records(table.sort_values(order).head(8).reset_index()),
                "table": table}
    return variants, by_detector, val_tables


def _perturbation(model: Path, ts: TableSet, gold: pd.DataFrame, n_boot: int, seed: int
                  ) -> tuple[dict, pd.DataFrame]:
    """The perturbation curves of the variant in `model` on the test images: the JSON block
    and the curves table."""
    from stage2_generate.generate import Captioner

    images = ts.images[ts.images.split == "test"]
    curves = perturbation_curves(Captioner(model), ts, gold, images, seed=seed, n_boot=n_boot)
    return {"variant": model.name, "curves": records(curves),
            "rate": "injected errors per gold object", "seeds": SEEDS,
            "resampled": {"unit": "image", "count": len(images), "n_boot": n_boot}}, curves


def _summary(by_detector: dict, evaluated: dict, detectors: dict, ts: TableSet,
             variants: dict, curves: pd.DataFrame | None, n_boot: int, seed: int) -> dict:
    """The verdict block: `cascade.summary` with each detector's operating threshold, the
    costliest error (from the curves), the perfect-input and human ceilings and the verdict
    sentences."""
    block = cascade.summary(by_detector, evaluated, list(ts.labels), MISLOCATED_IOU, n_boot,
                            seed)
    rates = {name: {**entry, "threshold": detectors[name]["threshold"],
                    "suppress_iou": detectors[name]["suppress_iou"]}
             for name, entry in block["detectors"].items()}
    people = (variants.get(cascade.GOLD_VARIANT, {}).get("versus_people", {})
              .get("metrics", {}).get(cascade.PRIMARY_METRIC, {}).get("people", {}))
    block = {**block, "detectors": rates, "deployed": DEPLOYED_DETECTOR}
    if curves is not None:
        block["costliest_error"] = cascade.costliest_error(curves)
    block["ceilings"] = {"perfect_input": block["gap"].get(DEPLOYED_DETECTOR, {}).get(
        cascade.GOLD_VARIANT, {}).get("gold"), "human": people.get("score"),
        "human_ci_low": people.get("ci_low"), "human_ci_high": people.get("ci_high"),
        "human_rule": "each annotator against the other annotators, on the same test images "
                      "and k - 1 references (quality.agreement.ceiling.equal_terms)"}
    block["verdict"] = cascade.verdict(block, DEPLOYED_DETECTOR, people.get("score"))
    return block


def _detectors(run: Path) -> dict[str, dict]:
    """The detectors whose test error tables exist: folder, operating threshold, captions
    file name in the variant folders, variant-name suffix and error tables (val may be
    None)."""
    from quality import workspace

    out = {}
    for name, captions, suffix in (
            (DEPLOYED_DETECTOR, workspace.CAPTIONS_PREDICTED, ""),
            (STRONG_DETECTOR, workspace.CAPTIONS_PREDICTED_STRONG, f", {STRONG_DETECTOR}")):
        folder = DETECTORS[name]
        test, val = run / folder / "errors_test.parquet", run / folder / "errors_val.parquet"
        if not test.exists():
            continue
        threshold = run / folder / workspace.THRESHOLD
        out[name] = {"folder": folder, "captions": captions, "suffix": suffix,
                     "errors": check_errors(pd.read_parquet(test), str(test)),
                     "errors_val": pd.read_parquet(val) if val.exists() else None,
                     **({"threshold": None, "suppress_iou": None} if not threshold.exists()
                        else _hand_over_settings(json.loads(threshold.read_text())))}
    return out


def _hand_over_settings(record: dict) -> dict:
    return {"threshold": record["chosen"], "suppress_iou": record.get("suppress_iou")}


def robustness_job(run, n_boot: int = 1000, seed: int = 0, perturb: bool = True) -> dict:
    """The robustness job: `analyse_run` written to the run's `robustness.json`.

    Parameters
    ----------
    run : path
        A run folder (split set, error tables, stage-2 captions; see `quality.workspace`).
    n_boot : int
        Bootstrap resamples for every interval.
    seed : int
        Seed of the resampling and of the injected errors.
    perturb : bool
        Add the perturbation curves (generates captions; the slow part).

    Returns
    -------
    dict
        The figures written (see `analyse_run`).
    """
    from annotate.runtime.atomic import write_json
    from quality import workspace

    figures = analyse_run(run, n_boot, seed, perturb)
    write_json(workspace.path(run, "robustness"), figures)
    return figures
