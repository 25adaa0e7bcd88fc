"""The score job: a captions table (or a COCO results file) against the human captions of the
same images, with bootstrap intervals over images."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from annotate.formats import jsonio
from annotate.formats.coco_import import RESULTS_SOURCE, id_text
from annotate.metrics.captions import TOKENIZATION, caption_scores
from annotate.runtime.atomic import write_json
from annotate.runtime.errors import UserError
from annotate.tables.schema import CONSENSUS, HUMAN, TRUTH, TableSet, coerce
from annotate.tables.views import gold_boxes, split_images
from stage2_generate.content import content_score


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
    """The scoring job: generated captions against the human captions of a set.

    Parameters
    ----------
    captions : pandas.DataFrame
        A captions table (`stage2-generate generate`, or a COCO results file read with
        `read_captions`); an image with several captions is scored on its first.
    ts : TableSet
        The set with the human captions (and gold boxes, for the content score).
    split : str, optional
        Only the images of this split.
    n_boot, seed : int
        Bootstrap resamples (images) and their seed.
    json_path : path, optional
        Where the figures are written.

    Returns
    -------
    dict
        coco-caption's BLEU-1..4, ROUGE-L and CIDEr-D (Java-free PTB tokens), sacreBLEU, chrF
        and, with gold boxes, the content score, each with its interval, and the images
        scored.
    """
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
