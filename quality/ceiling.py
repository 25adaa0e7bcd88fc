"""The human ceiling: each annotator's caption scored against the other annotators' captions of
the same image (leave one out) with the stage-2 caption metrics: the level a model that learns
from these people cannot be expected to beat."""

from __future__ import annotations

import pandas as pd

from annotate.caption_metrics import caption_scores
from annotate.schema import HUMAN, TableSet


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
