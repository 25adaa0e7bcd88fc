"""Annotators against each other: every disputed image (the consensus step's review flags and
every object the annotators did not all agree on), and one set of pages per annotator with
the units where the others disagree with them."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd

from annotate.tables.schema import CONSENSUS, HUMAN, TableSet
from quality.agreement.reliability import outcomes_against_others, rates_against_others
from quality.agreement.units import COORDS, SAME_OBJECT_IOU, build_units
from quality.gallery.model import Box, Card, Panel, View, grouped, plain, slug
from quality.gold.consensus import TIE_KEEP, build_consensus

#: The consensus step's flag kinds, as a reader would say them.
FLAG_TITLES = {"presence_tie": "presence ties (half the annotators drew it)",
               "label_tie": "label ties",
               "low_box_agreement": "low box agreement",
               "low_caption_agreement": "low caption agreement"}
DISAGREEMENT_LEGEND = ("matched", "only", "label_conflict", "consensus")
ANNOTATOR_LEGEND = ("matched", "missed_by_annotator", "spurious_by_annotator",
                    "wrong_label_by_annotator")


def annotator_views(ts: TableSet, iou: float = SAME_OBJECT_IOU, tie: str = TIE_KEEP
                    ) -> tuple[list[View], dict]:
    """The disagreement views (all disputed images, then one per review-flag kind) and one
    view per annotator.

    Parameters
    ----------
    ts : TableSet
        A set with several annotators per image (`source == "human"` rows).
    iou, tie : float, str
        The consensus step's settings (`quality consensus`): which boxes are one object and
        what a presence tie does.

    Returns
    -------
    views : list of View
    figures : dict
        Per flag kind its count, per annotator its rates (the same definitions as
        `reliability.json`: `quality.agreement.reliability.rates_against_others`).
    """
    units = build_units(ts, iou)
    consensus = build_consensus(ts, units, iou_threshold=iou, tie=tie)
    captions = ts.captions[ts.captions.source == HUMAN]
    by_image_captions = grouped(captions.image_id, captions.annotator, captions.caption)
    members = who_drew(units.boxes)
    views, figures = _disagreement(units, consensus, by_image_captions, members)
    annotators, rates = _per_annotator(ts, units, by_image_captions, members)
    figures["annotators"] = rates
    return views + annotators, figures


def who_drew(boxes: pd.DataFrame) -> dict:
    """cluster -> the annotators who drew a box in it, in name order, comma-separated."""
    order = boxes.sort_values(["cluster", "annotator"], kind="stable")
    return {c: ", ".join(str(a[0]) for a in rows)
            for c, rows in grouped(order.cluster, order.annotator).items()}


def _boxes(rows: list) -> list[Box]:
    """Boxes from rows of x0, y0, x1, y1, kind, text, title, focus, who."""
    return [Box(*row) for row in rows]


def _disagreement(units, consensus, captions: dict, members: dict
                  ) -> tuple[list[View], dict]:
    boxes, ratings, clusters = units.boxes, units.ratings, consensus.clusters.set_index("cluster")
    labels = boxes.groupby("cluster").label.nunique()
    n_raters = clusters.n_raters.reindex(boxes.cluster).to_numpy()
    n_members = clusters.n_members.reindex(boxes.cluster).to_numpy()
    status = np.where(n_members < n_raters, "only",
                      np.where(labels.reindex(boxes.cluster).to_numpy() > 1, "label_conflict",
                               "matched"))
    # a cluster's disagreement: the share of its raters who did not give its most common value
    # (a label, or absent); an image's: its most disputed cluster
    votes = ratings.groupby(["cluster", "label"]).size().groupby("cluster").max()
    share = 1 - votes / clusters.n_raters.reindex(votes.index)
    flags = consensus.flags
    image_score = share.groupby(clusters.image_id.reindex(share.index).to_numpy()).max()
    disputed = share[share > 0]
    gold = consensus.tables.boxes[consensus.tables.boxes.source == CONSENSUS]
    who = pd.Series(boxes.cluster.map(members), dtype=object).fillna("").to_numpy(object)
    annotator = boxes.annotator.astype(str).to_numpy(object)
    label = boxes.label.astype(str).to_numpy(object)
    # drawn: the name before an e-mail's "@" (the whole name on hover)
    short = boxes.annotator.astype(str).str.split("@").str[0].to_numpy(object)
    explain = np.where(status == "only", "only " + who + " drew it",
                       np.where(status == "label_conflict", "labels differ", "everyone drew it"))
    drawn = grouped(pd.concat([boxes.image_id, gold.image_id], ignore_index=True),
                    *[np.r_[boxes[c].to_numpy(float), gold[c].to_numpy(float)] for c in COORDS],
                    np.r_[status, np.full(len(gold), "consensus", object)],
                    np.r_[short + ": " + label,
                          "consensus: " + gold.label.astype(str).to_numpy(object)],
                    np.r_[annotator + ": " + label + " (" + explain + ")",
                          "consensus: " + gold.label.astype(str).to_numpy(object)],
                    np.r_[status != "matched", np.zeros(len(gold), bool)],
                    np.r_[np.where(status == "only", who, annotator),
                          np.full(len(gold), "", object)])
    notes: dict = defaultdict(list)
    for image_id, kind, detail in zip(plain(flags.image_id), plain(flags.kind),
                                      plain(flags.detail), strict=True):
        notes[image_id].append(f"{FLAG_TITLES.get(kind, kind).split(' (')[0]}: {detail}")
    n_flags = {k: len(v) for k, v in notes.items()}
    decided = clusters.loc[disputed.index]
    for cluster, row in zip(disputed.index, decided.itertuples(), strict=True):
        names = members.get(cluster, "")
        text = (f"labels differ ({names})" if row.n_members == row.n_raters else
                f"{int(row.n_members)} of {int(row.n_raters)} annotators drew it ({names})")
        notes[row.image_id].append(f"object {cluster}: {text}; "
                                   + ("kept" if row.kept else "not in the consensus"))
    disputed_count = decided.image_id.value_counts()
    clusters_per_image = clusters.image_id.value_counts()
    disputed_images = set(decided.image_id) | set(flags.image_id)
    score = image_score.to_dict()
    order = sorted(disputed_images, key=lambda i: (-score.get(i, 0.0), -n_flags.get(i, 0), str(i)))
    cards = {i: Card(title=f"image {i}", key=str(i),
                     panels=[Panel(str(i), "every annotator's boxes", _boxes(drawn.get(i, [])))],
                     figures=[("disagreement", float(score.get(i, 0.0))),
                              ("objects disputed", f"{int(disputed_count.get(i, 0))} of "
                                                   f"{int(clusters_per_image.get(i, 0))}")],
                     notes=notes.get(i, []), table=(["annotator", "caption"], captions.get(i, [])))
             for i in order}
    intro = ("Every image where the annotators who saw it did not all draw the same objects "
             "with the same labels, or that the consensus step flagged for review; most "
             "disputed first (disagreement: the share of annotators who did not give the "
             "object's most common answer, for the image's most disputed object).")
    views = [View("disagreement/all", "Disputed images", intro, "images", len(order),
                  [cards[i] for i in order], legend=DISAGREEMENT_LEGEND, link="disputed")]
    counts = {}
    for kind in FLAG_TITLES:
        flagged = flags[flags.kind == kind]
        counts[kind] = len(flagged)
        if flagged.empty:
            continue
        flagged_ids = set(flagged.image_id)
        ids = [i for i in order if i in flagged_ids]
        views.append(View(f"disagreement/{kind}", f"Flagged: {FLAG_TITLES[kind]}",
                          f"The consensus step's '{kind}' flags ({len(flagged)} flags on "
                          f"{len(ids)} images), most disputed image first.", "flags",
                          len(flagged), [cards[i] for i in ids], legend=DISAGREEMENT_LEGEND,
                          link=f"flag:{kind}"))
    return views, {"flags": counts, "disputed_images": len(order)}


def _per_annotator(ts: TableSet, units, captions: dict, members: dict
                   ) -> tuple[list[View], dict]:
    outcomes = outcomes_against_others(units)
    rates = rates_against_others(outcomes)
    human = ts.annotations[ts.annotations.source == HUMAN]
    lead = human.groupby("annotator").lead_time.median()
    seen = units.seen.annotator.value_counts()
    judged = outcomes[outcomes.box >= 0].set_index("box")
    boxes = units.boxes.join(judged[["spurious", "wrong_label", "others_label"]])
    kind = np.select([boxes.spurious.fillna(False).astype(bool).to_numpy(),
                      boxes.wrong_label.fillna(False).astype(bool).to_numpy()],
                     ["spurious_by_annotator", "wrong_label_by_annotator"], "matched")
    name = boxes.annotator.astype(str).to_numpy(object)
    label = boxes.label.astype(str).to_numpy(object)
    says = boxes.others_label.astype(object).fillna("").astype(str).to_numpy(object)
    title = name + ": " + label + ": " + np.select(
        [kind == "spurious_by_annotator", kind == "wrong_label_by_annotator"],
        ["the others did not draw it", "the others say " + says],
        "agrees with the others (or not judged)").astype(object)
    own = grouped(list(zip(name, boxes.image_id.to_numpy(object), strict=True)),
                  *[boxes[c].to_numpy(float) for c in COORDS], kind, label, title,
                  kind != "matched", name)
    # an object the others kept that the annotator missed: the others' median box
    others = units.boxes.groupby("cluster")
    median = others[COORDS].median()
    top = (units.boxes.groupby(["cluster", "label"]).size().rename("n").reset_index()
           .sort_values(["cluster", "n", "label"], ascending=[True, False, True])
           .drop_duplicates("cluster").set_index("cluster").label)
    errors = outcomes[outcomes.missed | outcomes.spurious | outcomes.wrong_label]
    missed = errors[errors.missed]
    missed_rows = grouped(list(zip(plain(missed.annotator), plain(missed.image_id),
                                   strict=True)),
                          *[median[c].reindex(missed.cluster).to_numpy(float) for c in COORDS],
                          np.full(len(missed), "missed_by_annotator", object),
                          "missed: " + top.reindex(missed.cluster).astype(str).to_numpy(object),
                          "drawn by " + pd.Series(missed.cluster.map(members)).astype(str)
                          .to_numpy(object),
                          np.ones(len(missed), bool), missed.annotator.astype(str).to_numpy(object))
    views, figures = [], {}
    for who in sorted(seen.index):
        mine = outcomes[outcomes.annotator == who]
        counts = {k: int(mine[k].sum()) for k in ("missed", "spurious", "wrong_label")}
        figure = {"n_images": int(seen[who]), **{
            k: (None if pd.isna(v) else float(v)) for k, v in rates.loc[who].items()},
            **counts, "median_lead_time": (None if pd.isna(lead.get(who, np.nan))
                                           else float(lead[who]))}
        figures[str(who)] = figure
        wrong = errors[errors.annotator == who]
        per_image = (wrong[["missed", "spurious", "wrong_label"]].sum(axis=1)
                     .groupby(wrong.image_id).sum().sort_values(ascending=False, kind="stable"))
        cards = [Card(
            title=f"image {image_id}", key=str(image_id),
            panels=[Panel(str(image_id), f"{who}'s boxes against the others",
                          _boxes(own.get((who, image_id), [])
                                 + missed_rows.get((who, image_id), [])))],
            figures=[("errors", int(n_errors))],
            table=(["annotator", "caption"],
                   sorted(captions.get(image_id, []), key=lambda r: r[0] != who)))
            for image_id, n_errors in per_image.items()]
        rate_text = ", ".join(f"{k.replace('_', ' ')} {_fmt(figure[k])}" for k in (
            "miss_rate", "spurious_rate", "label_error_rate"))
        views.append(View(
            f"annotators/{slug(who)}", f"Annotator {who}",
            f"Judged against the other annotators' majority (leave one out, as "
            f"reliability.json): {rate_text}; {counts['missed']} missed, "
            f"{counts['spurious']} spurious, {counts['wrong_label']} wrong labels on "
            f"{len(per_image)} images; median lead time {_fmt(figure['median_lead_time'])} s. "
            "Most errors first; their caption first in the table.", "images", len(per_image),
            cards, figures=list(figure.items()), legend=ANNOTATOR_LEGEND,
            link=f"annotator:{who}"))
    return views, figures


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3g}"
