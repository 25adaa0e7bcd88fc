"""Read a label map (the fixed, ordered class names) from a list, a file or a labeling config."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from annotate.formats import jsonio
from annotate.runtime.errors import UserError


@dataclass(frozen=True)
class Controls:
    """The labelling config's say on what a result belongs to: the Image the boxes are drawn
    on, the rectangle controls on it, and its TextAreas (the caption is one of them)."""

    image: str | None
    rectangles: frozenset
    texts: tuple


class LabelConfig:
    """A Label Studio labeling config, parsed once (by label-studio-sdk): its RectangleLabels
    labels and the task data field its Image reads (`<Image value="$image">` -> "image")."""

    def __init__(self, config: str, where: str):
        from label_studio_sdk.label_interface import LabelInterface

        self.where = where
        try:
            self.interface = LabelInterface(config)
        except Exception as err:  # the SDK raises parser errors of several libraries
            raise UserError(f"{where}: not a valid labeling config "
                            f"({type(err).__name__}: {str(err).splitlines()[0][:200]})") from err

    def labels(self) -> list[str]:
        controls = [c for c in self.interface.controls if c.tag.lower() == "rectanglelabels"]
        if not controls:
            raise UserError(f"{self.where}: no RectangleLabels control in this labeling config")
        return list(controls[0].labels)

    def image_field(self) -> str | None:
        images = [o for o in self.interface.objects if o.tag.lower() == "image"]
        value = getattr(images[0], "value", None) if images else None
        return value.lstrip("$") if isinstance(value, str) and value.startswith("$") else None

    def controls(self, image_field: str) -> Controls:
        """Which parts of the interface an import reads, for the Image on `image_field`."""
        images = [o for o in self.interface.objects if o.tag.lower() == "image"]
        image = next((o.name for o in images if getattr(o, "value", None) == f"${image_field}"),
                     images[0].name if images else None)
        on_image = [c for c in self.interface.controls if image in (c.to_name or [])]
        return Controls(
            image=image,
            rectangles=frozenset(c.name for c in on_image
                                 if c.tag.lower() in ("rectanglelabels", "rectangle")),
            texts=tuple(c.name for c in on_image if c.tag.lower() == "textarea"))

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> LabelConfig:
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as err:
            raise UserError(f"{path}: not UTF-8 text ({err.reason})") from err
        return cls(text, str(path))


def read_labels(spec: str) -> list[str]:
    """Labels from a comma list, a .txt (one per line), a .json list, or a Label Studio labeling
    config .xml (the RectangleLabels control's labels, parsed by label-studio-sdk)."""
    path, config = Path(spec), label_config(spec)
    if config is not None:
        labels = config.labels()
    elif path.suffix == ".json" and path.is_file():
        labels = jsonio.read_json(path)
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise UserError(f"{path}: expected a JSON list of label names")
    elif path.is_file():
        labels = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines()]
    else:
        labels = spec.split(",")
    labels = [x.strip() for x in labels if x.strip()]
    if not labels:
        raise UserError(f"no labels in {spec!r}")
    if len(set(labels)) != len(labels):
        raise UserError(f"duplicate labels in {spec!r}: {labels}")
    return labels


def label_config(spec: str | None) -> LabelConfig | None:
    """The labeling config when `--labels` names a config `.xml` file, else None."""
    if spec and Path(spec).suffix == ".xml" and Path(spec).is_file():
        return LabelConfig.from_file(spec)
    return None
