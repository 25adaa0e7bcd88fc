"""The score job: a captions table (or a COCO results file) against the human captions of the
same images, with bootstrap intervals over images."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from annotate import jsonio
from annotate.atomic import write_json
from annotate.caption_metrics import TOKENIZATION, caption_scores
from annotate.coco_import import RESULTS_SOURCE, id_text
from annotate.errors import UserError
from annotate.schema import CONSENSUS, HUMAN, TRUTH, TableSet, coerce
from annotate.views import gold_boxes, split_images

from .content import content_score


def read_captions(path: str | os.PathLike) -> pd.DataFrame:
    """A captions table (Parquet, from `generate`) or a COCO captioning results file (a JSON
    list of {"image_id", "caption"}, what coco-caption scores) as a captions table."""
    path = Path(path)
    if path.suffix != ".json":
        return coerce("captions", pd.read_parquet(path))
    rows = jsonio.read_records(path, "a COCO results list of {image_id, caption} objects")
    bad = [i for i, r in enumerate(rows)
           if id_text(r.get("image_id")) is None or not isinstance(r.get("caption"), str)]
    if bad:
        raise UserError(f"{path}: {len(bad)} results without an image_id or a text caption "
                        f"(first at index {bad[0]})")
    return coerce("captions", pd.DataFrame({
        "image_id": [id_text(r["image_id"]) for r in rows], "annotator": RESULTS_SOURCE,
        "caption": [r["caption"] for r in rows], "source": RESULTS_SOURCE}))


def score_job(captions: pd.DataFrame, ts: TableSet, *, split: str | None = None,
              n_boot: int = 1000, seed: int = 0, json_path: str | os.PathLike | None = None
              ) -> dict:
    """coco-caption's BLEU-1..4, ROUGE-L and CIDEr-D, sacreBLEU and chrF (and the demo content
    score when the set has gold boxes) of `captions` on the images of `split` that have human
    captions; written to `json_path`. An image with several captions is scored on its first."""
    images = split_images(ts, split)
    captions = captions[captions.image_id.isin(images.image_id)]
    human = ts.captions[(ts.captions.source == HUMAN) & ts.captions.image_id.isin(images.image_id)]
    refs = human.groupby("image_id").caption.agg(list)
    captions = captions[captions.image_id.isin(refs.index)].drop_duplicates("image_id")
    scores = caption_scores(captions.caption.astype(object).tolist(),
                            refs.loc[captions.image_id].tolist(), n_boot=n_boot, seed=seed)
    if ts.labels and ts.boxes.source.isin([CONSENSUS, TRUTH]).any():
        scores["content"] = content_score(captions, gold_boxes(ts), ts.labels, n_boot, seed)
    scores["n_images"] = len(captions)
    scores["tokenization"] = TOKENIZATION
    scores["resampled"] = {"unit": "image", "n_boot": n_boot}
    if json_path is not None:
        write_json(json_path, scores)
    return scores
