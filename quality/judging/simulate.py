"""Simulated judges with a known preference model, so that a judgment study runs, and has known
answers, without people or a server (the demo, the tests).

Each task shows captions L (left) and R (right) of one image with qualities q_L and q_R (by
default content F1 against the image's gold objects: did it name the right objects?). A judge
picks the left caption with probability

    p = sigmoid((q_L - q_R) / temperature + left_bias)

except that with probability `lapse` (the judge's own noise) they answer at random, and they
call a tie when |q_L - q_R| < `tie_band`. The truth a study estimates is each pair's expected
win rate over its tasks under this model (`expected_win_rates`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import norm

from quality.judging.analysis import TIE


@dataclass(frozen=True)
class Judges:
    """The simulated judges: how many, and how they decide."""

    judges: int = 3
    #: judgments per task (each by a different judge)
    raters_per_item: int = 3
    temperature: float = 0.1
    left_bias: float = 0.0
    #: per judge, the chance of answering at random (one value for all, or one per judge)
    lapse: float | tuple[float, ...] = 0.1
    tie_band: float = 0.0

    def lapses(self) -> np.ndarray:
        values = np.atleast_1d(np.asarray(self.lapse, float))
        return np.resize(values, self.judges)


def _left_probability(tasks: pd.DataFrame, quality: pd.Series, judges: Judges) -> np.ndarray:
    q_left = quality.reindex(pd.MultiIndex.from_arrays([tasks.image_id, tasks.left])).to_numpy()
    q_right = quality.reindex(pd.MultiIndex.from_arrays([tasks.image_id, tasks.right])).to_numpy()
    return expit((q_left - q_right) / judges.temperature + judges.left_bias)


def simulate(tasks: pd.DataFrame, quality: pd.Series, judges: Judges = Judges(),
             seed: int = 0) -> pd.DataFrame:
    """Judgments of `tasks` (task, image_id, left, right) by simulated judges.

    Parameters
    ----------
    tasks : pd.DataFrame
        The study's tasks (`design.draw_tasks`).
    quality : pd.Series
        Indexed by (image_id, system): each caption's quality.
    judges : Judges
        The preference model.
    seed : int
        Seed of the judges' draws.

    Returns
    -------
    pd.DataFrame
        A judgments table (task, image_id, judge, left, right, choice), as a pull gives.
    """
    rng = np.random.default_rng(seed)
    n = min(judges.raters_per_item, judges.judges)
    p_left = _left_probability(tasks, quality, judges)
    q_left = quality.reindex(pd.MultiIndex.from_arrays([tasks.image_id, tasks.left])).to_numpy()
    q_right = quality.reindex(pd.MultiIndex.from_arrays([tasks.image_id,
                                                         tasks.right])).to_numpy()
    tie = np.abs(q_left - q_right) < judges.tie_band
    who = np.argsort(rng.random((len(tasks), judges.judges)), axis=1)[:, :n]  # n distinct
    lapse = judges.lapses()[who]
    random_answer = rng.random(who.shape) < lapse
    picked_left = np.where(random_answer, rng.random(who.shape) < 0.5,
                           rng.random(who.shape) < p_left[:, None])
    choice = np.where(tie[:, None] & ~random_answer, TIE, np.where(picked_left, "left", "right"))
    repeat = np.repeat(np.arange(len(tasks)), n)
    return pd.DataFrame({"task": tasks.task.to_numpy()[repeat],
                         "image_id": tasks.image_id.to_numpy()[repeat],
                         "judge": [f"judge-{k + 1}" for k in who.ravel()],
                         "left": tasks.left.to_numpy()[repeat],
                         "right": tasks.right.to_numpy()[repeat],
                         "choice": choice.ravel()})


def expected_win_rates(tasks: pd.DataFrame, quality: pd.Series, judges: Judges = Judges()
                       ) -> pd.Series:
    """The simulation's truth: each pair's (a, b in name order) expected win rate of a over its
    tasks, every judge's lapse averaged in (ties count half)."""
    p_left = _left_probability(tasks, quality, judges)
    q_left = quality.reindex(pd.MultiIndex.from_arrays([tasks.image_id, tasks.left])).to_numpy()
    q_right = quality.reindex(pd.MultiIndex.from_arrays([tasks.image_id,
                                                         tasks.right])).to_numpy()
    lapse = judges.lapses().mean()
    decided = np.where(np.abs(q_left - q_right) < judges.tie_band, 0.5, p_left)
    left_wins = lapse * 0.5 + (1 - lapse) * decided
    swap = tasks.left.astype(str).to_numpy() > tasks.right.astype(str).to_numpy()
    a_wins = np.where(swap, 1 - left_wins, left_wins)
    a = np.where(swap, tasks.right, tasks.left)
    b = np.where(swap, tasks.left, tasks.right)
    return pd.Series(a_wins).groupby([a, b]).mean().rename_axis(["a", "b"])


@dataclass(frozen=True)
class RatingJudges:
    """Simulated judges of the rating design. Judge j rates a caption of quality q

        clip(round(1 + 4 q + leniency_j + N(0, noise)), 1, 5)

    except that with probability `lapse` they give a rating drawn uniformly from 1-5."""

    judges: int = 3
    raters_per_item: int = 3
    noise: float = 0.5
    #: per judge, added to every rating (one value for all, or one per judge)
    leniency: float | tuple[float, ...] = 0.0
    lapse: float | tuple[float, ...] = 0.1

    def per_judge(self, value) -> np.ndarray:
        return np.resize(np.atleast_1d(np.asarray(value, float)), self.judges)


def simulate_ratings(tasks: pd.DataFrame, quality: pd.Series,
                     judges: RatingJudges = RatingJudges(), seed: int = 0) -> pd.DataFrame:
    """Ratings of rating tasks (task, image_id, system) by simulated judges.

    Returns
    -------
    pd.DataFrame
        A ratings table (task, image_id, judge, system, rating), as a pull gives.
    """
    rng = np.random.default_rng(seed)
    n = min(judges.raters_per_item, judges.judges)
    q = quality.reindex(pd.MultiIndex.from_arrays([tasks.image_id, tasks.system])).to_numpy()
    who = np.argsort(rng.random((len(tasks), judges.judges)), axis=1)[:, :n]
    mean = 1 + 4 * q[:, None] + judges.per_judge(judges.leniency)[who]
    rated = np.clip(np.round(mean + rng.normal(0, judges.noise, who.shape)), 1, 5)
    lapsed = rng.random(who.shape) < judges.per_judge(judges.lapse)[who]
    rating = np.where(lapsed, rng.integers(1, 6, who.shape), rated)
    repeat = np.repeat(np.arange(len(tasks)), n)
    return pd.DataFrame({"task": tasks.task.to_numpy()[repeat],
                         "image_id": tasks.image_id.to_numpy()[repeat],
                         "judge": [f"judge-{k + 1}" for k in who.ravel()],
                         "system": tasks.system.to_numpy()[repeat],
                         "rating": rating.ravel().astype(int)})


def expected_ratings(tasks: pd.DataFrame, quality: pd.Series,
                     judges: RatingJudges = RatingJudges()) -> pd.Series:
    """The simulation's truth: each task's expected rating, averaged over the judges who may
    rate it (exact: the rounded, clipped normal's mean, mixed with the lapse's 3)."""
    q = quality.reindex(pd.MultiIndex.from_arrays([tasks.image_id, tasks.system])).to_numpy()
    mean = 1 + 4 * q[:, None] + judges.per_judge(judges.leniency)[None, :]
    cuts = np.arange(1.5, 5.0)  # rating k when the draw falls between cuts k-1.5 and k-0.5
    below = norm.cdf((cuts[None, None, :] - mean[..., None]) / judges.noise)
    p = np.diff(np.pad(below, [(0, 0), (0, 0), (1, 1)], constant_values=(0, 1)), axis=2)
    expected = (p * np.arange(1, 6)).sum(axis=2)
    lapse = judges.per_judge(judges.lapse)[None, :]
    return pd.Series(((1 - lapse) * expected + lapse * 3.0).mean(axis=1), index=tasks.task)
