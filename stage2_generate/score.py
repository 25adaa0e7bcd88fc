"""The score job: a captions table (or a COCO results file) against the human captions of the
same images, with bootstrap intervals over images."""

from __future__ import annotations

import os

import pandas as pd

from annotate.atomic import write_json
from annotate.caption_metrics import caption_scores
from annotate.schema import CONSENSUS, HUMAN, TRUTH, TableSet
from annotate.views import gold_boxes, split_images

from .content import content_score


def score_job(captions: pd.DataFrame, ts: TableSet, *, split: str | None = None,
              n_boot: int = 1000, seed: int = 0, json_path: str | os.PathLike | None = None
              ) -> dict:
    """BLEU, chrF, CIDEr-D, ROUGE-L (and the demo content score when the set has gold boxes)
    of `captions` on the images of `split` that have human captions; written to `json_path`."""
    images = split_images(ts, split)
    captions = captions[captions.image_id.isin(images.image_id)]
    human = ts.captions[(ts.captions.source == HUMAN) & ts.captions.image_id.isin(images.image_id)]
    refs = human.groupby("image_id").caption.agg(list)
    captions = captions[captions.image_id.isin(refs.index)]
    scores = caption_scores(captions.caption.astype(object).tolist(),
                            refs.loc[captions.image_id].tolist(), n_boot=n_boot, seed=seed)
    if ts.labels and ts.boxes.source.isin([CONSENSUS, TRUTH]).any():
        scores["content"] = content_score(captions, gold_boxes(ts), ts.labels, n_boot, seed)
    scores["n_images"] = len(captions)
    scores["resampled"] = {"unit": "image", "n_boot": n_boot}
    if json_path is not None:
        write_json(json_path, scores)
    return scores
