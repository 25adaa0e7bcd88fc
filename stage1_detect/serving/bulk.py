"""Pre-annotate a whole Label Studio project through its connected ML backend, in batches.

Each batch is one "Retrieve predictions" action of Label Studio's Data Manager on the task ids
of the batch: Label Studio sends them to the backend's `/predict` and stores the predictions,
exactly as when an annotator opens a task. Batches keep each request well inside Label
Studio's prediction timeout (`ML_TIMEOUT_PREDICT`, 100 s by default) where one request for a
whole project would time out. Tasks that already hold a prediction of the backend's model
version are skipped, so an interrupted run is resumed by running it again.

The offline alternative is `annotate push --predictions` (boxes predicted beforehand with
`stage1-detect predict`, pushed with the tasks): no server to run, but nothing happens when
new tasks arrive later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
from tqdm.auto import tqdm

from annotate.formats.ls_client import Connection, LabelStudioError, call, find_project

log = logging.getLogger(__name__)

TITLE = "twostage stage-1 detector"


@dataclass
class Preannotated:
    """What a bulk pre-annotation did, in tasks."""

    project_id: int
    model_version: str
    tasks: int
    already: int
    requested: int
    predicted: int

    @property
    def without(self) -> int:
        return self.requested - self.predicted

    def __str__(self) -> str:
        return (f"project {self.project_id}, model {self.model_version}: {self.tasks} tasks, "
                f"{self.already} already pre-annotated, {self.predicted} of {self.requested} "
                "pre-annotated now"
                + (f"; {self.without} got no prediction (the backend's log and /predict "
                   "meta give each reason, e.g. an image it could not read)"
                   if self.without else ""))


def backend_version(url: str) -> str:
    """The model version a running backend serves (its `/health`)."""
    try:
        reply = httpx.get(f"{url.rstrip('/')}/health", timeout=10)
        reply.raise_for_status()
        return str(reply.json()["model_version"])
    except (httpx.HTTPError, KeyError, ValueError) as err:
        raise LabelStudioError(f"the ML backend at {url} does not answer /health with a model "
                               f"version ({type(err).__name__}: {err}); is `stage1-detect "
                               "serve` running there?") from None


def connected_backend(connection: Connection, project_id: int, url: str | None) -> str:
    """The URL of the project's ML backend; `url` is connected first when it is not yet."""
    backends = call(connection, lambda c: list(c.ml.list(project=project_id)),
                    f"list project {project_id}'s ML backends")
    urls = [b.url.rstrip("/") for b in backends]
    if url is None:
        if not urls:
            raise LabelStudioError(f"project {project_id} has no ML backend: pass --backend "
                                   "URL (where `stage1-detect serve` runs) or connect it in the "
                                   "project's Settings -> Model")
        return urls[0]
    if url.rstrip("/") not in urls:
        backend_version(url)  # a backend that is down gets our message, not a 400
        call(connection, lambda c: c.ml.create(project=project_id, url=url, title=TITLE,
                                               is_interactive=False),
             f"connect the ML backend {url} to project {project_id} (a local or private "
             "address needs ML_BLOCK_LOCAL_IP=false and USE_DEFAULT_BANNED_SUBNETS=false on "
             "the Label Studio server: docs/serving.md)")
    return url.rstrip("/")


def _versions(connection: Connection, project_id: int) -> dict:
    """Each task id -> the model versions of its predictions."""
    tasks = call(connection, lambda c: list(c.tasks.list(project=project_id, fields="all")),
                 f"list project {project_id}'s tasks")
    return {t.id: {p.get("model_version") if isinstance(p, dict) else
                   getattr(p, "model_version", None) for p in (t.predictions or [])}
            for t in tasks}


def preannotate(connection: Connection, project: str | int, backend: str | None = None,
                batch: int = 20, progress: bool = True) -> Preannotated:
    """Pre-annotate every task of `project` that has no prediction of the backend's version.

    Parameters
    ----------
    connection : Connection
        A checked Label Studio client (`annotate.formats.ls_client.connect`).
    project : str or int
        Project id or exact title.
    backend : str, optional
        The backend's URL; connected to the project first when it is not (default: the
        project's connected backend).
    batch : int
        Tasks per Label Studio request.
    progress : bool
        Show a progress bar over tasks.
    """
    if batch < 1:
        raise LabelStudioError(f"--batch must be at least 1 (got {batch})")
    project_id = find_project(connection, project).id
    url = connected_backend(connection, project_id, backend)
    version = backend_version(url)
    before = _versions(connection, project_id)
    todo = sorted(task for task, versions in before.items() if version not in versions)
    with tqdm(total=len(todo), desc="pre-annotating", unit="task",
              disable=not progress) as bar:
        for start in range(0, len(todo), batch):
            chunk = todo[start:start + batch]
            call(connection, lambda c, ids=chunk: c.actions.create(
                id="retrieve_tasks_predictions", project=project_id,
                selected_items={"all": False, "included": ids}),
                f"retrieve predictions for tasks {chunk[0]}..{chunk[-1]}")
            bar.update(len(chunk))
    after = _versions(connection, project_id)
    done = sum(1 for task in todo if version in after.get(task, ()))
    summary = Preannotated(project_id, version, len(before), len(before) - len(todo),
                           len(todo), done)
    log.info("%s", summary)
    return summary
