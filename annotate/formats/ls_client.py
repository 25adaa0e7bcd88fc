"""Talk to a Label Studio server through label-studio-sdk 2.x: push a table set as tasks (with
stage-1 predictions as pre-annotations), pull a full export back into the four tables.

Connection: `url`/`api_key` arguments, else LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY. Both legacy
tokens and personal access tokens work (the SDK exchanges a personal token, a JWT, for an access
token). The key is never put in a message, a log or a file.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
from tqdm.auto import tqdm

from annotate.formats.labels import LabelConfig
from annotate.formats.ls_export import labeling_config, to_tasks
from annotate.formats.readers import import_set
from annotate.formats.summary import ImportSummary
from annotate.runtime.atomic import atomic_path
from annotate.runtime.errors import UserError
from annotate.runtime.records import read_sample, record_step
from annotate.tables.schema import HUMAN, TableSet

#: Snapshot options that name every annotator and keep prediction bodies.
FULL_EXPORT = {"annotations__completed_by": {"only_id": False},
               "predictions": {"only_id": False}}
STORAGE_TITLE = "twostage images"


class LabelStudioError(UserError, RuntimeError):
    """A Label Studio request failed; the message says what to do (and holds no key)."""


@dataclass
class Connection:
    client: object
    url: str
    api_key: str

    def scrub(self, text: str) -> str:
        return text.replace(self.api_key, "***") if self.api_key else text


def connect(url: str | None = None, api_key: str | None = None) -> Connection:
    """A checked client: the server answers and accepts the key."""
    from label_studio_sdk import LabelStudio

    url = (url or os.environ.get("LABEL_STUDIO_URL") or "").rstrip("/")
    api_key = api_key or os.environ.get("LABEL_STUDIO_API_KEY") or ""
    if not url:
        raise LabelStudioError("no Label Studio URL: pass --url or set LABEL_STUDIO_URL")
    if not api_key:
        raise LabelStudioError("no API key: pass --api-key or set LABEL_STUDIO_API_KEY "
                               "(Account & Settings -> Personal Access Token, or a legacy token)")
    connection = Connection(LabelStudio(base_url=url, api_key=api_key, timeout=60), url, api_key)
    call(connection, lambda c: c.users.whoami(), "check the connection")
    return connection


def call(connection: Connection, request, what: str):
    """Run one SDK request; turn transport and HTTP failures into a `LabelStudioError`."""
    from label_studio_sdk.core.api_error import ApiError

    try:
        return request(connection.client)
    except (httpx.ConnectError, httpx.ConnectTimeout) as err:
        raise LabelStudioError(f"cannot reach Label Studio at {connection.url} ({what}): "
                               f"{type(err).__name__}; is the server running and the URL "
                               "right?") from None
    except httpx.HTTPError as err:
        raise LabelStudioError(f"Label Studio at {connection.url} failed to {what}: "
                               f"{connection.scrub(str(err))}") from None
    except ApiError as err:
        if err.status_code == 401:
            raise LabelStudioError(
                f"Label Studio at {connection.url} refused the API key (401) while trying to "
                f"{what}. Use a personal access token, or a legacy token if legacy tokens are "
                "enabled for the organization (Organization -> API Tokens Settings); legacy "
                "tokens are off by default in new organizations.") from None
        if err.status_code == 404:
            raise LabelStudioError(f"{what}: not found on {connection.url} (404)") from None
        body = connection.scrub(str(err.body))[:300]
        raise LabelStudioError(f"Label Studio at {connection.url} answered {err.status_code} "
                               f"to {what}: {body}") from None


def find_project(connection: Connection, project: str | int):
    """A project by id (digits) or exact title; a clear error when there is none."""
    text = str(project)
    if text.isdigit():
        return call(connection, lambda c: c.projects.get(id=int(text)), f"get project {text}")
    found = [p for p in call(connection, lambda c: list(c.projects.list()), "list projects")
             if p.title == text]
    if not found:
        raise LabelStudioError(f"no project titled {text!r} on {connection.url}")
    if len(found) > 1:
        raise LabelStudioError(f"{len(found)} projects are titled {text!r}; pass its id "
                               f"({', '.join(str(p.id) for p in found)})")
    return found[0]


@dataclass
class PushSummary:
    project_id: int
    created_project: bool
    tasks_created: int
    tasks_existing: int
    predictions_added: int

    def __str__(self) -> str:
        made = "created" if self.created_project else "reused"
        return (f"project {self.project_id} ({made}): {self.tasks_created} tasks imported, "
                f"{self.tasks_existing} already there; {self.predictions_added} predictions "
                "added to existing tasks")


def push(connection: Connection, ts: TableSet, project: str, document_root: str | None,
         predictions: pd.DataFrame | None = None, labels: list[str] | None = None,
         blind: bool = False) -> PushSummary:
    """Create (or reuse) `project`, link local-file storage for the images and import one task
    per image (keyed by `image_id`: pushing again adds no duplicates), with `predictions` and
    the set's model rows as pre-annotations (model_version, score and original size filled).
    Human annotations are not pushed: tasks are for the next annotation round. `blind` pushes
    no pre-annotation at all (a re-label round must not show what anyone said before)."""
    labels = labels or ts.labels
    if not labels:
        raise UserError("no label map: pass --labels or import the set with --labels")
    if blind:
        if predictions is not None:
            raise UserError("a blind push shows no predictions: leave --predictions out")
        ts = TableSet(ts.images, ts.annotations, ts.boxes[ts.boxes.source == HUMAN],
                      ts.captions[ts.captions.source == HUMAN], ts.labels, dict(ts.meta))
    tasks = to_tasks(ts, predictions, document_root, include_annotations=False)
    unservable = [t["data"]["image"] for t in tasks
                  if not str(t["data"]["image"]).startswith(("/data/", "http://", "https://",
                                                             "s3://", "gs://"))]
    if unservable:
        raise UserError(f"{len(unservable)} images are not under the server's document root "
                         f"({document_root}), e.g. {unservable[0]}: pass --document-root (the "
                         "server's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT) or use URLs")
    target, created = _find_or_create(connection, project, labeling_config(labels))
    if document_root is not None:
        _link_storage(connection, target.id, ts.images.path, document_root)
    existing = {t.data.get("image_id"): t for t in call(
        connection, lambda c: list(c.tasks.list(project=target.id, fields="all")),
        "list tasks") if t.data}
    new = [t for t in tasks if t["data"]["image_id"] not in existing]
    if new:
        call(connection, lambda c: c.projects.import_tasks(id=target.id, request=new,
                                                           return_task_ids=True),
             f"import {len(new)} tasks")
    added = 0
    for task in tasks:
        old = existing.get(task["data"]["image_id"])
        if old is None:
            continue
        have = {p.get("model_version") if isinstance(p, dict) else getattr(p, "model_version",
                                                                            None)
                for p in (old.predictions or [])}
        for prediction in task.get("predictions", []):
            if prediction["model_version"] in have:
                continue
            call(connection, lambda c, p=prediction, t=old: c.predictions.create(
                task=t.id, model_version=p["model_version"], score=p.get("score"),
                result=p["result"]), "add a prediction")
            added += 1
    return PushSummary(target.id, created, len(new), len(tasks) - len(new), added)


def _find_or_create(connection: Connection, project: str, label_config: str):
    """The project titled `project`, created with `label_config` when there is none; and
    whether it was created."""
    try:
        return find_project(connection, project), False
    except LabelStudioError as err:
        if "no project titled" not in str(err):
            raise
    return call(connection, lambda c: c.projects.create(
        title=project, label_config=label_config), f"create project {project!r}"), True


def _link_storage(connection: Connection, project_id: int, image_paths,
                  document_root: str) -> None:
    """Local-file storage over the images' common folder: Label Studio serves
    /data/local-files/ only from folders a storage names."""
    folders = {str(Path(p).resolve().parent) for p in image_paths}
    common = Path(os.path.commonpath(sorted(folders))) if folders else Path(document_root)
    have = call(connection, lambda c: list(c.import_storage.local.list(project=project_id)),
                "list local storages")
    if any(Path(getattr(s, "path", "") or "") == common for s in have):
        return
    call(connection, lambda c: c.import_storage.local.create(
        project=project_id, path=str(common), title=STORAGE_TITLE, use_blob_urls=False),
        f"link local storage {common}")


def pull(connection: Connection, project: str | int, out: str | os.PathLike,
         images_root: str | None = None, timeout: float = 600, progress: bool = True
         ) -> tuple[TableSet, ImportSummary, Path]:
    """Export `project` as a snapshot naming every annotator, save it as `ls_export.json` in
    `out`, and import it into `out` exactly as `annotate import` would. Returns the set, the
    import summary and the export's path."""
    target = find_project(connection, project)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = export_snapshot(connection, target, out / "ls_export.json", timeout, progress)
    config = LabelConfig(target.label_config, f"project {target.id}")
    ts, summary = import_set(path, out, fmt="labelstudio", labels=config.labels(),
                             image_field=config.image_field(), images_root=images_root)
    return ts, summary, path


def export_snapshot(connection: Connection, target, path: str | os.PathLike,
                    timeout: float = 600, progress: bool = True) -> Path:
    """Export project `target` (from `find_project`) as a JSON snapshot naming every
    annotator (`completed_by` with e-mail) into `path`, written whole or not at all."""
    export = call(connection, lambda c: c.projects.exports.create(
        id=target.id, title="twostage pull", serialization_options=FULL_EXPORT),
        "start an export")
    started = time.monotonic()
    with tqdm(desc=f"export of project {target.id}", disable=not progress, unit="poll") as bar:
        while True:
            status = call(connection, lambda c: c.projects.exports.get(
                id=target.id, export_pk=export.id).status, "poll the export")
            if status == "completed":
                break
            if status == "failed":
                raise LabelStudioError(f"the export of project {target.id} failed on the "
                                       "server; see its log")
            if time.monotonic() - started > timeout:
                raise LabelStudioError(f"the export of project {target.id} was still "
                                       f"{status!r} after {timeout:.0f} s; try --timeout")
            bar.update()
            time.sleep(0.5)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        for chunk in call(connection, lambda c: list(c.projects.exports.download(
                id=target.id, export_pk=export.id, export_type="JSON")), "download the export"):
            handle.write(chunk)
    return Path(path)


def push_data(connection: Connection, project: str, label_config: str, tasks: list[dict],
              key: str, image_paths: list[str], document_root: str | None) -> PushSummary:
    """Create (or reuse) `project` with `label_config` and import the task `data` dicts not
    there yet (matched on `data[key]`: pushing again adds no duplicates); local-file storage
    is linked over `image_paths` when the server serves them from `document_root`. For
    studies whose tasks are not one image each (`quality judge-push`)."""
    target, created = _find_or_create(connection, project, label_config)
    if document_root is not None and image_paths:
        _link_storage(connection, target.id, image_paths, document_root)
    existing = {t.data.get(key) for t in call(
        connection, lambda c: list(c.tasks.list(project=target.id, fields="all")),
        "list tasks") if t.data}
    new = [{"data": data} for data in tasks if data[key] not in existing]
    if new:
        call(connection, lambda c: c.projects.import_tasks(id=target.id, request=new,
                                                           return_task_ids=True),
             f"import {len(new)} tasks")
    return PushSummary(target.id, created, len(new), len(tasks) - len(new), 0)


def sample_subset(ts: TableSet, sample: str | os.PathLike) -> TableSet:
    """The images of a study's sample file, refused with the reason when the file is not a
    sample or names images the set does not have (checked before any server is reached)."""
    ids = read_sample(sample)
    unknown = sorted(set(ids) - set(ts.images.image_id))
    if unknown:
        raise UserError(f"{sample}: {len(unknown)} sampled images are not in the set, e.g. "
                        f"{unknown[:3]}: push the set it was planned on")
    return ts.subset(ids)


def push_sample(connection: Connection, subset: TableSet, project: str,
                sample: str | os.PathLike, document_root: str | None = None,
                labels: list[str] | None = None, tracking_uri: str | None = None
                ) -> tuple[PushSummary, dict]:
    """A re-labelling study's push: `subset`, the images of `sample` (`sample_subset` of
    `quality plan-relabel`'s sample.json), blind (no earlier annotation, no prediction),
    recorded as `push.json` in the study folder and in MLflow.

    Returns
    -------
    summary : PushSummary
        What `push` did.
    record : dict
        The study record written (with its MLflow run).
    """
    summary = push(connection, subset, project, document_root, None, labels, blind=True)
    record = record_step(Path(sample).parent, "push", {
        "project": project, "project_id": summary.project_id, "images": len(subset.images),
        "tasks_created": summary.tasks_created, "tasks_existing": summary.tasks_existing,
        "sample": str(sample),
        "settings": {"url": connection.url, "blind": True, "project": project}}, tracking_uri)
    return summary, record


def record_pull(connection: Connection, project: str | int, ts: TableSet,
                summary: ImportSummary, export: Path, out: str | os.PathLike,
                sample: str | os.PathLike, tracking_uri: str | None = None) -> dict:
    """A re-labelling study's pull, recorded as `pull.json` in the study folder and in MLflow:
    how many of the sampled images came back labelled."""
    sampled = set(read_sample(sample))
    human = ts.annotations[ts.annotations.source == HUMAN]
    labelled = len(sampled & set(human.image_id))
    return record_step(Path(sample).parent, "pull", {
        "project": project, "out": str(out), "export": str(export),
        "sampled_images": len(sampled), "labelled_images": labelled,
        "not_yet_labelled": len(sampled) - labelled, "annotations": len(human),
        "annotators": int(human.annotator.nunique()), "import": summary.to_dict(),
        "settings": {"url": connection.url, "project": project}}, tracking_uri)


__all__ = ["Connection", "LabelStudioError", "connect", "export_snapshot", "find_project",
           "pull", "push", "push_data", "push_sample", "record_pull", "sample_subset"]
