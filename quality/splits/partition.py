"""Group-aware, stratified train/val/test splits and K folds, with the sizes asked for.

Groups (a source scene, a video: `group_id`; an image without one is its own group) never
straddle splits. Stratification: groups are ordered by their main stratum (the class or
object-count bin most over-represented in them), shuffled by seed within it, and dealt out
systematically along their cumulative image count, so every stretch of the order - every
stratum - is shared between the splits in the asked proportions. A final pass moves the
best-fitting groups from over-full to short splits until each is within one image of its
target (or as close as the group sizes allow). Everything is counted in images, not groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from annotate.runtime.errors import UserError
from annotate.stats.graphs import components
from annotate.tables.schema import SPLITS, TableSet
from annotate.tables.views import reference_boxes

#: Object-count bins for stratification: 0, 1, 2, 3-4, 5-8, 9+.
COUNT_BINS = (0, 1, 2, 3, 5, 9)


@dataclass
class SplitReport:
    """Per split: images, groups, objects and class shares; the worst class-share gap."""

    table: pd.DataFrame
    class_shares: pd.DataFrame
    max_class_share_gap: float
    max_size_error_pp: float

    def to_dict(self) -> dict:
        return {"splits": self.table.reset_index().to_dict("records"),
                "class_shares": self.class_shares.round(6).to_dict(),
                "max_class_share_gap": self.max_class_share_gap,
                "max_size_error_pp": self.max_size_error_pp}


def group_codes(images: pd.DataFrame, merge_copies: bool = False) -> np.ndarray:
    """A dense group code per image: its `group_id`, or the image itself when it has none.

    With `merge_copies`, images with the same sha256 (byte-identical files) share a group.
    """
    key = images.group_id.astype(object).where(images.group_id.notna(),
                                               "\0image:" + images.image_id.astype(str))
    codes = pd.factorize(key)[0]
    if not merge_copies or images.sha256.isna().all():
        return codes
    copy = pd.factorize(images.sha256.astype(object))[0]  # -1 where unknown
    n, known = len(codes), copy >= 0
    linked = components(2 * n + codes.max() + 2,
                        np.r_[np.flatnonzero(known), np.flatnonzero(known)],
                        np.r_[n + codes[known], n + codes.max() + 1 + copy[known]])
    return pd.factorize(linked[n + codes])[0]


def stratify(groups: np.ndarray, features: sparse.spmatrix | np.ndarray, fractions,
             seed: int = 0) -> np.ndarray:
    """Group-aware, stratified assignment of items to parts.

    Parameters
    ----------
    groups : numpy.ndarray
        A code per item; items of one group always share a part.
    features : scipy.sparse matrix or numpy.ndarray
        Items x F, 0/1: stratum memberships (e.g. "shows a red circle"), each spread across
        the parts in proportion.
    fractions : sequence of float
        The parts' shares of the items (>= 0, summing to 1).
    seed : int
        Seed of the assignment.

    Returns
    -------
    numpy.ndarray
        The part (0 .. len(fractions) - 1) of each item; each part holds its share of the
        items within one item where the group sizes allow.

    Examples
    --------
    >>> part = stratify(np.array([0, 0, 1, 1, 2, 2, 3, 3]), np.ones((8, 1)), [0.5, 0.5])
    >>> sorted(np.bincount(part).tolist()), bool((part[::2] == part[1::2]).all())
    ([4, 4], True)
    """
    fractions = np.asarray(fractions, np.float64)
    if (fractions < 0).any() or not np.isclose(fractions.sum(), 1):
        raise UserError(f"fractions must be >= 0 and sum to 1, got {fractions.tolist()}")
    groups = pd.factorize(np.asarray(groups))[0]
    n_items, n_groups = len(groups), int(groups.max()) + 1 if len(groups) else 0
    if n_items == 0:
        return np.zeros(0, np.int64)
    features = sparse.csr_matrix(features)
    member = sparse.csr_matrix((np.ones(n_items), (groups, np.arange(n_items))),
                               shape=(n_groups, n_items))
    sizes = np.asarray(member.sum(axis=1)).ravel()
    per_group = (member @ features).tocsr()
    rng = np.random.default_rng(seed)
    stratum = _main_stratum(per_group, features)
    order = np.lexsort((rng.permutation(n_groups), stratum))
    part = _deal(sizes[order], fractions, rng)
    group_part = np.empty(n_groups, np.int64)
    group_part[order] = part
    group_part = _refine(group_part, per_group, sizes, fractions, rng)
    group_part = _fix_sizes(group_part, sizes, fractions)
    return group_part[groups]


def _main_stratum(per_group: sparse.csr_matrix, features: sparse.csr_matrix) -> np.ndarray:
    """Each group's stratum: the feature most over-represented in it relative to its overall
    frequency (a rare class it holds wins over the common ones); -1 for no feature."""
    frequency = np.asarray(features.sum(axis=0)).ravel()
    coo = per_group.tocoo()
    weight = coo.data / np.maximum(frequency[coo.col], 1)
    best = np.full(per_group.shape[0], -1, np.int64)
    by_weight = np.lexsort((coo.col, -weight, coo.row))
    first = np.r_[True, coo.row[by_weight][1:] != coo.row[by_weight][:-1]]
    best[coo.row[by_weight][first]] = coo.col[by_weight][first]
    return best


def _deal(sizes: np.ndarray, fractions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Systematic allocation: the midpoint of each group on the cumulative item axis, taken
    modulo a short cycle, picks the part whose share of the cycle it falls in."""
    positive = fractions[fractions > 0]
    cycle = max(float(np.mean(sizes)) / positive.min(), 1.0) * 2
    midpoint = np.cumsum(sizes) - sizes / 2 + rng.uniform(0, cycle)
    phase = (midpoint % cycle) / cycle
    return np.minimum(np.searchsorted(np.cumsum(fractions), phase, side="right"),
                      len(fractions) - 1)


def _refine(part: np.ndarray, per_group: sparse.csr_matrix, sizes: np.ndarray,
            fractions: np.ndarray, rng: np.random.Generator, rounds: int = 600,
            sample: int = 4096, patience: int = 25) -> np.ndarray:
    """Move groups between parts to shrink the squared excess of every feature (and of the
    size) over its proportional target. Each round scores every move of a random sample of
    groups at once and applies the best batch (doubled after a gain, shrunk after a loss)."""
    values = np.hstack([per_group.toarray(), 0.5 * sizes[:, None]])  # size: half weight
    k = len(fractions)
    part = part.copy()
    excess = np.zeros((k, values.shape[1]))
    np.add.at(excess, part, values)
    excess -= fractions[:, None] * values.sum(axis=0)
    own = (values ** 2).sum(axis=1)
    closed = fractions == 0
    batch, stale = max(1, min(sample, len(part)) // 16), 0
    for _ in range(rounds):
        if stale >= patience:  # a local optimum: rounds stopped finding gains
            break
        pick = (np.unique(rng.integers(0, len(part), sample)) if len(part) > sample
                else np.arange(len(part)))
        dots = values[pick] @ excess.T  # sample x parts: V_g . E_k
        here = part[pick]
        gain = 2 * (dots - dots[np.arange(len(pick)), here][:, None] + own[pick][:, None])
        gain[np.arange(len(pick)), here] = np.inf
        gain[:, closed] = np.inf
        target = gain.argmin(axis=1)
        best = gain[np.arange(len(pick)), target]
        movers = np.flatnonzero(best < 0)
        if len(movers) == 0:
            if len(pick) == len(part):
                break
            stale += 1
            continue
        if len(movers) > batch:
            movers = movers[np.argpartition(best[movers], batch - 1)[:batch]]
        rows, to = pick[movers], target[movers]
        change = np.zeros_like(excess)
        np.add.at(change, to, values[rows])
        np.subtract.at(change, part[rows], values[rows])
        if ((excess + change) ** 2).sum() < (excess ** 2).sum():
            part[rows] = to
            excess += change
            batch, stale = min(batch * 2, sample), 0
        else:
            batch, stale = max(1, batch // 4), stale + 1
    return part


def _fix_sizes(part: np.ndarray, sizes: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Move groups from over-full parts to short ones until every part is within one item of
    its target, choosing each time the group whose size best fits the shortfall."""
    part = part.copy()
    total = sizes.sum()
    target = np.round(fractions * total)
    target[np.argmax(fractions)] += total - target.sum()
    for _ in range(10 * len(sizes) + 10):
        current = np.bincount(part, weights=sizes, minlength=len(fractions))
        gap = target - current
        short, full = int(np.argmax(gap)), int(np.argmin(gap))
        need = min(gap[short], -gap[full])
        if need < 1:
            break
        candidates = np.flatnonzero((part == full) & (sizes <= need + 1e-9))
        if len(candidates) == 0:  # no group fits; move the smallest if it brings us closer
            candidates = np.flatnonzero(part == full)
            smallest = candidates[np.argmin(sizes[candidates])]
            if abs(sizes[smallest] - need) >= need:
                break
            part[smallest] = short
            continue
        part[candidates[np.argmax(sizes[candidates])]] = short
    return part


def image_features(ts: TableSet, boxes: pd.DataFrame | None = None) -> sparse.csr_matrix:
    """images x (classes + count bins) 0/1 matrix: which classes each image contains and how
    many objects it has, from `boxes` (default: `reference_boxes(ts)`)."""
    boxes = reference_boxes(ts) if boxes is None else boxes
    index = pd.Index(ts.images.image_id)
    labels = list(ts.labels) or sorted(boxes.label.dropna().unique())
    label_code = pd.Index(labels).get_indexer(boxes.label)
    row = index.get_indexer(boxes.image_id)
    ok = (row >= 0) & (label_code >= 0)
    classes = sparse.csr_matrix((np.ones(ok.sum()), (row[ok], label_code[ok])),
                                shape=(len(index), len(labels)))
    classes.sum_duplicates()
    classes.data = np.minimum(classes.data, 1.0)  # present or not
    counts = np.bincount(row[row >= 0], minlength=len(index))
    bins = np.searchsorted(COUNT_BINS, counts, side="right") - 1
    count_bins = sparse.csr_matrix((np.ones(len(index)), (np.arange(len(index)), bins)),
                                   shape=(len(index), len(COUNT_BINS)))
    return sparse.hstack([classes, count_bins]).tocsr()


def split_set(ts: TableSet, val: float = 0.1, test: float = 0.1, seed: int = 0) -> TableSet:
    """A train / val / test split of a set (`stratify` over its images).

    Parameters
    ----------
    ts : TableSet
        The set; images of one `group_id`, and byte-identical images (same sha256), stay
        together; classes (from the reference boxes) are spread in proportion.
    val, test : float
        Shares of the images in validation and test.
    seed : int
        Seed of the assignment.

    Returns
    -------
    TableSet
        The set with the images' `split` column filled and the settings in `meta`.
    """
    if val < 0 or test < 0 or val + test >= 1:
        raise UserError(f"val and test must be >= 0 with val + test < 1, got {val}, {test}")
    part = stratify(group_codes(ts.images, merge_copies=True), image_features(ts),
                    [1 - val - test, val, test], seed)
    images = ts.images.assign(split=np.asarray(SPLITS)[part])
    return TableSet(images, ts.annotations, ts.boxes, ts.captions, ts.labels,
                    {**ts.meta, "split": {"val": val, "test": test, "seed": seed}})


def fold_set(ts: TableSet, folds: int = 5, seed: int = 0) -> TableSet:
    """K group-aware, stratified folds of a set, for cross-fitting.

    Parameters
    ----------
    ts : TableSet
        The set (groups and byte-identical images stay together).
    folds : int
        How many folds (>= 2).
    seed : int
        Seed of the assignment.

    Returns
    -------
    TableSet
        The set with the images' `fold` column (0 .. folds - 1) filled.
    """
    if folds < 2:
        raise UserError(f"folds must be >= 2, got {folds}")
    part = stratify(group_codes(ts.images, merge_copies=True), image_features(ts),
                    np.full(folds, 1 / folds), seed)
    return TableSet(ts.images.assign(fold=part), ts.annotations, ts.boxes, ts.captions,
                    ts.labels, {**ts.meta, "folds": {"k": folds, "seed": seed}})


def split_report(ts: TableSet, column: str = "split", asked: dict | None = None) -> SplitReport:
    """Images, groups, objects and class shares per split (or fold) of a split set."""
    images = ts.images
    if column not in images.columns:
        raise UserError(f"the set has no {column!r} column: split it first")
    part = images[column].astype(object).where(images[column].notna(), "(none)")
    boxes = reference_boxes(ts)
    objects = boxes.image_id.map(pd.Series(part.to_numpy(), index=images.image_id))
    table = pd.DataFrame({
        "images": part.value_counts(),
        "groups": pd.Series(group_codes(images)).groupby(part.to_numpy()).nunique(),
        "objects": objects.value_counts()}).fillna(0).astype(np.int64)
    table["share"] = table.images / table.images.sum()
    labels = list(ts.labels) or sorted(boxes.label.dropna().unique())
    present = image_features(ts, boxes)[:, :len(labels)].toarray()
    shares = pd.DataFrame(present, columns=labels).groupby(
        part.to_numpy()).mean()
    gap = float((shares.max() - shares.min()).max()) if len(shares) > 1 else 0.0
    error = 0.0
    if asked:
        error = float(max(abs(table.share.get(k, 0.0) - v) for k, v in asked.items()) * 100)
    return SplitReport(table, shares, gap, error)
