"""Leakage audit across splits, and its repair.

Finds, across splits (or anywhere when the set is not split yet):
- exact duplicate images (same sha256 of the file bytes);
- near-duplicate images (64-bit perceptual hashes, `imagehash.phash`, within a Hamming
  distance, found exactly by `neardup.hamming_pairs`; confirmed by the correlation of 16x16
  thumbnails, because pHash alone matches distinct plain, low-texture images);
- duplicate captions (equal after lower-casing and dropping punctuation and extra spaces);
- identical layouts (the same encoded stage-2 input, non-empty);
- groups split across splits.
Items that duplicate each other form clusters; each finding names a cluster member and the
cluster's first member, with both splits. `repair` merges every image-duplicate cluster into one
group and moves each straddling group whole to the split that already holds most of it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from annotate.formats import images as image_files
from annotate.formats.layout import EMPTY, encode_layouts
from annotate.runtime.pillow import open_image
from annotate.stats.graphs import components
from annotate.tables.schema import HUMAN, TableSet
from annotate.tables.views import reference_boxes
from quality.splits.neardup import hamming_pairs
from quality.splits.partition import group_codes

DEFAULT_PHASH_DISTANCE = 8
#: Near duplicates also need thumbnails this correlated (pHash alone matches plain images).
DEFAULT_MIN_CORRELATION = 0.9
THUMB = 16
#: Findings about image files and groups (what --repair moves by default), and every finding.
IMAGE_KINDS = ("exact_duplicate_image", "near_duplicate_image", "split_group")
FINDING_KINDS = (*IMAGE_KINDS[:2], "duplicate_caption", "identical_layout", "split_group")
FINDING_COLUMNS = ["kind", "cluster", "image_id", "split", "other_image_id", "other_split",
                   "detail"]


@dataclass
class Audit:
    """Every finding, and what could not be checked."""

    findings: pd.DataFrame
    #: images whose file could not be read (no perceptual hash), with the reason
    unreadable: pd.DataFrame
    settings: dict
    #: kind, image_id, other_image_id: each duplicate linked to its cluster's first image,
    #: within splits too (what repair merges)
    links: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["kind", "image_id", "other_image_id"]))

    def counts(self) -> dict[str, int]:
        return {kind: int((self.findings.kind == kind).sum()) for kind in FINDING_KINDS}

    def to_dict(self) -> dict:
        return {"counts": self.counts(), "settings": self.settings,
                "unreadable_images": self.unreadable.to_dict("records"),
                "findings": self.findings.astype(object).where(self.findings.notna(), None)
                .to_dict("records")}


def perceptual_hashes(images: pd.DataFrame, progress: bool = False
                      ) -> tuple[pd.Series, np.ndarray, pd.DataFrame]:
    """Per readable image: its 64-bit pHash (uint64 Series indexed by image_id) and a 16x16 RGB
    thumbnail (uint8, one row per hashed image); plus the unreadable images with the reason."""
    import imagehash

    values, thumbs, failed = {}, [], []
    rows = images[["image_id", "path"]].itertuples(index=False)
    for image_id, path in tqdm(rows, total=len(images), desc="perceptual hashes",
                               disable=not progress):
        try:
            with open_image(path) as img:
                bits = imagehash.phash(img).hash.ravel()
                thumb = np.asarray(img.convert("RGB").resize((THUMB, THUMB)), np.uint8)
        except (OSError, ValueError) as err:
            failed.append({"image_id": image_id, "path": path, "reason": str(err)})
            continue
        values[image_id] = int(np.packbits(bits).view(">u8")[0])
        thumbs.append(thumb.ravel())
    hashes = pd.Series(values, dtype="uint64", name="phash")
    stacked = np.stack(thumbs) if thumbs else np.zeros((0, THUMB * THUMB * 3), np.uint8)
    return hashes, stacked, pd.DataFrame(failed, columns=["image_id", "path", "reason"])


def thumbnail_correlation(thumbs: np.ndarray, left: np.ndarray, right: np.ndarray
                          ) -> np.ndarray:
    """Pearson correlation of the thumbnails of each pair (1 for copies; low for different
    content even when pHashes collide, as they do on plain low-texture images)."""
    a = thumbs[left].astype(np.float64)
    b = thumbs[right].astype(np.float64)
    a -= a.mean(axis=1, keepdims=True)
    b -= b.mean(axis=1, keepdims=True)
    denom = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (a * b).sum(axis=1) / denom
    return np.where(denom > 0, corr, (a == b).all(axis=1).astype(np.float64))


def audit(ts: TableSet, phash_distance: int = DEFAULT_PHASH_DISTANCE,
          min_correlation: float = DEFAULT_MIN_CORRELATION, check_images: bool = True,
          progress: bool = False) -> Audit:
    """Find duplicates and split groups across the splits of `ts` (see module docstring)."""
    images = ts.images.reset_index(drop=True)
    split = (images.split.astype(object) if "split" in images.columns
             else pd.Series([None] * len(images))).to_numpy()
    index = pd.Index(images.image_id)
    found = []
    hashes = images.sha256.astype(object)
    if check_images:
        missing = hashes.isna() & images.path.map(lambda p: os.path.exists(str(p)))
        hashes[missing] = images.path[missing].map(image_files.sha256)
    known = hashes.notna().to_numpy()
    shared = {"exact_duplicate_image": _shared_values(
        np.flatnonzero(known), pd.factorize(hashes[known])[0], "same sha256")}
    unreadable = pd.DataFrame(columns=["image_id", "path", "reason"])
    if check_images:
        phash, thumbs, unreadable = perceptual_hashes(images, progress)
        rows = index.get_indexer(phash.index)
        left, right, distance = hamming_pairs(phash.to_numpy(np.uint64), phash_distance)
        corr = thumbnail_correlation(thumbs, left, right)
        near = corr >= min_correlation
        shared["near_duplicate_image"] = _linked_pairs(
            rows[left[near]], rows[right[near]],
            [f"pHash distance {d}, thumbnail correlation {c:.3f}"
             for d, c in zip(distance[near], corr[near], strict=True)], len(images))
    captions = ts.captions[ts.captions.source == HUMAN]
    normal = captions.caption.str.lower().str.replace(r"[^\w\s]", " ", regex=True).str.split()
    text, texts = pd.factorize(normal.str.join(" "))
    shared["duplicate_caption"] = _shared_values(
        index.get_indexer(captions.image_id), text,
        ("caption '" + pd.Series(np.asarray(texts, object)[text]) + "'").to_numpy())
    layout = encode_layouts(reference_boxes(ts), images).reindex(index).to_numpy(object)
    drawn = np.flatnonzero(layout != EMPTY)
    shared["identical_layout"] = _shared_values(drawn, pd.factorize(layout[drawn])[0],
                                                "same encoded layout")
    if images.group_id.notna().any():
        grouped = np.flatnonzero(images.group_id.notna().to_numpy() & pd.notna(split))
        group_ids = images.group_id.to_numpy(object)[grouped]
        shared["split_group"] = _shared_values(grouped, pd.factorize(group_ids)[0],
                                               "group " + pd.Series(group_ids).astype(str))
    found = [_across_splits(kind, links, images, split) for kind, links in shared.items()]
    links = pd.concat([_as_links(kind, shared[kind], images) for kind in shared
                       if kind != "split_group"], ignore_index=True)
    findings = pd.concat([f for f in found if len(f)], ignore_index=True) if any(
        len(f) for f in found) else pd.DataFrame(columns=FINDING_COLUMNS)
    return Audit(findings, unreadable, {"phash_distance": phash_distance,
                                        "min_correlation": min_correlation,
                                        "images_checked": check_images,
                                        "split": "split" in ts.images.columns}, links)


def _shared_values(rows: np.ndarray, codes: np.ndarray, detail) -> pd.DataFrame:
    """Every row whose value (code) another row shares, linked to the first row with it:
    _row, _first, group (the value's code), detail."""
    frame = pd.DataFrame({"_row": rows, "group": codes, "detail": detail})
    frame = frame.drop_duplicates(["_row", "group"])
    frame["_first"] = frame.groupby("group")._row.transform("min")
    return frame[frame._row != frame._first]





def _linked_pairs(left: np.ndarray, right: np.ndarray, details: list[str], n: int
                  ) -> pd.DataFrame:
    """Images linked pair by pair, as clusters (connected components): each member linked to
    its cluster's first image, with the pair's detail where the two were linked directly."""
    involved = np.unique(np.r_[left, right])
    cluster = components(n, left, right) if len(left) else np.zeros(n, np.int64)
    frame = _shared_values(involved, cluster[involved], "linked through the cluster")
    direct = dict(zip(zip(np.minimum(left, right).tolist(), np.maximum(left, right).tolist(),
                          strict=True), details, strict=True))
    frame["detail"] = [direct.get((min(a, b), max(a, b)), d) for a, b, d in
                       zip(frame._row, frame._first, frame.detail, strict=True)]
    return frame


def _across_splits(kind: str, links: pd.DataFrame, images: pd.DataFrame, split: np.ndarray
                   ) -> pd.DataFrame:
    """The findings among `links`: pairs whose splits differ (or, with no split, all)."""
    a, b = split[links._row.to_numpy()], split[links._first.to_numpy()]
    links = links[(a != b) | (pd.isna(a) & pd.isna(b))]
    ids = images.image_id.to_numpy(object)
    return pd.DataFrame({
        "kind": kind, "cluster": pd.factorize(links.group)[0],
        "image_id": ids[links._row], "split": split[links._row],
        "other_image_id": ids[links._first], "other_split": split[links._first],
        "detail": links.detail.to_numpy()}, columns=FINDING_COLUMNS)


def _as_links(kind: str, links: pd.DataFrame, images: pd.DataFrame) -> pd.DataFrame:
    ids = images.image_id.to_numpy(object)
    return pd.DataFrame({"kind": kind, "image_id": ids[links._row],
                         "other_image_id": ids[links._first]}).drop_duplicates()


def repair(ts: TableSet, found: Audit, kinds: tuple[str, ...] = IMAGE_KINDS
           ) -> tuple[TableSet, pd.DataFrame]:
    """Merge each duplicate cluster with its images' groups into one group; move every group
    that straddles splits whole to the split holding most of its images (ties: the first in
    train, val, test order). Returns the repaired set and the moves (image_id, from, to)."""
    images = ts.images.reset_index(drop=True).copy()
    n = len(images)
    index = pd.Index(images.image_id)
    chosen = found.links[found.links.kind.isin(kinds)]
    codes = group_codes(images)
    left = np.r_[index.get_indexer(chosen.image_id), np.arange(n)]
    right = np.r_[index.get_indexer(chosen.other_image_id), n + codes]
    merged = components(n + codes.max() + 1, left, right)[:n]
    first_name = images.group_id.astype(object).where(images.group_id.notna(),
                                                      "image:" + images.image_id.astype(str))
    names = pd.Series(first_name.to_numpy()).groupby(merged).transform("min")
    grew = pd.Series(merged).map(pd.Series(codes).groupby(merged).nunique()) > 1
    images["group_id"] = np.where(grew | images.group_id.notna(), names, images.group_id)
    moves = pd.DataFrame(columns=["image_id", "from", "to"])
    if "split" in images.columns:
        order = {"train": 0, "val": 1, "test": 2}
        votes = pd.DataFrame({"group": merged, "split": images.split.astype(object)})
        votes = votes[votes.split.notna()]
        tally = votes.groupby(["group", "split"]).size().rename("n").reset_index()
        tally["rank"] = tally.split.map(order)
        winner = tally.sort_values(["group", "n", "rank"], ascending=[True, False, True])
        winner = winner.drop_duplicates("group").set_index("group").split
        target = pd.Series(merged).map(winner).to_numpy(object)
        moving = pd.notna(target) & (images.split.astype(object).to_numpy() != target)
        moves = pd.DataFrame({"image_id": images.image_id[moving].to_numpy(),
                              "from": images.split[moving].to_numpy(),
                              "to": target[moving]})
        images.loc[moving, "split"] = target[moving]
    repaired = TableSet(images, ts.annotations, ts.boxes, ts.captions, ts.labels,
                        {**ts.meta, "repaired": {"kinds": list(kinds), "moved": len(moves)}})
    return repaired.validate(), moves
