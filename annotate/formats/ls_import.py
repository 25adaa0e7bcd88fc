"""Label Studio export -> the four tables, with every annotator kept and every drop counted.

Reads the shapes Label Studio 1.x writes (measured on a 1.23 server):
- JSON export and the default snapshot: `completed_by` is a user id, predictions are ids only;
- snapshot with `annotations__completed_by` and `predictions` expanded: `completed_by` is an
  object with `email`, predictions carry their results (the shape `annotate pull` asks for);
- JSON-MIN: one flat row per completed annotation, no skipped annotations, no predictions.

Speed: the file is parsed with msgspec into small typed records that skip every field we do not
read, and each annotation's `result` stays raw bytes until it is walked, so memory holds the
file, the records and the output columns, never the whole JSON as Python objects. The walk
collects plain tuples; on a large file it is split into consecutive runs of tasks walked in
forked processes at once (`annotate.runtime.forked`; one per core, at least `TASKS_PER_PART`
tasks each), whose rows are joined in file order. Conversion and every check run vectorised
over all rows at once.

Rules (docs/formats.md has the reasons): a user id and that user's email are one annotator; a
missing or null `result` is rejected (only `[]` means "looked and drew nothing"); a task id or
image id seen before rejects the later task with everything attached to it; one bad value nulls
that value or rejects its item, never the file.
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
from dataclasses import InitVar, dataclass, field
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd

from annotate.formats import images as image_files
from annotate.formats import jsonio
from annotate.formats.jsonio import ExportError
from annotate.formats.labels import Controls
from annotate.formats.ls_records import (
    ANNOTATIONS,
    LOOSE_RESULTS,
    PREDICTIONS,
    SIZE_NULLED,
    STRICT_RESULTS,
    TASKS,
    Annotation,
    LooseResult,
    LooseValue,
    Prediction,
    RegionColumns,
    Task,
    User,
    is_number,
)
from annotate.formats.summary import CLIP_TOLERANCE, ImportSummary
from annotate.runtime.forked import ForkedParts, can_fork, cores
from annotate.tables.schema import (
    HUMAN,
    SPLITS,
    TEXT,
    TableSet,
    all_text,
    coerce,
    model_source,
    row_keys,
    text_column,
)

__all__ = ["ExportError", "ImportSummary", "import_bytes", "import_export"]

#: JSON-MIN keys that are about the annotation, not the task data or a control's result.
MIN_ANNOTATION_KEYS = {"id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time"}
DEFAULT_IMAGE_FIELD = "image"

#: Tasks below which a run of the walk is not worth a process of its own: the fork, and sending
#: the run's rows back, cost about what walking that many tasks does.
TASKS_PER_PART = 20_000
#: At most this many processes walk one file (the rows of each are joined in the parent).
MAX_PARTS = 8

_TASK_COLS = ["item", "task_id", "image_id", "ref", "group_id", "split", "meta_sha", "width",
              "height"]
_ANN_COLS = ["task", "ann_id", "user_id", "email", "lead_time", "created_at"]
_PRED_COLS = ["task", "pred_id", "model_version", "score"]
_CAPTION_COLS = ["task", "owner", "is_pred", "caption", "control"]


@dataclass
class _Rows:
    """Tuples collected while walking the JSON; converted and checked in bulk afterwards.
    `task`/`owner` are positions in `tasks` and in `annotations` (or `predictions`)."""

    tasks: list[tuple] = field(default_factory=list)
    annotations: list[tuple] = field(default_factory=list)
    predictions: list[tuple] = field(default_factory=list)
    regions: RegionColumns = field(default_factory=RegionColumns)
    captions: list[tuple] = field(default_factory=list)
    #: whether an annotation's `completed_by` was a user object (a snapshot with users expanded)
    expanded: bool = False
    #: one object per distinct text that repeats on every row (an e-mail, a user id, a control
    #: name): the decoder makes a new string each time, and a file has a handful of them
    texts: dict = field(default_factory=dict)

    def same(self, text: object) -> object:
        """`text`, as the one object kept for that value."""
        return self.texts.setdefault(text, text) if text.__class__ is str else text

    def extend(self, other: _Rows) -> None:
        """Append the rows of the tasks walked after ours (`other` numbers its tasks and owners
        from 0; they are renumbered to follow ours)."""
        task0, ann0, pred0 = len(self.tasks), len(self.annotations), len(self.predictions)
        same = self.same  # the texts that repeat are one object again (they came as copies)
        self.tasks.extend(other.tasks)
        self.annotations.extend([(task + task0, ann, same(user), same(email), *rest)
                                 for task, ann, user, email, *rest in other.annotations])
        self.predictions.extend([(task + task0, pred, same(version), score)
                                 for task, pred, version, score in other.predictions])
        self.captions.extend([(task + task0, owner + (pred0 if is_pred else ann0), is_pred, text,
                               same(control))
                              for task, owner, is_pred, text, control in other.captions])
        self.regions.extend(other.regions, task0, ann0, pred0)
        self.expanded |= other.expanded


@dataclass
class _Options:
    image_field: str
    image_field_given: bool
    caption_field: str
    controls: Controls | None = None
    workers: int | None = None


def import_export(
    path: str | os.PathLike,
    images_root: str | os.PathLike | None = None,
    labels: list[str] | None = None,
    caption_field: str = "caption",
    image_field: str | None = None,
    hash_images: bool = True,
    allow_outside_root: bool = False,
    controls: Controls | None = None,
    workers: int | None = None,
) -> tuple[TableSet, ImportSummary]:
    """Read a Label Studio export into a validated `TableSet` and an `ImportSummary`.

    `images_root` confines and resolves image references (default: the export's folder).
    `labels` is the label map; boxes with other labels are rejected (default: every label seen).
    `image_field` is the task data key of the image (default "image"); `caption_field` names
    the caption TextArea (and the caption key of JSON-MIN rows). `controls`, from the labelling
    config, decide what a result belongs to: boxes only from its rectangle controls on its
    Image, the caption only from its caption TextArea (without it they are inferred from the
    results). `workers`: processes that walk the tasks at once (default: one per core, each
    with at least `TASKS_PER_PART` tasks; 1 walks them here); the result is the same whatever
    the number.
    """
    return import_bytes(jsonio.read_bytes(path), path, images_root, labels, caption_field,
                        image_field, hash_images, allow_outside_root, controls, workers)


def import_bytes(raw: bytes, path: str | os.PathLike, images_root=None, labels=None,
                 caption_field: str = "caption", image_field: str | None = None,
                 hash_images: bool = True, allow_outside_root: bool = False,
                 controls: Controls | None = None, workers: int | None = None
                 ) -> tuple[TableSet, ImportSummary]:
    """`import_export` on the file's bytes (already read by the caller)."""
    path = Path(path)
    root = Path(images_root) if images_root is not None else path.parent
    summary = ImportSummary(source=str(path))
    options = _Options(image_field or DEFAULT_IMAGE_FIELD, image_field is not None, caption_field,
                       controls, workers)
    with _no_cycle_collection():
        rows, later = _walk(raw, path, summary, options)
        del raw  # every task is walked or left to its process: the file's bytes can go first
        with later:
            _join(rows, summary, later.collect())
    if not summary.shape:
        summary.shape = "JSON snapshot (users expanded)" if rows.expanded else "JSON"
    ts = _build(rows, summary, root, labels, hash_images, allow_outside_root, options)
    return ts, summary


def _join(rows: _Rows, summary: ImportSummary, runs: list[tuple[_Rows, ImportSummary]]) -> None:
    """Append the other runs' rows and counts, in file order, letting each go once joined."""
    runs.reverse()
    while runs:
        run_rows, run_summary = runs.pop()
        rows.extend(run_rows)
        summary.absorb(run_summary)


@contextlib.contextmanager
def _no_cycle_collection():
    """Pause Python's cycle collector during the walk: it creates millions of containers and no
    cycles, and each full collection would traverse every row collected so far (about 2% of a
    large import). Not while the tables are built: pandas' temporaries hold cycles, which would
    then pile up."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _walk(raw: bytes, path: Path, summary: ImportSummary, options: _Options
          ) -> tuple[_Rows, ForkedParts]:
    """Decode the file and walk it into rows (no tables yet); the runs of tasks walked in other
    processes are still on their way (`_walk_tasks`)."""
    tasks = _decode_tasks(raw, path, summary.notes)
    rows = _Rows()
    task_items = [t for t in tasks if isinstance(t, Task)]
    is_min = bool(task_items) and all(t.data is msgspec.UNSET and not len(t.annotations)
                                      and (t.annotator is not msgspec.UNSET
                                           or t.annotation_id is not msgspec.UNSET)
                                      for t in task_items)
    if is_min:
        summary.shape = "JSON-MIN"
        _walk_min(jsonio.decode(raw, path), rows, summary, options)
        return rows, ForkedParts(lambda k: None, 1)  # one run: nothing else to collect
    _refuse_foreign(tasks, task_items, raw, path)
    del task_items  # the walk lets each task go once read
    return rows, _walk_tasks(tasks, rows, summary, options)


def _decode_tasks(raw: bytes, path: Path, notes: list[str]) -> list:
    if jsonio.first_char(raw) not in "[{":  # a bare value (or empty: the decoder says so)
        value = jsonio.decode(raw, path)
        raise ExportError(f"{path}: expected a JSON list of tasks, found {_kind(value)}")
    if jsonio.first_char(raw) == "{":
        data = jsonio.decode(raw, path)
        if not isinstance(data.get("tasks"), list):
            keys = ", ".join(list(data)[:6])
            raise ExportError(f"{path}: expected a JSON list of tasks, found an object (keys: "
                              f"{keys}); is this a COCO file? (`--format coco`)")
        raw = msgspec.json.encode(data["tasks"])
    tasks = jsonio.decode(raw, path, TASKS, notes)
    if not isinstance(tasks, list):
        raise ExportError(f"{path}: expected a JSON list of tasks, found {_kind(tasks)}")
    return tasks


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string"}.get(type(value),
                                                                    type(value).__name__)


def _refuse_foreign(tasks: list, task_items: list, raw: bytes, path: Path) -> None:
    """A COCO results file is a JSON list too: name it instead of rejecting every 'task'."""
    if not tasks or any(t.data is not msgspec.UNSET for t in task_items):
        return
    first = jsonio.decode(raw, path)[:1]
    if first and isinstance(first[0], dict) and "image_id" in first[0]:
        kind = "caption" if "caption" in first[0] else "detection"
        raise ExportError(f"{path}: this is a COCO {kind} results file (image_id, "
                          f"{'caption' if kind == 'caption' else 'category_id, bbox, score'}), "
                          "not a Label Studio export; score it with "
                          + ("`stage2-generate score`" if kind == "caption"
                             else "`stage1-detect evaluate --predictions`"))


# --- walking the JSON ------------------------------------------------------------------------


def _where(item: int, task_id: object) -> str:
    return f"item {item} (task {task_id})"


def _walk_tasks(tasks: list, rows: _Rows, summary: ImportSummary, options: _Options
                ) -> ForkedParts:
    """Walk the first run of tasks into `rows`; on a large file (`_parts`) the other runs are
    walked at once in forked processes, whose rows the returned `ForkedParts` collects (to be
    joined in file order, so rows, positions, counts and examples are those of one walk).
    The tasks of the other runs are dropped here once their processes have them."""
    summary.tasks_read = len(tasks)
    parts = _parts(len(tasks), options.workers)
    bounds = np.linspace(0, len(tasks), parts + 1).astype(int)

    def run(k: int) -> tuple[_Rows, ImportSummary]:
        run_rows, run_summary = _Rows(), ImportSummary(source=summary.source)
        _walk_range(tasks, bounds[k], bounds[k + 1], run_rows, run_summary, options)
        run_rows.regions.close()
        run_rows.texts, run_summary.examples = {}, dict(run_summary.examples)
        return run_rows, run_summary

    later = ForkedParts(run, parts)
    try:
        if later.children:
            del tasks[bounds[1]:]
        _walk_range(tasks, 0, bounds[1], rows, summary, options)
    except BaseException:
        later.__exit__()
        raise
    return later


def _parts(tasks: int, workers: int | None) -> int:
    """How many runs to walk `tasks` tasks in: `workers` (at most one per task), or by default
    one per core with at least `TASKS_PER_PART` tasks each, at most `MAX_PARTS`."""
    if workers is not None:
        return max(1, min(workers, tasks))
    if not can_fork():
        return 1
    return max(1, min(cores(), MAX_PARTS, tasks // TASKS_PER_PART))


def _walk_range(tasks: list, start: int, stop: int, rows: _Rows, summary: ImportSummary,
                options: _Options) -> None:
    """Walk tasks[start:stop] (positions in the file are kept for the locations)."""
    for item in range(start, stop):
        task, tasks[item] = tasks[item], None  # walked: its records go as the rows grow
        if not isinstance(task, Task):
            summary.reject("task: not an object", f"item {item}")
            continue
        where = _where(item, task.id)
        given = _decode_raw(ANNOTATIONS, task.annotations, where)
        annotations = given if isinstance(given, list) else []
        predictions = _decode_raw(PREDICTIONS, task.predictions, where)
        predictions = predictions if isinstance(predictions, list) else []
        summary.annotations_read += len(annotations)
        if given is not None and not isinstance(given, list):
            summary.reject("task: `annotations` is not a list", where)
        if not rows.expanded:  # Label Studio's snapshot with users expanded
            rows.expanded = any(a.__class__ is Annotation and a.completed_by.__class__ is User
                                for a in annotations)
        key = _add_task(item, task.id, task.data, task.meta, where, rows, summary, options)
        if key is None:
            summary.reject("annotation: its task was rejected", where, len(annotations))
            continue
        for ann in annotations:
            _walk_annotation(ann, key, where, rows, summary)
        for pred in predictions:
            _walk_prediction(pred, key, where, rows, summary)


def _decode_raw(decoder: msgspec.json.Decoder, raw: msgspec.Raw, where: str) -> object:
    """A task's `annotations` or `predictions` (None when the key is missing); a number past
    float range (1e400) is read as the whole-file reader reads it (`jsonio.decode`)."""
    if not len(raw):
        return None
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError:
        return jsonio.decode(bytes(raw), where, decoder)


def _add_task(item: int, task_id: object, data: object, meta: object, where: str, rows: _Rows,
              summary: ImportSummary, options: _Options) -> int | None:
    """Record the task; return its position, or None (counted) when unusable."""
    if not isinstance(data, dict):
        summary.reject("task: missing or non-object `data`", where)
        return None
    field_name = options.image_field
    pages = _repeater_pages(data, field_name)
    if pages:
        key, count = pages
        summary.reject(f"task: a repeater task (data.{key} is a list of {count} pages, each "
                       "an image under a Repeater tag): one task with several images is not "
                       "imported; export one task per page (each its own image)", where)
        return None
    if field_name not in data:
        hint = ("" if options.image_field_given else
                "; name the image field with --image-field (or --labels CONFIG.xml)")
        keys = ", ".join(map(str, list(data)[:8])) or "none"
        summary.reject(f"task: no {field_name!r} field in data{hint}", f"{where}: data keys "
                       f"{keys}")
        return None
    ref = data[field_name]
    if not isinstance(ref, str) or not ref.strip():
        summary.reject(f"task: data.{field_name} is not a non-empty string", where)
        return None
    image_id = data.get("image_id", task_id)
    if image_id is None or isinstance(image_id, (dict, list, bool)):
        summary.reject("task: no usable id (task id and data.image_id missing or not a value)",
                       where)
        return None
    meta_sha = meta.get("sha256") if isinstance(meta, dict) else None
    rows.tasks.append((item, task_id, str(image_id), ref, data.get("group_id"), data.get("split"),
                       meta_sha if isinstance(meta_sha, str) else None, data.get("width"),
                       data.get("height")))
    return len(rows.tasks) - 1


def _repeater_pages(data: dict, field_name: str) -> tuple[str, int] | None:
    """(key, pages) when the task is Label Studio's Repeater shape: the image field, or with
    no image field some data key, holds a list of pages (`[{"url": ...}, ...]` or URLs)."""
    keys = [field_name] if field_name in data else list(data)
    for key in keys:
        value = data[key]
        if isinstance(value, list) and value and all(
                _looks_like_image(v.get("url", v.get("image")) if isinstance(v, dict) else v)
                for v in value):
            return str(key), len(value)
    return None


def _looks_like_image(value: object) -> bool:
    """A URL or path of an image, as pages of a Repeater hold them."""
    return isinstance(value, str) and bool(_IMAGE_REF.search(value.strip()))


_IMAGE_REF = re.compile(r"^(https?://|s3://|gs://|azure-blob://|data:image/|/data/)"
                        r"|\.(jpe?g|png|gif|bmp|webp|tiff?)(\?.*)?$", re.IGNORECASE)


def _flag(value: object) -> bool | None:
    """A boolean as Label Studio (or a hand-edited file) writes it; None when it is not one."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", ""):
        return value.strip().lower() in ("true", "1")
    return None


def _walk_annotation(ann: object, task: int, where: str, rows: _Rows,
                     summary: ImportSummary) -> None:
    if not isinstance(ann, Annotation):
        summary.reject("annotation: not an object", where)
        return
    at = f"{where}, annotation {ann.id}"
    cancelled = False if ann.was_cancelled is False else _flag(ann.was_cancelled)
    if cancelled is None:
        summary.reject("annotation: was_cancelled is not a boolean", at)
        return
    if cancelled:
        summary.skipped += 1
        return
    user_id, email = _person(ann.completed_by)
    if user_id is None and email is None and ann.completed_by is None:
        # some exports (Label Studio's COCO export tests, API clients) carry only updated_by
        user_id, email = _person(ann.updated_by)
        summary.annotators_from_updated_by += user_id is not None or email is not None
    if user_id is None and email is None:
        summary.reject("annotation: no completed_by or updated_by (annotator unknown)", at)
        return
    record = (task, ann.id, rows.same(user_id), rows.same(email), ann.lead_time, ann.created_at)
    _add_results(ann.result, rows.annotations, record, False, "annotation", at, rows, summary)


def _person(user: object) -> tuple[str | None, str | None]:
    """(user id as text, email) of a `completed_by` / JSON-MIN `annotator`: an id, an object
    with id and email, or an email given in place of the id; None for what is neither."""
    user_id, email = (user.id, user.email) if user.__class__ is User else (user, None)
    if user_id.__class__ is int and email.__class__ is str and email.strip():
        return str(user_id), email  # the common case: Label Studio's expanded user
    user_id = None if isinstance(user_id, (dict, list, bool)) else user_id
    email = email if isinstance(email, str) and email.strip() else None
    if isinstance(user_id, str) and "@" in user_id and email is None:
        user_id, email = None, user_id
    return (None if user_id is None else str(user_id)), email


def _add_results(raw: msgspec.Raw, owners: list, record: tuple, is_pred: bool, what: str,
                 at: str, rows: _Rows, summary: ImportSummary) -> None:
    """Decode one `result` list; if it is usable, append `record` to `owners` and its regions
    and caption to the rows. Missing, null or non-list results reject the owner (counted)."""
    if len(raw) == 0:
        summary.reject(f"{what}: no `result` (an empty list means 'drew nothing'; a missing "
                       "one is not that)", at)
        return
    try:
        results, strict = STRICT_RESULTS.decode(raw), True
    except msgspec.ValidationError:
        try:
            results, strict = LOOSE_RESULTS.decode(raw), False
        except msgspec.ValidationError as err:
            summary.reject(f"{what}: unreadable `result` ({err})", at)
            return
        if not isinstance(results, list):
            summary.reject(f"{what}: `result` is " + ("null" if results is None
                                                       else "not a list"), at)
            return
    _add_owner(results, strict, owners, record, is_pred, at, rows, summary)


def _add_owner(results: list, strict: bool, owners: list, record: tuple, is_pred: bool, at: str,
               rows: _Rows, summary: ImportSummary) -> None:
    """Append `record` (an annotation or a prediction) to `owners`, and its decoded results:
    rectangles to the region columns, TextArea texts as one caption, other types counted."""
    task, owner = record[0], len(owners)
    owners.append(record)
    texts, others = (rows.regions.add_strict(results, task, owner, is_pred) if strict else
                     rows.regions.add_loose(results, task, owner, is_pred, at, summary))
    for kind in others:
        summary.ignored_results[kind] += 1
    if len(texts) == 1:  # the common case: one caption
        control, text = texts[0]
        if isinstance(text, str) and text.strip():
            rows.captions.append((task, owner, is_pred, text.strip(), rows.same(control)))
        return
    by_control: dict = {}
    for control, text in texts:  # one caption per TextArea (the caption control is chosen later)
        if isinstance(text, str) and text.strip():
            by_control.setdefault(control, []).append(text.strip())
    for control, parts in by_control.items():
        rows.captions.append((task, owner, is_pred, " ".join(parts), rows.same(control)))


def _walk_prediction(pred: object, task: int, where: str, rows: _Rows,
                     summary: ImportSummary) -> None:
    if not isinstance(pred, Prediction):
        if isinstance(pred, int) and not isinstance(pred, bool):
            summary.predictions_as_ids += 1
        else:
            summary.reject("prediction: not an object", where)
        return
    summary.predictions += 1
    at = f"{where}, prediction {pred.id}"
    version = pred.model_version if isinstance(pred.model_version, (str, int, float)) else ""
    record = (task, pred.id, rows.same(str(version)), pred.score)
    _add_results(pred.result, rows.predictions, record, True, "prediction", at, rows, summary)


def _walk_min(items: list, rows: _Rows, summary: ImportSummary, options: _Options) -> None:
    """JSON-MIN: one flat row per completed annotation with its task's data inlined."""
    tasks: dict[object, int | None] = {}
    for item, row in enumerate(items):
        summary.annotations_read += 1
        if not isinstance(row, dict):
            summary.reject("annotation: not an object", f"item {item}")
            continue
        task_id = row.get("id")
        where = _where(item, task_id)
        task_key = (repr(task_id), str(row.get("image_id")))
        if task_key not in tasks:
            data = {k: v for k, v in row.items()
                    if k not in MIN_ANNOTATION_KEYS and k != options.caption_field
                    and not (isinstance(v, list) and v and isinstance(v[0], dict))}
            tasks[task_key] = _add_task(item, task_id, data, None, where, rows, summary, options)
        task = tasks[task_key]
        at = f"{where}, annotation {row.get('annotation_id')}"
        if task is None:
            summary.reject("annotation: its task was rejected", at)
            continue
        results: list[LooseResult] = []
        for name, value in row.items():
            if not (isinstance(value, list) and value and isinstance(value[0], dict)):
                continue
            for k, region in enumerate(value):
                if isinstance(region, dict) and "rectanglelabels" in region:
                    results.append(LooseResult(
                        id=f"{name}-{k}", type="rectanglelabels",
                        original_width=region.get("original_width"),
                        original_height=region.get("original_height"),
                        value=LooseValue(**{key: region.get(key)
                                            for key in LooseValue.__struct_fields__})))
                else:
                    summary.ignored_results[f"{name} (JSON-MIN)"] += 1
        if options.caption_field in row:
            results.append(LooseResult(type="textarea", from_name=options.caption_field,
                                       value=LooseValue(text=row[options.caption_field])))
        user_id, email = _person(row.get("annotator"))
        if user_id is None and email is None:
            summary.reject("annotation: no annotator", at)
            continue
        record = (task, row.get("annotation_id"), user_id, email, row.get("lead_time"),
                  row.get("created_at"))
        _add_owner(results, False, rows.annotations, record, False, at, rows, summary)
    summary.tasks_read = len(tasks)


# --- building the tables ---------------------------------------------------------------------


def _numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(float values, mask of values present but not a real number: text, booleans, lists).
    Missing values (None) are NaN and not flagged. Vectorised when the column is clean."""
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind in ("integer", "floating", "mixed-integer-float", "empty"):
        return pd.to_numeric(values, errors="coerce").to_numpy(float), np.zeros(len(values), bool)
    ok = values.map(lambda v: v is None or is_number(v)).to_numpy(bool)
    out = pd.to_numeric(values.where(ok, None), errors="coerce").to_numpy(float)
    return out, ~ok


def _build(rows: _Rows, summary: ImportSummary, root: Path, labels: list[str] | None,
           hash_images: bool, allow_outside: bool, options: _Options) -> TableSet:
    tasks = pd.DataFrame(rows.tasks, columns=_TASK_COLS)
    annotations = pd.DataFrame(rows.annotations, columns=_ANN_COLS)
    predictions = pd.DataFrame(rows.predictions, columns=_PRED_COLS)
    captions = pd.DataFrame(rows.captions, columns=_CAPTION_COLS)
    regions = _Regions(rows.regions, tasks, annotations, predictions)
    rows.tasks, rows.annotations, rows.predictions, rows.captions = [], [], [], []
    where_task = "item " + tasks.item.astype(str) + " (task " + tasks.task_id.astype(str) + ")"
    keep_task = _duplicate_tasks(tasks, where_task, summary)
    annotations["annotator"] = _annotators(annotations, summary)
    images, task_ok = _build_images(tasks, keep_task, regions, where_task, summary, root,
                                    hash_images, allow_outside)
    _orphans(annotations, task_ok, summary, "annotation", where_task)
    _orphans(predictions, task_ok, summary, "prediction", where_task)
    ann_ok = task_ok[annotations.task.to_numpy(int)] if len(annotations) else np.zeros(0, bool)
    ann_table, ann_keep = _build_annotations(annotations, ann_ok, tasks, where_task, summary)
    pred_keep = (task_ok[predictions.task.to_numpy(int)] if len(predictions)
                 else np.zeros(0, bool))
    owners = _Owners(ann_keep, pred_keep, annotations.annotator.to_numpy(object),
                     np.array([model_source(v) for v in predictions.model_version], dtype=object))
    boxes = _build_boxes(regions, images, task_ok, tasks, owners, predictions, labels, summary,
                         options.controls)
    caption_table = _build_captions(captions, tasks, owners, options, summary)
    del regions, owners, annotations, predictions, captions, tasks  # before validation's peak
    seen_labels = sorted(boxes.label.dropna().unique().tolist()) if len(boxes) else []
    ts = TableSet(images=images, annotations=ann_table, boxes=boxes, captions=caption_table,
                  labels=list(labels) if labels else seen_labels,
                  meta={"source": summary.source,
                        "import": {"shape": summary.shape, "tasks_read": summary.tasks_read,
                                   "skipped": summary.skipped}}).validate()
    summary.count_kept(ts)
    return ts


class _Regions:
    """The walked regions as numpy columns, with their locations built on demand."""

    def __init__(self, columns: RegionColumns, tasks: pd.DataFrame, annotations: pd.DataFrame,
                 predictions: pd.DataFrame):
        self.col, names = columns.arrays()
        self.label_names = np.array([*names["label"], None], dtype=object)
        self.target_names, self.control_names = names["target"], names["control"]
        self.tasks, self.annotations, self.predictions = tasks, annotations, predictions

    def __len__(self) -> int:
        return len(self.col["task"])

    def subset(self, keep: np.ndarray) -> None:
        if not keep.all():
            self.col = {name: values[keep] for name, values in self.col.items()}

    def where(self, at: np.ndarray) -> list[str]:
        """Locations ('item i (task t), annotation a, region r') of the regions at `at`."""
        out = []
        for i in at:
            task, owner = int(self.col["task"][i]), int(self.col["owner"][i])
            if self.col["is_pred"][i]:
                owner_at = f"prediction {self.predictions.pred_id.iat[owner]}"
            else:
                owner_at = f"annotation {self.annotations.ann_id.iat[owner]}"
            region = self.col["region_id"][i]
            region = f"r{self.col['position'][i]}" if region is None else region
            out.append(f"{_where(self.tasks.item.iat[task], self.tasks.task_id.iat[task])}, "
                       f"{owner_at}, region {region}")
        return out

    def object_ids(self) -> np.ndarray:
        """The result's `id` as text; `r<position>` where it has none (older exports)."""
        ids = pd.Series(self.col["region_id"], dtype=object)
        if pd.api.types.infer_dtype(ids, skipna=True) != "string":
            ids = ids.where(ids.isna(), ids.astype(str))
        missing = (ids.isna() | (ids == "")).to_numpy()
        out = ids.to_numpy(object).copy()
        out[missing] = ["r" + str(k) for k in self.col["position"][missing]]
        return out


@dataclass
class _Owners:
    """Per annotation and per prediction: kept or not, and the annotator name rows get (as a
    code into `names`, for `text_column` and for integer duplicate checks)."""

    ann_keep: np.ndarray
    pred_keep: np.ndarray
    ann_name: InitVar[np.ndarray]  # factorised into the codes and names, then not kept
    pred_name: InitVar[np.ndarray]

    def __post_init__(self, ann_name: np.ndarray, pred_name: np.ndarray) -> None:
        codes, names = pd.factorize(np.concatenate([ann_name, pred_name]), use_na_sentinel=False)
        self.ann_code, self.pred_code = codes[:len(ann_name)], codes[len(ann_name):]
        self.names = np.asarray(names, dtype=object)

    def pick(self, owner: np.ndarray, is_pred: np.ndarray, ann: np.ndarray, pred: np.ndarray
             ) -> np.ndarray:
        out = np.empty(len(owner), dtype=ann.dtype)
        out[~is_pred] = ann[owner[~is_pred]]
        out[is_pred] = pred[owner[is_pred]]
        return out

    def kept(self, owner: np.ndarray, is_pred: np.ndarray) -> np.ndarray:
        return self.pick(owner, is_pred, self.ann_keep, self.pred_keep)

    def name_codes(self, owner: np.ndarray, is_pred: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
        """(each row's code into the names, the names)."""
        return self.pick(owner, is_pred, self.ann_code, self.pred_code), self.names


def _duplicate_tasks(tasks: pd.DataFrame, where: pd.Series, summary: ImportSummary
                     ) -> np.ndarray:
    """Keep the first task of each task id and of each image id; reject the later ones."""
    task_id = tasks.task_id.map(lambda v: None if v is None else repr(v))
    dup = ((task_id.notna() & task_id.duplicated()) | tasks.image_id.duplicated()).to_numpy(bool)
    summary.reject("task: duplicate task id or image id (an earlier task has it; rejected with "
                   "its annotations, predictions and captions)",
                   list(where[dup].head(3) + ": image_id " + tasks.image_id[dup].head(3)),
                   int(dup.sum()))
    return ~dup


def _annotators(ann: pd.DataFrame, summary: ImportSummary) -> pd.Series:
    """One name per person. Identity comes from the user id; e-mail addresses (names with an
    @) are compared normalised (surrounding spaces stripped, case-folded), other names exactly,
    and a person keeps the first spelling seen. A
    user id is named by the first e-mail seen for it anywhere in the file (a note says when it
    was seen with several, e.g. changed between exports), else by the id; two ids with one
    e-mail are one person (noted); an annotation with an e-mail and no id is named by it."""
    if ann.empty:
        return pd.Series([], dtype=object)
    # the rules run once per distinct (user id, e-mail), in order of first appearance
    key = row_keys([ann], ["user_id", "email"])[0]
    first = np.flatnonzero(~pd.Series(key).duplicated().to_numpy())
    names = _people(ann.iloc[first].reset_index(drop=True), summary).to_numpy(object)
    return pd.Series(names[pd.Index(key[first]).get_indexer(key)], index=ann.index, dtype=object)


def _people(ann: pd.DataFrame, summary: ImportSummary) -> pd.Series:
    """`_annotators` on distinct (user id, e-mail) rows."""
    raw = ann.email.where(ann.email.map(lambda e: isinstance(e, str) and e.strip() != ""))
    # e-mail addresses compare without case or surrounding spaces; other names exactly
    key = raw.map(lambda e: (e.strip().casefold() if "@" in e else e)
                  if isinstance(e, str) else None)
    spelling = pd.Series(raw.to_numpy(object), index=key.to_numpy(object)).dropna()
    spelling = spelling[~spelling.index.duplicated()]  # key -> its first spelling
    user = ann.user_id.where(ann.user_id.notna(), None)  # user ids are text (`_person`)
    known = pd.DataFrame({"user_id": user, "key": key}).dropna().drop_duplicates()
    for uid, group in known[known.user_id.duplicated(keep=False)].groupby("user_id",
                                                                          sort=False):
        summary.notes.append(f"user id {uid} appears with several e-mails "
                             f"({', '.join(spelling[group.key])}): one person, named "
                             f"{spelling[group.key.iloc[0]]}")
    key_of = known.drop_duplicates("user_id").set_index("user_id").key
    for address, group in key_of.groupby(key_of, sort=False):
        if len(group) > 1:
            summary.notes.append(f"user ids {', '.join(group.index)} share the e-mail "
                                 f"{spelling[address]}: one person")
    person = user.map(key_of)  # the key of the user id's first e-mail
    person = person.where(person.notna(), key)
    named = person.map(spelling)
    bare = key.isna() & user.notna() & named.notna()
    summary.annotator_ids = {uid: spelling[key_of[uid]] for uid in user[bare].unique()}
    name = named.where(named.notna(), user)
    return pd.Series(name.to_numpy(object), index=ann.index, dtype=object)


def _orphans(frame: pd.DataFrame, task_ok: np.ndarray, summary: ImportSummary, what: str,
             where: pd.Series) -> None:
    """Count the items whose task was rejected (they go with it)."""
    if frame.empty:
        return
    lost = ~task_ok[frame.task.to_numpy(int)]
    summary.reject(f"{what}: its task was rejected", list(where.iloc[frame.task[lost].head(3)]),
                   int(lost.sum()))


def _positive(values: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values with anything but a positive finite number as NaN, mask of nulled values)."""
    if isinstance(values, np.ndarray):
        numbers, bad = values, np.zeros(len(values), bool)
    else:
        numbers, bad = _numbers(values)
    with np.errstate(invalid="ignore"):
        bad = bad | (~np.isnan(numbers) & ~(np.isfinite(numbers) & (numbers > 0)))
    return np.where(bad, np.nan, numbers), bad


def _build_images(tasks: pd.DataFrame, keep_task: np.ndarray, regions: _Regions,
                  where: pd.Series, summary: ImportSummary, root: Path, hash_images: bool,
                  allow_outside: bool) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per kept task; size from the results' original size, data.width/height or the
    image itself; the reference resolved inside the images root only."""
    n = len(tasks)
    ok = keep_task.copy()
    ow, bad_w = _positive(regions.col["ow"])
    oh, bad_h = _positive(regions.col["oh"])
    bad = bad_w | bad_h
    summary.null(SIZE_NULLED, regions.where(np.flatnonzero(bad)[:3]), int(bad.sum()))
    regions.col["ow"], regions.col["oh"] = ow, oh
    sizes = pd.DataFrame({"task": regions.col["task"], "ow": ow, "oh": oh}).dropna()
    first = sizes.groupby("task")[["ow", "oh"]].first()
    width = pd.Series(np.nan, index=range(n))
    height = pd.Series(np.nan, index=range(n))
    width.loc[first.index], height.loc[first.index] = first.ow, first.oh
    dw, bad_dw = _positive(tasks.width)
    dh, bad_dh = _positive(tasks.height)
    summary.null("task: data.width/height not a positive number (nulled)",
                 list(where[bad_dw | bad_dh].head(3)), int((bad_dw | bad_dh).sum()))
    width, height = width.fillna(pd.Series(dw)), height.fillna(pd.Series(dh))
    found = image_files.locate_all(tasks.ref.where(ok, None), root, allow_outside=allow_outside,
                                   hash_images=hash_images)
    status = found.status.where(ok, "")
    summary.images_missing += int((status == image_files.MISSING).sum())
    summary.images_outside_root += int((status == image_files.OUTSIDE).sum())
    summary.images_inline += int((status == image_files.INLINE).sum())
    outside = (status == image_files.OUTSIDE).to_numpy()
    if outside.any():
        summary.examples["images outside the images root"] = list(
            (where[outside] + ": " + tasks.ref[outside].str.slice(0, 80)).head(3))
    unreadable = (status == image_files.UNREADABLE).to_numpy()
    summary.reject("task: image unreadable", list(where[unreadable].head(3) + ": "
                                                  + found.detail[unreadable].head(3)),
                   int(unreadable.sum()))
    ok &= ~unreadable
    width, height = _file_size_wins(width, height, found, regions, where, ok, summary)
    unknown = ok & (width.isna() | height.isna()).to_numpy()
    summary.reject("task: image size unknown (no original_width/height in any result and the "
                   f"image is not found under --images-root {root})",
                   list((where + ": " + tasks.ref.str.slice(0, 80))[unknown].head(3)),
                   int(unknown.sum()))
    ok &= ~unknown
    split = tasks.split.where(tasks.split.isin(SPLITS))
    bad_split = (tasks.split.notna() & split.isna()).to_numpy() & ok
    summary.null(f"task: data.split not one of {SPLITS} (nulled)", list(where[bad_split].head(3)),
                 int(bad_split.sum()))
    group = (tasks.group_id if all_text(tasks.group_id) else
             tasks.group_id.map(lambda v: str(v) if is_number(v) or isinstance(v, str) else None))
    bad_group = (tasks.group_id.notna() & group.isna()).to_numpy() & ok
    summary.null("task: data.group_id is not a value (nulled)", list(where[bad_group].head(3)),
                 int(bad_group.sum()))
    images = pd.DataFrame({
        "image_id": tasks.image_id, "path": found.path, "width": width, "height": height,
        "group_id": group, "sha256": found.sha256.fillna(tasks.meta_sha), "split": split})
    images = images[ok]
    if images.split.isna().all():
        images = images.drop(columns="split")
    return coerce("images", images.reset_index(drop=True)), ok


def _file_size_wins(width: pd.Series, height: pd.Series, found: pd.DataFrame,
                    regions: _Regions, where: pd.Series, ok: np.ndarray,
                    summary: ImportSummary) -> tuple[pd.Series, pd.Series]:
    """The image's size: the file's displayed size when the file was read (percent
    coordinates are scale-free, so every region of the task is converted against it), else the
    size the results or data give. Tasks whose results or data say another size than their file
    are counted in a note with an example."""
    has_file = (found.width.notna() & found.height.notna()).to_numpy() & ok
    task = regions.col["task"]
    ow, oh = regions.col["ow"], regions.col["oh"]
    region_off = has_file[task] & ((np.abs(ow - found.width.to_numpy()[task]) > 0.5)
                                   | (np.abs(oh - found.height.to_numpy()[task]) > 0.5))
    off = np.zeros(len(width), bool)
    off[task[region_off]] = True
    off |= has_file & (((width - found.width).abs() > 0.5)
                       | ((height - found.height).abs() > 0.5)).to_numpy()
    if off.any():
        first = int(np.flatnonzero(off)[0])
        said = (f"{ow[task == first][0]:.0f}x{oh[task == first][0]:.0f}"
                if (task == first).any() and np.isfinite(ow[task == first][0])
                else f"{width[first]:.0f}x{height[first]:.0f}")
        summary.notes.append(
            f"{int(off.sum())} tasks: their results or data give another image size than the "
            f"file (e.g. {where[first]}: {said}, the file {found.width[first]:.0f}x"
            f"{found.height[first]:.0f}); the file's size is used and percent coordinates are "
            "converted against it")
    with_file = has_file[task]
    regions.col["ow"] = np.where(with_file, found.width.to_numpy(float)[task], ow)
    regions.col["oh"] = np.where(with_file, found.height.to_numpy(float)[task], oh)
    return (found.width.where(has_file, width).astype(float),
            found.height.where(has_file, height).astype(float))


def _build_annotations(ann: pd.DataFrame, ok: np.ndarray, tasks: pd.DataFrame,
                       where_task: pd.Series, summary: ImportSummary
                       ) -> tuple[pd.DataFrame, np.ndarray]:
    """Annotations of kept tasks; bad lead_time / created_at nulled; one annotator's repeats on
    a task keep the latest. Returns the table and the keep mask over all annotations."""
    if ann.empty:
        return coerce("annotations", None), np.zeros(0, bool)
    def where(rows: np.ndarray) -> list[str]:  # the locations of the first three `rows`
        return [f"{where_task.iat[ann.task.iat[k]]}, annotation {ann.ann_id.iat[k]}"
                for k in rows[:3]]

    lead, bad_lead = _numbers(ann.lead_time)
    with np.errstate(invalid="ignore"):
        bad_lead |= ~np.isnan(lead) & ~(np.isfinite(lead) & (lead >= 0))
    lead[bad_lead] = np.nan
    summary.null("annotation: lead_time not a non-negative number of seconds (nulled)",
                 where(np.flatnonzero(bad_lead & ok)), int((bad_lead & ok).sum()))
    stamps = (ann.created_at if all_text(ann.created_at) else
              ann.created_at.where(ann.created_at.map(lambda v: isinstance(v, str)), None))
    created = pd.to_datetime(stamps, utc=True, errors="coerce", format="ISO8601")
    bad_time = (ann.created_at.notna() & created.isna()).to_numpy() & ok
    summary.null("annotation: created_at not an ISO 8601 time (nulled)",
                 where(np.flatnonzero(bad_time)), int(bad_time.sum()))
    who, names = pd.factorize(ann.annotator.to_numpy(object), use_na_sentinel=False)
    task = ann.task.to_numpy(int)
    frame = pd.DataFrame({"task": task, "who": who, "created_at": created,
                          "_order": np.arange(len(ann))})
    kept = frame[ok].sort_values(["created_at", "_order"], na_position="first")
    repeat = kept.duplicated(["task", "who"], keep="last")  # tasks are one per image here
    summary.reject("annotation: same annotator annotated the task again (kept the latest)",
                   where(kept._order[repeat].to_numpy(int)), int(repeat.sum()))
    keep = np.zeros(len(ann), dtype=bool)
    keep[kept._order[~repeat].to_numpy(int)] = True
    return coerce("annotations", pd.DataFrame({
        "image_id": text_column(tasks.image_id.to_numpy(object), task[keep]),
        "annotator": text_column(np.asarray(names, dtype=object), who[keep]),
        "source": text_column([HUMAN], np.zeros(int(keep.sum()), dtype=np.int64)),
        "lead_time": lead[keep], "created_at": created[keep].reset_index(drop=True)})), keep


def _build_boxes(regions: _Regions, images: pd.DataFrame, task_ok: np.ndarray,
                 tasks: pd.DataFrame, owners: _Owners, predictions: pd.DataFrame,
                 labels: list[str] | None, summary: ImportSummary, controls: Controls | None
                 ) -> pd.DataFrame:
    """Percent regions -> absolute pixel boxes, with every bad region counted by reason.
    `images` holds one row per kept task (`task_ok`), in task order."""
    if not len(regions):
        return coerce("boxes", None)
    regions.subset(owners.kept(regions.col["owner"], regions.col["is_pred"]))
    c = regions.col
    task_w, task_h = np.full(len(tasks), np.nan), np.full(len(tasks), np.nan)
    task_w[task_ok], task_h[task_ok] = images.width.to_numpy(float), images.height.to_numpy(float)
    corners, overshoot, reasons = _geometry(c, task_w[c["task"]], task_h[c["task"]])
    who, names = owners.name_codes(c["owner"], c["is_pred"])
    object_id = regions.object_ids()
    if labels:
        label = regions.label_names[c["label"]]  # code -1 (no label) picks the trailing None
        reasons.append((~pd.Series(label).isin(labels).to_numpy(),
                        f"box: label not in the label map {list(labels)}"))
    reasons[2:2] = _control_reasons(regions, controls)
    reasons.append((_duplicate_ids(c["task"] * len(names) + who, object_id),
                    "box: duplicate region id in one annotation or prediction"))
    keep = summary.reject_where(reasons, locate=regions.where)
    summary.clipped_boxes += int((overshoot & keep).sum())
    score = _scores(c, predictions, keep, regions, summary)
    who = who[keep]
    is_pred = c["is_pred"][keep]
    return coerce("boxes", pd.DataFrame({
        "image_id": text_column(tasks.image_id.to_numpy(object), c["task"][keep]),
        "annotator": text_column(names, who),
        "object_id": pd.Series(object_id[keep], dtype=TEXT),
        "label": text_column(regions.label_names, c["label"][keep]),
        **{name: values[keep] for name, values in zip(("x0", "y0", "x1", "y1"), corners,
                                                       strict=True)},
        "score": score[keep],
        "source": text_column([*names, HUMAN], np.where(is_pred, who, len(names)))}))


def _geometry(c: dict, img_w: np.ndarray, img_h: np.ndarray
              ) -> tuple[tuple[np.ndarray, ...], np.ndarray, list[tuple[np.ndarray, str]]]:
    """(the boxes' pixel corners clipped to the image, which ones needed clipping, the
    geometric and value reasons to reject a region): percent coordinates against the
    original size (the image's where the region gives none). Its temporaries end here, before
    the table is built (a million regions: about 100 MB)."""
    ow = np.where(np.isnan(c["ow"]), img_w, c["ow"])
    oh = np.where(np.isnan(c["oh"]), img_h, c["oh"])
    x, y, w, h = c["x"], c["y"], c["w"], c["h"]
    x0, y0, x1, y1 = x * ow / 100, y * oh / 100, (x + w) * ow / 100, (y + h) * oh / 100
    tol_x, tol_y = CLIP_TOLERANCE * img_w, CLIP_TOLERANCE * img_h
    overshoot = (x0 < 0) | (y0 < 0) | (x1 > img_w) | (y1 > img_h)
    outside = (x0 < -tol_x) | (y0 < -tol_y) | (x1 > img_w + tol_x) | (y1 > img_h + tol_y)
    cx0, cy0 = np.clip(x0, 0, img_w), np.clip(y0, 0, img_h)
    cx1, cy1 = np.clip(x1, 0, img_w), np.clip(y1, 0, img_h)
    reasons = [
        (~np.isfinite(np.stack([x, y, w, h])).all(axis=0),
         "box: missing or non-numeric x/y/width/height"),
        ((w <= 0) | (h <= 0), "box: width or height <= 0 (negative or empty box)"),
        (np.abs(c["rotation"]) > 1e-6,
         "box: rotated rectangle (rotation != 0 is not supported; straighten it in Label Studio)"),
        (c["n_labels"] == 0, "box: no label"),
        (c["n_labels"] > 1, "box: several labels on one box"),
        ((np.abs(ow - img_w) > 0.5) | (np.abs(oh - img_h) > 0.5),
         "box: original_width/height differ from the image's size"),
        (outside, f"box: outside the image by more than {CLIP_TOLERANCE:.0%}"),
        ((cx1 <= cx0) | (cy1 <= cy0), "box: empty once clipped to the image"),
    ]
    return (cx0, cy0, cx1, cy1), overshoot, reasons


def _duplicate_ids(owner: np.ndarray, object_id: np.ndarray) -> np.ndarray:
    """Which rows repeat an earlier row's (owner, object id): a 64-bit hash of each pair finds
    the candidates without a table of a million strings, and the candidates (rows whose hash
    repeats; in practice the true repeats only) are compared exactly."""
    hashed = (pd.util.hash_array(object_id, categorize=False)
              + owner.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    candidate = pd.Series(hashed).duplicated(keep=False).to_numpy()
    out = np.zeros(len(owner), dtype=bool)
    if candidate.any():
        pairs = pd.DataFrame({"owner": owner[candidate], "id": object_id[candidate]})
        out[candidate] = pairs.duplicated().to_numpy()
    return out


def _control_reasons(regions: _Regions, controls: Controls | None
                     ) -> list[tuple[np.ndarray, str]]:
    """Regions not on the task's image: drawn while the image was turned in the editor
    (`image_rotation`: the coordinates are those of the turned view), on another object of the
    task (`to_name` is not the image's control: the config's Image, else the name most
    rectangles of the file are drawn on), or from a control the config does not have on it."""
    c = regions.col
    reasons = [(np.abs(c["image_rotation"]) > 1e-6,
                "box: drawn on a turned image (image_rotation != 0: the coordinates are those "
                "of the turned view, not the file's)")]
    target, names = c["target"], regions.target_names
    named = target[target >= 0]
    main = None
    if controls is not None and controls.image is not None:
        main = names.index(controls.image) if controls.image in names else len(names)
        image = controls.image
    elif len(named) and len(names) > 1:
        main = int(np.bincount(named).argmax())
        image = names[main]
    if main is not None:
        reasons.append(((target >= 0) & (target != main),
                        "box: on another object of the task (its to_name is not "
                        f"{image!r}, the image's control)"))
    if controls is not None:
        known = np.array([name in controls.rectangles for name in regions.control_names] + [True])
        reasons.append((~known[c["control"]],  # code -1 (no from_name) picks the trailing True
                        "box: from a control the labelling config does not have on the image "
                        f"(its from_name is none of {sorted(controls.rectangles)})"))
    return reasons


def _scores(c: dict, predictions: pd.DataFrame, keep: np.ndarray, regions: _Regions,
            summary: ImportSummary) -> np.ndarray:
    """Model rows: the region's score, else its prediction's; outside [0, 1] or not a number is
    nulled and counted. Human rows: NaN (a human box has no confidence)."""
    is_pred = c["is_pred"]
    pred_score, bad_pred = _numbers(predictions.score) if len(predictions) else (
        np.zeros(0), np.zeros(0, bool))
    owner = np.where(is_pred, c["owner"], 0)
    fallback = np.where(is_pred, pred_score[owner] if len(pred_score) else np.nan, np.nan)
    fallback_bad = is_pred & (bad_pred[owner] if len(bad_pred) else False)
    score = np.where(np.isnan(c["score"]), fallback, c["score"])
    bad = (np.isnan(c["score"]) & fallback_bad) | (~np.isnan(score) & ((score < 0) | (score > 1)))
    nulled = bad & is_pred & keep
    summary.null("prediction: score not a number in [0, 1] (nulled)",
                 regions.where(np.flatnonzero(nulled)[:3]), int(nulled.sum()))
    return np.where(is_pred & ~bad, score, np.nan)


def _build_captions(cap: pd.DataFrame, tasks: pd.DataFrame, owners: _Owners, options: _Options,
                    summary: ImportSummary) -> pd.DataFrame:
    """Captions from the caption control only: the TextArea named `caption_field` (the
    config's only TextArea when it has one), else the one most results use; the texts of other
    TextAreas (reviewer notes, say) are counted under `ignored`, never merged into the
    caption."""
    if cap.empty:
        return coerce("captions", None)
    names, field_name = cap.control.dropna(), options.caption_field
    texts = options.controls.texts if options.controls is not None else ()
    if texts:  # the config's TextAreas: the one named `caption_field`, else its only one
        ours = names[names.isin(texts)]
        main = (field_name if field_name in texts else texts[0] if len(texts) == 1
                else ours.value_counts().index[0] if len(ours) else texts[0])
    else:
        main = (field_name if (names == field_name).any()
                else names.value_counts().index[0] if len(names) else None)
    if main is not None and (len(texts) or names.nunique() > 1):
        other = cap.control.notna() & (cap.control != main)
        for name, n in cap.control[other].value_counts().items():
            summary.ignored_results[f"textarea {name!r} (not the caption control {main!r})"] += n
        cap = cap[~other]
    owner, is_pred = cap.owner.to_numpy(int), cap.is_pred.to_numpy(bool)
    live = owners.kept(owner, is_pred)
    who, names = owners.name_codes(owner[live], is_pred[live])
    return coerce("captions", pd.DataFrame({
        "image_id": text_column(tasks.image_id.to_numpy(object), cap.task.to_numpy(int)[live]),
        "annotator": text_column(names, who), "caption": cap.caption[live].to_numpy(object),
        "source": text_column([*names, HUMAN], np.where(is_pred[live], who, len(names)))}))
