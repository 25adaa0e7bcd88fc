"""Stage 2 on the test images: per image the gold layout and the detector's layout side by
side, the caption each variant wrote from each with its CIDEr-D (scored as robustness.json
scores them), the human captions; sorted by the gold-trained variant's drop, one view per
attribution bucket (the stage-1 errors the image contains)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from annotate.tables.schema import TableSet
from quality.agreement.units import COORDS
from quality.cascade.robustness import error_buckets
from quality.cascade.scoring import per_image, references
from quality.gallery.detector import LEGEND, error_kinds
from quality.gallery.model import Box, Card, Panel, View, grouped, plain, slug

METRIC = "cider_d"


def caption_views(variants: dict[str, tuple[pd.DataFrame, pd.DataFrame]],
                  errors: pd.DataFrame, predicted: pd.DataFrame, gold: pd.DataFrame,
                  ts: TableSet, detector: str) -> tuple[list[View], dict]:
    """Views of the test images' captions from gold and from the detector's layouts.

    Parameters
    ----------
    variants : dict
        Variant name -> (captions from gold layouts, captions from the detector's layouts);
        the first one orders the images (its drop, gold minus detector input).
    errors, predicted, gold : pd.DataFrame
        The detector's test error table and boxes, and the gold boxes.
    ts : TableSet
        The split set (human captions are the references).
    detector : str
        The detector's name, for headings.

    Returns
    -------
    views : list of View
        All test images, then one view per attribution bucket.
    figures : dict
        Images per bucket (as robustness.json's attribution of the first variant).
    """
    first = next(iter(variants))
    common = sorted(set(variants[first][0].image_id) & set(variants[first][1].image_id))
    refs = references(ts, common)
    scores = {}
    for name, (from_gold, from_detector) in variants.items():
        scores[name] = (per_image(from_gold, refs, gold, ts.labels),
                        per_image(from_detector, refs, gold, ts.labels))
    reference = scores[first]
    drop = (reference[0][METRIC] - reference[1][METRIC].reindex(reference[0].index)
            ).sort_values(ascending=False, kind="stable")
    bucket = error_buckets(errors, drop.index)
    shown = set(drop.index)
    layouts = _layouts(errors, predicted[predicted.image_id.isin(shown)],
                       gold[gold.image_id.isin(shown)])
    cards = {}
    for image_id, value in drop.items():
        rows = []
        for name, (from_gold, from_detector) in scores.items():
            g = from_gold.loc[image_id] if image_id in from_gold.index else None
            d = from_detector.loc[image_id] if image_id in from_detector.index else None
            rows.append([name, _said(g), _said(d)])
        gold_panel, detector_panel = layouts.get(image_id, ([], []))
        cards[image_id] = Card(
            title=f"image {image_id}", key=str(image_id),
            panels=[Panel(str(image_id), "gold layout", gold_panel),
                    Panel(str(image_id), f"{detector}'s layout", detector_panel)],
            figures=[(f"{first}: {METRIC} drop", float(value)),
                     ("stage-1 errors", bucket[image_id])],
            notes=[f"people: {c}" for c in refs.get(image_id, [])],
            table=(["variant", f"from gold ({METRIC})", f"from the detector ({METRIC})"], rows))
    intro = (f"Every test image, largest drop of '{first}' first ({METRIC} from the gold layout "
             f"minus {METRIC} from the {detector}'s layout; every caption scored against all "
             "human captions, as robustness.json).")
    views = [View("stage2/all", f"Stage 2 on the {detector}'s layouts", intro, "images",
                  len(drop), list(cards.values()), legend=LEGEND, link="stage2")]
    counts = bucket.value_counts()
    for name in sorted(counts.index):
        ids = bucket.index[bucket == name]
        views.append(View(f"stage2/bucket-{slug(name)}",
                          f"Stage 2, images whose stage-1 errors are: {name}",
                          f"The attribution bucket '{name}' of robustness.json: test images "
                          f"whose {detector} errors are of this type ('several': more than "
                          "one type); largest drop first.", "images", len(ids),
                          [cards[i] for i in ids], legend=LEGEND, link=f"bucket:{name}"))
    return views, {"buckets": {str(k): int(v) for k, v in counts.items()},
                   "images": len(drop), "ordered_by": first}


def _said(row) -> str:
    if row is None:
        return "(no caption)"
    return f"{row.caption} ({row[METRIC]:.2f})"


def _layouts(errors: pd.DataFrame, predicted: pd.DataFrame, gold: pd.DataFrame
             ) -> dict[str, tuple[list[Box], list[Box]]]:
    """Per image: the gold boxes (red where the detector missed them) and the detector's
    boxes coloured by error kind, with their confidence."""
    kind = error_kinds(errors)
    missed = set(zip(plain(errors.image_id[kind == "missed"]),
                     plain(errors.gold_object_id[kind == "missed"]), strict=True))
    by_prediction = dict(zip(zip(plain(errors.image_id), plain(errors.pred_object_id),
                                 strict=True), kind, strict=True))
    gold_kind = np.array(["missed" if key in missed else "gold" for key in zip(
        plain(gold.image_id), plain(gold.object_id), strict=True)], dtype=object)
    pred_kind = np.array([by_prediction.get(key, "correct") for key in zip(
        plain(predicted.image_id), plain(predicted.object_id), strict=True)], dtype=object)
    label = gold.label.astype(str).to_numpy(object)
    gold_rows = grouped(gold.image_id, *[gold[c] for c in COORDS], gold_kind, label,
                        "gold " + label + np.where(gold_kind == "missed",
                                                   " (missed by the detector)", ""))
    score = np.array(["" if pd.isna(v) else f" {v:.2f}" for v in plain(predicted.score)],
                     dtype=object)
    text = predicted.label.astype(str).to_numpy(object) + score
    pred_rows = grouped(predicted.image_id, *[predicted[c] for c in COORDS], pred_kind, text,
                        np.char.replace(pred_kind.astype(str), "_", " ").astype(object)
                        + ": " + text)
    return {image_id: ([Box(*r) for r in gold_rows.get(image_id, [])],
                       [Box(*r) for r in pred_rows.get(image_id, [])])
            for image_id in set(gold_rows) | set(pred_rows)}
