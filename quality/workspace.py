"""Where each step of the chain leaves its outputs inside one run folder, and which command
makes each: the report reads whatever exists and names the command for what does not."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Artifact:
    """A file or folder of a run and the command that makes it. `flags` name the run settings
    (`run.json`'s `settings`) the command needs to make it as the pipeline did: (option,
    setting) pairs, a boolean setting as `--option` / `--no-option`."""

    path: str
    command: str
    flags: tuple[tuple[str, str], ...] = ()

    def command_for(self, run: str | os.PathLike, settings: dict | None = None) -> str:
        """The command with the run folder filled in and, where the run's settings are known,
        the options that reproduce them."""
        options = []
        for option, key in self.flags:
            value = (settings or {}).get(key)
            if isinstance(value, bool):
                options.append(f"--{option}" if value else f"--no-{option}")
            elif value is not None:
                options.append(f"--{option} {value}")
        head, _, tail = self.command.partition(" (")
        return " ".join([head.replace("DIR", str(run)), *options]) + (
            f" ({tail.replace('DIR', str(run))}" if tail else "")


_PREDICT = ("stage1-detect predict DIR/stage1 DIR/split --split val --out "
            "DIR/stage1/raw_val.parquet (and --split test --out DIR/stage1/raw_test.parquet)")
_EVALUATE = ("stage1-detect evaluate DIR/stage1 DIR/split --split test --boxes "
             "DIR/stage1/predicted_test.parquet --errors DIR/stage1/errors_test.parquet "
             "--json DIR/stage1/evaluate.json")
#: The visual review's folder (`quality gallery`; its record `gallery.json` is the artifact
#: "gallery", which the report reads to link each figure to the images behind it).
GALLERY = "gallery"
_THRESHOLD = "quality threshold DIR (writes DIR/stage1/predicted_{val,test}.parquet)"
ARTIFACTS = {
    "tables": Artifact("tables", "annotate import EXPORT --out DIR/tables"),
    "reliability": Artifact("reliability.json",
                            "quality reliability DIR/tables --json DIR/reliability.json",
                            (("n-boot", "n_boot"), ("seed", "seed"))),
    "gold": Artifact("gold", "quality consensus DIR/tables --out DIR/gold"),
    "consensus": Artifact("gold/consensus.json", "quality consensus DIR/tables --out DIR/gold"),
    "split": Artifact("split", "quality split DIR/gold --out DIR/split",
                      (("val", "val"), ("test", "test"), ("seed", "split_seed"),
                       ("n-boot", "n_boot"))),
    "audit": Artifact("audit.json", "quality audit DIR/split --json DIR/audit.json"),
    "stage1": Artifact("stage1/run.json", "stage1-detect train DIR/split --out DIR/stage1",
                       (("model", "detector"), ("epochs", "detector_epochs"),
                        ("imgsz", "imgsz"), ("seed", "seed"))),
    "raw": Artifact("stage1/raw_test.parquet", _PREDICT, (("imgsz", "imgsz"),)),
    "stage2": Artifact("stage2",
                       "stage2-generate train DIR/split --out DIR/stage2/gold (the robust "
                       "variants noise, oof and noise+oof: evaluate-pipeline --out DIR)",
                       (("preset", "stage2_preset"), ("epochs", "stage2_epochs"),
                        ("batch-size", "stage2_batch_size"),
                        ("seed", "seed"))),
    "threshold": Artifact("stage1/threshold.json", _THRESHOLD),
    "predicted": Artifact("stage1/predicted_test.parquet", _THRESHOLD),
    "errors": Artifact("stage1/errors_test.parquet", _EVALUATE, (("imgsz", "imgsz"),)),
    "evaluate": Artifact("stage1/evaluate.json", _EVALUATE, (("imgsz", "imgsz"),)),
    "captions": Artifact("stage2/gold/captions_predicted.parquet",
                         "stage2-generate generate DIR/stage2/gold DIR/split --split test "
                         "--boxes DIR/stage1/predicted_test.parquet --out "
                         "DIR/stage2/gold/captions_predicted.parquet (and without --boxes: "
                         "DIR/stage2/gold/captions_gold.parquet; the rule baseline: "
                         "stage2-generate baseline)"),
    "robustness": Artifact("robustness.json", "quality robustness DIR",
                           (("n-boot", "n_boot"), ("seed", "seed"),
                            ("perturbation", "perturbation"))),
    "sanity": Artifact("sanity.json", "quality sanity DIR/split --json DIR/sanity.json"),
    "run": Artifact("run.json", "evaluate-pipeline --out DIR (the run record: settings, data "
                                "and source versions, MLflow runs)"),
    "judging": Artifact("judging/judgments.json",
                        "quality plan-judging DIR --out DIR/judging; quality judge-push, "
                        "judge-pull (or judge-simulate) DIR/judging; quality judgments "
                        "DIR/judging"),
    "gallery": Artifact(f"{GALLERY}/gallery.json", "quality gallery DIR"),
}
#: Captions of a stage-2 variant folder, from gold and from the deployed detector's layouts, for
#: the test images; the same files under `val/` hold the validation images' captions.
CAPTIONS_GOLD = "captions_gold.parquet"
CAPTIONS_PREDICTED = "captions_predicted.parquet"
VAL = "val"
#: The gold-trained model's captions of the deployed detector's test output at ultralytics'
#: default confidence (`stage1_detect.handover.ULTRALYTICS_CONF`, no suppression): what the
#: chosen hand-over is compared with, replicate by replicate.
CAPTIONS_PREDICTED_DEFAULT = "captions_predicted_default.parquet"
#: The same model's captions of that output at the chosen threshold without suppression: what
#: suppression at the hand-over is compared with.
CAPTIONS_PREDICTED_UNSUPPRESSED = "captions_predicted_unsuppressed.parquet"
#: The strong detector (the deployed one trained longer: what a better stage 1 would give):
#: its folder and the captions from its layouts.
STRONG = "stage1_strong"
CAPTIONS_PREDICTED_STRONG = "captions_predicted_strong.parquet"
#: A detector folder's predictions at the lowest candidate threshold (`raw_<split>.parquet`)
#: and the operating threshold chosen on validation (`quality.cascade.threshold`).
THRESHOLD = "threshold.json"
#: The detectors a run evaluates, by name, and their folders: the deployed one (the settings'
#: recipe, what the robust variants are built for) and a strong one (trained longer).
DEPLOYED_DETECTOR, STRONG_DETECTOR = "deployed detector", "strong detector"
DETECTORS = {DEPLOYED_DETECTOR: "stage1", STRONG_DETECTOR: STRONG}

def path(run: str | os.PathLike, name: str) -> Path:
    """Where artifact `name` lives in the run folder `run`."""
    return Path(run) / ARTIFACTS[name].path


def exists(run: str | os.PathLike, name: str) -> bool:
    """Whether the run folder holds artifact `name`."""
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
