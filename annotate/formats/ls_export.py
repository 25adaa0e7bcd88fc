"""The four tables -> Label Studio tasks JSON (with model rows as pre-annotations) and the
labeling config those tasks are made for.

Control names are fixed (`image`, `label`, `caption`) so that tasks, config and importer agree.
Human annotations are written in the snapshot shape (`completed_by` with `email`), so that
`annotate import` reads an export back to the same tables.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pandas as pd

from annotate.runtime.errors import UserError
from annotate.tables.schema import HUMAN, MODEL_PREFIX, TableSet, is_model_source

IMAGE, LABEL, CAPTION = "image", "label", "caption"
PALETTE = ("#d63031", "#0984e3", "#00b894", "#fdcb6e", "#6c5ce7", "#e17055", "#00cec9", "#e84393")


def labeling_config(labels: list[str], caption: bool = True) -> str:
    """A Label Studio labeling config: RectangleLabels over the image plus a TextArea caption."""
    if not labels:
        raise UserError("labeling_config needs at least one label")
    items = "\n".join(f"    <Label value={quoteattr(name)} background="
                      f"{quoteattr(PALETTE[i % len(PALETTE)])}/>" for i, name in enumerate(labels))
    text = (f'\n  <TextArea name="{CAPTION}" toName="{IMAGE}" rows="2" editable="true" '
            'maxSubmissions="1" placeholder="How are the objects arranged?"/>' if caption else "")
    return (f'<View>\n  <Image name="{IMAGE}" value="${IMAGE}" zoom="true"/>\n'
            f'  <RectangleLabels name="{LABEL}" toName="{IMAGE}">\n{items}\n  </RectangleLabels>'
            f"{text}\n</View>\n")


def image_reference(path: str, document_root: str | os.PathLike | None) -> str:
    """A local-files URL when `path` lies under Label Studio's document root, else the path."""
    if document_root is not None:
        try:
            rel = Path(path).resolve().relative_to(Path(document_root).resolve())
        except ValueError:
            return path
        return f"/data/local-files/?d={rel.as_posix()}"
    return path


def _iso(value: object) -> str | None:
    return None if pd.isna(value) else pd.Timestamp(value).isoformat().replace("+00:00", "Z")


def _number(value: object) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def regions(boxes: pd.DataFrame, width: int, height: int, from_name: str = LABEL,
            to_name: str = IMAGE) -> list[dict]:
    """Boxes (absolute pixels of an image shown at `width` x `height`) as Label Studio
    `rectanglelabels` results, in percent of the image, each with its `score` when it has one.

    >>> boxes = pd.DataFrame({"object_id": ["p0"], "label": ["cat"], "x0": [10.0], "y0": [0.0],
    ...                       "x1": [30.0], "y1": [50.0], "score": [0.9]})
    >>> region = regions(boxes, 200, 100)[0]
    >>> region["value"]["x"], region["value"]["width"], region["value"]["height"]
    (5.0, 10.0, 50.0)
    """
    out = []
    for row in boxes.itertuples(index=False):
        region = {
            "id": row.object_id, "from_name": from_name, "to_name": to_name,
            "type": "rectanglelabels",
            "original_width": int(width), "original_height": int(height), "image_rotation": 0,
            "value": {"x": row.x0 / width * 100, "y": row.y0 / height * 100,
                      "width": (row.x1 - row.x0) / width * 100,
                      "height": (row.y1 - row.y0) / height * 100,
                      "rotation": 0, "rectanglelabels": [row.label]}}
        if not pd.isna(row.score):
            region["score"] = float(row.score)
        out.append(region)
    return out


def prediction_score(scores: pd.Series) -> float | None:
    """A prediction's task-level `score`: the mean confidence of its boxes (None without
    boxes or confidences). Label Studio sorts and filters tasks by it."""
    scores = scores.dropna()
    return float(scores.mean()) if len(scores) else None


def _texts(captions: pd.DataFrame) -> list[dict]:
    return [{"id": f"{CAPTION}-{i}", "from_name": CAPTION, "to_name": IMAGE, "type": "textarea",
             "value": {"text": [text]}} for i, text in enumerate(captions.caption)]


def to_tasks(ts: TableSet, predictions: pd.DataFrame | None = None,
             document_root: str | os.PathLike | None = None,
             include_annotations: bool = True) -> list[dict]:
    """One task per image. Human annotations (with their boxes and caption) are included unless
    `include_annotations` is False; model rows of the set and `predictions` (a boxes table)
    become one prediction per model version. Consensus and truth rows are not exported: they
    are derived or simulated, not something annotators made."""
    boxes = ts.boxes
    if predictions is not None and len(predictions):
        boxes = pd.concat([boxes, predictions], ignore_index=True)
    human_boxes = boxes[boxes.source == HUMAN].groupby(["image_id", "annotator"], sort=False)
    model_boxes = boxes[is_model_source(boxes.source)].groupby(["image_id", "source"], sort=False)
    caps = ts.captions
    human_caps = caps[caps.source == HUMAN].groupby(["image_id", "annotator"], sort=False)
    model_caps = caps[is_model_source(caps.source)].groupby(["image_id", "source"], sort=False)
    anns = ts.annotations[ts.annotations.source == HUMAN].groupby("image_id", sort=False)
    model_keys = pd.concat([
        boxes.loc[is_model_source(boxes.source), ["image_id", "source"]],
        caps.loc[is_model_source(caps.source), ["image_id", "source"]]]).drop_duplicates()
    model_by_image = model_keys.groupby("image_id", sort=False)["source"].apply(list).to_dict()
    empty_boxes, empty_caps = boxes.iloc[:0], caps.iloc[:0]

    def group(groups, key, empty):
        return groups.get_group(key) if key in groups.groups else empty

    has_split = "split" in ts.images.columns
    tasks = []
    for img in ts.images.itertuples(index=False):
        w, h = int(img.width), int(img.height)
        data = {IMAGE: image_reference(img.path, document_root), "image_id": img.image_id,
                "width": w, "height": h}
        if not pd.isna(img.group_id):
            data["group_id"] = img.group_id
        if has_split and not pd.isna(img.split):
            data["split"] = img.split
        task: dict = {"data": data, "meta": {} if pd.isna(img.sha256) else {"sha256": img.sha256}}
        if include_annotations and img.image_id in anns.groups:
            task["annotations"] = [{
                "completed_by": {"email": a.annotator},
                "result": regions(group(human_boxes, (img.image_id, a.annotator), empty_boxes),
                                   w, h)
                + _texts(group(human_caps, (img.image_id, a.annotator), empty_caps)),
                "was_cancelled": False, "ground_truth": False,
                "lead_time": _number(a.lead_time), "created_at": _iso(a.created_at),
            } for a in anns.get_group(img.image_id).itertuples(index=False)]
        preds = []
        for source in model_by_image.get(img.image_id, []):
            pb = group(model_boxes, (img.image_id, source), empty_boxes)
            result = regions(pb, w, h) + _texts(group(model_caps, (img.image_id, source),
                                                       empty_caps))
            pred = {"model_version": source[len(MODEL_PREFIX):], "result": result}
            if (score := prediction_score(pb.score)) is not None:
                pred["score"] = score
            preds.append(pred)
        if preds:
            task["predictions"] = preds
        tasks.append(task)
    return tasks
