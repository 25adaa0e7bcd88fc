"""Where each step of the chain leaves its outputs inside one run folder, and which command
makes each: the report reads whatever exists and names the command for what does not."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Artifact:
    path: str
    command: str


ARTIFACTS = {
    "tables": Artifact("tables", "annotate import EXPORT --out DIR/tables"),
    "reliability": Artifact("reliability.json",
                            "quality reliability DIR/tables --json DIR/reliability.json --ceiling"),
    "gold": Artifact("gold", "quality consensus DIR/tables --out DIR/gold"),
    "split": Artifact("split", "quality split DIR/gold --out DIR/split"),
    "audit": Artifact("audit.json", "quality audit DIR/split --json DIR/audit.json"),
    "stage1": Artifact("stage1/run.json", "stage1-detect train DIR/split --out DIR/stage1"),
    "predicted": Artifact("stage1/predicted_test.parquet",
                          "stage1-detect predict DIR/stage1 DIR/split --split test "
                          "--out DIR/stage1/predicted_test.parquet"),
    "errors": Artifact("stage1/errors_test.parquet",
                       "stage1-detect evaluate DIR/stage1 DIR/split --split test "
                       "--errors DIR/stage1/errors_test.parquet --json DIR/stage1/evaluate.json"),
    "evaluate": Artifact("stage1/evaluate.json", "(as errors)"),
    "stage2": Artifact("stage2", "stage2-generate train DIR/split --out DIR/stage2/gold "
                                 "(and other variants: DIR/stage2/noise, DIR/stage2/oof, "
                                 "DIR/stage2/noise+oof)"),
    "robustness": Artifact("robustness.json", "quality robustness DIR"),
    "sanity": Artifact("sanity.json", "quality sanity DIR/split --json DIR/sanity.json"),
}
#: Captions of a stage-2 variant folder, from gold and from the deployed detector's layouts, for
#: the test images; the same files under `val/` hold the validation images' captions.
CAPTIONS_GOLD = "captions_gold.parquet"
CAPTIONS_PREDICTED = "captions_predicted.parquet"
VAL = "val"
#: The strong detector (the deployed one trained longer: what a better stage 1 would give):
#: its folder, the captions from its layouts, and its test predictions and error table.
STRONG = "stage1_strong"
CAPTIONS_PREDICTED_STRONG = "captions_predicted_strong.parquet"
STRONG_PREDICTED = f"{STRONG}/predicted_test.parquet"
STRONG_ERRORS = f"{STRONG}/errors_test.parquet"
#: A detector folder's predictions at the lowest candidate threshold (`raw_<split>.parquet`)
#: and the operating threshold chosen on validation (`quality.threshold`).
THRESHOLD = "threshold.json"

def path(run: str | os.PathLike, name: str) -> Path:
    return Path(run) / ARTIFACTS[name].path


def exists(run: str | os.PathLike, name: str) -> bool:
    return path(run, name).exists()


def variants(run: str | os.PathLike) -> list[Path]:
    """Stage-2 model folders with both caption files, gold first."""
    folder = path(run, "stage2")
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir()
             if (p / CAPTIONS_GOLD).exists() and (p / CAPTIONS_PREDICTED).exists()]
    return sorted(found, key=lambda p: (p.name != "gold", p.name))
