"""What people's 1-5 ratings of captions say: each system's mean rating, the difference between
every two systems on the same images, agreement among the judges (ordinal Krippendorff's alpha)
and each judge's leniency, and how well each automatic metric tracks the ratings. Every interval
resamples test images (`annotate.stats.bootstrap.draws`), as in `analysis`.

A ratings table has one row per rating: task, image_id, judge, system, rating (1-5).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from annotate.runtime.errors import UserError
from annotate.stats.bootstrap import percentile_interval
from quality.agreement.alpha import alpha
from quality.judging.analysis import (
    draw_counts,
    image_mean_interval,
    kendall_intervals,
    pair_difference,
    side_of,
    system_agreement,
)
from quality.judging.design import RATING_MAX

RATING_COLUMNS = ["task", "image_id", "judge", "system", "rating"]


def check_ratings(ratings: pd.DataFrame, where: str = "ratings") -> pd.DataFrame:
    """The table with its columns and values checked: a clear error naming what is wrong."""
    missing = [c for c in RATING_COLUMNS if c not in ratings]
    if missing:
        raise UserError(f"{where}: missing columns {missing} (need {RATING_COLUMNS})")
    value = pd.to_numeric(ratings.rating, errors="coerce")
    bad = ~value.between(1, RATING_MAX) | (value % 1 != 0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise UserError(f"{where}: row {row}: rating {ratings.rating.iloc[row]} is not a "
                        f"whole number from 1 to {RATING_MAX}")
    return ratings.assign(rating=value.astype(float), image_id=ratings.image_id.astype(str))


def rating_means(ratings: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Each system's mean rating with a bootstrap interval over images.

    Returns
    -------
    pd.DataFrame
        system, ratings, images, mean, ci_low, ci_high — best first.
    """
    r = check_ratings(ratings)
    rows = []
    for system, group in r.groupby("system", sort=True):
        low, high, images = image_mean_interval(group, group.rating.to_numpy(), n_boot, seed)
        rows.append({"system": system, "ratings": len(group), "images": images,
                     "mean": float(group.rating.mean()), "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows).sort_values("mean", ascending=False, kind="stable"
                                          ).reset_index(drop=True)


def _per_image(r: pd.DataFrame) -> pd.DataFrame:
    """Mean rating of each (image, system): rows images, columns systems."""
    return r.groupby(["image_id", "system"]).rating.mean().unstack("system")


def rating_differences(ratings: pd.DataFrame, n_boot: int = 1000, seed: int = 0
                       ) -> pd.DataFrame:
    """Every pair of systems (a, b in name order) on the images both were rated on: a's mean
    rating minus b's (per image, then averaged), with a paired bootstrap interval over those
    images.

    Returns
    -------
    pd.DataFrame
        a, b, images, difference, ci_low, ci_high.
    """
    table = _per_image(check_ratings(ratings))
    weights = draw_counts(len(table), n_boot, seed) if n_boot else None
    rows = []
    for a, b in itertools.combinations(sorted(table.columns), 2):
        diff = (table[a] - table[b]).to_numpy()
        both = np.isfinite(diff)
        low = high = np.nan
        if weights is not None and both.any():
            w = weights[:, both]
            with np.errstate(invalid="ignore", divide="ignore"):
                boot = (w * diff[both]).sum(axis=1) / w.sum(axis=1)
            low, high = percentile_interval(boot[np.isfinite(boot)])
        rows.append({"a": a, "b": b, "images": int(both.sum()),
                     "difference": float(diff[both].mean()) if both.any() else np.nan,
                     "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)


def rating_agreement(ratings: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> dict:
    """Krippendorff's alpha among the judges at the ordinal level (a 4 against a 5 is a smaller
    disagreement than a 1 against a 5), units = tasks, resampling images; per judge their
    `alpha_vs_others` (1 - their mean ordinal distance to the other judges' ratings of the same
    captions / the expected distance D_e: 1 agrees perfectly, 0 as by chance) and their
    leniency (mean of their rating minus the mean of the other judges' ratings of the same
    caption: positive rates higher)."""
    r = check_ratings(ratings)
    result = alpha(r.task.astype(str).to_numpy(), r.rating.to_numpy(), "ordinal",
                   coders=r.judge.astype(str).to_numpy(), groups=r.image_id.to_numpy(),
                   group_name="image", n_boot=n_boot, seed=seed)
    sums = r.groupby("task").rating.agg(["sum", "count"])
    total, count = sums["sum"].reindex(r.task).to_numpy(), sums["count"].reindex(r.task).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        others = (total - r.rating.to_numpy()) / (count - 1)
    offset = pd.Series(r.rating.to_numpy() - others).groupby(r.judge.astype(str).to_numpy()
                                                             ).mean()
    judges = result.coders.assign(alpha_vs_others=lambda c: 1 - c.disagreement / result.expected,
                                  leniency=lambda c: c.coder.map(offset))
    return {"alpha": result.alpha, "ci_low": result.ci_low, "ci_high": result.ci_high,
            "n_units": result.n_units, "n_values": result.n_values, "warning": result.warning,
            "resampled": result.resampled, "level": "ordinal",
            "judges": judges[["coder", "n_pairs", "alpha_vs_others", "leniency"]].rename(
                columns={"coder": "judge"}).to_dict("records")}


def rating_metric_agreement(ratings: pd.DataFrame, scores: pd.DataFrame, n_boot: int = 1000,
                            seed: int = 0) -> dict:
    """How each automatic metric tracks the ratings.

    Parameters
    ----------
    ratings : pd.DataFrame
        The ratings.
    scores : pd.DataFrame
        Per (image_id, system) each metric's score (columns: image_id, system, one per metric).

    Returns
    -------
    dict
        Per metric: instance level (as the caption-metric literature reports it, e.g. on
        Flickr8k-Expert), Kendall tau-b and tau-c between each caption's mean rating and its
        metric score, with intervals over images; system level, the share of system pairs the
        metric orders as the mean ratings do (on the images both were rated on).
    """
    r = check_ratings(ratings)
    captions = r.groupby(["image_id", "system"]).rating.mean().rename("people").reset_index()
    images = pd.Index(captions.image_id.unique())
    image_of = images.get_indexer(captions.image_id)
    weights = draw_counts(len(images), n_boot, seed)
    table = scores.assign(image_id=scores.image_id.astype(str)).set_index(["image_id", "system"])
    at = pd.MultiIndex.from_arrays([captions.image_id, captions.system])
    pairs = _pair_rows(captions)
    out = {}
    for metric in table.columns:
        value = table[metric].reindex(at).to_numpy()
        keep = np.isfinite(value)
        diff = pairs.assign(people=pairs.people_a - pairs.people_b,
                            diff=pair_difference(table[metric], pairs))
        diff = diff[np.isfinite(diff["diff"])]
        system = system_agreement(diff, weights[:, images.get_indexer(diff.image_id)],
                                  centre=0.0)
        out[metric] = {"captions": int(keep.sum()), **kendall_intervals(
            captions.people[keep], value[keep], weights[:, image_of[keep]]), **system}
    return {"metrics": out, "resampled": {"unit": "image", "count": len(images),
                                          "n_boot": n_boot}}


def _pair_rows(captions: pd.DataFrame) -> pd.DataFrame:
    """One row per image and pair of systems (a, b in name order) both rated on it."""
    wide = captions.pivot(index="image_id", columns="system", values="people")
    frames = [pd.DataFrame({"image_id": wide.index, "a": a, "b": b,
                            "people_a": wide[a].to_numpy(), "people_b": wide[b].to_numpy()})
              for a, b in itertools.combinations(sorted(wide.columns), 2)]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["image_id", "a", "b", "people_a", "people_b"])
    return rows.dropna(subset=["people_a", "people_b"]).reset_index(drop=True)


def rating_verdict_lines(differences: pd.DataFrame) -> list[str]:
    """One sentence per pair: which system people rate higher, when the 95% interval of the
    difference excludes 0, else that they cannot tell the two apart."""
    lines = []
    for d in differences.itertuples():
        said = (f"{d.a} minus {d.b} {d.difference:+.2f} points [{d.ci_low:+.2f}, "
                f"{d.ci_high:+.2f}] on {d.images} images")
        lines.append({"a": f"People rate {d.a} above {d.b}: {said}.",
                      "b": f"People rate {d.b} above {d.a}: {said}.",
                      "": f"People cannot tell {d.a} and {d.b} apart: {said}."}[
            side_of(d.ci_low, d.ci_high, 0.0)])
    return lines
