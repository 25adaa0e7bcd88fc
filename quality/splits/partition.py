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
#: Default restarts of `stratify`: this many groups divided by the set's (1 to 8).
RESTART_GROUPS = 20_000


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
    """A dense group code per image: its `group_id`, or the image itself when it has none,
    numbered in sorted order of the ids (the order of the rows does not matter).

    With `merge_copies`, images with the same sha256 (byte-identical files) share a group.
    """
    key = images.group_id.astype(str).where(images.group_id.notna(),
                                            "\0image:" + images.image_id.astype(str))
    codes = pd.factorize(key, sort=True)[0]  # by id, not by row: row order changes nothing
    if not merge_copies or images.sha256.isna().all():
        return codes
    copy = pd.factorize(images.sha256.astype(object), sort=True)[0]  # -1 where unknown
    n, known = len(codes), copy >= 0
    linked = components(2 * n + codes.max() + 2,
                        np.r_[np.flatnonzero(known), np.flatnonzero(known)],
                        np.r_[n + codes[known], n + codes.max() + 1 + copy[known]])
    # name each joined group by the smallest code in it: component labels follow the rows
    smallest = pd.Series(codes).groupby(linked[n + codes]).transform("min").to_numpy()
    return pd.factorize(smallest, sort=True)[0]


def stratify(groups: np.ndarray, features: sparse.spmatrix | np.ndarray, fractions,
             seed: int = 0, restarts: int | None = None) -> np.ndarray:
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
        Seed of the assignment. For a given seed the result does not depend on the order of
        the items or on which code each group or feature has.
    restarts : int, optional
        Independent assignments to keep the best of (smallest worst share deviation of any
        feature in any part); default: 8 up to 2,500 groups, fewer above, 1 above 10,000.

    Returns
    -------
    numpy.ndarray
        The part (0 .. len(fractions) - 1) of each item. Part sizes are the largest-remainder
        shares of the items (`part_targets`), each met within one item where the group sizes
        allow.

    Raises
    ------
    UserError
        When the fractions are not shares, or there are fewer groups than non-empty parts.

    Examples
    --------
    >>> part = stratify(np.array([0, 0, 1, 1, 2, 2, 3, 3]), np.ones((8, 1)), [0.5, 0.5])
    >>> sorted(np.bincount(part).tolist()), bool((part[::2] == part[1::2]).all())
    ([4, 4], True)
    """
    fractions = np.asarray(fractions, np.float64)
    if (fractions < 0).any() or not np.isclose(fractions.sum(), 1):
        raise UserError(f"fractions must be >= 0 and sum to 1, got {fractions.tolist()}")
    groups = _sorted_codes(np.asarray(groups))
    n_items, n_groups = len(groups), int(groups.max()) + 1 if len(groups) else 0
    if n_items == 0:
        return np.zeros(0, np.int64)
    if n_groups < np.count_nonzero(fractions):
        raise UserError(f"{n_groups} group(s) cannot fill {np.count_nonzero(fractions)} "
                        "parts: every part would need at least one group")
    member = sparse.csr_matrix((np.ones(n_items), (groups, np.arange(n_items))),
                               shape=(n_groups, n_items))
    sizes = np.asarray(member.sum(axis=1)).ravel()
    per_group = _canonical_columns((member @ sparse.csr_matrix(features)).tocsr())
    stratum = _main_stratum(per_group)
    target = part_targets(n_items, fractions)
    values = per_group.toarray()
    best, best_score = None, None
    restarts = restarts or int(np.clip(RESTART_GROUPS // n_groups, 1, 8))
    for child in np.random.SeedSequence(seed).spawn(restarts):
        rng = np.random.default_rng(child)
        order = np.lexsort((rng.permutation(n_groups), stratum))
        group_part = np.empty(n_groups, np.int64)
        group_part[order] = _deal(sizes[order], fractions, rng)
        group_part = _refine(group_part, values, sizes, fractions, rng)
        group_part = _fix_sizes(group_part, values, sizes, target)
        group_part = _swap(group_part, values, sizes, target, rng)
        excess = _excess(group_part, values, target / max(target.sum(), 1))
        score = (float((np.abs(excess) / np.maximum(target, 1)[:, None]).max(initial=0)),
                 float((excess ** 2).sum()))
        if best_score is None or score < best_score:
            best, best_score = group_part, score
    group_part = best
    return group_part[groups]


def _sorted_codes(groups: np.ndarray) -> np.ndarray:
    """Dense group codes in sorted order of the group values (not of first appearance), so
    that the order of the items does not change which group is which."""
    try:
        return pd.factorize(groups, sort=True)[0]
    except TypeError:  # values of several types: compare their text
        return pd.factorize(groups.astype(str), sort=True)[0]


def _canonical_columns(per_group: sparse.csr_matrix) -> sparse.csr_matrix:
    """The feature columns in an order given by their content (frequency, then a fixed random
    projection of the groups holding them), not by their codes: permuting the feature codes
    gives the same matrix (identical columns are interchangeable)."""
    frequency = np.asarray(per_group.sum(axis=0)).ravel()
    projection = np.random.default_rng(0).random(per_group.shape[0]) @ per_group
    return per_group[:, np.lexsort((np.asarray(projection).ravel(), -frequency))].tocsr()


def _main_stratum(per_group: sparse.csr_matrix) -> np.ndarray:
    """Each group's stratum: the feature most over-represented in it relative to its overall
    frequency (a rare class it holds wins over the common ones); -1 for no feature."""
    frequency = np.asarray(per_group.sum(axis=0)).ravel()
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


def _refine(part: np.ndarray, features: np.ndarray, sizes: np.ndarray,
            fractions: np.ndarray, rng: np.random.Generator, rounds: int = 600,
            sample: int = 4096, patience: int = 25) -> np.ndarray:
    """Move groups between parts to shrink the squared excess of every feature (groups x
    features, dense) and of the size over its proportional target. Each round scores every
    move of a random sample of groups at once and applies the best batch (doubled after a
    gain, shrunk after a loss)."""
    values = np.hstack([features, 0.5 * sizes[:, None]])  # size: half weight
    part = part.copy()
    excess = _excess(part, values, fractions)
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


def part_targets(total: int, fractions: np.ndarray) -> np.ndarray:
    """Each part's size by the largest-remainder method: the floor of its exact share, and
    the items left over to the parts with the largest remainders (ties to the earlier part).

    >>> part_targets(6, np.full(4, .25)).tolist(), part_targets(25, np.array([.8, .1, .1])).tolist()
    ([2, 2, 1, 1], [20, 3, 2])
    """
    exact = fractions * total
    target = np.floor(exact + 1e-9).astype(np.int64)
    order = np.lexsort((np.arange(len(fractions)), -(exact - target)))
    target[order[:total - int(target.sum())]] += 1
    return target


def _fix_sizes(part: np.ndarray, values: np.ndarray, sizes: np.ndarray,
               target: np.ndarray) -> np.ndarray:
    """Move groups from over-full parts to short ones until every part holds its target
    (or as close as the group sizes allow); of the groups that fit a shortfall, the move that
    keeps the strata most balanced wins."""
    part = part.copy()
    excess = _excess(part, values, target / target.sum())
    for _ in range(10 * len(sizes) + 10):
        gap = target - np.bincount(part, weights=sizes, minlength=len(target))
        short, full = int(np.argmax(gap)), int(np.argmin(gap))
        need = min(gap[short], -gap[full])
        if need < 1:
            break
        candidates = np.flatnonzero((part == full) & (sizes <= need + 1e-9))
        if len(candidates) == 0:  # no group fits; move the smallest if it brings us closer
            candidates = np.flatnonzero(part == full)
            candidates = candidates[sizes[candidates] == sizes[candidates].min()]
            if abs(sizes[candidates[0]] - need) >= need:
                break
        else:
            candidates = candidates[sizes[candidates] == sizes[candidates].max()]
        moved = values[candidates]
        cost = (((excess[short] + moved) ** 2).sum(axis=1)
                + ((excess[full] - moved) ** 2).sum(axis=1))
        group = candidates[np.argmin(cost)]
        part[group] = short
        excess[short] += values[group]
        excess[full] -= values[group]
    return part


def _excess(part: np.ndarray, values: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Parts x columns: what each part holds of each column minus its proportional share."""
    excess = np.zeros((len(fractions), values.shape[1]))
    np.add.at(excess, part, values)
    return excess - fractions[:, None] * values.sum(axis=0)


def _swap(part: np.ndarray, values: np.ndarray, sizes: np.ndarray, target: np.ndarray,
          rng: np.random.Generator, sample: int = 1024, rounds: int = 200) -> np.ndarray:
    """Exchange groups between pairs of parts while exchanges shrink the squared excess of
    the strata, each part staying within one item of its target: single moves stop at a
    local optimum that exchanges still improve. Per round and pair of parts, every exchange
    of (a sample of) their groups is scored at once and a batch of the best disjoint
    exchanges of equal size is applied (doubled after a gain, shrunk after a loss)."""
    part = part.copy()
    k = len(target)
    excess = _excess(part, values, target / target.sum())
    error = np.bincount(part, weights=sizes, minlength=k) - target
    own = (values ** 2).sum(axis=1)
    pairs = [(a, b) for a in range(k) for b in range(a + 1, k) if target[a] and target[b]]
    batch = dict.fromkeys(pairs, 1)
    for _ in range(rounds):
        improved = False
        for a, b in pairs:
            in_a, in_b = np.flatnonzero(part == a), np.flatnonzero(part == b)
            if len(in_a) == 0 or len(in_b) == 0:
                continue
            if len(in_a) > sample:
                in_a = rng.choice(in_a, sample, replace=False)
            if len(in_b) > sample:
                in_b = rng.choice(in_b, sample, replace=False)
            # moving g (in a) to b and h (in b) to a changes the objective by
            # 2 d.(E_a - E_b) + 2 |d|^2, d = v_h - v_g
            gap = excess[a] - excess[b]
            va, vb = values[in_a], values[in_b]
            gain = (2 * ((vb @ gap)[None, :] - (va @ gap)[:, None])
                    + 2 * (own[in_a][:, None] + own[in_b][None, :]) - 4 * (va @ vb.T))
            delta = sizes[in_b][None, :] - sizes[in_a][:, None]  # a's size change
            fits = ((np.abs(error[a] + delta) <= max(abs(error[a]), 1))
                    & (np.abs(error[b] - delta) <= max(abs(error[b]), 1)))
            gain[~fits] = np.inf
            rows, cols = _best_exchanges(gain, delta, batch[(a, b)])
            if len(rows) == 0:
                continue
            g, h = in_a[rows], in_b[cols]
            change = values[h].sum(axis=0) - values[g].sum(axis=0)
            before = (excess[a] ** 2).sum() + (excess[b] ** 2).sum()
            if ((excess[a] + change) ** 2).sum() + ((excess[b] - change) ** 2).sum() >= before:
                batch[(a, b)] = max(1, batch[(a, b)] // 4)
                continue
            part[g], part[h] = b, a
            excess[a] += change
            excess[b] -= change
            shift = delta[rows, cols].sum()
            error[a] += shift
            error[b] -= shift
            batch[(a, b)] = min(2 * batch[(a, b)], 256)
            improved = True
        if not improved:
            break
    return part


def _best_exchanges(gain: np.ndarray, delta: np.ndarray, batch: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Up to `batch` improving exchanges, best first, no group twice; beyond the best one
    only exchanges of equal-sized groups (so the parts' sizes stay where they are)."""
    flat = gain.ravel()
    improving = np.flatnonzero(flat < -1e-9)
    if len(improving) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if len(improving) > 4 * batch:
        improving = improving[np.argpartition(flat[improving], 4 * batch - 1)[:4 * batch]]
    improving = improving[np.argsort(flat[improving], kind="stable")]
    rows, cols = np.unravel_index(improving, gain.shape)
    keep, used_rows, used_cols = [], set(), set()
    for i, (r, c) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
        if r in used_rows or c in used_cols or (keep and delta[r, c] != 0):
            continue
        keep.append(i)
        used_rows.add(r)
        used_cols.add(c)
        if len(keep) == batch:
            break
    return rows[keep], cols[keep]


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
