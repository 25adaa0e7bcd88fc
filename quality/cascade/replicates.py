"""The cascade's verdict over training replicates: the same chain trained K times with other
seeds (`evaluate-pipeline --replicates K`), every figure that compares trained models with an
interval over the test images *and* the replicates, and the variance split into training and
test set (`annotate.stats.replicates`).

Per detector and stage-2 variant, on the primary metric and the test images every replicate
captioned:

- `drop`: gold input minus the detector's output, of the same model (seeds paired);
- `predicted_change`, `gold_change`: the variant's replicates against the gold-trained
  model's, on the detector's output and on perfect input (two arms);
- `reduction`: the share of the gold-trained model's drop the variant closes (replicate r of
  the variant against replicate r of the gold-trained model);

and per detector its recall across replicates, the drop saved by the strong detector, the
threshold's effect (the chosen hand-over against ultralytics' default confidence, on the
deployed detector's output), and the learned model against the rule baseline on perfect input.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from annotate.runtime.atomic import write_json
from annotate.runtime.errors import MissingFileError
from annotate.stats.bootstrap import draws
from annotate.stats.replicates import (
    MIN_REPLICATES,
    claim_blocked,
    compare_mean_scores,
    replicate_estimate,
    rerun_agreement,
)
from annotate.tables import store
from annotate.tables.views import gold_boxes
from quality import workspace
from quality.cascade.scoring import detector_counts, per_image, references
from quality.cascade.summary import BASELINE, GOLD_VARIANT, PRIMARY_METRIC
from stage1_detect.handover import ULTRALYTICS_CONF

REPLICATES_FILE = "replicates.json"
_CAPTIONS = {workspace.DEPLOYED_DETECTOR: workspace.CAPTIONS_PREDICTED,
             workspace.STRONG_DETECTOR: workspace.CAPTIONS_PREDICTED_STRONG}


def replicates_job(runs: list[str | os.PathLike], out: str | os.PathLike, *,
                   seeds: list[int], n_boot: int = 1000, seed: int = 0) -> dict:
    """Replicate-aware figures of K run folders that differ only in their seed.

    Parameters
    ----------
    runs : list of paths
        The replicates' run folders (the first is the pipeline's own), each with its
        captions and error tables.
    out : path
        Where `replicates.json` is written.
    seeds : list of int
        The training seed of each run (its `run.json` is written after this step).
    n_boot : int
        Image resamples for the test-set part of every interval.
    seed : int
        Seed of the resampling.

    Returns
    -------
    dict
        What `replicates.json` holds: the seeds, per detector the recall, per detector and
        variant the drop, the changes against the gold-trained model and the gap closed, the
        strong detector's saving, the baseline comparison, and the verdict sentences.
    """
    runs = [Path(r) for r in runs]
    ts = store.load(workspace.path(runs[0], "split"), validate=False)
    scores, images = _scores(runs, ts)
    picked = draws(len(images), n_boot, seed)
    block: dict = {"replicates": len(runs), "runs": [str(r.resolve()) for r in runs],
                   "seeds": list(seeds),
                   "metric": PRIMARY_METRIC, "test_images": len(images),
                   "resampled": {"unit": "image x training replicate", "paired": True,
                                 "count": len(images), "n_boot": n_boot,
                                 "training_replicates": len(runs)},
                   "detectors": _recalls(runs, n_boot, seed), "gap": {}, "baseline": {}}
    for detector in [d for d in _CAPTIONS if (d, GOLD_VARIANT) in scores]:
        gold_g, gold_p = scores[detector, GOLD_VARIANT]
        block["gap"][detector] = {}
        for variant in [v for d, v in scores if d == detector]:
            g, p = scores[detector, variant]
            entry = {"gold": float(g.mean()), "predicted": float(p.mean()),
                     "drop": _paired(g - p, picked)}
            if variant != GOLD_VARIANT:
                entry["predicted_change"] = compare_mean_scores(
                    gold_p, p, n_boot=n_boot, seed=seed).to_dict()
                entry["gold_change"] = compare_mean_scores(
                    gold_g, g, n_boot=n_boot, seed=seed).to_dict()
            if variant not in (GOLD_VARIANT, BASELINE):
                entry["reduction"] = _reduction(g - p, gold_g - gold_p, picked)
            (block["baseline"] if variant == BASELINE else block["gap"][detector])[
                variant if variant != BASELINE else detector] = entry
    strong, deployed = workspace.STRONG_DETECTOR, workspace.DEPLOYED_DETECTOR
    if (strong, GOLD_VARIANT) in scores and (deployed, GOLD_VARIANT) in scores:
        drops = [np.subtract(*scores[d, GOLD_VARIANT]) for d in (deployed, strong)]
        block["strong_saves"] = _paired(drops[0] - drops[1], picked)
    chosen = scores[deployed, GOLD_VARIANT][1]
    for key, file, against in (
            ("threshold_effect", workspace.CAPTIONS_PREDICTED_DEFAULT, ULTRALYTICS_CONF),
            ("suppression_effect", workspace.CAPTIONS_PREDICTED_UNSUPPRESSED,
             "the chosen threshold without suppression")):
        effect = _hand_over_effect(runs, ts, images, chosen, picked, file, against)
        if effect is not None:
            block[key] = effect
    block["verdict"] = verdict(block)
    write_json(out, block)
    return block


def _scores(runs: list[Path], ts) -> tuple[dict, pd.Index]:
    """(detector, variant) -> (gold-input, predicted-input) scores, shape (K, images), on
    the test images every replicate captioned."""
    gold = gold_boxes(ts)
    found: dict = {}
    for run in runs:
        for folder in workspace.variants(run):  # the learned variants and the baseline
            for detector, file in _CAPTIONS.items():
                if (folder / file).exists() and (folder / workspace.CAPTIONS_GOLD).exists():
                    found.setdefault((detector, folder.name), []).append(
                        (pd.read_parquet(folder / workspace.CAPTIONS_GOLD),
                         pd.read_parquet(folder / file)))
    found = {key: pairs for key, pairs in found.items() if len(pairs) == len(runs)}
    if (workspace.DEPLOYED_DETECTOR, GOLD_VARIANT) not in found:
        raise MissingFileError(f"no gold-trained captions in every replicate of {runs[0]}: "
                               "run each replicate's pipeline first")
    common = sorted(set.intersection(*[set(c.image_id) for pairs in found.values()
                                       for pair in pairs for c in pair]))
    refs = references(ts, common)
    images = refs.index
    out = {}
    for key, pairs in found.items():
        out[key] = tuple(np.stack([per_image(pair[side], refs, gold, [])
                                   .loc[images, PRIMARY_METRIC].to_numpy(np.float64)
                                   for pair in pairs]) for side in (0, 1))
    return out, images


def _hand_over_effect(runs: list[Path], ts, images: pd.Index, chosen: np.ndarray,
                      picked: np.ndarray, file: str, against: float | str) -> dict | None:
    """The gold-trained model on the deployed detector's test output: the chosen hand-over
    (threshold and suppression, chosen on validation) minus another hand-over of the same
    output (captions `file`: ultralytics' default confidence, or the chosen threshold without
    suppression), replicate by replicate (the same detector and model on both sides)."""
    files = [workspace.path(r, "stage2") / GOLD_VARIANT / file for r in runs]
    if not all(f.exists() for f in files):
        return None
    refs, gold = references(ts, list(images)), gold_boxes(ts)
    default = np.stack([per_image(pd.read_parquet(f), refs, gold, []).loc[
        images, PRIMARY_METRIC].to_numpy(np.float64) for f in files])
    return {"against": ULTRALYTICS_CONF, "chosen": float(chosen.mean()),
            "default": float(default.mean()), "difference": _paired(chosen - default, picked)}


def _paired(values: np.ndarray, picked: np.ndarray) -> dict:
    """A per-image figure of each replicate (shape (K, images)), averaged: its interval over
    images and replicates."""
    per_image = values.mean(axis=0)
    boot = per_image[picked].mean(axis=1) if len(picked) else np.array([])
    entry = replicate_estimate(values.mean(axis=1), boot, images=values.shape[1])
    k = len(values)
    entry["rerun_same_call"] = rerun_agreement(
        entry["value"], entry["ci_low"], entry["ci_high"], entry["resampled"].get("df"),
        replicates=(k, k))
    return entry


def _reduction(drop: np.ndarray, reference: np.ndarray, picked: np.ndarray) -> dict:
    """1 - drop / the gold-trained model's drop, replicate r against replicate r. A replicate
    whose gold-trained model did not drop has no share; it is left out of the estimate and
    counted in `replicates_undefined`."""
    def share(a: np.ndarray, b: np.ndarray) -> float:
        return float(1 - a.mean() / b.mean()) if b.mean() > 0 else np.nan

    per_replicate = np.array([share(d, r) for d, r in zip(drop, reference, strict=True)])
    defined = np.isfinite(per_replicate)
    drop_per_image, reference_per_image = drop.mean(axis=0), reference.mean(axis=0)
    boot = [share(drop_per_image[d], reference_per_image[d]) for d in picked]
    entry = replicate_estimate(per_replicate[defined], boot, images=drop.shape[1])
    entry["replicates_undefined"] = int((~defined).sum())
    return entry


def _recalls(runs: list[Path], n_boot: int, seed: int) -> dict:
    """Each detector's recall at its operating threshold, across replicates."""
    out = {}
    for name, folder in workspace.DETECTORS.items():
        tables = [r / folder / "errors_test.parquet" for r in runs]
        if not all(t.exists() for t in tables):
            continue
        counts = [detector_counts(pd.read_parquet(table)) for table in tables]
        counts = [c.loc[c.gold > 0, ["correct", "gold"]] for c in counts]  # images with gold
        images = counts[0].index
        for c in counts[1:]:
            images = images.intersection(c.index)
        rows = np.stack([c.loc[images].to_numpy(np.float64) for c in counts])  # K x n x 2
        sums = rows[:, draws(len(images), n_boot, seed)].sum(axis=2)  # K x n_boot x 2
        boot = (sums[:, :, 0] / sums[:, :, 1]).mean(axis=0)
        out[name] = {"recall": replicate_estimate(rows[:, :, 0].sum(1) / rows[:, :, 1].sum(1),
                                                  boot, images=len(images))}
    return out


def _interval(entry: dict, key: str = "value", signed: bool = False,
              percent: bool = False) -> str:
    form = "{:.0%}" if percent else "{:+.3f}" if signed else "{:.3f}"
    return (f"{form.format(entry[key])} [{form.format(entry['ci_low'])}, "
            f"{form.format(entry['ci_high'])}]")


def _side(entry: dict) -> str:
    """Whether an interval of a difference excludes 0, in words; never a claim from fewer than
    `MIN_REPLICATES` replicates."""
    k = entry.get("resampled", {}).get("training_replicates", 1)
    if claim_blocked(k, k, images_only=True):  # replicates measured, but too few to claim
        return "not told apart"
    if entry["ci_low"] > 0:
        return "higher"
    if entry["ci_high"] < 0:
        return "lower"
    return "not told apart"


def verdict(block: dict) -> list[str]:
    """The verdict sentences over replicates, from the block alone."""
    deployed = workspace.DEPLOYED_DETECTOR
    gap = block["gap"].get(deployed, {})
    reference = gap.get(GOLD_VARIANT)
    if reference is None:
        return ["No gold-trained variant in every replicate: the cascade's gap cannot be "
                "stated."]
    k, metric, n = block["replicates"], block["metric"], block["test_images"]
    drop = reference["drop"]
    recall = block["detectors"].get(deployed, {}).get("recall")
    detector = (f" (recall {recall['value']:.2f}, sd {recall['sd']:.2f} across seeds)"
                if recall and recall.get("sd") is not None else "")
    share = drop["variance"]["training_share"]
    calls = [("the drop", drop)]  # each figure a sentence calls, for the rerun sentence
    lines = [f"Over {k} training replicates (seeds {', '.join(map(str, block['seeds']))}) of "
             f"every trained component, with the {deployed}{detector}, stage 2 trained on "
             f"gold layouts scores {reference['gold']:.3f} {metric} on perfect input and "
             f"{reference['predicted']:.3f} on the detector's output: a drop of "
             f"{_interval(drop)} (95% interval over {n} test images x {k} replicates; "
             + (f"training is {share:.0%} of its variance)." if share is not None else
                "training variance unmeasured).")]
    if claim_blocked(k, k, images_only=True):
        lines.append(f"With {k} replicates no difference is claimed (a claim needs "
                     f"{MIN_REPLICATES}: the training spread of {k} models rests on {k - 1} "
                     "degree of freedom); the intervals are shown.")
    unclear = _side(drop) != "higher"
    if unclear:
        lines.append("That drop cannot be told from zero over replicates and test images, so "
                     "no variant's share of it can be read either.")
    robust = {v: e for v, e in gap.items() if "reduction" in e}
    if robust and not unclear:
        best = max(robust, key=lambda v: robust[v]["predicted"])
        e = robust[best]
        change, lost = e["predicted_change"], e["gold_change"]
        calls.append((f"{best} on the detector's output", change))
        undefined = e["reduction"].get("replicates_undefined", 0)
        over = (f" (over the {k - undefined} replicates whose gold-trained model dropped)"
                if undefined else "")
        lead = (f"The robust variant scoring highest on the detector's output is {best}: "
                if len(robust) > 1 else
                f"The robust variant {best} (the only one trained), on the detector's output: ")
        lines.append(
            f"{lead}"
            f"{_interval(change, 'difference', signed=True)} against the gold-trained model "
            f"({_side(change)}), closing {_interval(e['reduction'], percent=True)} of the "
            f"gap{over}, with "
            f"{_interval(lost, 'difference', signed=True)} on perfect input "
            f"({_side(lost)}).")
    saves = block.get("strong_saves")
    if saves:
        calls.append(("the strong detector's saving", saves))
        side = _side(saves)
        lines.append(f"The strong detector saves {_interval(saves)} of the gold-trained "
                     f"model's drop ({side} {'from' if side == 'not told apart' else 'than'} "
                     "zero over replicates).")
    effect = block.get("threshold_effect")
    if effect:
        change = effect["difference"]
        calls.append(("the hand-over", change))
        lines.append(f"The hand-over chosen on validation scores {_interval(change)} against "
                     f"ultralytics' default confidence {effect['against']:g} on the {deployed}'s "
                     f"test output ({_side(change)}; the gold-trained model, replicate by "
                     "replicate).")
    effect = block.get("suppression_effect")
    if effect:
        change = effect["difference"]
        calls.append(("suppression", change))
        lines.append(f"Suppressing overlapping detections at the hand-over scores "
                     f"{_interval(change)} against the same threshold without suppression "
                     f"({_side(change)}; the gold-trained model, replicate by replicate).")
    base = block["baseline"].get(deployed)
    if base:
        versus = base["gold_change"]
        calls.append(("the baseline", versus))
        words = {"higher": "scores above the learned model", "lower":
                 "scores below the learned model", "not told apart":
                 "is not told apart from the learned model"}
        lines.append(f"On perfect input the rule baseline {words[_side(versus)]} "
                     f"({_interval(versus, 'difference', signed=True)}, baseline minus "
                     "learned).")
    repeat = _rerun_sentence(calls)
    if repeat:
        lines.append(repeat)
    return lines


def _rerun_sentence(calls: list[tuple[str, dict]]) -> str | None:
    """How likely a rerun makes each call of the sentences again (`rerun_same_call`), or None
    when no figure has it (too few replicates to claim)."""
    odds = [f"{name} {entry['rerun_same_call']:.0%}" for name, entry in calls
            if entry.get("rerun_same_call") is not None]
    if not odds:
        return None
    return ("How likely a rerun with other seeds and as many test images makes each call "
            "above again, if the true differences are the ones measured (Goodman 1992; near "
            "50%: the difference sits at this run's detection limit): " + ", ".join(odds)
            + ".")
