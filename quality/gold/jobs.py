"""The consensus job: `quality consensus`, the pipeline's consensus step and the test fixtures
call `consensus_job`; nothing else writes the gold set, its flags or `consensus.json`."""

from __future__ import annotations

import os

from annotate.runtime.atomic import write_json, write_text
from annotate.tables import store
from annotate.tables.schema import CONSENSUS, TableSet
from quality.agreement.units import SAME_OBJECT_IOU
from quality.gold.consensus import TIE_KEEP, build_consensus

CONSENSUS_FLAGS = "consensus_flags.csv"
CONSENSUS_SUMMARY = "consensus.json"


def consensus_job(ts: TableSet, out: str | os.PathLike, *, iou: float = SAME_OBJECT_IOU,
                  tie: str = TIE_KEEP) -> dict:
    """The set plus consensus ("gold") boxes and captions, with its review flags.

    Parameters
    ----------
    ts : TableSet
        A set with several annotators per image; reviewers' `adjudicated` rows, where present,
        replace the vote on their images.
    out : path
        Folder for the set with consensus rows, `consensus_flags.csv` (ties and weak agreement
        to review) and `consensus.json`.
    iou : float
        IoU at which two annotators' boxes are the same object.
    tie : {"keep", "drop"}
        What to do with a box drawn by exactly half the annotators (flagged either way).

    Returns
    -------
    dict
        What `consensus.json` holds: consensus boxes and captions, box clusters, flag counts
        by kind, what adjudication overturned, and the settings.
    """
    result = build_consensus(ts, iou_threshold=iou, tie=tie)
    folder = store.save(result.tables, out)
    write_text(folder / CONSENSUS_FLAGS, result.flags.to_csv(index=False))
    figures = {"consensus_boxes": int((result.tables.boxes.source == CONSENSUS).sum()),
               "box_clusters": len(result.clusters),
               "consensus_captions": int((result.tables.captions.source == CONSENSUS).sum()),
               "flags": {str(k): int(n) for k, n in result.flags.kind.value_counts().items()},
               "adjudication": result.adjudication, "settings": {"iou": iou, "tie": tie}}
    write_json(folder / CONSENSUS_SUMMARY, figures)
    return figures
