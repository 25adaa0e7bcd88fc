"""The four shared tables (images, annotations, boxes, captions): columns, dtypes and validation.

This is the only place that defines them (see DESIGN.md). Every check is a vectorised mask over a
whole table, so validating millions of rows costs a few pandas operations, not a Python loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from annotate.runtime.errors import UserError

TEXT = pd.StringDtype("pyarrow")
UTC_TIME = pd.DatetimeTZDtype("ns", "UTC")

#: Column name -> dtype, in the order the tables are written.
COLUMNS: dict[str, dict[str, object]] = {
    "images": {
        "image_id": TEXT,
        "path": TEXT,
        "width": "int64",
        "height": "int64",
        "group_id": TEXT,
        "sha256": TEXT,
    },
    "annotations": {
        "image_id": TEXT,
        "annotator": TEXT,
        "source": TEXT,
        "lead_time": "float64",
        "created_at": UTC_TIME,
    },
    "boxes": {
        "image_id": TEXT,
        "annotator": TEXT,
        "object_id": TEXT,
        "label": TEXT,
        "x0": "float64",
        "y0": "float64",
        "x1": "float64",
        "y1": "float64",
        "score": "float64",
        "source": TEXT,
    },
    "captions": {
        "image_id": TEXT,
        "annotator": TEXT,
        "caption": TEXT,
        "source": TEXT,
    },
}
#: The stage-1 error table: one row per gold object and per prediction of the evaluated images
#: (`stage1-detect evaluate` writes it; noise calibration and robustness read it). Kept apart
#: from the four tables: it describes a detector, not the data set.
ERROR_COLUMNS = ["image_id", "status", "gold_label", "pred_label", "iou", "gold_object_id",
                 "pred_object_id", "score"]
ERROR_STATUSES = ("matched", "missed", "spurious", "wrong_label")
#: What a reader needs (object ids and score are optional: an error table made by other tools).
ERROR_REQUIRED = ERROR_COLUMNS[:5]
#: Columns a table may carry beyond the required ones (added by later steps).
#: Columns a table may have: a split or fold per image; per box the `area` its COCO file gave it
#: (a segmentation's area, which decides COCO's small / medium / large), when it came from one.
OPTIONAL_COLUMNS: dict[str, dict[str, object]] = {"images": {"split": TEXT, "fold": "Int64"},
                                                  "boxes": {"area": "float64"}}
TABLES: tuple[str, ...] = tuple(COLUMNS)

HUMAN = "human"
CONSENSUS = "consensus"
#: A reviewer's decision on an image people disagreed about (`quality adjudicate`): consensus
#: takes it instead of the vote.
ADJUDICATED = "adjudicated"
#: Known ground truth of a simulated data set (the demo generator writes it next to its export).
TRUTH = "truth"
#: A COCO `iscrowd` region: not an object instance; an ignore region for COCO-style evaluation.
CROWD = "crowd"
MODEL_PREFIX = "model:"
SPLITS = ("train", "val", "test")

#: Pixel slack for float round-off when checking that a box lies inside its image.
BOUNDS_TOLERANCE_PX = 1e-3


def model_source(version: str) -> str:
    """The `source` value of rows produced by model `version` (e.g. a stage-1 detector)."""
    return f"{MODEL_PREFIX}{version or 'unknown'}"


def is_model_source(source: pd.Series) -> pd.Series:
    """Vectorised: which `source` values name a model."""
    return source.astype(TEXT).str.startswith(MODEL_PREFIX).fillna(False).astype(bool)


def isin(values: pd.Series, allowed) -> pd.Series:
    """`values.isin(allowed)`, hashed in C: Arrow string columns go through `pyarrow.compute.
    is_in` (pandas' isin on them loops in Python), others through a pandas Index. Nulls are
    never in."""
    if not isinstance(allowed, (pd.Series, pd.Index)):
        allowed = pd.Series(list(allowed), dtype=object)
    allowed = allowed.dropna()
    if values.dtype == TEXT and (allowed.dtype == TEXT
                                 or all(isinstance(v, str) for v in allowed)):
        column = pa.array(values)
        value_set = pa.array(allowed.astype(TEXT)).cast(column.type)
        found = pc.is_in(column, value_set=value_set).fill_null(False)
        return pd.Series(np.asarray(found, dtype=bool), index=values.index)
    found = pd.Index(pd.unique(allowed.astype(object))).get_indexer(values.astype(object)) >= 0
    return pd.Series(found & values.notna().to_numpy(), index=values.index)


def positions(values: pd.Series, of: pd.Series) -> np.ndarray:
    """Where each of `values` first occurs in `of` (-1: nowhere; nulls are nowhere), through
    `pyarrow.compute.index_in` for text columns (pandas' indexer on them is several times
    slower)."""
    if values.dtype == TEXT and of.dtype == TEXT:
        column = pa.array(values)
        found = pc.index_in(column, value_set=pa.array(of).cast(column.type), skip_nulls=True)
        return np.asarray(found.fill_null(-1), dtype=np.int64)
    first = np.flatnonzero((of.notna() & ~of.duplicated()).to_numpy())
    at = pd.Index(of.iloc[first].astype(object)).get_indexer(values.astype(object))
    return np.where(at >= 0, first[at], -1)


def text_column(names, codes: np.ndarray) -> pd.Series:
    """A text column whose row i is `names[codes[i]]` (null where the code is -1 or the name is
    None), built by Arrow's `take` from the few distinct names instead of converting one Python
    string per row (a million-row column costs milliseconds, not a tenth of a second)."""
    dictionary = pa.array(np.asarray(names, dtype=object), type=pa.large_string(),
                          from_pandas=True)
    codes = np.asarray(codes, dtype=np.int64)
    taken = dictionary.take(pa.array(codes, mask=codes < 0))
    return pd.Series(pd.arrays.ArrowStringArray(taken), dtype=TEXT)


def row_keys(frames: Sequence[pd.DataFrame], cols: Sequence[str]) -> list[np.ndarray]:
    """One integer per row of each frame, equal exactly when the rows' `cols` are equal (nulls
    equal to nulls), comparable across the frames: duplicates and membership over several
    columns as one vectorised integer operation instead of hashing tuples."""
    sizes = [len(frame) for frame in frames]
    key, bound = np.zeros(sum(sizes), dtype=np.int64), 1
    for col in cols:
        codes, uniques = pd.factorize(pd.concat([frame[col] for frame in frames],
                                                ignore_index=True))
        if bound * (len(uniques) + 1) >= 2**62:  # renumber the keys densely before overflow
            key, seen = pd.factorize(key)
            bound = len(seen)
        key = key * (len(uniques) + 1) + (codes + 1)
        bound *= len(uniques) + 1
    return np.split(key, np.cumsum(sizes)[:-1])


def duplicated_rows(frame: pd.DataFrame, cols: Sequence[str]) -> pd.Series:
    """`frame.duplicated(cols, keep=False)` through `row_keys` (fast on Arrow strings)."""
    key = row_keys([frame], cols)[0]
    return pd.Series(pd.Series(key).duplicated(keep=False).to_numpy(), index=frame.index)


def empty(table: str) -> pd.DataFrame:
    """An empty table with the right columns and dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in COLUMNS[table].items()})


def coerce(table: str, frame: pd.DataFrame | Iterable[dict] | None) -> pd.DataFrame:
    """Return `frame` as `table`: required columns in order with their dtypes, optional ones kept.

    Missing nullable columns (sha256, group_id, lead_time, created_at, score) are filled with nulls;
    a missing required column raises a `SchemaError` naming it.
    """
    if frame is None:
        return empty(table)
    df = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(list(frame))
    spec = COLUMNS[table]
    nullable = {"group_id", "sha256", "lead_time", "created_at", "score"}
    missing = [c for c in spec if c not in df.columns and c not in nullable]
    if missing and len(df):
        raise SchemaError([Violation(table, "missing column", f"columns {missing} are required")])
    index = pd.RangeIndex(len(df))
    columns = {}
    for col, dtype in spec.items():
        values = (df[col].set_axis(index) if col in df.columns
                  else pd.Series(np.full(len(df), None), index=index))
        columns[col] = _as_dtype(values, dtype, table, col)
    for col, dtype in OPTIONAL_COLUMNS.get(table, {}).items():
        if col in df.columns:
            columns[col] = _as_dtype(df[col].set_axis(index), dtype, table, col)
    return pd.DataFrame(columns, index=index)


def all_text(values: pd.Series) -> bool:
    """Whether every present value of `values` is a string (checked in C, no Python loop).

    >>> all_text(pd.Series(["a", None])), all_text(pd.Series(["a", 1]))
    (True, False)
    """
    return pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty")


def _as_dtype(values: pd.Series, dtype: object, table: str, col: str) -> pd.Series:
    if values.dtype == dtype:
        return values
    try:
        if dtype == UTC_TIME:
            return pd.to_datetime(values, utc=True, format="ISO8601").astype(UTC_TIME)
        if dtype == TEXT:
            if not all_text(values):
                values = values.astype(object).where(values.notna(), None).map(
                    lambda v: v if v is None or isinstance(v, str) else str(v))
            return values.astype(TEXT)
        if dtype == "int64":
            numbers = pd.to_numeric(values, errors="raise")
            if numbers.isna().any() or (numbers != np.round(numbers)).any():
                bad = numbers[numbers.isna() | (numbers != np.round(numbers))].index[:5].tolist()
                raise ValueError(f"non-integer values at rows {bad}")
            return numbers.astype("int64")
        return pd.to_numeric(values, errors="raise").astype(dtype)
    except (TypeError, ValueError) as err:
        raise SchemaError([Violation(table, f"bad {col}", f"column {col!r}: {err}")]) from err


@dataclass(frozen=True)
class Violation:
    """One broken rule: which table, which rule, and the ids of (up to a few) offending rows."""

    table: str
    rule: str
    detail: str
    rows: tuple[int, ...] = ()
    count: int = 0

    def __str__(self) -> str:
        n = f" ({self.count} rows)" if self.count > 1 else ""
        return f"{self.table}: {self.rule}{n}: {self.detail}"


class SchemaError(UserError):
    """Raised by `validate` with every violation found, each naming table, rule and row ids."""

    def __init__(self, violations: Sequence[Violation]):
        self.violations = list(violations)
        lines = "\n".join(f"  - {v}" for v in self.violations)
        super().__init__(f"{len(self.violations)} schema violation(s):\n{lines}")


@dataclass
class TableSet:
    """The four tables of one data set plus its label map (class names in a fixed order)."""

    images: pd.DataFrame = field(default_factory=lambda: empty("images"))
    annotations: pd.DataFrame = field(default_factory=lambda: empty("annotations"))
    boxes: pd.DataFrame = field(default_factory=lambda: empty("boxes"))
    captions: pd.DataFrame = field(default_factory=lambda: empty("captions"))
    labels: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in TABLES:
            setattr(self, name, coerce(name, getattr(self, name)))
        self.labels = list(self.labels)

    def table(self, name: str) -> pd.DataFrame:
        return getattr(self, name)

    def counts(self) -> dict[str, int]:
        return {name: len(self.table(name)) for name in TABLES}

    def subset(self, image_ids) -> TableSet:
        """The same set restricted to `image_ids` (every table, same label map and meta)."""
        keep = pd.Index(pd.unique(pd.Series(list(image_ids), dtype=object)))
        return TableSet(*(getattr(self, name)[getattr(self, name).image_id.isin(keep)]
                          for name in TABLES), labels=self.labels, meta=dict(self.meta))

    def validate(self) -> TableSet:
        """Raise `SchemaError` if any rule is broken; return self so calls can chain."""
        validate(self)
        return self


def find_violations(ts: TableSet) -> list[Violation]:
    """Check every rule of the four tables and return the violations (empty when valid)."""
    found: list[Violation] = []

    def check(table: str, rule: str, bad: pd.Series, frame: pd.DataFrame, cols: Sequence[str]):
        bad = bad.fillna(True).astype(bool) if bad.dtype != bool else bad
        if bad.any():
            rows = np.flatnonzero(bad.to_numpy())
            sample = frame.iloc[rows[:5]][list(cols)].astype(object).to_dict("records")
            ids = "; ".join(", ".join(f"{k}={v}" for k, v in r.items()) for r in sample)
            more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
            found.append(Violation(table, rule, f"rows {rows[:5].tolist()}{more}: {ids}",
                                   tuple(rows[:5].tolist()), len(rows)))

    images, annotations, boxes, captions = ts.images, ts.annotations, ts.boxes, ts.captions
    img_cols = ["image_id", "path"]
    check("images", "missing image_id", images.image_id.isna(), images, img_cols)
    check("images", "duplicate image_id", images.image_id.duplicated(keep=False), images, img_cols)
    check("images", "missing path", images.path.isna(), images, img_cols)
    check("images", "width and height must be positive",
          (images.width <= 0) | (images.height <= 0), images, [*img_cols, "width", "height"])
    if "split" in images.columns:
        check("images", f"split must be one of {SPLITS} or empty",
              images.split.notna() & ~isin(images.split, SPLITS), images, [*img_cols, "split"])
    if "fold" in images.columns:
        check("images", "fold must be >= 0 or empty", (images.fold < 0).fillna(False), images,
              [*img_cols, "fold"])

    known = pd.Index(images.image_id.dropna())
    ann_cols = ["image_id", "annotator"]
    check("annotations", "annotation for an image that does not exist",
          ~isin(annotations.image_id, known), annotations, ann_cols)
    check("annotations", "missing annotator", annotations.annotator.isna(), annotations, ann_cols)
    check("annotations", "duplicate (image_id, annotator, source)",
          duplicated_rows(annotations, ["image_id", "annotator", "source"]),
          annotations, [*ann_cols, "source"])
    check("annotations", "negative lead_time", annotations.lead_time < 0, annotations,
          [*ann_cols, "lead_time"])
    _check_sources(check, "annotations", annotations, ann_cols)

    box_cols = ["image_id", "annotator", "object_id"]
    check("boxes", "box for an image that does not exist", ~isin(boxes.image_id, known),
          boxes, box_cols)
    coords = boxes[["x0", "y0", "x1", "y1"]]
    check("boxes", "NaN or infinite coordinate", ~np.isfinite(coords).all(axis=1),
          boxes, [*box_cols, "x0", "y0", "x1", "y1"])
    check("boxes", "x1 <= x0 or y1 <= y0 (empty or inverted box)",
          (boxes.x1 <= boxes.x0) | (boxes.y1 <= boxes.y0), boxes,
          [*box_cols, "x0", "x1", "y0", "y1"])
    size = images.drop_duplicates("image_id")
    at = positions(boxes.image_id, size.image_id)
    width = pd.Series(np.append(size.width.to_numpy(float), np.nan)[at], index=boxes.index)
    height = pd.Series(np.append(size.height.to_numpy(float), np.nan)[at], index=boxes.index)
    tol = BOUNDS_TOLERANCE_PX
    outside = ((boxes.x0 < -tol) | (boxes.y0 < -tol) | (boxes.x1 > width + tol)
               | (boxes.y1 > height + tol))
    check("boxes", "box outside the image", outside & width.notna(),
          boxes, [*box_cols, "x0", "y0", "x1", "y1"])
    check("boxes", "missing object_id", boxes.object_id.isna(), boxes, box_cols)
    check("boxes", "duplicate object_id within (image_id, annotator, source)",
          duplicated_rows(boxes, ["image_id", "annotator", "source", "object_id"]),
          boxes, [*box_cols, "source"])
    if ts.labels:
        check("boxes", f"unknown label (label map: {ts.labels})",
              ~isin(boxes.label, ts.labels), boxes, [*box_cols, "label"])
    else:
        check("boxes", "missing label", boxes.label.isna(), boxes, [*box_cols, "label"])
    human = isin(boxes.source, [HUMAN, ADJUDICATED, TRUTH, CROWD])
    check("boxes", "human boxes carry no score (score must be NaN)",
          human & boxes.score.notna(), boxes, [*box_cols, "score"])
    model = is_model_source(boxes.source)
    check("boxes", "model score must be in [0, 1] (or NaN when the model gave none)",
          model & boxes.score.notna() & ~boxes.score.between(0, 1), boxes, [*box_cols, "score"])
    _check_sources(check, "boxes", boxes, box_cols)
    _check_has_annotation(check, "boxes", boxes, annotations, box_cols)

    cap_cols = ["image_id", "annotator"]
    check("captions", "caption for an image that does not exist",
          ~isin(captions.image_id, known), captions, cap_cols)
    blank = captions.caption.isna() | (captions.caption.str.strip() == "")
    check("captions", "empty caption", blank, captions, cap_cols)
    _check_sources(check, "captions", captions, cap_cols)
    _check_has_annotation(check, "captions", captions, annotations, cap_cols)
    return found


def _check_sources(check, table: str, frame: pd.DataFrame, cols: Sequence[str]) -> None:
    ok = (isin(frame.source, [HUMAN, ADJUDICATED, CONSENSUS, TRUTH, CROWD])
          | is_model_source(frame.source))
    check(table, f"source must be {HUMAN!r}, {ADJUDICATED!r}, {CONSENSUS!r}, {TRUTH!r}, "
          f"{CROWD!r} or "
          "'model:<version>'",
          ~ok, frame, [*cols, "source"])


def _check_has_annotation(check, table: str, frame: pd.DataFrame, annotations: pd.DataFrame,
                          cols: Sequence[str]) -> None:
    """Human (and adjudicated) rows need an annotations row of their source: it is what says
    the annotator saw the image."""
    people = [HUMAN, ADJUDICATED]
    human = isin(frame.source, people).to_numpy()
    seen = annotations[isin(annotations.source, people).to_numpy()]
    rows, seen_keys = row_keys([frame, seen], ["image_id", "annotator", "source"])
    missing = pd.Series(human & ~np.isin(rows, seen_keys), index=frame.index)
    check(table, "annotator with human rows but no annotations row for that image",
          missing, frame, cols)


def check_errors(errors: pd.DataFrame, where: str = "error table") -> pd.DataFrame:
    """`errors` if it is a stage-1 error table (columns, known statuses), else a `SchemaError`
    naming what is wrong."""
    missing = [c for c in ERROR_REQUIRED if c not in errors.columns]
    if missing:
        raise SchemaError([Violation("errors", "missing column", f"{where} lacks {missing}")])
    unknown = sorted(set(errors.status.dropna().unique()) - set(ERROR_STATUSES))
    if unknown or errors.status.isna().any():
        raise SchemaError([Violation("errors", "unknown status",
                                     f"{where}: statuses {unknown or ['null']}; use "
                                     f"{ERROR_STATUSES}")])
    return errors


def validate(ts: TableSet) -> None:
    """Raise `SchemaError` listing every violation; return None when the set is valid."""
    violations = find_violations(ts)
    if violations:
        raise SchemaError(violations)
