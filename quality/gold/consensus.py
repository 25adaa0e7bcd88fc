"""Consensus ("gold") boxes and captions from several annotators, with ties and weak agreement
flagged rather than hidden.

- A box cluster (see `units`) is kept when a strict majority of the annotators who completed the
  image drew it; exactly half is a tie, kept by default (`tie="keep"`) and flagged. Its box is the
  coordinate-wise median of the members (robust to one sloppy annotator), its label the majority
  (a tie goes to the label more frequent in the whole set, flagged), its `score` the share of
  annotators who drew it.
- Captions: every human caption stays as a reference; the medoid (least summed 1 - chrF distance
  to the image's other captions) is added as the consensus caption.
- Consensus rows have source and annotator "consensus"; each image with a human annotation gets a
  consensus annotations row, so "gold says: no objects" differs from "no gold for this image".
- Adjudicated images (a reviewer's decision, source "adjudicated", from `quality adjudicate`)
  take the decision instead of the vote: its boxes (score 1) and its caption, when it has one.
  Their review flags are dropped (decided), and `adjudication` counts how often the decision
  overturned the vote, object by object (matched at the IoU threshold) and caption by caption.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from annotate.metrics.captions import chrf_distance
from annotate.metrics.geometry import iou
from annotate.runtime.errors import UserError
from annotate.tables.schema import ADJUDICATED, CONSENSUS, HUMAN, TableSet, coerce
from quality.agreement.alpha import pairs_within
from quality.agreement.units import ABSENT, COORDS, SAME_OBJECT_IOU, Units, build_units

#: What to do with a box drawn by exactly half the annotators (flagged either way).
TIE_KEEP = "keep"
TIES = (TIE_KEEP, "drop")
#: Flag a kept cluster whose members overlap their median box less than this on average.
LOW_IOU = 0.7
#: Flag an image whose captions differ more than this on average (1 - chrF).
LOW_CAPTION_AGREEMENT = 0.6


@dataclass
class Consensus:
    """The set with consensus rows, the per-cluster decisions and the flags for review."""

    tables: TableSet
    #: cluster, image_id, n_raters, n_members, kept, label, label_votes, label_tie,
    #: presence_tie, mean_iou
    clusters: pd.DataFrame
    #: image_id, kind (presence_tie, label_tie, low_box_agreement, low_caption_agreement),
    #: cluster (or -1), detail
    flags: pd.DataFrame
    #: What adjudication changed (see `adjudication_effect`); empty when nothing was adjudicated.
    adjudication: dict = field(default_factory=dict)


def build_consensus(ts: TableSet, units: Units | None = None,
                    iou_threshold: float = SAME_OBJECT_IOU, tie: str = TIE_KEEP) -> Consensus:
    """Consensus ("gold") boxes and captions for every image with human annotations.

    Parameters
    ----------
    ts : TableSet
        A set with several annotators per image; `adjudicated` rows replace the vote on the
        images a reviewer decided.
    units : Units, optional
        The box units (`quality.agreement.units.build_units`), when already built.
    iou_threshold : float
        IoU at which two annotators' boxes are the same object.
    tie : {"keep", "drop"}
        A box drawn by exactly half the annotators: kept or dropped (flagged either way).

    Returns
    -------
    Consensus
        The set with `consensus` rows added, the box clusters, the review flags and what
        adjudication overturned.
    """
    if tie not in TIES:
        raise UserError(f"tie must be one of {TIES}, got {tie!r}")
    units = units or build_units(ts, iou_threshold)
    clusters = cluster_decisions(units, tie)
    boxes = _consensus_boxes(units, clusters)
    captions, caption_flags = consensus_captions(ts)
    flags = pd.concat([_cluster_flags(clusters), caption_flags], ignore_index=True)
    decided = pd.Index(ts.annotations.image_id[ts.annotations.source == ADJUDICATED].unique())
    effect: dict = {}
    if len(decided):
        effect = adjudication_effect(ts, boxes, captions, decided, units.iou_threshold)
        boxes, captions = _take_decisions(ts, boxes, captions, decided)
        flags = flags[~flags.image_id.isin(decided)].reset_index(drop=True)
    annotations = pd.DataFrame({"image_id": units.seen.image_id.unique(), "annotator": CONSENSUS,
                                "source": CONSENSUS})
    keep = {name: ts.table(name)[ts.table(name).source != CONSENSUS]
            for name in ("annotations", "boxes", "captions")}
    tables = TableSet(
        images=ts.images,
        annotations=pd.concat([keep["annotations"], coerce("annotations", annotations)],
                              ignore_index=True),
        boxes=pd.concat([keep["boxes"], coerce("boxes", boxes)], ignore_index=True),
        captions=pd.concat([keep["captions"], coerce("captions", captions)], ignore_index=True),
        labels=ts.labels, meta=dict(ts.meta))
    return Consensus(tables.validate(), clusters, flags, effect)


def _take_decisions(ts: TableSet, boxes: pd.DataFrame, captions: pd.DataFrame,
                    decided: pd.Index) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The vote's boxes and captions with the adjudicated images' decisions instead."""
    chosen = ts.boxes[ts.boxes.source == ADJUDICATED]
    taken = pd.DataFrame({"image_id": chosen.image_id, "label": chosen.label,
                          **{c: chosen[c] for c in COORDS}, "score": 1.0})
    taken["object_id"] = "a" + taken.groupby("image_id").cumcount().astype(str)
    taken = taken.assign(annotator=CONSENSUS, source=CONSENSUS)
    boxes = _stack(boxes[~boxes.image_id.isin(decided)], taken)
    said = ts.captions[ts.captions.source == ADJUDICATED].drop_duplicates("image_id")
    captions = _stack(captions[~captions.image_id.isin(said.image_id)],
                      said[["image_id", "caption"]].assign(annotator=CONSENSUS,
                                                           source=CONSENSUS))
    return boxes, captions


def _stack(kept: pd.DataFrame, added: pd.DataFrame) -> pd.DataFrame:
    """`kept` then `added` (an empty part left out: its column types must not decide)."""
    parts = [frame for frame in (kept, added) if len(frame)]
    return pd.concat(parts, ignore_index=True) if parts else kept.iloc[:0]


def adjudication_effect(ts: TableSet, vote_boxes: pd.DataFrame, vote_captions: pd.DataFrame,
                        decided: pd.Index, iou_threshold: float = SAME_OBJECT_IOU) -> dict:
    """How the decisions on `decided` images compare with the vote: each object (the vote's
    kept boxes and the decision's, matched at `iou_threshold`) was upheld, relabelled, removed
    (the vote kept it, the reviewer did not) or added; each decided caption upheld or not."""
    vote = vote_boxes[vote_boxes.image_id.isin(decided)].assign(annotator="vote")
    chosen = ts.boxes[(ts.boxes.source == ADJUDICATED) & ts.boxes.image_id.isin(decided)]
    both = pd.concat([vote, chosen.assign(annotator="decision")], ignore_index=True)
    both = both.assign(source=HUMAN, score=np.nan,
                       object_id=both.groupby(["image_id", "annotator"]).cumcount().astype(str))
    seen = pd.DataFrame({"image_id": np.repeat(decided.to_numpy(object), 2),
                         "annotator": ["vote", "decision"] * len(decided), "source": HUMAN})
    pair = TableSet(ts.images[ts.images.image_id.isin(decided)], seen, both, labels=ts.labels)
    ratings = build_units(pair, iou_threshold).ratings
    side = ratings.pivot(index="cluster", columns="annotator", values="label")
    side = side.reindex(columns=["vote", "decision"]).fillna(ABSENT)
    vote_has, decision_has = side.vote != ABSENT, side.decision != ABSENT
    outcome = {"upheld": int((vote_has & decision_has & (side.vote == side.decision)).sum()),
               "relabelled": int((vote_has & decision_has & (side.vote != side.decision)).sum()),
               "removed": int((vote_has & ~decision_has).sum()),
               "added": int((~vote_has & decision_has).sum())}
    said = ts.captions[(ts.captions.source == ADJUDICATED) & ts.captions.image_id.isin(decided)]
    said = said.drop_duplicates("image_id").set_index("image_id").caption
    before = vote_captions.set_index("image_id").caption.reindex(said.index)
    overturned = outcome["relabelled"] + outcome["removed"] + outcome["added"]
    objects = sum(outcome.values())
    return {"images": len(decided), "objects": objects, **outcome, "overturned": overturned,
            "overturned_share": overturned / objects if objects else None,
            "captions": len(said), "captions_overturned": int((before != said).sum())}


def cluster_decisions(units: Units, tie: str = "keep") -> pd.DataFrame:
    """Per cluster: raters, members, whether it is kept, its majority label and the ties."""
    ratings = units.ratings
    present = ratings[ratings.box >= 0]
    counts = ratings.groupby("cluster").agg(image_id=("image_id", "first"),
                                            n_raters=("annotator", "size"))
    counts["n_members"] = present.groupby("cluster").size().reindex(counts.index, fill_value=0)
    twice = 2 * counts.n_members
    counts["presence_tie"] = twice == counts.n_raters
    counts["kept"] = (twice > counts.n_raters) | (counts.presence_tie & (tie == "keep"))
    votes = present.groupby(["cluster", "label"]).size().rename("votes").reset_index()
    prior = present.label.value_counts()
    votes["prior"] = votes.label.map(prior)
    votes = votes.sort_values(["cluster", "votes", "prior", "label"],
                              ascending=[True, False, False, True])
    top = votes.drop_duplicates("cluster").set_index("cluster")
    runner_up = votes[votes.duplicated("cluster")].drop_duplicates("cluster").set_index("cluster")
    counts["label"] = top.label
    counts["label_votes"] = top.votes
    counts["label_tie"] = runner_up.votes.reindex(counts.index).eq(counts.label_votes)
    counts["mean_iou"] = _member_iou(units, counts.index)
    return counts.reset_index()


def _member_iou(units: Units, clusters: pd.Index) -> pd.Series:
    """Mean IoU of each cluster's members with their median box (1 for a single member)."""
    boxes = units.boxes
    median = boxes.groupby("cluster")[COORDS].median()
    member = iou(boxes[COORDS].to_numpy(), median.loc[boxes.cluster, COORDS].to_numpy())
    return pd.Series(member).groupby(boxes.cluster.to_numpy()).mean().reindex(clusters)


def _consensus_boxes(units: Units, clusters: pd.DataFrame) -> pd.DataFrame:
    kept = clusters[clusters.kept].set_index("cluster")
    median = units.boxes.groupby("cluster")[COORDS].median().loc[kept.index]
    rows = pd.DataFrame({"image_id": kept.image_id, "label": kept.label,
                         "score": kept.n_members / kept.n_raters}, index=kept.index)
    rows = rows.join(median).reset_index()
    rows["object_id"] = "c" + rows.groupby("image_id").cumcount().astype(str)
    rows["annotator"] = CONSENSUS
    rows["source"] = CONSENSUS
    return rows.drop(columns="cluster")


def consensus_captions(ts: TableSet) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The medoid human caption of each image, and flags for images whose captions disagree."""
    human = ts.captions[ts.captions.source == HUMAN].sort_values(["image_id", "annotator"])
    human = human.reset_index(drop=True)
    if human.empty:
        return pd.DataFrame(columns=["image_id", "annotator", "caption", "source"]), _no_flags()
    image = pd.factorize(human.image_id)[0]
    codes, distance = chrf_distance(human.caption.astype(object))
    left, right = pairs_within(image)
    d = distance(codes[left], codes[right])
    spread = np.bincount(np.r_[left, right], weights=np.r_[d, d], minlength=len(human))
    human["spread"] = spread
    medoid = human.sort_values(["image_id", "spread", "annotator"]).drop_duplicates("image_id")
    rows = medoid[["image_id", "caption"]].assign(annotator=CONSENSUS, source=CONSENSUS)
    n_pairs = np.bincount(image[left], minlength=image.max() + 1)
    mean = np.bincount(image[left], weights=d, minlength=image.max() + 1) / np.maximum(n_pairs, 1)
    low = np.flatnonzero((n_pairs > 0) & (mean > LOW_CAPTION_AGREEMENT))
    ids = human.image_id.to_numpy()[np.unique(image, return_index=True)[1]]
    flags = pd.DataFrame({"image_id": ids[low], "kind": "low_caption_agreement", "cluster": -1,
                          "detail": [f"mean 1-chrF {m:.2f} between captions" for m in mean[low]]})
    return rows.reset_index(drop=True), flags


def _cluster_flags(clusters: pd.DataFrame) -> pd.DataFrame:
    c = clusters
    checks = (
        ("presence_tie", c.presence_tie,
         c.n_members.astype(str) + " of " + c.n_raters.astype(str) + " annotators drew it"),
        ("label_tie", c.label_tie & c.kept,
         "label '" + c.label.astype(str) + "' won a tie at " + c.label_votes.astype(str)
         + " votes"),
        ("low_box_agreement", c.kept & (c.n_members > 1) & (c.mean_iou < LOW_IOU),
         "members' mean IoU with the median box " + c.mean_iou.round(2).astype(str)),
    )
    frames = [pd.DataFrame({"image_id": c.image_id[mask].to_numpy(), "kind": kind,
                            "cluster": c.cluster[mask].to_numpy(),
                            "detail": detail[mask].to_numpy()})
              for kind, mask, detail in checks if mask.any()]
    return pd.concat(frames, ignore_index=True) if frames else _no_flags()


def _no_flags() -> pd.DataFrame:
    return pd.DataFrame({"image_id": pd.Series(dtype=object), "kind": pd.Series(dtype=object),
                         "cluster": pd.Series(dtype=np.int64), "detail": pd.Series(dtype=object)})

