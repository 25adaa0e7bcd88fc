"""The four tables -> COCO instances + COCO captions (import: `coco_import`).

Standard COCO has no notion of annotators, so export adds three keys that COCO tools ignore:
`annotator`, `source` and `object_id` on each annotation (and `score` for model rows), plus a
top-level `twostage_annotations` list saying who looked at which image. Import reads them back
when present; a plain COCO file becomes one annotator, "coco", who saw every image.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from annotate.formats.coco_import import PLAIN_COCO_ANNOTATOR, from_coco
from annotate.tables.schema import TableSet

__all__ = ["PLAIN_COCO_ANNOTATOR", "from_coco", "to_coco"]


def to_coco(ts: TableSet) -> tuple[dict, dict]:
    """(instances, captions) COCO dicts for the whole set; category ids follow the label map."""
    img = ts.images.reset_index(drop=True)
    coco_id = pd.Series(np.arange(1, len(img) + 1), index=img.image_id)
    images = [{"id": int(i), "file_name": r.path, "width": int(r.width), "height": int(r.height),
               "image_id": r.image_id,
               **({} if pd.isna(r.group_id) else {"group_id": r.group_id})}
              for i, r in zip(coco_id, img.itertuples(index=False), strict=True)]
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(ts.labels)]
    cat_id = {name: i + 1 for i, name in enumerate(ts.labels)}
    b = ts.boxes
    w, h = (b.x1 - b.x0).to_numpy(), (b.y1 - b.y0).to_numpy()
    frame = pd.DataFrame({
        "id": np.arange(1, len(b) + 1), "image_id": b.image_id.map(coco_id).to_numpy(),
        "category_id": b.label.map(cat_id).to_numpy(),
        "bbox": np.stack([b.x0, b.y0, w, h], axis=1).tolist() if len(b) else [],
        "area": (b["area"].fillna(pd.Series(w * h, index=b.index)).to_numpy(float)
                 if "area" in b.columns else w * h),
        "iscrowd": 0, "annotator": b.annotator.to_numpy(object),
        "source": b.source.to_numpy(object), "object_id": b.object_id.to_numpy(object),
        "score": b.score.to_numpy(float)})
    annotations = [{k: v for k, v in rec.items() if not (k == "score" and np.isnan(v))}
                   for rec in frame.to_dict("records")]
    seen = ts.annotations.assign(image_id=ts.annotations.image_id.map(coco_id))
    seen = seen.assign(created_at=seen.created_at.map(
        lambda t: None if pd.isna(t) else t.isoformat()), lead_time=seen.lead_time.astype(object)
        .where(seen.lead_time.notna(), None))
    instances = {"info": {"description": "twostage export"}, "images": images,
                 "categories": categories, "annotations": annotations,
                 "twostage_annotations": seen.to_dict("records")}
    c = ts.captions
    captions = {"info": instances["info"], "images": images, "annotations": [
        {"id": i + 1, "image_id": int(coco_id[r.image_id]), "caption": r.caption,
         "annotator": r.annotator, "source": r.source}
        for i, r in enumerate(c.itertuples(index=False))]}
    return instances, captions
