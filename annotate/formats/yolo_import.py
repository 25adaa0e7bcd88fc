"""YOLO label files (ultralytics layout) -> the four tables, line by line.

A data set is a `data.yaml` (with `names`) and label files: `labels/<split>/<stem>.txt` beside
`images/<split>/<stem>.<ext>` (ultralytics' rule: the last `images` folder becomes `labels`), or
label files next to their images, or label files alone next to `data.yaml`. A label file is any
`.txt` under the data set's folder except the split lists `data.yaml` names, `classes.txt` and
files inside an `images` folder.

Each line is `class cx cy w h [confidence]`, normalised to the image. A bad line (wrong number
of fields, a class that is not an integer index into `names`, a coordinate outside [0, 1], a box
of zero size) is rejected and counted with `file:line`; nothing is truncated or clipped beyond
the 1% round-off tolerance every importer allows. A line with a 6th field is a model's box.

Label Studio's own YOLO export (`classes.txt`, `labels/`, `images/` when the images were
downloaded, `notes.json`; no `data.yaml`) is a data set too: the names come from `classes.txt`
(one per line, line n is class n) and the images from `images/`.

Several annotators: a folder whose sub-folders each hold a data set (`labeler1/data.yaml` or
`labeler1/classes.txt`, ...) imports as one annotator per sub-folder, images matched by their
path relative to it.
Label files without an image are counted; with `image_size` (YOLO keeps only normalised
coordinates) they are imported at that size, their path being the label's relative stem.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from annotate.formats import images as image_files
from annotate.formats.jsonio import ExportError
from annotate.formats.summary import CLIP_TOLERANCE, ImportSummary
from annotate.tables.schema import HUMAN, TableSet, model_source

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
PLAIN_YOLO_ANNOTATOR = "yolo"
_INTEGER = re.compile(r"^[+]?\d+$")
NO_SIZE = "image: no size (label file without an image; pass --image-size)"
CLASSES_TXT = "classes.txt"


def _spec_file(folder: Path) -> Path | None:
    """A folder's data-set file: its data.yaml, else Label Studio's classes.txt."""
    for name in ("data.yaml", CLASSES_TXT):
        if (folder / name).is_file():
            return folder / name
    return None


def read_spec(path: Path) -> dict:
    """A data set's spec: data.yaml, or a classes.txt (Label Studio's YOLO export) read as a
    data.yaml whose `names` are its lines and whose images are in `images/`."""
    if path.name != CLASSES_TXT:
        return read_data_yaml(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as err:
        raise ExportError(f"{path}: not UTF-8 text ({err.reason})") from err
    names = [line.strip() for line in lines]
    while names and not names[-1]:
        names.pop()
    if not names:
        raise ExportError(f"{path}: no class names (one per line, line n is class n)")
    spec: dict = {"names": names}
    if (path.parent / "images").is_dir():
        spec["train"] = "images"
    return _checked_names(path, spec)


def read_data_yaml(path: Path) -> dict:
    """data.yaml with its `names` as a list; errors name the file (and line for bad YAML)."""
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError as err:
        raise ExportError(f"{path}: no such file") from err
    except UnicodeDecodeError as err:
        raise ExportError(f"{path}: not UTF-8 text ({err.reason})") from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ExportError(f"{path}{line}: invalid YAML ({problem})") from err
    if not isinstance(spec, dict):
        raise ExportError(f"{path}: expected a YAML mapping with `names`, found "
                          f"{type(spec).__name__}")
    names = spec.get("names")
    if isinstance(names, dict) and names and all(isinstance(k, int) for k in names):
        if sorted(names) != list(range(len(names))):
            raise ExportError(f"{path}: `names` keys must be 0..{len(names) - 1}, found "
                              f"{sorted(names)}")
        names = [names[i] for i in range(len(names))]
    if not isinstance(names, list) or not names or not all(isinstance(n, (str, int))
                                                           for n in names):
        raise ExportError(f"{path}: no `names` list (class index -> name) in data.yaml")
    return _checked_names(path, {**spec, "names": [str(n).strip() for n in names]})


def _checked_names(path: Path, spec: dict) -> dict:
    """`names` must name each class once, none empty (else two classes' boxes would merge)."""
    names = spec["names"]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated or "" in names:
        at = {n: [i for i, m in enumerate(names) if m == n] for n in repeated}
        raise ExportError(f"{path}: `names` must name each class once and none empty: "
                          + ("; ".join(f"{n!r} is class {', '.join(map(str, ids))}"
                                       for n, ids in at.items()) or "an empty name")
                          + " (importing would merge those classes' boxes silently)")
    return spec


def from_yolo(data_yaml: str | os.PathLike, annotator: str = PLAIN_YOLO_ANNOTATOR, *,
              image_size: tuple[int, int] | None = None, hash_images: bool = True
              ) -> tuple[TableSet, ImportSummary]:
    """Read a YOLO data set (a data.yaml, or a folder of per-annotator data sets)."""
    path = Path(data_yaml)
    summary = ImportSummary(source=str(path), shape="YOLO")
    if path.is_dir() and _spec_file(path) is None:
        sets = sorted(found for p in path.iterdir() if p.is_dir()
                      for found in [_spec_file(p)] if found is not None)
        if not sets:
            raise ExportError(f"{path}: no data.yaml (or Label Studio's classes.txt) here or "
                              "in its sub-folders")
        parts = [(p.parent.name, p) for p in sets]
        summary.shape = f"YOLO, {len(parts)} annotators"
    else:
        parts = [(annotator, _spec_file(path) if path.is_dir() else path)]
    specs = [(name, p, read_spec(p)) for name, p in parts]
    if any(p.name == CLASSES_TXT for _, p, _ in specs):
        summary.shape += " (Label Studio's YOLO export: classes.txt, no data.yaml)"
    labels = specs[0][2]["names"]
    for _, p, spec in specs[1:]:
        if spec["names"] != labels:
            raise ExportError(f"{p}: `names` differ from {specs[0][1]} ({spec['names']} vs "
                              f"{labels}); the annotators must share one label map")
    frames = [_read_set(name, p, spec, summary, image_size, hash_images) for name, p, spec in specs]
    images = pd.concat([f[0] for f in frames], ignore_index=True)
    boxes = finish_boxes(pd.concat([f[1] for f in frames], ignore_index=True), labels)
    seen = images[["image_id", "annotator"]].assign(source=HUMAN)
    images = images.drop(columns="annotator").drop_duplicates("image_id").reset_index(drop=True)
    summary.tasks_read = len(images) + summary.rejected[NO_SIZE]
    summary.annotations_read = len(seen)
    ts = TableSet(images=images, annotations=seen, boxes=boxes, labels=labels,
                  meta={"source": str(path)}).validate()
    summary.count_kept(ts)
    summary.require_something_kept()
    return ts, summary


def _split_dirs(spec: dict, root: Path, summary: ImportSummary) -> tuple[dict, set[Path]]:
    """Split name -> image files; and the split list files (not label files)."""
    found: dict[str, list[Path]] = {}
    lists: set[Path] = set()
    for part in ("train", "val", "test"):
        entries = spec.get(part)
        for entry in entries if isinstance(entries, list) else [entries] if entries else []:
            where = (root / str(entry))
            if where.suffix == ".txt":
                lists.add(where)
                if not where.is_file():
                    summary.notes.append(f"split list {where} ({part}) not found")
                    continue
                lines = where.read_text(encoding="utf-8-sig").splitlines()
                files = [(where.parent / line.strip()) for line in lines if line.strip()]
            elif where.is_dir():
                files = [p for p in where.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
            else:
                summary.notes.append(f"split folder {where} ({part}) not found")
                continue
            found.setdefault(part, []).extend(p for p in files if p.is_file())
    return found, lists


def _label_for(image: Path) -> list[Path]:
    """Where ultralytics looks for an image's labels, then beside the image."""
    parts = list(image.parts)
    options = []
    if "images" in parts:
        at = len(parts) - 1 - parts[::-1].index("images")
        options.append(Path(*parts[:at], "labels", *parts[at + 1:]).with_suffix(".txt"))
    options.append(image.with_suffix(".txt"))
    return options


def _read_set(annotator: str, data_yaml: Path, spec: dict, summary: ImportSummary,
              image_size: tuple[int, int] | None, hash_images: bool
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    root = data_yaml.parent / spec["path"] if spec.get("path") else data_yaml.parent
    splits, lists = _split_dirs(spec, root, summary)
    images, used = [], set()
    seen_paths: set[Path] = set()
    for part, files in splits.items():
        for img in sorted(files):
            if img in seen_paths:  # val pointing at train: each image once, first split wins
                continue
            seen_paths.add(img)
            label = next((p for p in _label_for(img) if p.is_file()), None)
            used.add(label)
            rel = os.path.relpath(img.with_suffix(""), root)
            images.append({"image_id": _image_id(rel, img), "image": img, "label": label,
                           "split": part})
    labels_alone = [p for p in sorted(root.rglob("*.txt")) if p not in used and p not in lists
                    and p.name != "classes.txt" and "images" not in p.relative_to(root).parts]
    if labels_alone and image_size is None:
        summary.reject(NO_SIZE, [str(p) for p in labels_alone[:3]], len(labels_alone))
    elif labels_alone:
        for p in labels_alone:
            rel = os.path.relpath(p.with_suffix(""), root)
            images.append({"image_id": _image_id(rel, p), "image": None, "label": p,
                           "split": None})
    rows, box_frames = [], []
    for item in images:
        img = item["image"]
        if img is None:
            width, height = image_size
            path, digest = str(item["label"].with_suffix("").relative_to(root)), None
        else:
            located = image_files.locate(str(img), None, hash_images=hash_images)
            if located.status != image_files.FOUND:
                summary.reject("image: unreadable", f"{img}: {located.detail}")
                continue
            width, height, path, digest = located.width, located.height, located.path, \
                located.sha256
        rows.append({"image_id": item["image_id"], "path": path, "width": width,
                     "height": height, "sha256": digest, "split": item["split"],
                     "annotator": annotator})
        if item["label"] is not None:
            box_frames.append(_read_labels(item["label"], item["image_id"], width, height,
                                           annotator, len(spec["names"]), summary))
    frame = pd.DataFrame(rows, columns=["image_id", "path", "width", "height", "sha256", "split",
                                        "annotator"])
    if frame.split.isna().all():
        frame = frame.drop(columns="split")
    dup = frame.image_id.duplicated()
    summary.reject("image: two images with one name (image ids come from file names)",
                   list(frame.path[dup].head(3)), int(dup.sum()))
    boxes = pd.concat(box_frames, ignore_index=True) if box_frames else pd.DataFrame()
    if len(boxes):
        boxes = boxes[boxes.image_id.isin(frame.image_id[~dup])]
    return frame[~dup], boxes


def _image_id(rel: str, path: Path) -> str:
    """The image's stem; its relative path (without suffix) when it sits in sub-folders that
    are not the usual split folders."""
    parts = Path(rel).parts
    keep = [p for p in parts[:-1] if p not in ("images", "labels", "train", "val", "test")]
    return "/".join([*keep, path.stem])


def _read_labels(label: Path, image_id: str, width: float, height: float, annotator: str,
                 n_classes: int, summary: ImportSummary) -> pd.DataFrame:
    """One label file -> boxes; every bad line rejected with file:line."""
    try:
        lines = label.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        summary.reject("label file: unreadable", f"{label}: {err}")
        return pd.DataFrame()
    rows = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        at = f"{label}:{number}"
        if len(fields) not in (5, 6):
            summary.reject("label line: not 'class cx cy w h [conf]' (5 or 6 fields)", at)
            continue
        if not _INTEGER.match(fields[0]):
            summary.reject("label line: class is not an integer", at)
            continue
        cls = int(fields[0])
        try:
            values = [float(v) for v in fields[1:]]
        except ValueError:
            summary.reject("label line: a coordinate is not a number", at)
            continue
        cx, cy, w, h = values[:4]
        if cls >= n_classes:
            summary.reject(f"label line: class outside names (0..{n_classes - 1})", at)
        elif not all(np.isfinite(values)) or not all(0 <= v <= 1 for v in values[:4]):
            summary.reject("label line: coordinate outside [0, 1]", at)
        elif w <= 0 or h <= 0:
            summary.reject("label line: box width or height is 0", at)
        elif len(values) == 5 and not 0 <= values[4] <= 1:
            summary.reject("label line: confidence outside [0, 1]", at)
        elif (cx - w / 2 < -CLIP_TOLERANCE or cy - h / 2 < -CLIP_TOLERANCE
              or cx + w / 2 > 1 + CLIP_TOLERANCE or cy + h / 2 > 1 + CLIP_TOLERANCE):
            summary.reject(f"label line: box outside the image by more than "
                           f"{CLIP_TOLERANCE:.0%}", at)
        else:
            rows.append((number, cls, cx, cy, w, h, values[4] if len(values) == 5 else np.nan))
    if not rows:
        return pd.DataFrame()
    line, cls, cx, cy, w, h, conf = (np.array(c) for c in zip(*rows, strict=True))
    x0, x1 = (cx - w / 2) * width, (cx + w / 2) * width
    y0, y1 = (cy - h / 2) * height, (cy + h / 2) * height
    summary.clipped_boxes += int(((x0 < 0) | (y0 < 0) | (x1 > width) | (y1 > height)).sum())
    is_model = ~np.isnan(conf)
    source = np.where(is_model, model_source("yolo"), HUMAN)
    return pd.DataFrame({
        "image_id": image_id, "annotator": np.where(is_model, source, annotator),
        "object_id": [f"line{n}" for n in line], "class_index": cls,
        "x0": np.clip(x0, 0, width), "y0": np.clip(y0, 0, height),
        "x1": np.clip(x1, 0, width), "y1": np.clip(y1, 0, height), "score": conf,
        "source": source})


def finish_boxes(boxes: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """Class indices -> label names (indices were checked against `names` line by line)."""
    if boxes.empty:
        return boxes
    return boxes.assign(label=np.array(labels, dtype=object)[boxes.class_index.to_numpy(int)]
                        ).drop(columns="class_index")
