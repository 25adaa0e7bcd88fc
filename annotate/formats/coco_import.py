"""COCO instances / captions files -> the four tables, as people really have them.

- Ids stay as given ("139", not "139.0"); an `images` entry without an id is rejected.
- Several annotators in one file: an `annotator` key on `images` entries that share a
  `file_name` (one entry per image and annotator, the kalphacv layout) makes one image with
  several annotators; an `annotator` key on annotations names who drew each box.
- `iscrowd` regions (a crowd of objects under one box) are not object instances: they become
  rows with source "crowd", which agreement, consensus and training never read (they select
  `human` / `consensus` rows) and COCO-style evaluation reads as ignore regions.
- Captions-only files (`captions_*.json`) import as captions; captions without an annotator
  are named by their order on the image (`coco-1`, `coco-2`, ...): COCO publishes no worker ids,
  so these names tell captions apart on an image but do not follow a person across images.
- An annotation's `area` (its segmentation's, which decides COCO's small / medium / large)
  is kept in the boxes table's optional `area` column, so COCO evaluation of the set sorts
  objects into size classes as COCOeval does.
- String booleans ("false") are tolerated; a bad box, category or image reference rejects that
  annotation alone, counted with its id.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from annotate.formats import images as image_files
from annotate.formats import jsonio
from annotate.formats.jsonio import ExportError
from annotate.formats.ls_records import is_number
from annotate.formats.summary import CLIP_TOLERANCE, ImportSummary
from annotate.tables.schema import CROWD, HUMAN, TableSet, coerce, is_model_source, model_source

PLAIN_COCO_ANNOTATOR = "coco"
#: The source (and annotator) of rows read from a COCO results file: detections or captions.
RESULTS_SOURCE = model_source("coco-results")


def is_coco(data: object) -> bool:
    """A JSON object with COCO's `images` or `annotations` list."""
    return isinstance(data, dict) and any(isinstance(data.get(k), list)
                                          for k in ("images", "annotations"))


def from_coco(instances_path: str | os.PathLike, captions_path: str | os.PathLike | None = None,
              images_root: str | os.PathLike | None = None, *, data: dict | None = None,
              allow_outside_root: bool = False, hash_images: bool = True,
              notes: list[str] | None = None) -> tuple[TableSet, ImportSummary]:
    """Read a COCO instances or captions file (and optionally a captions file beside it) into a
    validated `TableSet`. `data` is the already-parsed file, when the caller has it, and
    `notes` what parsing it noted (NaN / Infinity tokens read as missing)."""
    path = Path(instances_path)
    notes = list(notes or [])
    data = jsonio.read_json(path, notes) if data is None else data
    if not is_coco(data):
        raise ExportError(f"{path}: not a COCO file (expected a JSON object with `images` and "
                          "`annotations` lists)")
    summary = ImportSummary(source=str(path), shape="COCO", notes=notes)
    root = Path(images_root) if images_root is not None else path.parent
    images, entry_image, off_size = _images(data.get("images") or [], path, root, summary,
                                            allow_outside_root, hash_images)
    anns = list(data.get("annotations") or [])
    caption_rows = [a for a in anns if isinstance(a, dict) and "caption" in a and "bbox" not in a]
    box_rows = [a for a in anns if not (isinstance(a, dict) and "caption" in a
                                        and "bbox" not in a)]
    if box_rows or "categories" in data:
        summary.shape = "COCO instances"
    else:
        summary.shape = "COCO captions"
    entry_annotator = _entry_annotators(data.get("images") or [], entry_image)
    name_of = _categories(data.get("categories"))
    labels = list(dict.fromkeys(name_of.values()))
    boxes = _boxes(box_rows, name_of, entry_image, entry_annotator, images, path, summary,
                   off_size)
    captions = _captions(caption_rows, entry_image, f"{path}", summary)
    if captions_path is not None:
        extra = jsonio.read_json(captions_path, summary.notes)
        if not is_coco(extra):
            raise ExportError(f"{captions_path}: not a COCO captions file")
        rows = [r for r in extra.get("annotations") or [] if isinstance(r, dict)]
        if rows and not any("caption" in r for r in rows):
            boxes_instead = any("bbox" in r for r in rows)
            raise ExportError(
                f"{captions_path}: passed as --captions but its annotations have no `caption`"
                + (" (they have boxes: it is a COCO instances file; give the instances file "
                   "as the export and the captions file as --captions)" if boxes_instead
                   else ""))
        # COCO's captions files share the instances file's image ids: captions of an image
        # the instances file does not have are rejected, counted
        captions = pd.concat([captions, _captions(extra.get("annotations") or [], entry_image,
                                                  str(captions_path), summary)],
                             ignore_index=True)
    seen = _seen(data, images, entry_image, entry_annotator, boxes, captions, summary)
    summary.annotations_read = len(seen)
    categories = {c["name"]: c["id"] for c in data.get("categories") or []
                  if isinstance(c, dict) and isinstance(c.get("name"), str)
                  and is_number(c.get("id"))}
    ts = TableSet(images=images.drop(columns=["entry"]), annotations=seen, boxes=boxes,
                  captions=captions, labels=labels,
                  meta={"source": str(path), "coco_categories": categories}).validate()
    summary.count_kept(ts)
    summary.crowd_regions = int((ts.boxes.source == CROWD).sum())
    summary.require_something_kept()
    return ts, summary


def id_text(value: object) -> str | None:
    """An id as text, as given: 139 -> "139" (never "139.0"); None for a non-value."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):  # NaN: a key this row lacks
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if isinstance(value, (int, float, str)) and str(value) != "" else None


def _images(entries: list, path: Path, root: Path, summary: ImportSummary,
            allow_outside: bool, hash_images: bool) -> tuple[pd.DataFrame, dict[str, str], set]:
    """The images (one per file_name when entries carry an annotator), a map from each
    entry's COCO id to its image_id, and the entries whose size is not their image's."""
    summary.tasks_read += len(entries)
    rows = []
    for i, entry in enumerate(entries):
        where = f"{path}: images[{i}]"
        if not isinstance(entry, dict):
            summary.reject("image: entry is not an object", where)
            continue
        coco_id = id_text(entry.get("id"))
        if coco_id is None:
            summary.reject("image: entry without an `id`", where)
            continue
        name = entry.get("file_name")
        rows.append({"entry": coco_id, "image_id": id_text(entry.get("image_id")) or coco_id,
                     "file_name": name if isinstance(name, str) and name else None,
                     "width": entry.get("width"), "height": entry.get("height"),
                     "group_id": id_text(entry.get("group_id")),
                     "annotator": entry.get("annotator"), "where": f"{where} (id {coco_id})"})
    frame = pd.DataFrame(rows, columns=["entry", "image_id", "file_name", "width", "height",
                                        "group_id", "annotator", "where"])
    dup = frame.entry.duplicated()
    summary.reject("image: duplicate id (an earlier entry has it)", list(frame["where"][dup]
                                                                           .head(3)),
                   int(dup.sum()))
    frame = frame[~dup]
    per_annotator = frame.annotator.notna().any()
    key = frame.file_name.fillna(frame.image_id) if per_annotator else frame.image_id
    first = frame.groupby(key, sort=False).image_id.transform("first")
    entry_image = dict(zip(frame.entry, first, strict=True))
    images = frame.assign(image_id=first).drop_duplicates("image_id").reset_index(drop=True)
    if per_annotator:
        summary.tasks_read -= len(frame) - len(images)
        summary.notes.append(f"{len(frame)} image entries with annotators -> {len(images)} "
                             "images (entries sharing a file_name are one image)")
    found = image_files.locate_all(images.file_name, root, allow_outside=allow_outside,
                                   hash_images=hash_images)
    summary.images_missing += int((found.status == image_files.MISSING).sum())
    summary.images_outside_root += int((found.status == image_files.OUTSIDE).sum())
    # the file's size when it was read, else the first entry's: never a size the file lacks
    width = found.width.astype(float).fillna(_positive(images.width))
    height = found.height.astype(float).fillna(_positive(images.height))
    unknown = (width.isna() | height.isna()).to_numpy()
    off_size = _sizes_that_disagree(frame, first, images.image_id, width, height, summary)
    summary.reject("image: width/height missing or not positive, and the file is not found",
                   list(images["where"][unknown].head(3)), int(unknown.sum()))
    out = pd.DataFrame({"entry": images.entry, "image_id": images.image_id,
                        "path": found.path.where(found.status == image_files.FOUND,
                                                 images.file_name.fillna(images.image_id)),
                        "width": width, "height": height, "group_id": images.group_id,
                        "sha256": found.sha256})[~unknown]
    kept = set(out.image_id)
    return (coerce("images", out).assign(entry=out.entry.to_numpy()),
            {k: v for k, v in entry_image.items() if v in kept}, off_size)


def _positive(values: pd.Series) -> pd.Series:
    return pd.Series([v if is_number(v) and v > 0 else np.nan for v in values], dtype=float,
                     index=values.index)


def _sizes_that_disagree(frame: pd.DataFrame, image_of: pd.Series, image_ids: pd.Series,
                         width: pd.Series, height: pd.Series, summary: ImportSummary) -> set:
    """The entries whose own width/height differ from their image's (the file's, or the first
    entry's): COCO boxes are pixels of the size their entry declares, so those entries' boxes
    cannot be placed on the image (`_boxes` rejects them); a note gives an example."""
    size = pd.DataFrame({"w": width.to_numpy(), "h": height.to_numpy()},
                        index=image_ids.to_numpy())
    own_w, own_h = _positive(frame.width), _positive(frame.height)
    image_w = image_of.map(size.w).to_numpy()
    image_h = image_of.map(size.h).to_numpy()
    off = ((np.abs(own_w.to_numpy() - image_w) > 0.5) | (np.abs(own_h.to_numpy() - image_h) > 0.5))
    if off.any():
        i = int(np.flatnonzero(off)[0])
        summary.notes.append(
            f"{int(off.sum())} image entries give another size than their image (e.g. "
            f"{frame['where'].iat[i]}: {own_w.iat[i]:.0f}x{own_h.iat[i]:.0f}, the image "
            f"{image_w[i]:.0f}x{image_h[i]:.0f}): their boxes are rejected")
    return set(frame.entry[off])


def _categories(categories: object) -> dict[str, str]:
    """COCO's `categories` as category id (text) -> name, in id order (numeric ids first): the
    label map is its names, first occurrence kept. Entries without an id or a name are left
    out (their boxes are then rejected as an unknown category_id)."""
    cats = [c for c in categories or [] if isinstance(c, dict) and id_text(c.get("id"))
            and isinstance(c.get("name"), str)]
    cats.sort(key=lambda c: (not is_number(c["id"]), c["id"] if is_number(c["id"]) else 0,
                             str(c["id"])))
    return {id_text(c["id"]): c["name"] for c in cats}


def _boxes(rows: list, name_of: dict[str, str], entry_image: dict[str, str],
           entry_annotator: dict[str, str], images: pd.DataFrame, path: Path,
           summary: ImportSummary, off_size: set) -> pd.DataFrame:
    """COCO's `annotations` as a boxes table.

    Each annotation becomes a box of its image (`entry_image`: COCO image id -> image_id)
    labelled by its category (`name_of`); its annotator is its own `annotator` key, else the
    image's (`entry_annotator`), else the plain-COCO annotator. Boxes of an entry in
    `off_size` (its size is not its image's) are rejected. Boxes slightly past the image
    edge are clipped and counted; unusable ones are rejected with their reason and location in
    `summary`; crowd regions get source `crowd`.
    """
    if not rows:
        return coerce("boxes", None)
    ann = pd.DataFrame([r if isinstance(r, dict) else {} for r in rows])
    for col in ("id", "image_id", "category_id", "bbox", "iscrowd", "annotator", "source",
                "object_id", "score", "area"):
        if col not in ann:
            ann[col] = None
    where = f"{path}: annotation id " + ann["id"].map(id_text).fillna("?") + " (annotations[" \
        + pd.Series(range(len(ann))).astype(str) + "])"
    bbox = np.array([b if isinstance(b, list) and len(b) == 4 and all(map(is_number, b))
                     else [np.nan] * 4 for b in ann["bbox"]], dtype=float).reshape(-1, 4)
    image_id = ann.image_id.map(lambda v: entry_image.get(id_text(v)))
    label = ann.category_id.map(lambda v: name_of.get(id_text(v)))
    crowd = ann.iscrowd.map(_crowd)
    source = ann.source.where(ann.source.map(lambda v: isinstance(v, str) and v != ""), HUMAN)
    annotator = ann.annotator.where(ann.annotator.map(lambda v: isinstance(v, str) and v != ""))
    annotator = annotator.fillna(ann.image_id.map(lambda v: entry_annotator.get(id_text(v))))
    annotator = annotator.fillna(PLAIN_COCO_ANNOTATOR)
    is_model = is_model_source(source.astype(str)).to_numpy()
    annotator = annotator.where(~is_model, source)
    size = images.set_index("image_id")[["width", "height"]]
    img_w = image_id.map(size.width).to_numpy(float)
    img_h = image_id.map(size.height).to_numpy(float)
    x0, y0 = bbox[:, 0], bbox[:, 1]
    x1, y1 = x0 + bbox[:, 2], y0 + bbox[:, 3]
    with np.errstate(invalid="ignore"):
        outside = ((x0 < -CLIP_TOLERANCE * img_w) | (y0 < -CLIP_TOLERANCE * img_h)
                   | (x1 > img_w * (1 + CLIP_TOLERANCE)) | (y1 > img_h * (1 + CLIP_TOLERANCE)))
        overshoot = (x0 < 0) | (y0 < 0) | (x1 > img_w) | (y1 > img_h)
    reasons = [
        (ann["id"].map(id_text).isna().to_numpy() & ann.object_id.map(id_text).isna().to_numpy(),
         "box: annotation without an `id`"),
        (image_id.isna().to_numpy(), "box: image_id not in `images` (or its image was rejected)"),
        (label.isna().to_numpy(), "box: category_id not in `categories`"),
        (crowd.isna().to_numpy(), "box: iscrowd is not a boolean"),
        (~np.isfinite(bbox).all(axis=1), "box: bbox is not [x, y, width, height] numbers"),
        ((bbox[:, 2] <= 0) | (bbox[:, 3] <= 0), "box: bbox width or height <= 0"),
        (ann.image_id.map(id_text).isin(off_size).to_numpy(),
         "box: its images entry gives another size than the image (COCO boxes are pixels of "
         "the entry's size)"),
        (outside, f"box: outside the image by more than {CLIP_TOLERANCE:.0%}"),
    ]
    keep = summary.reject_where(reasons, where)
    summary.clipped_boxes += int((overshoot & keep).sum())
    score = pd.to_numeric(ann.score.where(ann.score.map(is_number)), errors="coerce")
    boxes = pd.DataFrame({
        "image_id": image_id, "annotator": annotator,
        "object_id": ann.object_id.map(id_text).fillna(ann["id"].map(id_text)),
        "label": label, "x0": np.clip(x0, 0, img_w), "y0": np.clip(y0, 0, img_h),
        "x1": np.clip(x1, 0, img_w), "y1": np.clip(y1, 0, img_h),
        "score": score.where(is_model), "source": np.where((crowd == True).to_numpy()  # noqa: E712
                                                           & ~is_model, CROWD, source)})
    # COCO's own area (of the segmentation) where it is not the box's: its size classes need it
    area = pd.to_numeric(ann.area.where(ann.area.map(is_number)), errors="coerce").to_numpy()
    own = (area > 0) & ~np.isclose(area, bbox[:, 2] * bbox[:, 3], rtol=1e-9, atol=1e-9)
    if own.any():
        boxes["area"] = np.where(own, area, np.nan)
    boxes = boxes[keep]
    dup = boxes.duplicated(["image_id", "annotator", "source", "object_id"])
    summary.reject("box: duplicate annotation id", list(where[keep][dup.to_numpy()].head(3)),
                   int(dup.sum()))
    return coerce("boxes", boxes[~dup].reset_index(drop=True))


def _crowd(value: object) -> bool | None:
    """COCO's iscrowd as a boolean: 0/1, true/false, "0"/"1", "true"/"false"; None if neither."""
    if value is None or (isinstance(value, float) and math.isnan(value)):  # no iscrowd key
        return False
    if isinstance(value, bool) or (is_number(value) and value in (0, 1)):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("0", "1", "true", "false"):
        return value.strip().lower() in ("1", "true")
    return None


def _captions(rows: list, entry_image: dict[str, str], where: str, summary: ImportSummary
              ) -> pd.DataFrame:
    frame = pd.DataFrame([r if isinstance(r, dict) else {} for r in rows],
                         columns=["id", "image_id", "caption", "annotator", "source"])
    if frame.empty:
        return coerce("captions", None)
    image_id = frame.image_id.map(lambda v: entry_image.get(id_text(v)))
    text = frame.caption.where(frame.caption.map(lambda v: isinstance(v, str) and v.strip() != ""))
    at = f"{where}: caption id " + frame["id"].map(id_text).fillna("?")
    keep = summary.reject_where([(image_id.isna().to_numpy(), "caption: image_id not in `images`"),
                                 (text.isna().to_numpy(), "caption: empty or not text")], at)
    named = frame.annotator.where(frame.annotator.map(lambda v: isinstance(v, str) and v != ""))
    order = frame.groupby(image_id.fillna("")).cumcount() + 1
    annotator = named.fillna("coco-" + order.astype(str))
    source = frame.source.where(frame.source.map(lambda v: isinstance(v, str) and v != ""), HUMAN)
    out = pd.DataFrame({"image_id": image_id, "annotator": annotator,
                        "caption": text.map(lambda v: v.strip() if isinstance(v, str) else v),
                        "source": source})[keep]
    return coerce("captions", out.reset_index(drop=True))


def _entry_annotators(entries: list, entry_image: dict[str, str]) -> dict[str, str]:
    """COCO id of each kept `images` entry -> the annotator it names (kalphacv layout)."""
    return {id_text(e.get("id")): e["annotator"] for e in entries
            if isinstance(e, dict) and isinstance(e.get("annotator"), str) and e["annotator"]
            and id_text(e.get("id")) in entry_image}


def _seen(data: dict, images: pd.DataFrame, entry_image: dict[str, str],
          entry_annotator: dict[str, str], boxes: pd.DataFrame, captions: pd.DataFrame,
          summary: ImportSummary) -> pd.DataFrame:
    """Who looked at which image (the annotations table), from what the file says."""
    if isinstance(data.get("twostage_annotations"), list):  # our own export says it exactly
        seen = pd.DataFrame(data["twostage_annotations"])
        seen["image_id"] = seen.image_id.map(lambda v: entry_image.get(id_text(v)))
        return seen[seen.image_id.notna()].reset_index(drop=True)
    if entry_annotator:  # one images entry per (image, annotator): each saw that image
        return pd.DataFrame({"image_id": [entry_image[e] for e in entry_annotator],
                             "annotator": list(entry_annotator.values()),
                             "source": HUMAN}).drop_duplicates().reset_index(drop=True)
    human = pd.concat([boxes.loc[boxes.source.isin([HUMAN, CROWD]), ["image_id", "annotator"]],
                       captions.loc[captions.source == HUMAN, ["image_id", "annotator"]]])
    named = set(human.annotator) - {PLAIN_COCO_ANNOTATOR}
    if not named and not human.annotator.str.startswith("coco-").any():
        # plain COCO: one annotator who looked at every image (an image without boxes is empty)
        return pd.DataFrame({"image_id": images.image_id, "annotator": PLAIN_COCO_ANNOTATOR,
                             "source": HUMAN})
    seen = human.drop_duplicates()
    summary.notes.append("annotators are taken to have seen the images they annotated (COCO "
                         "does not record who looked at an image and drew nothing)")
    return seen.assign(source=HUMAN).reset_index(drop=True)
