"""Small hand-made table sets for the quality tests."""

from __future__ import annotations

from annotate.tables.schema import TableSet


def make_set(seen, boxes=(), captions=(), size=(200, 200), labels=()) -> TableSet:
    """seen: (image_id, annotator) pairs; boxes: (image_id, annotator, label, x0, y0, x1, y1);
    captions: (image_id, annotator, text). Every image is `size` pixels."""
    images = sorted({image for image, _ in seen})
    counter: dict = {}
    box_rows = []
    for image, annotator, label, x0, y0, x1, y1 in boxes:
        k = counter[image, annotator] = counter.get((image, annotator), -1) + 1
        box_rows.append({"image_id": image, "annotator": annotator, "object_id": f"o{k}",
                         "label": label, "x0": x0, "y0": y0, "x1": x1, "y1": y1,
                         "source": "human"})
    return TableSet(
        images=[{"image_id": i, "path": f"{i}.png", "width": size[0], "height": size[1]}
                for i in images],
        annotations=[{"image_id": i, "annotator": a, "source": "human", "lead_time": 10.0}
                     for i, a in seen],
        boxes=box_rows,
        captions=[{"image_id": i, "annotator": a, "caption": c, "source": "human"}
                  for i, a, c in captions],
        labels=list(labels)).validate()
