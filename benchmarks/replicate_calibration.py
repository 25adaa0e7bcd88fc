"""How often the intervals over test images and training replicates claim a difference between
arms that differ only by seed (the false-claim rate, 5% nominal), by replicates per arm and by
the shape of the training effects; and the same for people's win rate of one arm over another.
The figures behind `annotate.stats.replicates.MIN_REPLICATES` (no claim from 2 replicates) and
behind the degrees of freedom of `quality.judging.analysis.arm_win_rates`.

    uv run python benchmarks/replicate_calibration.py [--repetitions 2000] [--studies 400]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from annotate.stats.replicates import compare_mean_scores

IMAGES, IMAGE_SD, NOISE_SD = 150, 1.0, 0.3


def training_effects(rng, kind: str, replicates: int) -> np.ndarray:
    """One arm's per-replicate training effects (a column: the same on every image)."""
    if kind == "normal":
        return rng.normal(0, 0.1, (replicates, 1))
    if kind == "t, 3 df":
        return 0.1 * rng.standard_t(3, (replicates, 1)) / np.sqrt(3)
    # one replicate in five collapses: 0.3 lower on every image
    return np.where(rng.random((replicates, 1)) < 0.2, -0.3, 0.0) + rng.normal(
        0, 0.03, (replicates, 1))


def false_claims(kind: str, replicates: int, repetitions: int, seed: int) -> float:
    """Share of repetitions in which `compare_mean_scores` claims a difference."""
    rng = np.random.default_rng(seed)
    claims = 0
    for r in range(repetitions):
        image = rng.normal(0, IMAGE_SD, IMAGES)
        a, b = (image + training_effects(rng, kind, replicates)
                + rng.normal(0, NOISE_SD, (replicates, IMAGES)) for _ in range(2))
        # the verdict's interval alone, so that K = 2 is measured too (it claims nothing now)
        result = compare_mean_scores(a, b, n_boot=200, seed=r)
        claims += not result.ci_low <= 0 <= result.ci_high
    return claims / repetitions


def people_false_claims(replicates: int, studies: int, seed: int) -> float:
    """Share of judged studies of two arms that differ only by seed whose interval for B's
    win rate excludes 0.5 (the simulated study of `tests/test_judging.py`)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from quality.judging import analysis
    from tests.test_judging import arm_study

    rng = np.random.default_rng(seed)
    claims = 0
    for _ in range(studies):
        judged, tasks = arm_study(rng, replicates)
        row = analysis.arm_win_rates(judged, tasks, {"A": replicates, "B": replicates},
                                     n_boot=200).iloc[0]
        claims += not row.ci_low <= 0.5 <= row.ci_high
    return claims / studies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=2000)
    parser.add_argument("--studies", type=int, default=400)
    args = parser.parse_args()
    print(f"automatic figures: arms that differ only by seed, {IMAGES} test images, "
          f"{args.repetitions} repetitions; share whose 95% interval excludes 0")
    print(f"{'training effects':28} {'K = 2':>7} {'K = 3':>7} {'K = 4':>7}")
    for k, kind in enumerate(("normal", "t, 3 df", "1 replicate in 5 collapses")):
        rates = [false_claims(kind, r, args.repetitions, seed=10 * k + r) for r in (2, 3, 4)]
        print(f"{kind:28} " + " ".join(f"{rate:7.1%}" for rate in rates))
    print(f"people's win rate of B over A: {args.studies} judged studies of arms that differ "
          "only by seed; share whose interval excludes 0.5")
    for replicates in (3, 5):
        rate = people_false_claims(replicates, args.studies, seed=7 + replicates)
        print(f"K = {replicates}: {rate:.1%}")


if __name__ == "__main__":
    main()
