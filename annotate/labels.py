"""Read a label map (the fixed, ordered class names) from a list, a file or a labeling config."""

from __future__ import annotations

import json
from pathlib import Path


def read_labels(spec: str) -> list[str]:
    """Labels from a comma list, a .txt (one per line), a .json list, or a Label Studio labeling
    config .xml (the RectangleLabels control's labels, parsed by label-studio-sdk)."""
    path = Path(spec)
    if path.suffix == ".xml" and path.is_file():
        labels = labels_from_config(path.read_text(encoding="utf-8"), str(path))
    elif path.suffix == ".json" and path.is_file():
        labels = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise ValueError(f"{path}: expected a JSON list of label names")
    elif path.is_file():
        labels = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    else:
        labels = spec.split(",")
    labels = [x.strip() for x in labels if x.strip()]
    if not labels:
        raise ValueError(f"no labels in {spec!r}")
    if len(set(labels)) != len(labels):
        raise ValueError(f"duplicate labels in {spec!r}: {labels}")
    return labels


def labels_from_config(config: str, where: str) -> list[str]:
    """The RectangleLabels control's labels of a labeling config (parsed by label-studio-sdk)."""
    from label_studio_sdk.label_interface import LabelInterface

    controls = [c for c in LabelInterface(config).controls if c.tag.lower() == "rectanglelabels"]
    if not controls:
        raise ValueError(f"{where}: no RectangleLabels control in this labeling config")
    return list(controls[0].labels)
