"""Fine-tune a detector with ultralytics on a table set's gold boxes; every run directory records
its arguments, data version and source version."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from annotate.runtime.atomic import write_json
from annotate.runtime.errors import MissingFileError
from annotate.tables.schema import TableSet
from annotate.tables.versions import data_version, source_version
from stage1_detect.dataset import build_dataset
from stage1_detect.engine import device_or_auto, ultralytics

TINY_CONFIG = str(Path(__file__).parent / "configs" / "yolov8-tiny.yaml")
#: Weights shipped with twostage (`stage1_detect.demo_weights`), by the name a config uses.
SHIPPED_WEIGHTS = {"shapes-tiny.pt": Path(__file__).resolve().parents[1] / "data" / "weights"
                   / "shapes-tiny.pt"}
RUN_FILE = "run.json"


def model_source(model: str) -> str:
    """What ultralytics loads for `DetectorConfig.model`: our tiny config for "tiny", the
    shipped file for a shipped name (unless a file of that name is here), else `model`."""
    if model == "tiny":
        return TINY_CONFIG
    if model in SHIPPED_WEIGHTS and not Path(model).is_file():
        return str(SHIPPED_WEIGHTS[model])
    return model


@dataclass
class DetectorConfig:
    """Everything a training run depends on. `model`: a model config (yolov8n.yaml,
    yolo11n.yaml, 'tiny' for ours), local weights (best.pt) to fine-tune, or the shipped
    weights "shapes-tiny.pt" (`stage1_detect.demo_weights`)."""

    model: str = "yolov8n.yaml"
    epochs: int = 12
    imgsz: int = 160
    batch: int = 16
    device: str | None = None  # None: first GPU when there is one, else CPU; "0,1": DDP
    seed: int = 0
    gold: str | None = None  # consensus / truth / an annotator
    patience: int = 50
    workers: int = 0
    verbose: bool = False
    #: validate every epoch (best.pt = the best epoch); False validates the last epoch only
    val: bool = True


def train(ts: TableSet, out: str | os.PathLike, config: DetectorConfig) -> dict:
    """The detector training job (ultralytics), on the gold boxes.

    Nothing is downloaded: plots off (no font), AMP off (its check fetches weights), the model
    from a config file bundled with ultralytics or us, from local weights, or from the weights
    shipped with twostage.

    Parameters
    ----------
    ts : TableSet
        A split set: trained on `train`, validated on `val`; gold boxes as `config.gold`
        says (consensus by default).
    out : path
        Run folder: the YOLO data set, ultralytics' `train/` (weights) and `run.json`.
    config : DetectorConfig
        Model, epochs, image size, batch, device (several GPUs: "0,1"), seed, gold, patience.

    Returns
    -------
    dict
        The run record written to `run.json`: config, weights, data and source versions,
        ultralytics' version and the validation mAP50 / mAP50-95.
    """
    out = Path(out).resolve()
    model = model_source(config.model)
    if model.endswith(".pt") and not Path(model).is_file():
        # ultralytics would try to download a hub checkpoint of that name
        raise MissingFileError(f"{config.model}: no such weights file (nothing is downloaded; "
                                "pass a local .pt, or a model config such as yolov8n.yaml)")
    data_yaml = build_dataset(ts, out / "dataset", config.gold)
    yolo = ultralytics().YOLO(model)
    results = yolo.train(
        data=str(data_yaml), epochs=config.epochs, imgsz=config.imgsz, batch=config.batch,
        device=device_or_auto(config.device), seed=config.seed, deterministic=True,
        workers=config.workers, project=str(out), name="train", exist_ok=True, plots=False,
        amp=False, patience=config.patience, verbose=config.verbose, val=config.val)
    weights = out / "train" / "weights" / "best.pt"
    record = {
        "config": asdict(config), "weights": str(weights), "data_yaml": str(data_yaml),
        "data_version": data_version(ts), "source_version": source_version(),
        "ultralytics": metadata.version("ultralytics"), "data": ts.meta,
        "val": {"map50": float(results.box.map50), "map50_95": float(results.box.map)}
        if results is not None else {}}
    write_json(out / RUN_FILE, record)
    return record


def weights_of(run_or_weights: str | os.PathLike) -> Path:
    """best.pt of a run directory, or the weights file itself."""
    path = Path(run_or_weights)
    if path.is_dir():
        record = path / RUN_FILE
        weights = Path(json.loads(record.read_text())["weights"]) if record.exists() else (
            path / "train" / "weights" / "best.pt")
    else:
        weights = path
    if not weights.is_file():
        raise MissingFileError(f"{run_or_weights}: no trained weights found ({weights})")
    return weights
