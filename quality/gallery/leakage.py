"""The leakage audit's findings across splits, each pair of images side by side with the
boxes a layout comparison uses (`audit.json`, `quality audit`)."""

from __future__ import annotations

import pandas as pd

from quality.agreement.units import COORDS
from quality.gallery.model import Box, Card, Panel, View

TITLES = {"exact_duplicate_image": "identical image files",
          "near_duplicate_image": "near-duplicate images",
          "duplicate_caption": "the same caption",
          "identical_layout": "identical layouts",
          "split_group": "one group in two splits"}


def leakage_views(findings: pd.DataFrame, reference: pd.DataFrame) -> tuple[list[View], dict]:
    """One view per finding kind: the two images of each finding with their reference boxes.

    Parameters
    ----------
    findings : pd.DataFrame
        `audit.json`'s findings: kind, image_id, split, other_image_id, other_split, detail.
    reference : pd.DataFrame
        The boxes to draw (`annotate.tables.views.reference_boxes`).

    Returns
    -------
    views : list of View
    figures : dict
        Findings per kind (equal to `audit.json`'s counts).
    """
    boxes = {image_id: [Box(*(getattr(r, c) for c in COORDS), kind="reference",
                            text=str(r.label), title=str(r.label)) for r in group.itertuples()]
             for image_id, group in reference[reference.image_id.isin(
                 set(findings.image_id) | set(findings.other_image_id))].groupby("image_id")}
    views, counts = [], {}
    for kind, group in findings.groupby("kind", sort=False):
        counts[str(kind)] = len(group)
        cards = [Card(title=f"{r.image_id} ({r.split}) and {r.other_image_id} ({r.other_split})",
                      key=f"{r.image_id}|{r.other_image_id}",
                      panels=[Panel(str(r.image_id), f"{r.image_id}, {r.split}",
                                    boxes.get(r.image_id, [])),
                              Panel(str(r.other_image_id), f"{r.other_image_id}, {r.other_split}",
                                    boxes.get(r.other_image_id, []))],
                      notes=[str(r.detail)]) for r in group.itertuples()]
        views.append(View(f"leakage/{kind}", f"Leakage: {TITLES.get(kind, kind)}",
                          f"Pairs of images in different splits the audit found ('{kind}'), "
                          "side by side.", "pairs", len(group), cards, legend=("reference",),
                          link=f"leakage:{kind}"))
    return views, {"findings": counts}
