"""Sanity checks before trusting any figure: label counts and oddities, and whether the
stage-2 model can overfit a tiny batch (the first implementation check)."""

from __future__ import annotations

import os

import numpy as np

from annotate.runtime.atomic import write_json
from annotate.tables.schema import HUMAN, TableSet

TINY_SIDE_PX = 4
DUPLICATE_IOU = 0.95


def label_sanity(ts: TableSet) -> dict:
    """Counts a person should glance at: boxes per class and source, tiny boxes, boxes on the
    image border, near-identical boxes from one annotator, images without human boxes, short
    captions."""
    from annotate.metrics.geometry import iou

    boxes = ts.boxes
    human = boxes[boxes.source == HUMAN]
    size = ts.images.set_index("image_id")[["width", "height"]]
    w = human.image_id.map(size.width)
    h = human.image_id.map(size.height)
    tiny = ((human.x1 - human.x0) < TINY_SIDE_PX) | ((human.y1 - human.y0) < TINY_SIDE_PX)
    border = (human.x0 <= 0) | (human.y0 <= 0) | (human.x1 >= w) | (human.y1 >= h)
    pairs = human.reset_index(drop=True)
    merged = pairs.reset_index().merge(pairs.reset_index(), on=["image_id", "annotator", "label"])
    merged = merged[merged["index_x"] < merged["index_y"]]
    overlap = iou(merged[["x0_x", "y0_x", "x1_x", "y1_x"]].to_numpy(np.float64),
                  merged[["x0_y", "y0_y", "x1_y", "y1_y"]].to_numpy(np.float64))
    captions = ts.captions[ts.captions.source == HUMAN]
    words = captions.caption.astype(str).str.split().str.len()
    seen = ts.annotations[ts.annotations.source == HUMAN]
    with_boxes = set(zip(human.image_id, human.annotator, strict=True))
    empty = sum((i, a) not in with_boxes for i, a in zip(seen.image_id, seen.annotator,
                                                        strict=True))
    return {
        "boxes_per_class": human.label.value_counts().to_dict(),
        "boxes_per_source": boxes.source.value_counts().to_dict(),
        "unknown_labels": int((~human.label.isin(ts.labels)).sum()) if ts.labels else 0,
        "tiny_boxes": int(tiny.sum()),
        "boxes_on_border": int(border.sum()),
        "duplicate_boxes_same_annotator": int((overlap >= DUPLICATE_IOU).sum()),
        "annotations_without_boxes": int(empty),
        "captions_under_3_words": int((words < 3).sum()),
        "annotations": len(seen), "human_boxes": len(human), "human_captions": len(captions),
    }


def overfit_check(steps: int = 300, seed: int = 0) -> dict:
    """Train a tiny stage-2 model on 8 layout/caption pairs: a working model and pipeline reach
    a near-zero loss; one that cannot has a bug, not a data problem."""
    import torch

    from stage2_generate.model import build_model
    from stage2_generate.tokenizer import train_tokenizer

    layouts = [f"red circle x{k} y{k} x{k + 1} y{k + 1}" for k in range(8)]
    captions = [f"a red circle at position {k}" for k in range(8)]
    tokenizer = train_tokenizer(layouts + captions)
    torch.manual_seed(seed)
    model = build_model(tokenizer, "tiny", dropout=0.0)
    batch = tokenizer(layouts, return_tensors="pt", padding=True)
    labels = tokenizer(text_target=captions, return_tensors="pt", padding=True)["input_ids"]
    labels[labels == tokenizer.pad_token_id] = -100
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    final = loss.item()
    return {"examples": 8, "steps": steps, "first_loss": first, "final_loss": final,
            "passed": final < 0.05}


def sanity_job(ts: TableSet, json_path: str | os.PathLike | None = None, overfit: bool = True
               ) -> dict:
    """The sanity job: label sanity counts and the overfit-a-tiny-batch check.

    Parameters
    ----------
    ts : TableSet
        The set (usually the split set).
    json_path : path, optional
        Where `sanity.json` is written (the report shows it; it computes nothing).
    overfit : bool
        Train stage 2 on 8 examples until it reproduces them (a failure is a bug, not a data
        problem); about 10 s on a CPU.

    Returns
    -------
    dict
        Counts (empty captions, boxes per image, label-only leaks, ...) and, with `overfit`,
        `overfit_tiny_batch` (first and final loss, passed).
    """
    figures = label_sanity(ts)
    if overfit:
        figures["overfit_tiny_batch"] = overfit_check()
    if json_path is not None:
        write_json(json_path, figures)
    return figures

