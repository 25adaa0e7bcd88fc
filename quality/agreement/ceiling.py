"""The human ceiling: each annotator's caption scored against the other annotators' captions of
the same image (leave one out) with the stage-2 caption metrics: the level a model that learns
from these people cannot be expected to beat."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from annotate.metrics.captions import bleu_from_stats, bleu_stats, caption_scores, cider_d, rouge_l
from annotate.stats.bootstrap import draws, percentile_interval
from annotate.tables.schema import HUMAN, TableSet


def leave_one_out(captions: pd.DataFrame) -> pd.DataFrame:
    """One row per human caption that has at least one other caption on its image: image_id,
    annotator, hypothesis, references (the other annotators' captions)."""
    human = captions[captions.source == HUMAN][["image_id", "annotator", "caption"]]
    human = human.astype({"caption": object}).sort_values(["image_id", "annotator"])
    pooled = human.groupby("image_id").agg(all_annotators=("annotator", list),
                                          all_captions=("caption", list))
    rows = human.join(pooled, on="image_id")
    rows = rows[rows.all_captions.str.len() > 1]
    rows["references"] = [[c for a, c in zip(names, caps, strict=True) if a != me]
                          for me, names, caps in zip(rows.annotator, rows.all_annotators,
                                                     rows.all_captions, strict=True)]
    return rows.rename(columns={"caption": "hypothesis"})[
        ["image_id", "annotator", "hypothesis", "references"]].reset_index(drop=True)


def human_ceiling(ts: TableSet, n_boot: int = 1000, seed: int = 0) -> dict:
    """Caption metrics of every annotator against the others: pooled over all annotators, and
    per annotator, each with bootstrap intervals that resample images (an image's captions are
    drawn together: they share references and are not independent)."""
    items = leave_one_out(ts.captions)
    out = {"n_items": len(items), "resampled": {"unit": "image", "n_boot": n_boot},
           "pooled": caption_scores(items.hypothesis.tolist(), items.references.tolist(),
                                    n_boot=n_boot, seed=seed, groups=items.image_id.tolist()),
           "annotators": {}}
    for name, group in items.groupby("annotator"):
        scores = caption_scores(group.hypothesis.tolist(), group.references.tolist(),
                                n_boot=n_boot, seed=seed, groups=group.image_id.tolist())
        out["annotators"][name] = {"n_images": len(group), **scores}
    return out


def equal_terms(ts: TableSet, models: dict[str, pd.DataFrame], image_ids, n_boot: int = 1000,
                seed: int = 0) -> dict:
    """People and models scored on equal terms: on the same images (those with two or more
    human captions and a caption from every model), each hypothesis against the same
    leave-one-out reference set (the k - 1 captions of the other annotators), all in one
    corpus, so CIDEr-D's document frequencies are the same for everyone.

    For each metric: the people's score, each model's, and model - people with a paired
    bootstrap interval that resamples images. A model scored against all k references (as
    `robustness.compare` does) has one reference more than a person and reads higher.
    """
    human = ts.captions[(ts.captions.source == HUMAN) & ts.captions.image_id.isin(image_ids)]
    items = leave_one_out(human)
    hypotheses = {}
    for name, captions in models.items():
        first = captions.drop_duplicates("image_id").set_index("image_id").caption
        hypotheses[name] = items.image_id.map(first)
    if hypotheses:
        items = items[pd.concat(hypotheses, axis=1).notna().all(axis=1).to_numpy()]
        hypotheses = {name: h[items.index].astype(str).tolist() for name, h in hypotheses.items()}
    refs = items.references.tolist()
    image = pd.factorize(items.image_id)[0]
    n_images = int(image.max()) + 1 if len(image) else 0
    resampled = draws(n_images, n_boot, seed) if n_images else []
    weights = np.stack([np.bincount(d, minlength=n_images)[image] for d in resampled]) \
        if len(resampled) else np.zeros((0, len(items)))
    people = _item_metrics(items.hypothesis.tolist(), refs)
    out: dict = {"n_images": n_images, "n_items": len(items),
                 "references": "leave one out: the other annotators' captions (k - 1)",
                 "resampled": {"unit": "image", "paired": True, "count": n_images,
                               "n_boot": n_boot},
                 "metrics": {}}
    for metric, (value, boot_people) in _aggregate(people, weights).items():
        entry = {"people": _interval(value, boot_people), "models": {}}
        for name, hyps in hypotheses.items():
            score, boot_model = _aggregate(_item_metrics(hyps, refs), weights)[metric]
            difference = _interval(score - value, boot_model - boot_people)
            entry["models"][name] = {**_interval(score, boot_model),
                                     "minus_people": difference["score"],
                                     "minus_people_ci_low": difference["ci_low"],
                                     "minus_people_ci_high": difference["ci_high"]}
        out["metrics"][metric] = entry
    return out


def _item_metrics(hyps: list[str], refs: list[list[str]]) -> dict[str, np.ndarray]:
    """Per-item CIDEr-D and ROUGE-L, and BLEU's per-item statistics (BLEU-4 is a corpus
    figure: it is aggregated from summed statistics)."""
    if not hyps:
        return {"cider_d": np.zeros(0), "rouge_l": np.zeros(0), "bleu_4": np.zeros((0, 10))}
    return {"cider_d": cider_d(hyps, refs), "rouge_l": rouge_l(hyps, refs),
            "bleu_4": bleu_stats(hyps, refs)}


def _aggregate(per_item: dict[str, np.ndarray], weights: np.ndarray
               ) -> dict[str, tuple[float, np.ndarray]]:
    """Each metric's corpus value and its bootstrap replicates (rows of `weights`)."""
    out = {}
    for metric, values in per_item.items():
        if metric == "bleu_4":
            value = float(bleu_from_stats(values.sum(axis=0))[-1]) if len(values) else math.nan
            boot = np.array([bleu_from_stats(w @ values)[-1] for w in weights])
        else:
            value = float(values.mean()) if len(values) else math.nan
            boot = weights @ values / max(len(values), 1)
        out[metric] = (value, boot)
    return out


def _interval(value: float, boot: np.ndarray) -> dict:
    low, high = percentile_interval(boot)
    return {"score": float(value), "ci_low": low, "ci_high": high}
