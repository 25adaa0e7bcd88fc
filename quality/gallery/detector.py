"""A detector against gold on the test images: the images behind each error type, each class
of the error table and each cell of the confusion matrix, gold and predicted boxes drawn (the
prediction's confidence on its label)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from annotate.tables.schema import TableSet
from quality.agreement.units import COORDS
from quality.cascade.robustness import MISLOCATED_IOU
from quality.cascade.summary import MISSED, SPURIOUS, confusion
from quality.gallery.model import Box, Card, Panel, View, grouped, slug

#: An error row's kind on the pages: its status, with matched boxes that overlap their gold box
#: less than `MISLOCATED_IOU` called mislocated (as the report's rates and buckets do).
ERROR_KINDS = ("missed", "spurious", "wrong_label", "mislocated")
LEGEND = ("gold", "correct", "mislocated", "wrong_label", "spurious", "missed")


def error_kinds(errors: pd.DataFrame) -> np.ndarray:
    """Each error row's kind: correct, mislocated, wrong_label, spurious or missed."""
    mislocated = (errors.status == "matched") & (errors.iou < MISLOCATED_IOU)
    return np.where(mislocated, "mislocated", np.where(errors.status == "matched", "correct",
                                                       errors.status.astype(object)))


def detector_views(name: str, errors: pd.DataFrame, predicted: pd.DataFrame, gold: pd.DataFrame,
                   ts: TableSet) -> tuple[list[View], dict]:
    """Views of one detector's test errors: per error type, per class, per confusion cell.

    Parameters
    ----------
    name : str
        The detector ("deployed detector").
    errors : pd.DataFrame
        Its error table (`stage1-detect evaluate`).
    predicted, gold : pd.DataFrame
        The boxes the error table's `pred_object_id` and `gold_object_id` name.
    ts : TableSet
        The split set (its labels order the confusion matrix as the report's).

    Returns
    -------
    views : list of View
    figures : dict
        Objects per error type and the confusion matrix (`rows`, `columns`, `counts`), as the
        report's (`quality.cascade.summary.confusion`).
    """
    errors = errors.reset_index(drop=True)
    kind = error_kinds(errors)
    matrix = confusion(errors, list(ts.labels))
    row = errors.gold_label.astype(object).where(errors.gold_label.notna(), SPURIOUS).to_numpy()
    column = errors.pred_label.astype(object).where(errors.pred_label.notna(), MISSED).to_numpy()
    klass = np.where(kind == "spurious", errors.pred_label.astype(object),
                     errors.gold_label.astype(object))
    drawn = _boxes(errors, kind, predicted, gold)
    prefix = f"stage1/{slug(name)}"

    def view(key: str, link: str, title: str, intro: str, mask: np.ndarray) -> View:
        focus = set(errors.index[mask])
        per_image = pd.Series(1, index=errors.image_id[mask]).groupby(level=0).sum()
        order = per_image.sort_values(ascending=False, kind="stable")
        cards = [_card(image_id, drawn.get(image_id), focus, int(n), name)
                 for image_id, n in order.items()]
        return View(f"{prefix}/{key}", title, intro, "objects", int(mask.sum()), cards,
                    legend=LEGEND, link=f"detector:{name}:{link}")

    views = [view(f"type-{k}", f"type:{k}", f"{name}: {k.replace('_', ' ')}",
                  _TYPE_INTRO[k], kind == k) for k in ERROR_KINDS if (kind == k).any()]
    is_error = kind != "correct"
    views.insert(0, view("errors", "errors", f"{name}: every error",
                         "Every test image with an error of any type, most errors first.",
                         is_error))
    for label in sorted(set(klass[is_error].astype(str))):
        views.append(view(f"class-{slug(label)}", f"class:{label}", f"{name}: errors on {label}",
                          f"Every error whose class is '{label}' (the gold class; a spurious "
                          "box's predicted class), errors of every type.",
                          is_error & (klass == label)))
    for r in matrix["rows"]:
        for c in matrix["columns"]:
            mask = (row == r) & (column == c)
            if mask.any():
                views.append(view(f"cell-{slug(r)}-{slug(c)}", f"cell:{r}|{c}",
                                  f"{name}: gold {r}, predicted {c}",
                                  "One cell of the confusion matrix: objects whose gold class "
                                  f"is '{r}' and predicted class '{c}' (the objects of the "
                                  "cell drawn thick).", mask))
    figures = {"types": {k: int((kind == k).sum()) for k in ERROR_KINDS},
               "confusion": matrix}
    return views, figures


_TYPE_INTRO = {
    "missed": "Gold objects no prediction matched (dashed red), most per image first.",
    "spurious": "Predictions that match no gold object (red).",
    "wrong_label": "Predictions on a gold object with another class (purple).",
    "mislocated": f"Predictions with the right class whose overlap with their gold box is below "
                  f"IoU {MISLOCATED_IOU} (orange).",
}


def _boxes(errors: pd.DataFrame, kind: np.ndarray, predicted: pd.DataFrame,
           gold: pd.DataFrame) -> dict[str, list]:
    """Per image the boxes to draw: each gold object (dashed; red where missed) and each
    prediction coloured by its error kind, with the error row it belongs to."""
    key = ["image_id", "object_id"]
    table = errors.assign(kind=kind, row=errors.index)
    gold_rows = table[table.gold_object_id.notna()].merge(
        gold[[*key, *COORDS]], left_on=["image_id", "gold_object_id"], right_on=key)
    gold_rows = gold_rows.assign(
        kind=np.where(gold_rows.kind == "missed", "missed", "gold"),
        text="gold: " + gold_rows.gold_label.astype(str),
        title="gold " + gold_rows.gold_label.astype(str))
    pred_rows = table[table.pred_object_id.notna()].merge(
        predicted[[*key, *COORDS]], left_on=["image_id", "pred_object_id"], right_on=key)
    score = pred_rows.score.map(lambda s: "" if pd.isna(s) else f" {s:.2f}")
    pred_rows = pred_rows.assign(
        text=pred_rows.pred_label.astype(str) + score,
        title=(pred_rows.kind.str.replace("_", " ") + ": predicted "
               + pred_rows.pred_label.astype(str) + score + np.where(
                   pred_rows.iou.notna(), " (IoU " + pred_rows.iou.round(2).astype(str) + ")",
                   "")))
    both = pd.concat([gold_rows, pred_rows], ignore_index=True)
    return grouped(both.image_id, *[both[c] for c in (*COORDS, "kind", "text", "title", "row")])


def _card(image_id: str, boxes: list | None, focus: set, n: int, name: str) -> Card:
    drawn = [Box(*row[:7], focus=row[7] in focus) for row in boxes or []]
    return Card(title=f"image {image_id}", key=str(image_id),
                panels=[Panel(str(image_id), f"gold and {name}", drawn)],
                figures=[("objects of this view", n)])
