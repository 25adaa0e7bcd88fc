"""What the cascade loses and what closes it: each detector's error rates and confusion matrix
(from its stage-1 error table), and per detector and stage-2 variant the gold-vs-predicted gap
on the primary metric with the **gap reduction** against the gold-trained variant, all with
paired bootstrap intervals over the test images. `robustness.json` carries it as `summary`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from annotate.bootstrap import draws, percentile_interval

#: The metric the gap and its reduction are measured on.
PRIMARY_METRIC = "cider_d"
#: The variant every reduction is measured against, and the rule baseline's name.
GOLD_VARIANT = "gold"
BASELINE = "baseline"
MISSED, SPURIOUS = "missed", "spurious"


def detector_rates(errors: pd.DataFrame, mislocated_iou: float) -> dict:
    """recall (1 - miss rate), miss, wrong-label and mislocated rates per gold object; the
    spurious rate per prediction."""
    gold = errors.gold_object_id.notna()
    predicted = errors.pred_object_id.notna()
    n_gold, n_predicted = int(gold.sum()), int(predicted.sum())
    missed = int((errors.status == MISSED).sum())
    mislocated = int(((errors.status == "matched") & (errors.iou < mislocated_iou)).sum())

    def share(count: int, total: int) -> float | None:
        return count / total if total else None

    return {"gold_objects": n_gold, "predictions": n_predicted,
            "recall": share(n_gold - missed, n_gold), "miss_rate": share(missed, n_gold),
            "spurious_rate": share(int((errors.status == SPURIOUS).sum()), n_predicted),
            "wrong_label_rate": share(int((errors.status == "wrong_label").sum()), n_gold),
            "mislocated_rate": share(mislocated, n_gold)}


def confusion(errors: pd.DataFrame, labels: list[str]) -> dict:
    """Gold class (rows, plus "spurious": nothing there) x predicted class (columns, plus
    "missed": nothing found) counts from an error table."""
    rows = errors.gold_label.astype(object).where(errors.gold_label.notna(), SPURIOUS)
    columns = errors.pred_label.astype(object).where(errors.pred_label.notna(), MISSED)
    names = list(labels) or sorted(set(rows) | set(columns) - {SPURIOUS, MISSED})
    table = pd.crosstab(pd.Categorical(rows, [*names, SPURIOUS]),
                        pd.Categorical(columns, [*names, MISSED]), dropna=False)
    return {"rows": [*names, SPURIOUS], "columns": [*names, MISSED],
            "counts": table.to_numpy(np.int64).tolist()}


def gaps(tables: dict[tuple[str, str], pd.DataFrame], n_boot: int, seed: int) -> dict:
    """detector -> variant -> gold, predicted, drop and its interval, and the reduction of the
    gold-trained variant's drop (1 - drop / gold variant's drop) with its interval, on
    `PRIMARY_METRIC`; the same images are drawn for every variant of a detector."""
    out: dict = {}
    for detector in dict.fromkeys(d for d, _ in tables):
        variants = {v: t for (d, v), t in tables.items() if d == detector}
        reference = variants.get(GOLD_VARIANT)
        images = next(iter(variants.values())).index
        picked = draws(len(images), n_boot, seed) if len(images) else np.zeros((0, 0), int)
        drops = {v: (t.loc[images, f"{PRIMARY_METRIC}_gold"]
                     - t.loc[images, f"{PRIMARY_METRIC}_predicted"]).to_numpy(np.float64)
                 for v, t in variants.items()}
        out[detector] = {}
        for variant, table in variants.items():
            gold = table.loc[images, f"{PRIMARY_METRIC}_gold"].to_numpy(np.float64)
            drop = drops[variant]
            low, high = percentile_interval(drop[picked].mean(axis=1) if len(picked) else [])
            entry = {"gold": float(gold.mean()), "predicted": float((gold - drop).mean()),
                     "drop": float(drop.mean()), "ci_low": low, "ci_high": high,
                     "reduction": None, "reduction_ci_low": None, "reduction_ci_high": None}
            if reference is not None and variant != BASELINE:  # no stage 2 to make robust
                base = drops[GOLD_VARIANT]
                entry["reduction"] = _reduction(drop.mean(), base.mean())
                boot = [_reduction(drop[d].mean(), base[d].mean()) for d in picked]
                entry["reduction_ci_low"], entry["reduction_ci_high"] = percentile_interval(
                    [b for b in boot if b is not None])
            out[detector][variant] = entry
    return out


def _reduction(drop: float, reference_drop: float) -> float | None:
    """How much of the gold-trained variant's drop a variant closes (1 = all, 0 = none)."""
    return float(1 - drop / reference_drop) if reference_drop > 0 else None


def summary(tables: dict[tuple[str, str], pd.DataFrame], errors: dict[str, pd.DataFrame],
            labels: list[str], mislocated_iou: float, n_boot: int, seed: int) -> dict:
    """The `summary` block: test images, each detector's rates and confusion matrix, the gap
    of every learned variant and, apart, of the rule baseline."""
    all_gaps = gaps(tables, n_boot, seed)
    first = next(iter(tables.values()), pd.DataFrame())
    return {
        "metric": PRIMARY_METRIC, "test_images": len(first),
        "resampled": {"unit": "image", "paired": True, "count": len(first), "n_boot": n_boot},
        "detectors": {name: {**detector_rates(table, mislocated_iou),
                             "confusion": confusion(table, labels)}
                      for name, table in errors.items()},
        "gap": {d: {v: e for v, e in variants.items() if v != BASELINE}
                for d, variants in all_gaps.items()},
        "baseline": {d: variants[BASELINE] for d, variants in all_gaps.items()
                     if BASELINE in variants}}


def costliest_error(curves: pd.DataFrame, metric: str = PRIMARY_METRIC) -> dict | None:
    """The injected error type that lowers `metric` most at the highest common rate (from the
    perturbation curves: equal errors per gold object for every type)."""
    if curves is None or curves.empty or metric not in curves:
        return None
    top = curves.rate.max()
    clean = curves.loc[curves.rate == 0, metric].mean()
    at_top = curves[curves.rate == top].set_index("error")[metric]
    worst = (clean - at_top).idxmax()
    return {"error": str(worst), "rate": float(top), "drop": float(clean - at_top[worst])}


def verdict(block: dict, deployed: str, people: float | None) -> list[str]:
    """The report's opening sentences, from the summary block alone."""
    gap = block["gap"].get(deployed, {})
    reference = gap.get(GOLD_VARIANT)
    if reference is None:
        return ["No gold-trained variant: the cascade's gap cannot be stated."]
    lines = [f"With the {deployed}, stage 2 (trained on gold layouts) scores "
             f"{reference['gold']:.3f} {block['metric']} on perfect input and "
             f"{reference['predicted']:.3f} on the detector's output: a drop of "
             f"{reference['drop']:.3f} [{reference['ci_low']:.3f}, {reference['ci_high']:.3f}]"
             f" on {block['test_images']} test images."]
    unclear = reference["ci_low"] is None or reference["ci_low"] <= 0
    if unclear:
        lines.append("That drop cannot be told from zero on this test set, so no variant's "
                     "share of it can be read either.")
    costly = block.get("costliest_error")
    if costly:
        lines.append(f"The stage-1 error that costs most is {costly['error'].replace('_', ' ')}"
                     f" ({costly['drop']:.3f} {block['metric']} at {costly['rate']:g} errors "
                     "per gold object, injected alone).")
    robust = {v: e for v, e in gap.items() if v != GOLD_VARIANT and e["reduction"] is not None}
    if robust and not unclear:
        best = max(robust, key=lambda v: robust[v]["reduction"])
        e = robust[best]
        lines.append(f"The best robust variant, {best}, closes {e['reduction']:.0%} of the gap "
                     f"[{e['reduction_ci_low']:.0%}, {e['reduction_ci_high']:.0%}], with "
                     f"{e['gold']:.3f} on perfect input (gold-trained: "
                     f"{reference['gold']:.3f}).")
    base = block["baseline"].get(deployed)
    if base:
        lines.append(f"The rule baseline scores {base['gold']:.3f} on perfect input and drops "
                     f"{base['drop']:.3f}: the floor a learned model must beat.")
    if people is not None:
        lines.append(f"The human ceiling on equal terms is {people:.3f}.")
    return lines
