"""Adjudication through Label Studio: the units people disagree on most go to a review project
in which every annotator's version is a prediction (one `model_version` per annotator), a
reviewer picks or corrects one, and the decision comes back as `source="adjudicated"` rows that
consensus takes instead of the vote.

Label Studio Community has no review queue; a project of predictions is what every edition can
show. One task per image: the reviewer decides the whole image (boxes and caption), since units
of one image are not decided apart. Files in the review folder: `review.json` (what was pushed),
`pulled/` (the project's export as a table set), `adjudicated/` (the set with the decisions) and
`adjudication.json` (what came back, what it overturned); both records also go to MLflow.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from annotate.formats.ls_client import Connection, pull, push
from annotate.runtime.errors import UserError
from annotate.runtime.records import record_step
from annotate.tables import store
from annotate.tables.schema import ADJUDICATED, HUMAN, TableSet, model_source
from quality.agreement.reliability import ALPHA_KINDS, reliability
from quality.agreement.units import SAME_OBJECT_IOU, human_subset
from quality.gold.consensus import build_consensus

REVIEW, ADJUDICATION = "review", "adjudication"
PULLED, DECIDED = "pulled", "adjudicated"


def review_units(ts: TableSet, kind: str = "labels", top: int = 20,
                 iou: float = SAME_OBJECT_IOU) -> list[dict]:
    """The `top` units of `kind` with most disagreement (the reliability review list)."""
    if kind not in ALPHA_KINDS:
        raise UserError(f"kind must be one of {ALPHA_KINDS}, got {kind!r}")
    return reliability(ts, iou, n_boot=0, top=top).review[kind]


def review_set(ts: TableSet, image_ids: list[str]) -> TableSet:
    """`image_ids` with each annotator's boxes and caption as a model (`model:<annotator>`),
    so a push shows every version as a prediction and no annotation."""
    part = ts.subset(image_ids)

    def as_models(frame: pd.DataFrame) -> pd.DataFrame:
        human = frame[frame.source == HUMAN]
        return human.assign(source=human.annotator.map(model_source).astype(object))

    return TableSet(part.images, None, as_models(part.boxes), as_models(part.captions),
                    ts.labels, dict(ts.meta))


def adjudicate_push(connection: Connection, ts: TableSet, project: str, out: str | os.PathLike,
                    document_root: str | None = None, *, kind: str = "labels", top: int = 20,
                    iou: float = SAME_OBJECT_IOU, tracking_uri: str | None = None) -> dict:
    """Push the images of the `top` most disputed units to `project` for review; record it in
    `out/review.json` (and MLflow)."""
    units = review_units(ts, kind, top, iou)
    if not units:
        raise UserError(f"no {kind} unit has any disagreement: nothing to adjudicate")
    images = list(dict.fromkeys(str(u["image_id"]) for u in units))
    summary = push(connection, review_set(ts, images), project, document_root)
    record = {"project": project, "project_id": summary.project_id, "units": len(units),
              "images": len(images), "tasks_created": summary.tasks_created,
              "tasks_existing": summary.tasks_existing, "image_ids": images, "review": units,
              "settings": {"kind": kind, "top": top, "iou": iou, "url": connection.url,
                           "project": project}}
    return record_step(out, REVIEW, record, tracking_uri)


def decisions(pulled: TableSet, image_ids: list[str]) -> tuple[TableSet, dict]:
    """The reviewers' annotations on `image_ids` as adjudicated rows: one per image, the latest
    when several reviewers submitted (counted)."""
    done = pulled.annotations[(pulled.annotations.source == HUMAN)
                              & pulled.annotations.image_id.isin(image_ids)]
    latest = done.sort_values(["image_id", "created_at"], na_position="first").drop_duplicates(
        "image_id", keep="last")
    chosen = human_subset(pulled, latest)
    rows = TableSet(chosen.images, *(chosen.table(name).assign(source=ADJUDICATED)
                                     for name in ("annotations", "boxes", "captions")),
                    labels=pulled.labels)
    return rows, {"reviewed_images": len(latest), "reviews": len(done),
                  "several_reviews": int((done.groupby("image_id").size() > 1).sum()),
                  "reviewers": sorted(latest.annotator.unique().tolist())}


def with_decisions(ts: TableSet, decided: TableSet) -> TableSet:
    """`ts` with the decisions added; earlier decisions on the same images are replaced."""
    again = decided.annotations.image_id.unique()

    def merged(name: str) -> pd.DataFrame:
        frame = ts.table(name)
        stale = (frame.source == ADJUDICATED) & frame.image_id.isin(again)
        return pd.concat([frame[~stale], decided.table(name)], ignore_index=True)

    return TableSet(ts.images, merged("annotations"), merged("boxes"), merged("captions"),
                    ts.labels, dict(ts.meta)).validate()


def adjudicate_pull(connection: Connection, ts: TableSet, out: str | os.PathLike, *,
                    images_root: str | None = None, timeout: float = 600,
                    tracking_uri: str | None = None, progress: bool = True) -> dict:
    """Pull the review project recorded in `out/review.json`, write the set with the decisions
    to `out/adjudicated` and what they changed to `out/adjudication.json` (and MLflow)."""
    out = Path(out)
    path = out / f"{REVIEW}.json"
    try:
        review = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no review record; push the review first (quality adjudicate "
                        "DIR --top N --project ... --out FOLDER)") from None
    pulled, summary, _ = pull(connection, review["project_id"], out / PULLED, images_root,
                              timeout, progress)
    decided, counts = decisions(pulled, review["image_ids"])
    tables = with_decisions(ts, decided)
    store.save(tables, out / DECIDED)
    effect = build_consensus(tables, iou_threshold=review["settings"]["iou"]).adjudication
    record = {"project_id": review["project_id"], "pushed_images": len(review["image_ids"]),
              "units": review["units"], **counts,
              **{k: v for k, v in effect.items() if k != "images"},
              "out": str(out / DECIDED), "import": summary.to_dict(),
              "settings": review["settings"]}
    return record_step(out, ADJUDICATION, record, tracking_uri)


__all__ = ["adjudicate_pull", "adjudicate_push", "decisions", "review_set", "review_units",
           "with_decisions"]
