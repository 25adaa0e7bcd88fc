"""Which project label each detector class becomes, read from the project's labeling config.

Rules, in order (the first that names a class wins):

1. an explicit map given to the backend (`--label-map "model class=Project label"`);
2. a `<Label>`'s `predicted_values` attribute: the model classes it stands for, comma-separated
   (the convention of Label Studio's own ML backends);
3. the same name;
4. the same name up to case and spacing ("Red  Circle" = "red circle").

A class no rule names is *unmapped*: its boxes are counted per request and left out, never
dropped silently. Two project labels claiming one class is an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from annotate.formats.labels import LabelConfig
from annotate.runtime.errors import UserError


@dataclass(frozen=True)
class Target:
    """Where the detector's boxes go in a project: the RectangleLabels control (`from_name`),
    the Image it is drawn on (`to_name`), the task data field that Image reads, and each model
    class's project label."""

    from_name: str
    to_name: str
    data_field: str
    mapping: dict
    unmapped: tuple

    def describe(self) -> str:
        mapped = ", ".join(f"{k} -> {v}" for k, v in self.mapping.items()) or "none"
        return (f"boxes go to <RectangleLabels name={self.from_name!r}> on <Image "
                f"name={self.to_name!r} value=\"${self.data_field}\">; classes mapped: {mapped}"
                + (f"; unmapped (counted, left out): {', '.join(self.unmapped)}"
                   if self.unmapped else ""))


def _loose(name: str) -> str:
    return re.sub(r"\s+", " ", name).strip().casefold()


def parse_label_map(spec: str | None) -> dict:
    """`"car=Vehicle,person=Pedestrian"` -> {"car": "Vehicle", "person": "Pedestrian"}."""
    if not spec:
        return {}
    pairs = [item.split("=", 1) for item in spec.split(",") if item.strip()]
    if any(len(pair) != 2 or not pair[0].strip() or not pair[1].strip() for pair in pairs):
        raise UserError(f"--label-map {spec!r}: expected 'model class=Project label' pairs "
                        "separated by commas")
    return {model.strip(): label.strip() for model, label in pairs}


def target(config: str, classes: Iterable[str], label_map: dict | None = None) -> Target:
    """The `Target` of a labeling config for a detector with `classes`.

    >>> xml = ('<View><Image name="img" value="$photo"/><RectangleLabels name="box" '
    ...        'toName="img"><Label value="Car" predicted_values="car,truck"/>'
    ...        '<Label value="Red  Circle"/></RectangleLabels></View>')
    >>> t = target(xml, ["car", "truck", "red circle", "dog"])
    >>> t.mapping, t.unmapped, t.data_field
    ({'car': 'Car', 'truck': 'Car', 'red circle': 'Red  Circle'}, ('dog',), 'photo')
    """
    parsed = LabelConfig(config, "the project's labeling config")
    interface = parsed.interface
    images = {o.name: o for o in interface.objects if o.tag.lower() == "image"}
    controls = [c for c in interface.controls if c.tag.lower() == "rectanglelabels"
                and any(name in images for name in (c.to_name or []))]
    if not controls:
        raise UserError("the project's labeling config has no <RectangleLabels> on an <Image>: "
                        "the detector's boxes have nowhere to go")
    control = controls[0]
    image = next(name for name in control.to_name if name in images)
    value = getattr(images[image], "value", None) or ""
    if not value.startswith("$"):
        raise UserError(f"<Image name={image!r}> does not read a task field (value={value!r})")
    labels = list(control.labels)
    claims: dict[str, set] = {}
    for label, tag in control.labels_attrs.items():
        for model in (tag.attr or {}).get("predicted_values", "").split(","):
            if model.strip():
                claims.setdefault(model.strip(), set()).add(label)
    explicit = label_map or {}
    unknown = sorted(set(explicit.values()) - set(labels))
    if unknown:
        raise UserError(f"--label-map names labels the project does not have: {unknown} "
                        f"(its labels: {labels})")
    loose = {}
    for label in labels:
        loose.setdefault(_loose(label), set()).add(label)
    mapping, unmapped = {}, []
    for model in classes:
        if model in explicit:
            mapping[model] = explicit[model]
            continue
        for found in (claims.get(model), {model} & set(labels), loose.get(_loose(model))):
            if found:
                if len(found) > 1:
                    raise UserError(f"model class {model!r} matches several project labels "
                                    f"{sorted(found)}: say which with --label-map")
                mapping[model] = next(iter(found))
                break
        else:
            unmapped.append(model)
    return Target(control.name, image, value[1:], mapping, tuple(unmapped))
