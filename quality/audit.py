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
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from tqdm.auto import tqdm

from annotate import images as image_files
from annotate.schema import HUMAN, TableSet
from annotate.views import reference_boxes
from stage2_generate.layout import EMPTY, encode_layouts

from .neardup import hamming_pairs
from .splits import group_codes

DEFAULT_PHASH_DISTANCE = 8
#: Near duplicates also need thumbnails this correlated (pHash alone matches plain images).
DEFAULT_MIN_CORRELATION = 0.9
THUMB = 16
IMAGE_KINDS = ("exact_duplicate_image", "near_duplicate_image", "split_group")
KINDS = (*IMAGE_KINDS[:2], "duplicate_caption", "identical_layout", "split_group")
FINDING_COLUMNS = ["kind", "cluster", "image_id", "split", "other_image_id", "other_split",
                   "detail"]


@dataclass
class Audit:
    """Every finding, and what could not be checked."""

    findings: pd.DataFrame
    #: images whose file could not be read (no perceptual hash), with the reason
    unreadable: pd.DataFrame
    settings: dict
    #: kind, image_id, other_image_id: every duplicate link, within splits too (for repair)
    links: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["kind", "image_id", "other_image_id"]))

    def counts(self) -> dict[str, int]:
        return {kind: int((self.findings.kind == kind).sum()) for kind in KINDS}

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
    from PIL import Image

    values, thumbs, failed = {}, [], []
    rows = images[["image_id", "path"]].itertuples(index=False)
    for image_id, path in tqdm(rows, total=len(images), desc="perceptual hashes",
                               disable=not progress):
        try:
            with Image.open(path) as img:
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
    links = [_equal_links("exact_duplicate_image", hashes.to_numpy(object), known, images)]
    found.append(_equal_value_clusters("exact_duplicate_image", hashes.to_numpy(object), known,
                                       images, split, "same sha256"))
    unreadable = pd.DataFrame(columns=["image_id", "path", "reason"])
    if check_images:
        phash, thumbs, unreadable = perceptual_hashes(images, progress)
        rows = index.get_indexer(phash.index)
        left, right, distance = hamming_pairs(phash.to_numpy(np.uint64), phash_distance)
        corr = thumbnail_correlation(thumbs, left, right)
        near = corr >= min_correlation
        ids = images.image_id.to_numpy(object)
        links.append(pd.DataFrame({"kind": "near_duplicate_image",
                                   "image_id": ids[rows[left[near]]],
                                   "other_image_id": ids[rows[right[near]]]}))
        found.append(_pair_clusters(
            "near_duplicate_image", rows[left[near]], rows[right[near]],
            [f"pHash distance {d}, thumbnail correlation {c:.3f}"
             for d, c in zip(distance[near], corr[near], strict=True)], images, split))
    captions = ts.captions[ts.captions.source == HUMAN]
    normal = captions.caption.str.lower().str.replace(r"[^\w\s]", " ", regex=True).str.split()
    normal = normal.str.join(" ")
    per_image = pd.DataFrame({"image_id": captions.image_id.to_numpy(), "text": normal.to_numpy()})
    found.append(_caption_clusters(per_image, images, split))
    links.append(_caption_links(per_image, images))
    layout = encode_layouts(reference_boxes(ts), images).reindex(index).to_numpy(object)
    found.append(_equal_value_clusters("identical_layout", layout, layout != EMPTY, images, split,
                                       "same encoded layout"))
    links.append(_equal_links("identical_layout", layout, layout != EMPTY, images))
    found.append(_split_groups(images, split))
    findings = pd.concat([f for f in found if len(f)], ignore_index=True) if any(
        len(f) for f in found) else pd.DataFrame(columns=FINDING_COLUMNS)
    links_frame = pd.concat(links, ignore_index=True)
    return Audit(findings, unreadable, {"phash_distance": phash_distance,
                                        "min_correlation": min_correlation,
                                        "images_checked": check_images,
                                        "split": "split" in ts.images.columns}, links_frame)


def _equal_links(kind: str, values: np.ndarray, valid: np.ndarray, images: pd.DataFrame
                 ) -> pd.DataFrame:
    """Every image with a value shared by another image, linked to the first such image."""
    codes = pd.factorize(pd.Series(values).where(valid))[0]
    rows = np.flatnonzero(codes >= 0)
    first = pd.Series(rows).groupby(codes[rows]).transform("min").to_numpy()
    ids = images.image_id.to_numpy(object)
    keep = first != rows
    return pd.DataFrame({"kind": kind, "image_id": ids[rows[keep]],
                         "other_image_id": ids[first[keep]]})


def _caption_links(per_image: pd.DataFrame, images: pd.DataFrame) -> pd.DataFrame:
    rows = pd.Index(images.image_id).get_indexer(per_image.image_id)
    pairs = pd.DataFrame({"row": rows, "text": pd.factorize(per_image.text)[0]})
    first = pairs.groupby("text").row.transform("min").to_numpy()
    keep = first != pairs.row.to_numpy()
    ids = images.image_id.to_numpy(object)
    return pd.DataFrame({"kind": "duplicate_caption", "image_id": ids[pairs.row[keep]],
                         "other_image_id": ids[first[keep]]}).drop_duplicates()


def _components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    graph = sparse.coo_matrix((np.ones(len(left)), (left, right)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _pair_clusters(kind: str, left: np.ndarray, right: np.ndarray, details: list[str],
                   images: pd.DataFrame, split: np.ndarray) -> pd.DataFrame:
    """Clusters of linked images; findings for members whose split differs from the first's."""
    n = len(images)
    if len(left) == 0:
        return pd.DataFrame(columns=FINDING_COLUMNS)
    cluster = _components(n, left, right)
    involved = np.zeros(n, bool)
    involved[left] = involved[right] = True
    detail = pd.Series(details, index=pd.MultiIndex.from_arrays([left, right]))
    frame = _star(kind, cluster, involved, images, split)
    if len(frame):
        lookup = {(a, b): d for (a, b), d in detail.items()}
        frame["detail"] = [lookup.get((min(a, b), max(a, b)), "linked through the cluster")
                           for a, b in zip(frame.pop("_row"), frame.pop("_first"), strict=True)]
    return frame.drop(columns=["_row", "_first"], errors="ignore")


def _equal_value_clusters(kind: str, values: np.ndarray, valid: np.ndarray,
                          images: pd.DataFrame, split: np.ndarray, detail: str) -> pd.DataFrame:
    codes = pd.factorize(pd.Series(values).where(valid))[0]
    sizes = np.bincount(codes[codes >= 0], minlength=1) if (codes >= 0).any() else np.zeros(1)
    involved = (codes >= 0) & (sizes[np.maximum(codes, 0)] > 1)
    cluster = np.where(involved, codes, -1 - np.arange(len(codes)))
    frame = _star(kind, cluster, involved, images, split)
    frame["detail"] = detail
    return frame.drop(columns=["_row", "_first"], errors="ignore")


def _caption_clusters(per_image: pd.DataFrame, images: pd.DataFrame, split: np.ndarray
                      ) -> pd.DataFrame:
    """Images sharing a (normalised) human caption, each linked to the first image with it."""
    rows = pd.Index(images.image_id).get_indexer(per_image.image_id)
    text, uniques = pd.factorize(per_image.text)
    pairs = pd.DataFrame({"_row": rows, "cluster": text}).drop_duplicates()
    involved = pairs.groupby("cluster")._row.transform("size") > 1
    pairs = pairs[involved]
    pairs["_first"] = pairs.groupby("cluster")._row.transform("min")
    pairs = pairs[pairs._row != pairs._first]
    a, b = split[pairs._row.to_numpy()], split[pairs._first.to_numpy()]
    pairs = pairs[(a != b) | (pd.isna(a) & pd.isna(b))]
    ids = images.image_id.to_numpy(object)
    return pd.DataFrame({
        "kind": "duplicate_caption", "cluster": pd.factorize(pairs.cluster)[0],
        "image_id": ids[pairs._row], "split": split[pairs._row],
        "other_image_id": ids[pairs._first], "other_split": split[pairs._first],
        "detail": "caption '" + pd.Series(np.asarray(uniques, object)[pairs.cluster]) + "'"})


def _star(kind: str, cluster: np.ndarray, involved: np.ndarray, images: pd.DataFrame,
          split: np.ndarray) -> pd.DataFrame:
    """Link every involved image to its cluster's first image when their splits differ (or,
    with no split column, always)."""
    rows = np.flatnonzero(involved)
    if len(rows) == 0:
        return pd.DataFrame(columns=[*FINDING_COLUMNS, "_row", "_first"])
    frame = pd.DataFrame({"_row": rows, "cluster": cluster[rows]})
    frame["_first"] = frame.groupby("cluster")._row.transform("min")
    frame = frame[frame._row != frame._first]
    ids = images.image_id.to_numpy(object)
    a, b = split[frame._row.to_numpy()], split[frame._first.to_numpy()]
    unsplit = pd.isna(a) & pd.isna(b)
    frame = frame[(a != b) | unsplit]
    return pd.DataFrame({
        "kind": kind, "cluster": pd.factorize(frame.cluster)[0],
        "image_id": ids[frame._row], "split": split[frame._row],
        "other_image_id": ids[frame._first], "other_split": split[frame._first],
        "detail": "", "_row": frame._row.to_numpy(), "_first": frame._first.to_numpy()})


def _split_groups(images: pd.DataFrame, split: np.ndarray) -> pd.DataFrame:
    if images.group_id.isna().all() or pd.isna(split).all():
        return pd.DataFrame(columns=FINDING_COLUMNS)
    groups = images.group_id.astype(object).to_numpy()
    frame = pd.DataFrame({"row": np.arange(len(images)), "group": groups, "split": split})
    frame = frame[frame.group.notna() & frame.split.notna()]
    spread = frame.groupby("group").split.transform("nunique") > 1
    codes = np.full(len(images), -1)
    codes[frame.row[spread]] = pd.factorize(frame.group[spread])[0]
    involved = codes >= 0
    cluster = np.where(involved, codes, -1 - np.arange(len(images)))
    out = _star("split_group", cluster, involved, images, split)
    out["detail"] = "group " + pd.Series(groups[out._row.to_numpy().astype(int)],
                                         dtype=object).astype(str).to_numpy()
    return out.drop(columns=["_row", "_first"])


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
    merged = _components(n + codes.max() + 1, left, right)[:n]
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
