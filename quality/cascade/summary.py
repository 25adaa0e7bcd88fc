"""What the cascade loses and what closes it: each detector's error rates and confusion matrix
(from its stage-1 error table), and per detector and stage-2 variant the gold-vs-predicted gap
on the primary metric with the **gap reduction** against the gold-trained variant, all with
paired bootstrap intervals over the test images. `robustness.json` carries it as `summary`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from annotate.stats.bootstrap import draws, percentile_interval

#: A variant's score minus the gold-trained model's, on predicted and on perfect input.
CHANGES = ("predicted_change", "gold_change")
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
    """detector -> variant -> gold, predicted and drop, each with its interval; the reduction
    of the gold-trained variant's drop (1 - drop / gold variant's drop) and the change of the
    predicted-input and gold-input scores against the gold-trained variant, each with its
    interval; on `PRIMARY_METRIC`, the same images drawn for every variant of a detector
    (paired)."""
    out: dict = {}
    for detector in dict.fromkeys(d for d, _ in tables):
        variants = {v: t for (d, v), t in tables.items() if d == detector}
        reference = variants.get(GOLD_VARIANT)
        images = next(iter(variants.values())).index
        picked = draws(len(images), n_boot, seed) if len(images) else np.zeros((0, 0), int)
        drops = {v: (t.loc[images, f"{PRIMARY_METRIC}_gold"]
                     - t.loc[images, f"{PRIMARY_METRIC}_predicted"]).to_numpy(np.float64)
                 for v, t in variants.items()}
        golds = {v: t.loc[images, f"{PRIMARY_METRIC}_gold"].to_numpy(np.float64)
                 for v, t in variants.items()}
        out[detector] = {}
        for variant in variants:
            gold, drop = golds[variant], drops[variant]
            entry = {"gold": float(gold.mean()), "predicted": float((gold - drop).mean()),
                     "drop": float(drop.mean())}
            for prefix, values in (("", drop), ("gold_", gold), ("predicted_", gold - drop)):
                entry[f"{prefix}ci_low"], entry[f"{prefix}ci_high"] = percentile_interval(
                    _means(values, picked))
            entry.update({"reduction": None, "reduction_ci_low": None, "reduction_ci_high": None,
                          **dict.fromkeys(f"{c}{end}" for c in CHANGES
                                          for end in ("", "_ci_low", "_ci_high"))})
            if reference is not None and variant != GOLD_VARIANT:
                # against the gold-trained model, paired: what the deployed cascade gains
                # (predicted input), and what perfect input must not lose
                base_gold, base_drop = golds[GOLD_VARIANT], drops[GOLD_VARIANT]
                for change, difference in (
                        ("predicted_change", (gold - drop) - (base_gold - base_drop)),
                        ("gold_change", gold - base_gold)):
                    entry[change] = float(difference.mean())
                    entry[f"{change}_ci_low"], entry[f"{change}_ci_high"] = \
                        percentile_interval(_means(difference, picked))
            if reference is not None and variant != BASELINE:  # no stage 2 to make robust
                base = drops[GOLD_VARIANT]
                entry["reduction"] = _reduction(drop.mean(), base.mean())
                boot = [_reduction(drop[d].mean(), base[d].mean()) for d in picked]
                entry["reduction_ci_low"], entry["reduction_ci_high"] = percentile_interval(
                    [b for b in boot if b is not None])
            out[detector][variant] = entry
    return out


def _means(values: np.ndarray, picked: np.ndarray) -> np.ndarray:
    """The mean of `values` in each bootstrap draw (rows of `picked`); none without draws."""
    return values[picked].mean(axis=1) if len(picked) else np.array([])


def _reduction(drop: float, reference_drop: float) -> float | None:
    """How much of the gold-trained variant's drop a variant closes (1 = all, 0 = none)."""
    return float(1 - drop / reference_drop) if reference_drop > 0 else None


def summary(tables: dict[tuple[str, str], pd.DataFrame], errors: dict[str, pd.DataFrame],
            labels: list[str], mislocated_iou: float, n_boot: int, seed: int,
            replicates: int = 1) -> dict:
    """The `summary` block: test images, each detector's rates and confusion matrix, the gap
    of every learned variant and, apart, of the rule baseline. With one trained model per
    variant (`replicates` 1) every interval resamples the test images only, and says so."""
    all_gaps = gaps(tables, n_boot, seed)
    first = next(iter(tables.values()), pd.DataFrame())
    return {
        "metric": PRIMARY_METRIC, "test_images": len(first),
        "resampled": {"unit": "image", "paired": True, "count": len(first), "n_boot": n_boot,
                      **training_record(replicates)},
        "detectors": {name: {**detector_rates(table, mislocated_iou),
                             "confusion": confusion(table, labels)}
                      for name, table in errors.items()},
        "gap": {d: {v: e for v, e in variants.items() if v != BASELINE}
                for d, variants in all_gaps.items()},
        "baseline": {d: variants[BASELINE] for d, variants in all_gaps.items()
                     if BASELINE in variants}}


def training_record(replicates: int) -> dict:
    """What an interval says about training randomness: with one trained model per variant it
    was not measured (the interval resamples test images only)."""
    return {"training_replicates": replicates,
            "training_variance": "measured" if replicates > 1 else "not measured"}


#: Said once in the verdict of a run with one trained model per variant.
ONE_MODEL = ("Training variance was not measured: each variant is one trained model, and another "
             "seed or another CPU gives another model, so these intervals resample the test "
             "images only and no sentence here claims that one trained model is better than "
             "another. To measure it, rerun with other seeds into other folders "
             "(evaluate-pipeline --seed 1 --out RUN1, --seed 2 --out RUN2) and compare the arms "
             "with quality compare RUN RUN1 RUN2 -- OTHER OTHER1 OTHER2.")


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
    rates = block["detectors"].get(deployed, {})
    suppressed = ("" if rates.get("suppress_iou") is None else
                  f", overlapping boxes suppressed at IoU {rates['suppress_iou']:g}")
    operating = (f" (recall {rates['recall']:.2f} at its operating threshold "
                 f"{rates['threshold']:g}{suppressed}, chosen on validation)"
                 if rates.get("recall") is not None and rates.get("threshold") is not None
                 else "")
    lines = [f"With the {deployed}{operating}, stage 2 trained on gold layouts scores "
             f"{reference['gold']:.3f} {block['metric']} on perfect input and "
             f"{reference['predicted']:.3f} on the detector's output: a drop of "
             f"{reference['drop']:.3f} [{reference['ci_low']:.3f}, {reference['ci_high']:.3f}]"
             f" on {block['test_images']} test images."]
    single = block.get("resampled", {}).get("training_variance") != "measured"
    if single:
        lines.append(ONE_MODEL)
    unclear = reference["ci_low"] is None or not reference["ci_low"] > 0
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
        lines.append(_one_model_each(robust) if single else _best_variant(robust, reference))
    for other, variants in block["gap"].items():
        if other != deployed and GOLD_VARIANT in variants:
            e = variants[GOLD_VARIANT]
            lines.append(f"With the {other} instead, the gold-trained model drops "
                         f"{e['drop']:.3f} [{e['ci_low']:.3f}, {e['ci_high']:.3f}]: what a "
                         "better stage 1 would save.")
    base = block["baseline"].get(deployed)
    if base and single:
        side = "above" if reference["gold"] > base["gold"] else "below"
        lines.append(f"The rule baseline scores {base['gold']:.3f} on perfect input and drops "
                     f"{base['drop']:.3f}; the learned model's one trained model scores "
                     f"{reference['gold']:.3f}, {side} this floor on these test images.")
    elif base:
        beaten = "beats" if reference["gold"] > base["gold"] else "does not beat"
        lines.append(f"The rule baseline scores {base['gold']:.3f} on perfect input and drops "
                     f"{base['drop']:.3f}; the learned model {beaten} this floor.")
    if people is not None:
        lines.append(f"The human ceiling on equal terms is {people:.3f}.")
    return lines


def _one_model_each(robust: dict) -> str:
    """The robust variants' figures without a verdict: with one trained model per variant a
    difference between them is not a finding."""
    best = max(robust, key=lambda v: robust[v]["predicted"])
    e = robust[best]
    return (f"Among the robust variants, {best} scores highest on the detector's output, "
            f"{e['predicted']:.3f} ({e['predicted_change']:+.3f} "
            f"[{e['predicted_change_ci_low']:+.3f}, {e['predicted_change_ci_high']:+.3f}] "
            f"against the gold-trained model), closing {e['reduction']:.0%} of the gap "
            f"[{e['reduction_ci_low']:.0%}, {e['reduction_ci_high']:.0%}] with a perfect-input "
            f"change of {e['gold_change']:+.3f} [{e['gold_change_ci_low']:+.3f}, "
            f"{e['gold_change_ci_high']:+.3f}]: test-image intervals of one trained model each, "
            "not a finding.")


def _best_variant(robust: dict, reference: dict) -> str:
    """The robust variant that serves the deployed cascade best (highest score on the
    detector's output), whether it beats the gold-trained model there, the share of the gap it
    closes and what it costs on perfect input. A smaller gap bought with a lower perfect-input
    score is no gain, which is why the best is not picked by gap closed."""
    best = max(robust, key=lambda v: robust[v]["predicted"])
    e = robust[best]
    change = (f"{e['predicted_change']:+.3f} [{e['predicted_change_ci_low']:+.3f}, "
              f"{e['predicted_change_ci_high']:+.3f}]")
    if e["predicted_change_ci_low"] > 0:
        head = (f"The best robust variant, {best}, scores {e['predicted']:.3f} on the "
                f"detector's output, {change} over the gold-trained model")
    elif e["predicted_change"] > 0:
        head = (f"The best robust variant, {best}, scores {e['predicted']:.3f} on the "
                f"detector's output, {change} over the gold-trained model (not told from 0)")
    else:
        head = (f"No robust variant beats the gold-trained model on the detector's output: "
                f"the best, {best}, scores {e['predicted']:.3f} against "
                f"{reference['predicted']:.3f} ({change})")
    lost = "lower" if e["gold_change_ci_high"] < 0 else "not lower beyond its interval"
    return (f"{head}. It closes {e['reduction']:.0%} of the gap [{e['reduction_ci_low']:.0%}, "
            f"{e['reduction_ci_high']:.0%}], and its perfect-input score {e['gold']:.3f} is "
            f"{lost} than the gold-trained model's ({e['gold_change']:+.3f} "
            f"[{e['gold_change_ci_low']:+.3f}, {e['gold_change_ci_high']:+.3f}]).")


#: Stage-1 rates compared between validation and test (per gold object; spurious per
#: prediction), and the stage-2 figures (on `PRIMARY_METRIC`).
AGREEMENT_RATES = ("recall", "spurious_rate")
AGREEMENT_SCORES = ("gold", "predicted", "drop")


def agreement(val: dict[tuple[str, str], pd.DataFrame],
              test: dict[tuple[str, str], pd.DataFrame], val_errors: dict[str, pd.DataFrame],
              test_errors: dict[str, pd.DataFrame], n_boot: int, seed: int) -> dict:
    """Validation and test side by side: each detector's recall and spurious rate, and per
    detector and variant the gold-input score, the predicted-input score and the drop; each
    with its interval over its own images, and test - val with an interval (the two splits
    resampled independently). `disagree` is set when that interval excludes 0: decisions
    taken on validation (the threshold, the variant) may not carry over to test."""
    stage1 = {}
    for detector in val_errors.keys() & test_errors.keys():
        stage1[detector] = {rate: _side_by_side(
            *[_rate_replicates(errors[detector], rate, n_boot, seed + k)  # independent draws
              for k, errors in enumerate((val_errors, test_errors))]) for rate in AGREEMENT_RATES}
    stage2: dict = {}
    for detector, variant in [k for k in test if k in val]:
        entry = {}
        for figure in AGREEMENT_SCORES:
            pair = [_score_replicates(tables[detector, variant], figure, n_boot, seed + k)
                    for k, tables in enumerate((val, test))]
            entry[figure] = _side_by_side(*pair)
        stage2.setdefault(detector, {})[variant] = entry
    flagged = [f"{d}: {r}" for d, rates in stage1.items() for r, e in rates.items()
               if e["disagree"]]
    flagged += [f"{d}, {v}: {f}" for d, variants in stage2.items()
                for v, figures in variants.items() for f, e in figures.items() if e["disagree"]]
    return {"metric": PRIMARY_METRIC, "stage1": stage1, "stage2": stage2, "flagged": flagged,
            "resampled": {"unit": "image", "paired": False, "n_boot": n_boot,
                          "note": "val and test resampled independently"}}


def _side_by_side(val: tuple[float, np.ndarray], test: tuple[float, np.ndarray]) -> dict:
    (v, v_boot), (t, t_boot) = val, test
    v_low, v_high = percentile_interval(v_boot)
    t_low, t_high = percentile_interval(t_boot)
    d_low, d_high = percentile_interval(t_boot - v_boot) if len(v_boot) and len(
        t_boot) else (float("nan"), float("nan"))
    return {"val": v, "val_ci_low": v_low, "val_ci_high": v_high,
            "test": t, "test_ci_low": t_low, "test_ci_high": t_high,
            "difference": t - v, "difference_ci_low": d_low, "difference_ci_high": d_high,
            "disagree": bool(d_low > 0 or d_high < 0)}


def _rate_replicates(errors: pd.DataFrame, rate: str, n_boot: int, seed: int
                     ) -> tuple[float, np.ndarray]:
    """A ratio-of-sums rate of an error table and its bootstrap replicates over images."""
    if rate == "recall":
        hit = (errors.gold_object_id.notna() & (errors.status != MISSED)).to_numpy(float)
        count = errors.gold_object_id.notna().to_numpy(float)
    else:
        hit = (errors.status == SPURIOUS).to_numpy(float)
        count = errors.pred_object_id.notna().to_numpy(float)
    per = pd.DataFrame({"hit": hit, "count": count}).groupby(
        errors.image_id.to_numpy()).sum()
    num, den = per.hit.to_numpy(), per["count"].to_numpy()
    picked = draws(len(per), n_boot, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = num[picked].sum(axis=1) / den[picked].sum(axis=1) if len(picked) else np.array([])
    return (float(num.sum() / den.sum()) if den.sum() else float("nan")), boot


def _score_replicates(table: pd.DataFrame, figure: str, n_boot: int, seed: int
                      ) -> tuple[float, np.ndarray]:
    """The mean of a per-image figure (gold, predicted or drop) and its replicates."""
    gold = table[f"{PRIMARY_METRIC}_gold"].to_numpy(np.float64)
    predicted = table[f"{PRIMARY_METRIC}_predicted"].to_numpy(np.float64)
    values = {"gold": gold, "predicted": predicted, "drop": gold - predicted}[figure]
    return float(values.mean()), _means(values, draws(len(values), n_boot, seed))
