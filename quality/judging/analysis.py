"""What people's pairwise judgments of captions say: win rates, Bradley–Terry scores, position
bias, agreement among the judges, and how well each automatic metric tracks them. Every
interval resamples test images (a judgment's image is its unit: judgments of one image are not
independent), with `annotate.stats.bootstrap.draws`.

A judgments table has one row per judgment: task, image_id, judge, left, right (the systems
shown on each side, the randomisation undone) and choice ("left", "right" or "tie").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from annotate.runtime.errors import UserError
from annotate.stats.bootstrap import draws, percentile_interval
from annotate.stats.replicates import CONFIDENCE
from quality.agreement.alpha import alpha

CHOICES = ("left", "right", "tie")
JUDGMENT_COLUMNS = ["task", "image_id", "judge", "left", "right", "choice"]
TIE = "tie"


def check_judgments(judgments: pd.DataFrame, where: str = "judgments") -> pd.DataFrame:
    """The table with its columns checked: a clear error naming what is wrong."""
    missing = [c for c in JUDGMENT_COLUMNS if c not in judgments]
    if missing:
        raise UserError(f"{where}: missing columns {missing} (need {JUDGMENT_COLUMNS})")
    bad = sorted(set(judgments.choice.dropna()) - set(CHOICES))
    if bad or judgments.choice.isna().any():
        raise UserError(f"{where}: unknown choices {bad or ['null']}; use {CHOICES}")
    if (judgments.left == judgments.right).any():
        raise UserError(f"{where}: a task shows the same system on both sides")
    return judgments


def oriented(judgments: pd.DataFrame) -> pd.DataFrame:
    """Each judgment as a contest between the pair's systems in name order (a, b): `score`
    1 when a won, 0 when b won, 0.5 for a tie; `left_won` for the position check."""
    j = check_judgments(judgments)
    swap = j.left.astype(str) > j.right.astype(str)
    a = np.where(swap, j.right, j.left)
    b = np.where(swap, j.left, j.right)
    left_score = np.select([j.choice == "left", j.choice == "right"], [1.0, 0.0], 0.5)
    return pd.DataFrame({"task": j.task.to_numpy(), "image_id": j.image_id.astype(str).to_numpy(),
                         "judge": j.judge.astype(str).to_numpy(), "a": a, "b": b,
                         "score": np.where(swap, 1 - left_score, left_score),
                         "tie": (j.choice == TIE).to_numpy(),
                         "left_won": (j.choice == "left").to_numpy()})


def image_mean_interval(frame: pd.DataFrame, values: np.ndarray, n_boot: int, seed: int
                        ) -> tuple[float, float, int]:
    """The bootstrap interval of mean(`values`) over `frame`'s rows, resampling its images
    (each drawn image brings all its rows); and how many images there are."""
    boot, images = image_means(frame, values, n_boot, seed)
    low, high = percentile_interval(boot) if n_boot else (np.nan, np.nan)
    return low, high, images


def image_means(frame: pd.DataFrame, values: np.ndarray, n_boot: int, seed: int
                ) -> tuple[np.ndarray, int]:
    """mean(`values`) over `frame`'s rows in each of `n_boot` resamples of its images, and
    how many images there are."""
    sums = pd.DataFrame({"value": values, "n": 1.0}).groupby(frame.image_id.to_numpy()).sum()
    if not n_boot:
        return np.zeros(0), len(sums)
    totals = sums.to_numpy(float)[draws(len(sums), n_boot, seed)].sum(axis=1)
    return totals[:, 0] / totals[:, 1], len(sums)


def draw_counts(n_units: int, n_boot: int, seed: int) -> np.ndarray:
    """`draws` as weights: how many times each unit is in each resample (n_boot x n_units)."""
    picked = draws(n_units, n_boot, seed)
    counts = np.zeros((len(picked), n_units))
    np.add.at(counts, (np.repeat(np.arange(len(picked)), picked.shape[1]), picked.ravel()), 1)
    return counts


def win_rates(judgments: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Each pair's win rate (a over b, a tie counting half) with a bootstrap interval over
    images.

    Returns
    -------
    pd.DataFrame
        a, b, judgments, images, ties, win_rate, ci_low, ci_high.
    """
    o = oriented(judgments)
    rows = []
    for (a, b), pair in o.groupby(["a", "b"], sort=True):
        low, high, images = image_mean_interval(pair, pair.score.to_numpy(float), n_boot, seed)
        rows.append({"a": a, "b": b, "judgments": len(pair), "images": images,
                     "ties": int(pair.tie.sum()), "win_rate": float(pair.score.mean()),
                     "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)


def bradley_terry(judgments: pd.DataFrame, n_boot: int = 200, seed: int = 0) -> pd.DataFrame:
    """Bradley–Terry strengths (log scale, mean 0) of every system, with bootstrap bounds over
    images, fitted by `choix.ilsr_pairwise_dense` on the matrix of wins (a decided judgment
    counts two wins for its winner, a tie one win each way).

    Returns
    -------
    pd.DataFrame
        system, score, ci_low, ci_high, judgments — sorted best first.
    """
    import choix

    o = oriented(judgments)
    systems = sorted(set(o.a) | set(o.b))
    index = {s: k for k, s in enumerate(systems)}
    a, b = o.a.map(index).to_numpy(), o.b.map(index).to_numpy()
    a_won = o.score.to_numpy() > 0.5
    winner, loser = np.where(a_won, a, b), np.where(a_won, b, a)
    tie = o.tie.to_numpy()
    images, image = np.unique(o.image_id.to_numpy(), return_inverse=True)
    wins = np.zeros((len(images), len(systems), len(systems)))  # per image: i beat j
    np.add.at(wins, (image[~tie], winner[~tie], loser[~tie]), 2.0)
    np.add.at(wins, (image[tie], a[tie], b[tie]), 1.0)
    np.add.at(wins, (image[tie], b[tie], a[tie]), 1.0)

    def fit(matrix: np.ndarray) -> np.ndarray:
        strength = choix.ilsr_pairwise_dense(matrix, alpha=0.01)
        return strength - strength.mean()

    score = fit(wins.sum(axis=0))
    bounds = [(np.nan, np.nan)] * len(systems)
    if n_boot:
        boot = np.array([fit(np.tensordot(w, wins, axes=1))
                         for w in draw_counts(len(images), n_boot, seed)])
        bounds = [percentile_interval(boot[:, k]) for k in range(len(systems))]
    out = pd.DataFrame({"system": systems, "score": score})
    out["judgments"] = out.system.map(pd.concat([o.a, o.b]).value_counts()).astype(int)
    out["ci_low"], out["ci_high"] = [low for low, _ in bounds], [high for _, high in bounds]
    return out.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


def position_bias(judgments: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> dict:
    """How often the left caption wins among decided judgments (0.5 without a bias), with a
    bootstrap interval over images; `biased` when the interval excludes 0.5."""
    o = oriented(judgments)
    decided = o[~o.tie]
    if decided.empty:
        return {"left_share": None, "ci_low": None, "ci_high": None, "judgments": 0,
                "biased": False}
    low, high, images = image_mean_interval(decided, decided.left_won.to_numpy(float), n_boot,
                                        seed)
    share = float(decided.left_won.mean())
    return {"left_share": share, "ci_low": low, "ci_high": high, "judgments": len(decided),
            "images": images, "biased": bool(low > 0.5 or high < 0.5)}


def judge_agreement(judgments: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> dict:
    """Krippendorff's alpha among the judges (nominal: the first or the second system of the
    pair in name order, or a tie, after undoing the left/right randomisation; the same three
    categories in every task, so judges who flip coins give alpha near 0), units = tasks,
    resampling images; per judge their agreement with the others (1 - mean disagreement)."""
    o = oriented(judgments)
    value = np.where(o.tie, TIE, np.where(o.score > 0.5, "first", "second"))
    result = alpha(o.task.astype(str).to_numpy(), value, "nominal", coders=o.judge.to_numpy(),
                   groups=o.image_id.to_numpy(), group_name="image", n_boot=n_boot, seed=seed)
    judges = result.coders.assign(agreement=lambda c: 1 - c.disagreement)
    return {"alpha": result.alpha, "ci_low": result.ci_low, "ci_high": result.ci_high,
            "n_units": result.n_units, "n_values": result.n_values, "warning": result.warning,
            "resampled": result.resampled, "level": "nominal",
            "judges": judges[["coder", "n_pairs", "agreement"]].rename(
                columns={"coder": "judge"}).to_dict("records")}


def kendall(x, y, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Kendall's tau-b and tau-c of `x` and `y`, for each row of `weights` (how many times
    each item is drawn: a bootstrap over items in one matrix product); no weights: the sample.

    Equal to `scipy.stats.kendalltau(x, y, variant="b")` and `variant="c"` on the sample; a
    drawn item's copies are tied with it on both variables, as duplicated rows would be.

    >>> tau_b, tau_c = kendall([1, 2, 3, 4], [1, 3, 2, 4])
    >>> float(tau_b[0]), float(tau_c[0])
    (0.6666666666666666, 0.6666666666666666)
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    w = np.ones((1, len(x))) if weights is None else np.atleast_2d(weights).astype(float)
    sx = np.sign(x[:, None] - x[None, :])
    sy = np.sign(y[:, None] - y[None, :])

    def pairs(matrix: np.ndarray) -> np.ndarray:  # sum over unordered pairs, weighted
        return 0.5 * np.einsum("bi,ij,bj->b", w, matrix, w)

    concordance = pairs(sx * sy)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau_b = concordance / np.sqrt(pairs(np.abs(sx)) * pairs(np.abs(sy)))
        n = w.sum(axis=1)
        present = w > 0
        distinct = np.minimum(_distinct(x, present), _distinct(y, present))
        tau_c = 2 * concordance / (n ** 2 * (distinct - 1) / distinct)
    return tau_b, tau_c


def _distinct(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Per row of `present`, how many distinct values the present items have."""
    codes = np.unique(values, return_inverse=True)[1]
    seen = np.zeros((present.shape[0], codes.max() + 1 if len(codes) else 0), bool)
    rows, items = np.nonzero(present)
    seen[rows, codes[items]] = True
    return seen.sum(axis=1).astype(float)


def metric_agreement(judgments: pd.DataFrame, scores: pd.DataFrame, n_boot: int = 1000,
                     seed: int = 0) -> dict:
    """How each automatic metric tracks the judges.

    Parameters
    ----------
    judgments : pd.DataFrame
        The judgments.
    scores : pd.DataFrame
        Per (image_id, system) each metric's score of that system's caption (columns: image_id,
        system and one column per metric).

    Returns
    -------
    dict
        Per metric: instance level, Kendall tau-b and tau-c between the judges' mean
        preference in each task (a's share of wins, ties half) and the metric's difference
        a - b on that image, with intervals over images; system level, the share of system
        pairs the metric orders as the judges do (its mean difference and the win rate on the
        same side of 0 and 0.5), with an interval over images.
    """
    o = oriented(judgments)
    tasks = o.groupby(["image_id", "a", "b"]).score.mean().rename("people").reset_index()
    images = pd.Index(tasks.image_id.unique())
    image_of = images.get_indexer(tasks.image_id)
    weights = draw_counts(len(images), n_boot, seed)
    metrics = [c for c in scores.columns if c not in ("image_id", "system")]
    table = scores.set_index(["image_id", "system"])
    out = {}
    for metric in metrics:
        diff = pair_difference(table[metric], tasks)
        keep = np.isfinite(diff)
        system = system_agreement(tasks[keep].assign(diff=diff[keep]), weights[:, image_of[keep]])
        out[metric] = {"tasks": int(keep.sum()), **kendall_intervals(
            tasks.people[keep], diff[keep], weights[:, image_of[keep]]), **system}
    return {"metrics": out, "resampled": {"unit": "image", "count": len(images),
                                          "n_boot": n_boot}}


def pair_difference(values: pd.Series, pairs: pd.DataFrame) -> np.ndarray:
    """Per row of `pairs` (image_id, a, b): `values` (indexed by image_id, system) of a minus
    that of b on the row's image; NaN where either is missing."""
    at = {side: pd.MultiIndex.from_arrays([pairs.image_id, pairs[side]]) for side in "ab"}
    return values.reindex(at["a"]).to_numpy() - values.reindex(at["b"]).to_numpy()


def kendall_intervals(people, metric, weights: np.ndarray) -> dict:
    """Kendall tau-b and tau-c of `people` and `metric` with their percentile intervals over
    the bootstrap draws `weights` (`kendall`)."""
    sample_b, sample_c = kendall(people, metric)
    boot_b, boot_c = kendall(people, metric, weights)
    return {"tau_b": float(sample_b[0]), "tau_b_ci": list(percentile_interval(boot_b)),
            "tau_c": float(sample_c[0]), "tau_c_ci": list(percentile_interval(boot_c))}


def system_agreement(tasks: pd.DataFrame, weights: np.ndarray, centre: float = 0.5) -> dict:
    """Share of system pairs (a, b) where the metric's mean difference (`diff`) and the
    judges' mean preference (`people`: a's share of wins, no preference at `centre`; or a's
    rating minus b's, `centre` 0) fall on the same side, on the sample and per bootstrap
    draw of `weights` (one row per draw, one column per row of `tasks`)."""
    pairs = tasks.groupby(["a", "b"]).indices
    same = []
    for rows in pairs.values():
        w = np.vstack([np.ones(len(rows)), weights[:, rows]])
        people = (w * tasks.people.to_numpy()[rows]).sum(axis=1) / w.sum(axis=1)
        metric = (w * tasks["diff"].to_numpy()[rows]).sum(axis=1) / w.sum(axis=1)
        same.append(np.sign(people - centre) == np.sign(metric))
    agree = np.mean(same, axis=0)
    return {"system_pairs": len(pairs), "system_agreement": float(agree[0]),
            "system_agreement_ci": list(percentile_interval(agree[1:]))}


def side_of(low: float, high: float, centre: float) -> str:
    """Where a 95% interval lies against `centre`: "a" above it, "b" below it, "" across it."""
    return "a" if low > centre else "b" if high < centre else ""


def verdict_lines(rates: pd.DataFrame) -> list[str]:
    """One sentence per pair of `win_rates`: which system people prefer, when the 95%
    interval excludes 0.5, else that they cannot tell the two apart (with the figures)."""
    lines = []
    for r in rates.itertuples():
        said = (f"win rate {r.win_rate:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}], "
                f"{r.judgments} judgments on {r.images} images")
        lines.append({"a": f"People prefer {r.a} over {r.b}: {said}.",
                      "b": f"People prefer {r.b} over {r.a}: {r.a}'s {said}.",
                      "": f"People cannot tell {r.a} and {r.b} apart: {r.a}'s {said}."}[
            side_of(r.ci_low, r.ci_high, 0.5)])
    return lines


def arm_win_rates(judgments: pd.DataFrame, tasks: pd.DataFrame, replicates: dict[str, int],
                  n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per variant, how often people prefer arm B's caption over arm A's (systems `A:v` and
    `B:v` of a study of two runs), with an interval over test images and training replicates.

    The interval is win rate +- t * sqrt(training + test set). The test-set part is the
    variance of the win rate over image resamples (an image brings all its judgments); the
    training parts come from the mean win rate of each (A replicate, B replicate) cell
    (`_training_parts`: A's replicates, B's, and their interaction). The t quantile has the
    smallest degrees of freedom of the training parts (K - 1), not Welch-Satterthwaite's: a
    win rate is far from normal in the replicates' effects when they are large (a 3 x 3 study
    is close to a rank statistic of six values), and on simulated arms that differ only by
    seed Welch-Satterthwaite called them different in 7% of 400 studies, this rule in 2.3%
    (K = 3; 3.3% at K = 5). A two-level percentile bootstrap under-covers too
    (docs/compare.md). With one replicate per arm, the image bootstrap's percentile interval.

    Parameters
    ----------
    judgments : pd.DataFrame
        The study's judgments.
    tasks : pd.DataFrame
        The plan's tasks, with left_replicate and right_replicate.
    replicates : dict
        {"A": runs in arm A, "B": runs in arm B}.

    Returns
    -------
    pd.DataFrame
        variant, judgments, images, replicates_a, replicates_b, ties, win_rate (B over A,
        ties half), ci_low, ci_high, df (the t interval's degrees of freedom; None for the
        image bootstrap's percentile interval), training_share, resampled.
    """
    o = oriented(judgments)  # a = "A:v", b = "B:v" (name order)
    side = tasks.set_index("task")
    left_a = side.left.reindex(o.task).astype(str).str.startswith("A:").to_numpy()
    left, right = (side[f"{s}_replicate"].reindex(o.task).to_numpy() for s in ("left", "right"))
    rep = {"A": np.where(left_a, left, right).astype(int),
           "B": np.where(left_a, right, left).astype(int)}
    rows = []
    for (a, b), index in o.groupby(["a", "b"]).indices.items():
        if not (a.startswith("A:") and b.startswith("B:") and a[2:] == b[2:]):
            continue
        pair = o.iloc[index]
        won = 1 - pair.score.to_numpy(float)  # B's share
        value = float(won.mean())
        boot, images = image_means(pair, won, n_boot, seed)
        low, high = percentile_interval(boot) if n_boot else (np.nan, np.nan)
        parts, dofs = _training_parts(won, rep["A"][index], rep["B"][index],
                                      (replicates["A"], replicates["B"]))
        share = df = None
        if parts and n_boot:
            test_set = float(np.var(boot, ddof=1))
            total = sum(parts) + test_set
            df = float(min(dofs))
            half = stats.t.ppf(0.5 + CONFIDENCE / 2, df) * np.sqrt(total)
            low, high = value - half, value + half
            share = float(sum(parts) / (sum(parts) + test_set))
        rows.append({"variant": a[2:], "judgments": len(pair), "images": images,
                     "replicates_a": replicates["A"], "replicates_b": replicates["B"],
                     "ties": int(pair.tie.sum()), "win_rate": value, "ci_low": low,
                     "ci_high": high, "df": df, "training_share": share,
                     "resampled": _resampled((replicates["A"], replicates["B"]))})
    return pd.DataFrame(rows)


def _training_parts(won: np.ndarray, rep_a: np.ndarray, rep_b: np.ndarray,
                    replicates: tuple[int, int]) -> tuple[list[float], list[float]]:
    """The training parts of the win rate's variance and their degrees of freedom, from the
    mean of each (A replicate, B replicate) cell: a two-way layout whose row effects (A's
    replicates), column effects (B's) and interaction (a pair of replicates that happen to
    suit each other: the win rate is not additive in the two arms' training effects) each
    vary with a rerun. Each part is its mean square over the count it is averaged over; the
    cell means also carry judging and image noise, so the parts err wide."""
    k_a, k_b = replicates
    if max(k_a, k_b) < 2:
        return [], []
    cells = pd.Series(won).groupby([rep_a, rep_b]).mean().unstack()
    if cells.isna().to_numpy().any():  # an empty cell: rows and columns from the tasks alone
        parts, dofs = [], []
        for k, reps in ((k_a, rep_a), (k_b, rep_b)):
            if k > 1:
                means = pd.Series(won).groupby(reps).mean()
                parts.append(float(means.var(ddof=1)) / k if len(means) > 1 else np.inf)
                dofs.append(k - 1)
        return parts, dofs
    m = cells.to_numpy(float)
    rows, columns, grand = m.mean(axis=1), m.mean(axis=0), m.mean()
    parts, dofs = [], []
    if k_a > 1:
        parts.append(float(np.var(rows, ddof=1)) / k_a)
        dofs.append(k_a - 1)
    if k_b > 1:
        parts.append(float(np.var(columns, ddof=1)) / k_b)
        dofs.append(k_b - 1)
    if k_a > 1 and k_b > 1:
        residual = m - rows[:, None] - columns[None, :] + grand
        df = (k_a - 1) * (k_b - 1)
        parts.append(float((residual ** 2).sum() / df) / (k_a * k_b))
        dofs.append(df)
    return parts, dofs


def _resampled(replicates: tuple[int, int]) -> str:
    """What the interval covers, given each arm's number of replicates."""
    if min(replicates) > 1:
        return "image x training replicate"
    if max(replicates) > 1:
        return f"image x training replicate (arm {'AB'[int(replicates[1] > 1)]} only)"
    return "image"
