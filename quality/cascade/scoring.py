"""Per-image caption scores against the human captions: what the threshold choice, robustness
and `quality compare` all score with (one definition, so their figures agree)."""

from __future__ import annotations

import pandas as pd

from annotate.metrics.captions import cider_d, rouge_l
from annotate.tables.schema import HUMAN, TableSet
from stage2_generate.content import content_scores

#: The metrics scored per image (BLEU is a corpus metric: `annotate.metrics.captions`).
ITEM_METRICS = ("cider_d", "rouge_l", "content")


def references(ts: TableSet, image_ids) -> pd.Series:
    """Human captions per image (image_id -> list), for the given images that have any."""
    human = ts.captions[(ts.captions.source == HUMAN) & ts.captions.image_id.isin(image_ids)]
    return human.groupby("image_id").caption.agg(lambda c: [str(x) for x in c])


def per_image(captions: pd.DataFrame, refs: pd.Series, gold_boxes: pd.DataFrame,
              labels: list[str]) -> pd.DataFrame:
    """Per image with references: CIDEr-D, ROUGE-L and (with a label map) content F1."""
    captions = captions[captions.image_id.isin(refs.index)].drop_duplicates("image_id")
    hyps = captions.caption.astype(str).tolist()
    ref_lists = refs.loc[captions.image_id].tolist()
    out = pd.DataFrame({"image_id": captions.image_id.to_numpy(), "caption": hyps,
                        "cider_d": cider_d(hyps, ref_lists), "rouge_l": rouge_l(hyps, ref_lists)})
    if labels:
        content = content_scores(captions, gold_boxes, labels)
        out["content"] = content.f1.to_numpy()
    return out.set_index("image_id")


def detector_counts(errors: pd.DataFrame) -> pd.DataFrame:
    """Per image of a stage-1 error table: correct detections (matched, right label), gold
    objects, predictions (what recall and precision are ratios of sums of)."""
    return pd.DataFrame({
        "correct": (errors.status == "matched").groupby(errors.image_id).sum(),
        "gold": errors.gold_object_id.notna().groupby(errors.image_id).sum(),
        "predicted": errors.pred_object_id.notna().groupby(errors.image_id).sum()})
