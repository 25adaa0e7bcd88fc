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
