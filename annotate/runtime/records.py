"""The files of a labelling study (a re-label sample, an adjudication round): the sample it
asks people to label, and one record per step (what it did, project ids, counts) written to the
study folder and logged to MLflow, so that a study can be traced.

MLflow: `tracking_uri`, else $MLFLOW_TRACKING_URI, else `sqlite:///<study folder>/mlflow.db`;
experiment "twostage-studies", one run per step, tagged with the study folder. MLflow's own
messages go to `<study folder>/mlflow.log`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from annotate.runtime.atomic import write_json
from annotate.runtime.capture import captured
from annotate.runtime.errors import UserError
from annotate.runtime.tracking import tracking
from annotate.runtime.tracking import tracking_uri as resolve_uri

EXPERIMENT = "twostage-studies"
#: The key of a sample file that lists the images to label: [{"image_id": ..., ...}, ...].
SAMPLE = "sample"


def read_sample(path: str | os.PathLike) -> list[str]:
    """The image ids of a sample file (`quality plan-relabel` writes one)."""
    path = Path(path)
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))[SAMPLE]
        ids = [str(row["image_id"]) for row in rows]
    except FileNotFoundError:
        raise UserError(f"{path}: no such sample file") from None
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise UserError(f"{path}: not a sample file (expected JSON with a {SAMPLE!r} list of "
                        f"objects with an 'image_id'): {type(err).__name__} {err}") from None
    if not ids:
        raise UserError(f"{path}: the sample is empty")
    if len(set(ids)) != len(ids):
        raise UserError(f"{path}: the sample names an image more than once")
    return ids


def record_step(folder: str | os.PathLike, step: str, record: dict,
                tracking_uri: str | None = None, figures: dict[str, float] | None = None
                ) -> dict:
    """Write `record` to `folder/<step>.json` and log it as an MLflow run: numeric top-level
    entries and `figures` (nested figures under flat names) become metrics, scalar `settings`
    entries params, the JSON an artifact. Returns the record with `mlflow` (tracking URI and
    run id) added."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    uri = resolve_uri(tracking_uri, folder)
    path = folder / f"{step}.json"
    metrics = {k: float(v) for k, v in {**record, **(figures or {})}.items()
               if isinstance(v, int | float) and not isinstance(v, bool) and v == v}
    params = {k: v for k, v in record.get("settings", {}).items()
              if isinstance(v, str | int | float | bool) or v is None}
    with captured(folder / "mlflow.log"), tracking(uri) as mlflow:
        mlflow.set_experiment(EXPERIMENT)
        with mlflow.start_run(run_name=step, tags={"study_folder": str(folder.resolve()),
                                                   "step": step}) as run:
            record = {**record, "mlflow": {"tracking_uri": uri, "run_id": run.info.run_id}}
            write_json(path, record)
            mlflow.log_params(params)
            mlflow.log_metrics(metrics)
            mlflow.log_artifact(str(path))
    return record


def metric_name(key: str) -> str:
    """`key` with the characters MLflow refuses in metric names (e.g. `+`) replaced by `_`.

    >>> metric_name("win_rate/noise+oof over gold")
    'win_rate/noise_oof over gold'
    """
    return re.sub(r"[^\w\-. :/]", "_", key)
