"""Content score for captions of the demo shapes: which objects does a caption name (colour,
shape, count), and do they match the layout? Less noisy than BLEU, and it tells "mentions the
wrong object" from "phrased differently"."""

from __future__ import annotations

import re

import pandas as pd

from annotate.stats.bootstrap import draws, percentile_interval

COUNTS = {"a": 1, "an": 1, "one": 1, "single": 1, "another": 1, "two": 2, "three": 3,
          "four": 4, "five": 5, "six": 6}


def mention_pattern(labels: list[str]) -> re.Pattern:
    """'<count>? <colour> <shape>s?' for every class name 'colour shape'."""
    names = "|".join(re.escape(label) for label in sorted(labels, key=len, reverse=True))
    counts = "|".join([*COUNTS, r"\d+"])
    return re.compile(rf"(?:\b({counts})\s+(?:single\s+)?)?\b({names})(s?)\b")


def mentioned(caption: str, labels: list[str], pattern: re.Pattern | None = None
              ) -> dict[str, int]:
    """Objects a caption names, counted: {'red circle': 2, ...}."""
    pattern = pattern or mention_pattern(labels)
    found: dict[str, int] = {}
    for count, label, plural in pattern.findall(caption.lower()):
        n = int(count) if count.isdigit() else COUNTS.get(count, 2 if plural else 1)
        found[label] = found.get(label, 0) + n
    return found


def content_scores(captions: pd.DataFrame, boxes: pd.DataFrame, labels: list[str]
                   ) -> pd.DataFrame:
    """Per caption: precision, recall and F1 of the objects it names against the layout's
    objects (`boxes`: one view), counts clipped as in multiset matching. An empty layout with no
    object named scores 1."""
    pattern = mention_pattern(labels)
    truth = boxes.groupby(["image_id", "label"]).size()
    rows = []
    for image_id, caption in zip(captions.image_id, captions.caption, strict=True):
        said = mentioned(str(caption), labels, pattern)
        have = truth.loc[image_id].to_dict() if image_id in truth.index.get_level_values(0) else {}
        hit = sum(min(n, have.get(label, 0)) for label, n in said.items())
        n_said, n_have = sum(said.values()), sum(have.values())
        precision = hit / n_said if n_said else float(n_have == 0)
        recall = hit / n_have if n_have else float(n_said == 0)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append((precision, recall, f1))
    out = pd.DataFrame(rows, columns=["precision", "recall", "f1"], index=captions.index)
    return pd.concat([captions[["image_id"]], out], axis=1)


def content_score(captions: pd.DataFrame, boxes: pd.DataFrame, labels: list[str],
                  n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Mean content F1 over captions with a bootstrap interval over images."""
    per = content_scores(captions, boxes, labels)
    if per.empty:
        return {"score": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    by_image = per.groupby("image_id").f1.mean().to_numpy()
    low, high = percentile_interval(by_image[draws(len(by_image), n_boot, seed)].mean(axis=1))
    return {"score": float(by_image.mean()), "ci_low": low, "ci_high": high}
