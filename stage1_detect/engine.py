"""Import ultralytics the way this project needs it: settings in a private folder, both CPU
cores (ultralytics sets torch to cpu_count - 1 threads, one on 2 cores), no logger
integrations, nothing downloaded."""

from __future__ import annotations

import os
import tempfile


def ultralytics():
    """The `ultralytics` module, imported with our settings."""
    os.environ.setdefault("YOLO_CONFIG_DIR", os.path.join(tempfile.gettempdir(),
                                                          "twostage-ultralytics"))
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import torch
    import ultralytics as module

    torch.set_num_threads(os.cpu_count() or 1)
    # Run records are ours (MLflow with our own fields); no logger integration writes files
    # into the working directory behind the user's back.
    off = {key: False for key in ("mlflow", "tensorboard", "wandb", "clearml", "comet", "dvc",
                                  "neptune", "raytune", "hub") if key in module.settings}
    if any(module.settings.get(key) for key in off):
        module.settings.update(off)
    return module


def device_or_auto(device: str | None) -> str:
    """`device` as given; else "0" (the first GPU) when CUDA is present, "cpu" otherwise."""
    if device:
        return device
    import torch

    return "0" if torch.cuda.is_available() else "cpu"
