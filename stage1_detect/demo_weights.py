"""The detector weights shipped for quick runs: our tiny YOLOv8 pre-trained on demo "shapes"
images that the shipped sample does not contain (`annotate demo --seed 1`; the sample and the
demo preset use seed 0), so that the smoke preset and the tests fine-tune a detector that finds
objects in seconds, the way a team fine-tunes a pre-trained checkpoint, instead of training
one from scratch that finds nothing in the time a test may take.

`make demo-weights` remakes `data/weights/shapes-tiny.pt` with `pretrain`. Nothing is
downloaded; the images it learns from are generated.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from annotate import demo
from annotate.formats.readers import import_set
from annotate.tables import store
from annotate.tables.schema import TableSet
from quality.gold.jobs import consensus_job
from stage1_detect.engine import ultralytics
from stage1_detect.train import SHIPPED_WEIGHTS, DetectorConfig, train

#: The shipped checkpoint (0.9 MB) and the recipe that made it.
SHAPES_TINY = SHIPPED_WEIGHTS["shapes-tiny.pt"]
RECIPE = {"images": 800, "seed": 1, "epochs": 15, "imgsz": 128, "batch": 8}


def pretrain(out: str | os.PathLike = SHAPES_TINY, *, images: int = RECIPE["images"],
             seed: int = RECIPE["seed"], epochs: int = RECIPE["epochs"],
             imgsz: int = RECIPE["imgsz"], batch: int = RECIPE["batch"]) -> Path:
    """Pre-train the tiny detector on generated demo images and save its weights.

    Parameters
    ----------
    out : path
        Where the checkpoint is written (optimizer state stripped).
    images : int
        Demo images generated to learn from (90% train, 10% validation).
    seed : int
        Seed of the generator: not 0, so no image of the shipped sample or the demo preset is
        among them.
    epochs, imgsz, batch : int
        Training length, image size and batch size.

    Returns
    -------
    Path
        The checkpoint.
    """
    if seed == 0:
        raise ValueError("seed 0 makes the shipped sample's images: pre-training on them "
                         "would leak its test split into every detector fine-tuned from it")
    with tempfile.TemporaryDirectory(prefix="twostage-pretrain-") as tmp:
        root = Path(tmp)
        ts, _ = import_set(demo.generate(images, root / "demo", seed=seed), root / "tables")
        consensus_job(ts, root / "gold")
        gold = store.load(root / "gold")
        validation = np.random.default_rng(seed).random(len(gold.images)) < 0.1
        gold = TableSet(gold.images.assign(split=np.where(validation, "val", "train")),
                        gold.annotations, gold.boxes, gold.captions, gold.labels, gold.meta)
        record = train(gold, root / "run", DetectorConfig(
            model="tiny", epochs=epochs, imgsz=imgsz, batch=batch, seed=seed, patience=epochs))
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.name}.partial")
        shutil.copyfile(record["weights"], partial)
        ultralytics()
        from ultralytics.utils.torch_utils import strip_optimizer

        strip_optimizer(str(partial))
        partial.replace(out)
    return out


if __name__ == "__main__":
    print(pretrain())
