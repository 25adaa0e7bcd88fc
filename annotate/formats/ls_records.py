"""The parts of a Label Studio export we read, as msgspec records, and the columns regions land in.

Tasks and annotations are decoded into small records that skip every field we do not read; an
annotation's `result` stays raw bytes until it is walked. A `result` list is first decoded with
strict types (numbers are numbers, labels are text), which is fast and lets the values go
straight into typed arrays; only a list that fails that is decoded loosely and checked value by
value, so one bad value costs its region, never the file.
"""

from __future__ import annotations

import math
from array import array
from typing import Any, Union

import msgspec
import numpy as np
import pandas as pd

from annotate.formats.summary import ImportSummary

_Scalar = Union[str, int, float, bool, None]  # noqa: UP007 - msgspec reads typing unions
NAN = math.nan


class User(msgspec.Struct, gc=False):
    id: Any = None
    email: Any = None


class Annotation(msgspec.Struct, gc=False):
    id: Any = None
    completed_by: Union[User, list, _Scalar] = None  # noqa: UP007
    updated_by: Union[User, list, _Scalar] = None  # noqa: UP007
    result: msgspec.Raw = msgspec.Raw(b"")  # b"" when the key is missing, b"null" for null
    was_cancelled: Any = None
    lead_time: Any = None
    created_at: Any = None


class Prediction(msgspec.Struct, gc=False):
    id: Any = None
    model_version: Any = None
    score: Any = None
    result: msgspec.Raw = msgspec.Raw(b"")


class Task(msgspec.Struct, gc=False):
    """A task; its annotations and predictions stay raw bytes (b"" when the key is missing)
    until the walk reads the task, so the decoded file holds one small record per task."""

    id: Any = None
    data: Any = msgspec.UNSET
    meta: Any = None
    annotations: msgspec.Raw = msgspec.Raw(b"")
    predictions: msgspec.Raw = msgspec.Raw(b"")
    annotator: Any = msgspec.UNSET  # JSON-MIN rows carry these instead of `annotations`
    annotation_id: Any = msgspec.UNSET


TASKS = msgspec.json.Decoder(list[Union[Task, list, _Scalar]])  # noqa: UP007
#: a task's `annotations` and `predictions`: lists of records, or what a broken file has
ANNOTATIONS = msgspec.json.Decoder(Union[list[Union[Annotation, list, _Scalar]],  # noqa: UP007
                                         dict, _Scalar])
PREDICTIONS = msgspec.json.Decoder(Union[list[Union[Prediction, list, _Scalar]],  # noqa: UP007
                                         dict, _Scalar])


# --- results, strict ---------------------------------------------------------------------------

class BareValue(msgspec.Struct, kw_only=True, gc=False):
    x: float
    y: float
    width: float
    height: float
    rotation: float = 0.0


class RectValue(BareValue, kw_only=True, gc=False):
    rectanglelabels: list[str]


class _Region(msgspec.Struct, kw_only=True, gc=False):
    """What every rectangle result carries besides its value."""

    id: Union[str, int, None] = None  # noqa: UP007
    original_width: Union[float, None] = None  # noqa: UP007
    original_height: Union[float, None] = None  # noqa: UP007
    score: Union[float, None] = None  # noqa: UP007
    from_name: Union[str, None] = None  # noqa: UP007
    to_name: Union[str, None] = None  # noqa: UP007
    image_rotation: Union[float, None] = None  # noqa: UP007


class Rect(_Region, tag="rectanglelabels", tag_field="type", kw_only=True, gc=False):
    value: RectValue


class Bare(_Region, tag="rectangle", tag_field="type", kw_only=True, gc=False):
    """A `<Rectangle>` region: its label comes in a `labels` result with the same id."""

    value: BareValue


class LabelsValue(msgspec.Struct, gc=False):
    labels: list[str] = []


class Labels(msgspec.Struct, tag="labels", tag_field="type", gc=False):
    """A `<Labels>` choice; with the id of a `rectangle` result it is that box's label."""

    value: LabelsValue
    id: Union[str, int, None] = None  # noqa: UP007


class TextValue(msgspec.Struct, gc=False):
    text: Union[list[str], str, None] = None  # noqa: UP007


class Text(msgspec.Struct, tag="textarea", tag_field="type", gc=False):
    value: TextValue
    from_name: Union[str, None] = None  # noqa: UP007


#: Other result types Label Studio writes; read (to count them as ignored) without their values.
OTHER_TYPES = ("choices", "taxonomy", "rating", "number", "datetime", "relation",
               "polygon", "polygonlabels", "keypoint", "keypointlabels", "ellipse",
               "ellipselabels", "brush", "brushlabels", "paragraphlabels", "hypertextlabels",
               "timeserieslabels", "videorectangle", "pairwise", "ranker")
_OTHERS = tuple(msgspec.defstruct(f"Other_{name}", [], tag=name, tag_field="type", gc=False)
                for name in OTHER_TYPES)
STRICT_RESULTS = msgspec.json.Decoder(list[Union[(Rect, Bare, Labels, Text, *_OTHERS)]])


# --- results, loose ----------------------------------------------------------------------------

class LooseValue(msgspec.Struct, gc=False):
    x: Any = None
    y: Any = None
    width: Any = None
    height: Any = None
    rotation: Any = None
    rectanglelabels: Any = None
    labels: Any = None
    text: Any = None


class LooseResult(msgspec.Struct, gc=False):
    id: Any = None
    type: Any = None
    value: Union[LooseValue, list, _Scalar] = None  # noqa: UP007
    original_width: Any = None
    original_height: Any = None
    score: Any = None
    from_name: Any = None
    to_name: Any = None
    image_rotation: Any = None


LOOSE_RESULTS = msgspec.json.Decoder(
    Union[list[Union[LooseResult, list, _Scalar]], dict, _Scalar])  # noqa: UP007


#: A `labels` result whose id names no `rectangle` result (a label of nothing we read).
UNPAIRED_LABELS = "labels (no rectangle with its region id)"

SIZE_NULLED = ("box: original_width/height not a positive number (nulled; the image's size is "
               "used)")


def is_number(value: object) -> bool:
    """A JSON number (booleans are not numbers here)."""
    return value.__class__ in (int, float)


class RegionColumns:
    """Rectangle regions as typed columns, filled by the walk and turned into numpy arrays for
    the vectorised checks. The walk touches every region of the file, so this is the import's
    inner loop: a region is two list `extend` calls (its integers, its floats) and an `append`
    (its result id), not a Python object or a call per value. Its label, number of labels,
    `to_name` and `from_name` are stored as one code into the combinations seen (a file has a
    handful), and its task, owner and kind once per owner."""

    INTS = ("position", "kind")
    FLOATS = ("x", "y", "w", "h", "rotation", "ow", "oh", "score", "image_rotation")
    #: per owner (annotation or prediction): its task, its position, whether it is a prediction
    #: and how many regions it added
    OWNER = ("task", "owner", "is_pred", "regions")
    #: what a region's `kind` code stands for: its (first) label, its number of labels, the
    #: object it is drawn on (`to_name`) and the control it came from (`from_name`)
    KIND = ("label", "n_labels", "target", "control")

    #: values wait in plain lists (a list's extend is about 30x faster than an array's) and
    #: move into the typed arrays (8 bytes a value instead of a Python object's 32) in blocks
    BLOCK = 1 << 16

    def __init__(self) -> None:
        self.ints, self.floats = array("q"), array("d")
        self.region_id: list = []
        self.owners = array("q")
        self._owners: list[int] = []
        self._ints: list[int] = []
        self._floats: list[float] = []
        #: (label or None, number of labels, to_name or None, from_name or None) -> kind code
        self.kinds: dict[tuple, int] = {}

    def __len__(self) -> int:
        return len(self.region_id)

    def _owner_done(self, task: int, owner: int, is_pred: bool, first: int) -> None:
        """Close an owner whose regions start at `first`; move full blocks into the arrays."""
        self._owners.extend((task, owner, is_pred, len(self.region_id) - first))
        if len(self._floats) > self.BLOCK:
            self.close()

    def close(self) -> None:
        """Move every waiting value into the typed arrays (before the columns are sent or
        joined)."""
        for values, waiting in ((self.ints, self._ints), (self.floats, self._floats),
                                (self.owners, self._owners)):
            values.fromlist(waiting)
            waiting.clear()

    def extend(self, other: RegionColumns, task0: int, ann0: int, pred0: int) -> None:
        """Append `other`'s regions, walked after ours: its tasks and owners renumbered to
        follow ours (`task0` tasks, `ann0` annotations and `pred0` predictions before them),
        its kind codes translated into ours."""
        self.close()
        other.close()
        owners = np.frombuffer(other.owners, dtype=np.int64).reshape(-1, len(self.OWNER)).copy()
        owners[:, 0] += task0
        owners[:, 1] += np.where(owners[:, 2] == 1, pred0, ann0)
        self.owners.frombytes(owners.tobytes())
        codes = np.array([self.kinds.setdefault(kind, len(self.kinds)) for kind in other.kinds],
                         dtype=np.int64)
        ints = np.frombuffer(other.ints, dtype=np.int64).reshape(-1, len(self.INTS)).copy()
        ints[:, 1] = codes[ints[:, 1]] if len(ints) else ints[:, 1]
        self.ints.frombytes(ints.tobytes())
        self.floats.extend(other.floats)
        self.region_id.extend(other.region_id)

    def _append(self, position: int, region_id: object, labels: list[str], x: float, y: float,
                w: float, h: float, rotation: float, ow: float, oh: float, score: float,
                from_name: object = None, to_name: object = None,
                image_rotation: float = 0.0) -> None:
        """One rectangle of the current owner, its values already checked (numbers; NaN for
        absent sizes; names that are not text count as not given)."""
        kind = (labels[0] if labels else None, len(labels),
                to_name if isinstance(to_name, str) else None,
                from_name if isinstance(from_name, str) else None)
        self._ints.extend((position, self.kinds.setdefault(kind, len(self.kinds))))
        self._floats.extend((x, y, w, h, rotation, ow, oh, score, image_rotation))
        self.region_id.append(region_id)

    def add_strict(self, results: list, task: int, owner: int, is_pred: bool) -> tuple:
        """Append the strictly typed rectangles (`rectanglelabels`, and `rectangle` results
        joined by region id with their `labels`); return ((TextArea name, text) pairs, other
        result types)."""
        texts: list = []
        others: list[str] = []
        bare = labels_of = None
        first = len(self.region_id)
        ints, floats, ids = self._ints.extend, self._floats.extend, self.region_id.append
        kinds = self.kinds
        for k, res in enumerate(results):
            cls = res.__class__
            if cls is Rect:  # the common case, inlined (`_append_region` does the same)
                value, labels = res.value, res.value.rectanglelabels
                ints((k, kinds.setdefault((labels[0] if labels else None, len(labels),
                                           res.to_name, res.from_name), len(kinds))))
                floats((value.x, value.y, value.width, value.height, value.rotation,
                        NAN if res.original_width is None else res.original_width,
                        NAN if res.original_height is None else res.original_height,
                        NAN if res.score is None else res.score, res.image_rotation or 0.0))
                ids(res.id)
            elif cls is Text:
                text = res.value.text
                if text.__class__ is list:
                    texts.extend([(res.from_name, t) for t in text])
                else:
                    texts.append((res.from_name, text))
            elif cls is Bare:
                bare = [] if bare is None else bare
                bare.append((k, res))
            elif cls is Labels and res.id is not None:
                labels_of = {} if labels_of is None else labels_of
                labels_of[res.id] = res.value.labels
            else:
                others.append(cls.__struct_config__.tag)
        for k, res in bare or ():
            self._append_region(k, res, labels_of.pop(res.id, []) if labels_of else [])
        if labels_of:
            others.extend([UNPAIRED_LABELS] * len(labels_of))
        self._owner_done(task, owner, is_pred, first)
        return texts, others

    def _append_region(self, position: int, res: _Region, labels: list[str]) -> None:
        """One strictly typed rectangle result (`Rect` or `Bare`) with its labels."""
        value = res.value
        self._append(position, res.id, labels, value.x, value.y, value.width, value.height,
                     value.rotation,
                     NAN if res.original_width is None else res.original_width,
                     NAN if res.original_height is None else res.original_height,
                     NAN if res.score is None else res.score, res.from_name, res.to_name,
                     res.image_rotation or 0.0)

    def add_loose(self, results: list, task: int, owner: int, is_pred: bool, where: str,
                  summary: ImportSummary) -> list:
        """The same for a loosely decoded list: every value checked, bad ones counted."""
        texts: list = []
        others: list[str] = []
        first = len(self.region_id)
        labels_of = {res.id: res.value.labels for res in results
                     if isinstance(res, LooseResult) and res.type == "labels"
                     and res.id is not None and isinstance(res.value, LooseValue)}
        paired: set = set()
        for k, res in enumerate(results):
            if not isinstance(res, LooseResult):
                summary.reject("result: not an object", f"{where}, result {k}")
                continue
            value = res.value
            if res.type == "textarea":
                text = value.text if isinstance(value, LooseValue) else None
                name = res.from_name if isinstance(res.from_name, str) else None
                texts.extend((name, t) for t in (text if isinstance(text, list) else [text]))
                continue
            if res.type == "labels" and res.id in labels_of:
                continue  # read with its rectangle
            if res.type not in ("rectanglelabels", "rectangle"):
                others.append(str(res.type))
                continue
            at = f"{where}, region {res.id if res.id is not None else k}"
            if not isinstance(value, LooseValue):
                summary.reject("box: `value` is not an object", at)
                continue
            coords = (value.x, value.y, value.width, value.height)
            rotation = 0.0 if value.rotation is None else value.rotation
            turned = 0.0 if res.image_rotation is None else res.image_rotation
            if res.type == "rectangle":
                labels = labels_of.get(res.id, []) if res.id is not None else []
                paired.add(res.id)
            else:
                labels = value.rectanglelabels
            if not all(map(is_number, coords)):
                summary.reject("box: missing or non-numeric x/y/width/height", at)
            elif not is_number(rotation) or not is_number(turned):
                summary.reject("box: rotation or image_rotation is not a number", at)
            elif not isinstance(labels, list):
                summary.reject("box: rectanglelabels is not a list", at)
            elif not all(isinstance(label, str) for label in labels):
                summary.reject("box: label is not text", at)
            else:
                sizes = (res.original_width, res.original_height)
                if not all(v is None or is_number(v) for v in sizes):
                    summary.null(SIZE_NULLED, at)
                if res.score is not None and not is_number(res.score):
                    summary.null(("prediction" if is_pred else "box") + ": score not a number "
                                 "(nulled)", at)
                ow, oh = (float(v) if is_number(v) else NAN for v in sizes)
                region_id = res.id if isinstance(res.id, (str, int)) and not isinstance(
                    res.id, bool) else None
                self._append(k, region_id, labels,
                             *(float(v) for v in coords), float(rotation), ow, oh,
                             float(res.score) if is_number(res.score) else NAN,
                             res.from_name, res.to_name, float(turned))
        others.extend([UNPAIRED_LABELS] * len(set(labels_of) - paired))
        self._owner_done(task, owner, is_pred, first)
        return texts, others

    def arrays(self) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
        """(every column as a numpy array, the names behind the codes of `label`, `target` and
        `control`), emptying the columns. Those three columns hold codes into their names, in
        order of first appearance; -1 where the region gave none."""
        self.close()
        out = dict(zip(self.FLOATS, _columns(self.floats, len(self.FLOATS), np.float64),
                       strict=True))
        out["position"], kind = _columns(self.ints, len(self.INTS), np.int64)
        *owner_columns, counts = _columns(self.owners, len(self.OWNER), np.int64)
        for name, values in zip(self.OWNER[:3], owner_columns, strict=True):
            out[name] = np.repeat(values, counts)
        out["is_pred"] = out["is_pred"].astype(bool)
        out["region_id"] = np.array(self.region_id, dtype=object)
        kinds = np.array(list(self.kinds), dtype=object).reshape(-1, len(self.KIND))
        out["n_labels"] = kinds[:, self.KIND.index("n_labels")].astype(np.int64)[kind]
        names = {}
        for column in ("label", "target", "control"):
            codes, uniques = pd.factorize(kinds[:, self.KIND.index(column)])
            out[column], names[column] = codes.astype(np.int64)[kind], list(uniques)
        self.__init__()  # the regions now live in the arrays returned only (a large import's
        return out, names  # peak memory would otherwise hold them twice)


def _columns(values: array, width: int, dtype: type) -> list[np.ndarray]:
    """The interleaved `values` (rows of `width` values, one after another) as one array per
    place in the row."""
    rows = np.frombuffer(values, dtype=dtype).reshape(-1, width) if len(values) \
        else np.zeros((0, width), dtype=dtype)
    return [np.ascontiguousarray(rows[:, k]) for k in range(width)]
