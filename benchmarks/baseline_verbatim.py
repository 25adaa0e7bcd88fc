"""Where the rule baseline's lead over the learned stage 2 on perfect input comes from.

Reads pipeline runs made with `--replicates K` (their folders): the gold-trained model's
captions of the gold test layouts in every replicate, and the rule baseline's. The test images
are cut in two: those where the baseline's caption is word for word one of the image's human
captions (it then shares every n-gram with a reference, and CIDEr-D rewards that strongly),
and the others. On each part, learned − baseline CIDEr-D with its interval over test images
× training replicates (`annotate.stats.replicates.compare_mean_scores`; the baseline is not
trained, so its rows repeat). Several run folders joined by commas pool their replicates
(the same split).

    uv run python benchmarks/baseline_verbatim.py runs/demo [runs/demo-seed1 ...]
        [runs/demo,runs/demo-seed1]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from annotate.metrics.captions import cider_d
from annotate.stats.replicates import compare_mean_scores
from annotate.tables import store
from quality import workspace
from quality.cascade.replicates import REPLICATES_FILE
from quality.cascade.scoring import references

VARIANT = "gold"


def arm_runs(spec: str) -> list[Path]:
    """Every replicate folder of the comma-separated pipeline runs."""
    runs: list[Path] = []
    for top in spec.split(","):
        record = json.loads((Path(top) / REPLICATES_FILE).read_text())
        runs += [Path(run) for run in record["runs"]]
    return runs


def verbatim_split(spec: str) -> pd.DataFrame:
    """One row per part (all, baseline verbatim, other): images, both means and
    learned − baseline with its interval and verdict."""
    runs = arm_runs(spec)
    ts = store.load(workspace.path(runs[0], "split"))
    refs = references(ts, ts.images.image_id[ts.images.split == "test"])

    def per_image(folder: Path) -> tuple[pd.Series, np.ndarray]:
        captions = pd.read_parquet(folder / workspace.CAPTIONS_GOLD).set_index("image_id")
        captions = captions.caption.loc[refs.index]
        return captions, cider_d(captions.tolist(), refs.tolist())

    baseline, baseline_scores = per_image(workspace.path(runs[0], "stage2") / "baseline")
    learned = np.array([per_image(workspace.path(run, "stage2") / VARIANT)[1] for run in runs])
    verbatim = np.array([caption in people for caption, people in zip(baseline, refs,
                                                                         strict=True)])
    rows = []
    for part, chosen in (("all", np.ones_like(verbatim)), ("baseline verbatim", verbatim),
                         ("other", ~verbatim)):
        difference = compare_mean_scores(np.tile(baseline_scores[chosen], (len(runs), 1)),
                                         learned[:, chosen])
        rows.append({"images": part, "n": int(chosen.sum()),
                     "baseline": round(float(baseline_scores[chosen].mean()), 3),
                     "learned": round(float(learned[:, chosen].mean()), 3),
                     "learned - baseline": f"{difference.difference:+.3f} "
                                           f"[{difference.ci_low:+.3f}, {difference.ci_high:+.3f}]",
                     "verdict": {"A better": "baseline higher", "B better": "learned higher"}
                     .get(difference.verdict, difference.verdict)})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run folders (comma-joined: pooled)")
    for spec in parser.parse_args().runs:
        print(f"{spec}: {len(arm_runs(spec))} replicates, CIDEr-D on the gold test layouts "
              f"(the {VARIANT}-trained model)")
        print(verbatim_split(spec).to_string(index=False), "\n")


if __name__ == "__main__":
    main()
