"""Differences between trained models that survive a rerun: intervals over the test images
*and* the training replicates, with the spread split into its two sources.

A trained model is one draw: another seed, data order or CPU gives another model. Comparing
two trained arms (variant A and variant B, run A and run B) on the same test images, the
difference of their mean scores varies for two reasons:

- **training**: the arms' replicates (models trained with other seeds) score differently on
  the very same images. Estimated from each arm's per-replicate figures, it shrinks as 1/K
  with K replicates per arm;
- **test set**: another sample of test images would give another difference. Estimated by
  resampling the images (paired: the same images drawn for both arms) with the replicates
  averaged, it shrinks as 1/n.

The interval is difference +- t * sqrt(training + test set), with Welch-Satterthwaite degrees
of freedom (training components have K - 1 each, the images n - 1): with three replicates an
arm's training variance is known only roughly, and the t quantile widens the interval
accordingly. This is the variance accounting of Bouthillier et al. (MLSys 2021, "Accounting for
Variance in Machine Learning Benchmarks"): randomise every source that varies between reruns
and report how much each contributes. A two-level percentile bootstrap (resampling images and,
within each arm, replicates, as rliable's stratified bootstrap does over runs and tasks;
Agarwal et al., NeurIPS 2021) is the other common choice; with 3-5 replicates a percentile
bootstrap of the replicates under-covers (it treats K values as the population), which the
calibration test in `tests/test_replicates.py` measures, so it is not used for verdicts.

With one replicate in an arm the training variance is not measured: the result says so, and a
verdict is given only when the caller asks for the test-images-only comparison explicitly.

With two replicates per arm the interval is given but no claim is made (`FEW_REPLICATES`):
each arm's training spread then rests on one degree of freedom, and the interval holds its
level only while training effects are normal. Simulated arms that differ only by seed
(`benchmarks/replicate_calibration.py`: 2000 repetitions each, 150 test images; two runs
with other seeds) were called different at K = 2 in 4.0-5.2% of repetitions with normal
training effects and 5.2-6.0% when one replicate in five collapses (a mixture): at or above
the nominal 5%, with nothing to spare; at K = 3 and 4 in 1.5-4.0% under all three models. A
claim therefore needs `MIN_REPLICATES` per arm; at K = 2 the power was small anyway (a t
quantile of 4.3-12.7 at 1-2 degrees of freedom).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import optimize, stats

from annotate.stats.bootstrap import draws, percentile_interval

#: Two-sided level of every replicate-aware interval and verdict, and the power of the MDD.
CONFIDENCE, POWER = 0.95, 0.8
#: The verdict when an arm has a single trained model and no images-only comparison was asked.
UNKNOWN_TRAINING = "cannot tell: training variance unknown (one trained model per arm)"
#: Trained replicates per arm a claim needs (see the module's docstring for the measurement).
MIN_REPLICATES = 3
#: The verdict with replicates measured but fewer than `MIN_REPLICATES` in an arm.
FEW_REPLICATES = ("cannot tell: {k} training replicates per arm (a claim needs at least "
                  f"{MIN_REPLICATES})")


def replicate_verdict(ci_low: float, ci_high: float, replicates_a: int, replicates_b: int,
                      images_only: bool = False, centre: float = 0.0) -> str:
    """The verdict on B against A from an interval of a figure whose "no difference" is
    `centre` (0 for B - A, 0.5 for a win rate of B over A): "B better" above it, "A better"
    below it, else "cannot tell at this evaluation size"; `claim_blocked`'s verdict for arms
    of too few replicates; labelled when the interval covers the test images only."""
    blocked = claim_blocked(replicates_a, replicates_b, images_only)
    if blocked:
        return blocked
    if not np.isfinite(ci_low):
        return "cannot tell (no interval)"
    suffix = (" (test images only: training variance not measured)"
              if min(replicates_a, replicates_b) < 2 else "")
    if ci_low > centre + 1e-9:
        return "B better" + suffix
    if ci_high < centre - 1e-9:
        return "A better" + suffix
    return "cannot tell at this evaluation size" + suffix


def claim_blocked(replicates_a: int, replicates_b: int, images_only: bool = False) -> str | None:
    """The verdict that stops a claim from arms of so few replicates, or None when the
    interval may decide: one model per arm (unless `images_only`), or measured but fewer than
    `MIN_REPLICATES`."""
    fewest = min(replicates_a, replicates_b)
    if fewest < 2:
        return None if images_only else UNKNOWN_TRAINING
    return FEW_REPLICATES.format(k=fewest) if fewest < MIN_REPLICATES else None


def rerun_agreement(value: float, ci_low: float, ci_high: float, df: float | None, *,
                    centre: float = 0.0, confidence: float = CONFIDENCE,
                    replicates: tuple[int, int] | None = None) -> float | None:
    """How likely an independent rerun of the same design (other training seeds, another
    sample of as many test images) makes the same call as this interval: above `centre`,
    below it, or neither; if the true difference is the one measured.

    The rerun's estimate is taken as normal around `value` with the standard error this
    interval implies (its half-width over the t quantile at `df`), its own standard error as
    estimated with `df` degrees of freedom, and it is called as this one was: the rerun's
    t statistic is noncentral t (normal when `df` is None or infinite), as in
    `minimum_detectable_difference`. This is the replication probability of Goodman (1992, "A
    comment on replication, p-values and evidence", Statistics in Medicine 11:875-879): a
    difference claimed right at the edge of its interval is claimed again only half the time,
    so two runs of a design whose differences sit near its detection limit disagree about
    significance about as often as they agree. It is a plug-in figure: the true difference
    is unknown, and the measured one is a noisy stand-in for it.

    Parameters
    ----------
    value, ci_low, ci_high : float
        The difference and its interval.
    df : float or None
        The interval's degrees of freedom (None or inf: normal).
    centre : float
        The "no difference" value.
    confidence : float
        The interval's coverage.
    replicates : (int, int), optional
        Each arm's training replicates: arms too few to claim (`claim_blocked`) make no
        call, so there is none to repeat.

    Returns
    -------
    float or None
        The probability, or None without a finite interval or a call that may be made.

    Examples
    --------
    Goodman's Table 1: a difference significant at exactly p = 0.05 (two-sided) is significant
    in the same direction on replication with probability 0.50; at p = 0.01, 0.73; at
    p = 0.001, 0.91.

    >>> z = stats.norm.ppf(1 - np.array([0.05, 0.01, 0.001]) / 2)
    >>> half = stats.norm.ppf(0.975)
    >>> [round(rerun_agreement(v, v - half, v + half, None), 2) for v in z]
    [0.5, 0.73, 0.91]
    """
    if replicates is not None and claim_blocked(*replicates):
        return None
    df = np.inf if df is None else float(df)
    critical = stats.t.ppf(0.5 + confidence / 2, df)
    error = (ci_high - ci_low) / (2 * critical)
    if not (np.isfinite(error) and error > 0):
        return None
    shift = (value - centre) / error
    if np.isfinite(df):  # the rerun estimates its error too: a noncentral t
        higher, lower = stats.nct.sf(critical, df, shift), stats.nct.cdf(-critical, df, shift)
    else:
        higher, lower = stats.norm.cdf(shift - critical), stats.norm.cdf(-shift - critical)
    if ci_low > centre:
        return float(higher)
    if ci_high < centre:
        return float(lower)
    return float(1 - higher - lower)


@dataclass(frozen=True)
class ReplicateDifference:
    """B - A over test images and training replicates."""

    a: float
    b: float
    difference: float
    ci_low: float
    ci_high: float
    training_variance: float | None
    test_set_variance: float
    df: float | None
    replicates_a: int
    replicates_b: int
    images: int
    sd_a: float | None
    sd_b: float | None
    images_only: bool
    #: the spread across images of the per-image difference of the arms' averaged scores
    #: (what `plan` needs); None where the figure is not a mean of per-image scores
    image_sd: float | None = None

    @property
    def training_share(self) -> float | None:
        """The share of the difference's variance that training randomness contributes."""
        if self.training_variance is None:
            return None
        total = self.training_variance + self.test_set_variance
        return float(self.training_variance / total) if total > 0 else None

    @property
    def verdict(self) -> str:
        return replicate_verdict(self.ci_low, self.ci_high, self.replicates_a,
                                 self.replicates_b, self.images_only)

    @property
    def rerun_same_call(self) -> float | None:
        """`rerun_agreement` of this verdict; None where the arms are too few to claim (one
        model each: training variance not measured; or fewer than `MIN_REPLICATES`), since a
        rerun of either kind cannot claim either."""
        return rerun_agreement(self.difference, self.ci_low, self.ci_high, self.df,
                               replicates=(self.replicates_a, self.replicates_b))

    def to_dict(self) -> dict:
        """JSON-ready, with what the interval resampled and the variance split."""
        measured = self.training_variance is not None
        return {
            "a": self.a, "b": self.b, "difference": self.difference, "ci_low": self.ci_low,
            "ci_high": self.ci_high, "verdict": self.verdict,
            "rerun_same_call": self.rerun_same_call,
            "replicates": {"a": self.replicates_a, "b": self.replicates_b},
            "spread": {"a_sd": self.sd_a, "b_sd": self.sd_b}, "image_sd": self.image_sd,
            "variance": {"training": self.training_variance,
                         "test_set": self.test_set_variance,
                         "training_share": self.training_share},
            "resampled": {
                "unit": "image x training replicate" if measured else "image",
                "paired": True, "count": self.images,
                "method": ("t interval, variance = training (replicates, K - 1 df each) + "
                           "test set (images, paired bootstrap); Welch-Satterthwaite df"
                           if measured else "percentile bootstrap over test images only"),
                "training_variance": "measured" if measured else "not measured"}}


def compare_replicates(a_replicates: np.ndarray, b_replicates: np.ndarray,
                       image_boot: np.ndarray, *, images: int, images_only: bool = False,
                       confidence: float = CONFIDENCE) -> ReplicateDifference:
    """B - A from each arm's per-replicate figures and an image bootstrap of the difference.

    Parameters
    ----------
    a_replicates, b_replicates : numpy.ndarray
        The figure (a mean score, a recall, a corpus BLEU, ...) of each trained replicate of
        arm A and of arm B, on the same test images.
    image_boot : numpy.ndarray
        Bootstrap replicates of (mean over B's replicates - mean over A's replicates) with the
        test images resampled, the same images for both arms.
    images : int
        The number of test images.
    images_only : bool
        With a single replicate in an arm, still give a verdict, from the images alone
        (labelled so). Ignored when both arms have replicates.
    confidence : float
        The interval's coverage.

    Returns
    -------
    ReplicateDifference
        The difference, its interval, the variance split and the verdict.
    """
    a_replicates = np.asarray(a_replicates, np.float64)
    b_replicates = np.asarray(b_replicates, np.float64)
    boot = np.asarray(image_boot, np.float64)
    boot = boot[np.isfinite(boot)]
    mean_a, mean_b = float(a_replicates.mean()), float(b_replicates.mean())
    difference = mean_b - mean_a
    test_set = float(boot.var(ddof=1)) if len(boot) > 1 else float("nan")
    k_a, k_b = len(a_replicates), len(b_replicates)
    sd_a = float(a_replicates.std(ddof=1)) if k_a > 1 else None
    sd_b = float(b_replicates.std(ddof=1)) if k_b > 1 else None
    if sd_a is None or sd_b is None:
        low, high = percentile_interval(boot, confidence)
        return ReplicateDifference(mean_a, mean_b, difference, low, high, None, test_set, None,
                                   k_a, k_b, images, sd_a, sd_b, images_only)
    parts = [sd_a ** 2 / k_a, sd_b ** 2 / k_b, test_set]
    low, high, df = welch_interval(difference, parts, [k_a - 1, k_b - 1, max(images - 1, 1)],
                                   confidence)
    return ReplicateDifference(mean_a, mean_b, difference, low, high, float(sum(parts[:2])),
                               test_set, df, k_a, k_b, images, sd_a, sd_b, images_only)


def welch_interval(value: float, parts: list[float], dofs: list[float],
                   confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """`value` +- t * sqrt(sum of `parts`): independent variance components, each estimated
    with its degrees of freedom, combined by Welch-Satterthwaite.

    Returns
    -------
    tuple
        (low, high, df).

    Examples
    --------
    >>> low, high, df = welch_interval(1.0, [0.01, 0.01], [2, 2])
    >>> round(df, 1), round(high - 1.0, 3)  # df = 0.02^2 / (2 * 0.01^2 / 2) = 4
    (4.0, 0.393)
    """
    parts_array, dofs_array = np.asarray(parts, np.float64), np.asarray(dofs, np.float64)
    total = float(parts_array.sum())
    df = float(total ** 2 / np.sum(parts_array ** 2 / dofs_array)) if total > 0 else float("inf")
    half = float(stats.t.ppf(0.5 + confidence / 2, df) * np.sqrt(total))
    return value - half, value + half, df


def replicate_estimate(per_replicate: np.ndarray, image_boot: np.ndarray, *, images: int,
                       confidence: float = CONFIDENCE) -> dict:
    """One figure of an arm of trained replicates (a drop, a gap closed), with its interval
    over test images and training replicates.

    Parameters
    ----------
    per_replicate : numpy.ndarray
        The figure of each replicate on all test images.
    image_boot : numpy.ndarray
        Bootstrap replicates of the replicate-averaged figure with the test images resampled.
    images : int
        The number of test images.
    confidence : float
        The interval's coverage.

    Returns
    -------
    dict
        `value` (the mean over replicates; NaN when none is given), `ci_low`, `ci_high`,
        `sd` (across replicates),
        `variance` (training, test set, training share) and `resampled`; with one replicate
        the interval resamples the test images only and says so.
    """
    values = np.asarray(per_replicate, np.float64)
    boot = np.asarray(image_boot, np.float64)
    boot = boot[np.isfinite(boot)]
    value = float(values.mean()) if len(values) else float("nan")  # no replicate defines it
    test_set = float(boot.var(ddof=1)) if len(boot) > 1 else float("nan")
    k = len(values)
    if k < 2:
        low, high = percentile_interval(boot, confidence)
        return {"value": value, "ci_low": low, "ci_high": high, "sd": None,
                "variance": {"training": None, "test_set": test_set, "training_share": None},
                "resampled": {"unit": "image", "count": images, "training_replicates": 1,
                              "training_variance": "not measured"}}
    training = float(values.var(ddof=1) / k)
    total = training + test_set
    low, high, df = welch_interval(value, [training, test_set], [k - 1, max(images - 1, 1)],
                                   confidence)
    return {"value": value, "ci_low": low, "ci_high": high,
            "sd": float(values.std(ddof=1)),
            "variance": {"training": training, "test_set": test_set,
                         "training_share": training / total if total > 0 else None},
            "resampled": {"unit": "image x training replicate", "count": images,
                          "training_replicates": k, "training_variance": "measured",
                          "df": float(df)}}


def compare_mean_scores(a: np.ndarray, b: np.ndarray, *, n_boot: int = 1000, seed: int = 0,
                        images_only: bool = False) -> ReplicateDifference:
    """B - A of a per-image score (CIDEr-D, ROUGE-L, ...) over images and replicates.

    Parameters
    ----------
    a, b : numpy.ndarray
        Shape (replicates, images): each replicate's score of each test image, the same images
        in the same order for both arms.
    n_boot : int
        Image resamples for the test-set part.
    seed : int
        Seed of the resampling.
    images_only : bool
        See `compare_replicates`.

    Returns
    -------
    ReplicateDifference

    Examples
    --------
    Three replicates per arm that differ only by training noise, on 200 images:

    >>> rng = np.random.default_rng(0)
    >>> image = rng.normal(2.0, 1.0, 200)
    >>> a = image + rng.normal(0, 0.1, (3, 1)) + rng.normal(0, 0.3, (3, 200))
    >>> b = image + rng.normal(0, 0.1, (3, 1)) + rng.normal(0, 0.3, (3, 200))
    >>> compare_mean_scores(a, b).verdict
    'cannot tell at this evaluation size'
    >>> compare_mean_scores(a[:1], b[:1]).verdict
    'cannot tell: training variance unknown (one trained model per arm)'
    """
    a, b = np.atleast_2d(np.asarray(a, np.float64)), np.atleast_2d(np.asarray(b, np.float64))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"the arms scored different numbers of images: {a.shape[1]} vs "
                         f"{b.shape[1]}")
    per_image = b.mean(axis=0) - a.mean(axis=0)
    picked = draws(len(per_image), n_boot, seed)
    boot = per_image[picked].mean(axis=1) if len(picked) else np.array([])
    result = compare_replicates(a.mean(axis=1), b.mean(axis=1), boot, images=a.shape[1],
                                images_only=images_only)
    image_sd = float(per_image.std(ddof=1)) if len(per_image) > 1 else None
    return replace(result, image_sd=image_sd)


def minimum_detectable_difference(training_sd: float, image_sd: float, replicates: int,
                                  images: int, *, confidence: float = CONFIDENCE,
                                  power: float = POWER) -> float:
    """The smallest true difference between two arms that `compare_replicates` finds with
    `power`.

    Parameters
    ----------
    training_sd : float
        The spread across seeds of one trained model's figure (per arm, the same in both).
    image_sd : float
        The spread across test images of the per-image difference between the arms'
        replicate-averaged scores.
    replicates : int
        Trained models per arm (>= 2).
    images : int
        Test images.
    confidence, power : float
        Two-sided level and power.

    Returns
    -------
    float
        delta * SE with SE^2 = 2 training_sd^2 / K + image_sd^2 / n, where delta is the
        noncentrality at which a noncentral t with the interval's Welch-Satterthwaite degrees
        of freedom exceeds the critical value with probability `power`.

    Examples
    --------
    >>> round(minimum_detectable_difference(0.1, 0.5, 3, 175), 3)
    0.304
    """
    training = 2 * training_sd ** 2 / replicates
    test_set = image_sd ** 2 / images
    total = training + test_set
    df = total ** 2 / (2 * (training / 2) ** 2 / max(replicates - 1, 1)
                       + test_set ** 2 / max(images - 1, 1)) if total > 0 else np.inf
    critical = stats.t.ppf(0.5 + confidence / 2, df)
    # the noncentrality whose one-sided rejection rate is `power` (noncentral t, exact for a
    # known df; the t approximation t_crit + t_power is optimistic at the few df of K = 3)
    shift = optimize.brentq(lambda d: stats.nct.sf(critical, df, d) - power, 0.0, 50.0)
    return float(shift * np.sqrt(total))


def plan(training_sd: float, image_sd: float, target: float, *, images: int,
         max_replicates: int = 20, confidence: float = CONFIDENCE, power: float = POWER
         ) -> dict:
    """How many replicates (and test images) a difference of `target` needs.

    Parameters
    ----------
    training_sd, image_sd : float
        As in `minimum_detectable_difference`, measured on a pilot (a run with replicates).
    target : float
        The difference the team cares about.
    images : int
        The test images available.
    max_replicates : int
        The most replicates considered.
    confidence, power : float
        Two-sided level and power.

    Returns
    -------
    dict
        `replicates`: the fewest per arm (at least `MIN_REPLICATES`, the fewest that may
        claim a difference) whose MDD on `images` is at most `target` (None when
        even `max_replicates` do not reach it: the test set is then too small, and
        `images_needed_with_max` says how many images would be); the MDD per replicate count.
    """
    mdd = {k: minimum_detectable_difference(training_sd, image_sd, k, images,
                                            confidence=confidence, power=power)
           for k in range(MIN_REPLICATES, max_replicates + 1)}
    enough = [k for k, value in mdd.items() if value <= target]
    z = stats.norm.ppf(0.5 + confidence / 2) + stats.norm.ppf(power)  # many images: t ~ z
    left = (target / z) ** 2 - 2 * training_sd ** 2 / max_replicates
    return {"target": target, "images": images,
            "replicates": min(enough) if enough else None,
            "images_needed_with_max": int(np.ceil(image_sd ** 2 / left)) if left > 0 else None,
            "mdd_by_replicates": mdd, "confidence": confidence, "power": power}
