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
    "consensus": Artifact("gold/consensus.json", "quality consensus DIR/tables --out DIR/gold"),
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
#: its folder and the captions from its layouts.
STRONG = "stage1_strong"
CAPTIONS_PREDICTED_STRONG = "captions_predicted_strong.parquet"
#: A detector folder's predictions at the lowest candidate threshold (`raw_<split>.parquet`)
#: and the operating threshold chosen on validation (`quality.threshold`).
THRESHOLD = "threshold.json"
#: The detectors a run evaluates, by name, and their folders: the deployed one (the settings'
#: recipe, what the robust variants are built for) and a strong one (trained longer).
DEPLOYED_DETECTOR, STRONG_DETECTOR = "deployed detector", "strong detector"
DETECTORS = {DEPLOYED_DETECTOR: "stage1", STRONG_DETECTOR: STRONG}

def path(run: str | os.PathLike, name: str) -> Path:
    return Path(run) / ARTIFACTS[name].path


def exists(run: str | os.PathLike, name: str) -> bool:
    return path(run, name).exists()


def detector_files(run: str | os.PathLike, kind: str) -> list[Path]:
    """Every detector's `<kind>_val.parquet` and `<kind>_test.parquet` (kind: raw, predicted,
    errors)."""
    return [Path(run) / folder / f"{kind}_{part}.parquet" for folder in DETECTORS.values()
            for part in ("val", "test")]


def variants(run: str | os.PathLike) -> list[Path]:
    """Stage-2 model folders with both caption files, gold first."""
    folder = path(run, "stage2")
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir()
             if (p / CAPTIONS_GOLD).exists() and (p / CAPTIONS_PREDICTED).exists()]
    return sorted(found, key=lambda p: (p.name != "gold", p.name))
