"""A judgment study through Label Studio: the tasks pushed blind (an image and two captions,
or an image and one caption to rate; the systems behind them stay in the study's plan), and the
judges' answers read back from a snapshot export into a judgments (or ratings) table, every
skipped answer counted with its reason."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from annotate.formats.ls_client import Connection, export_snapshot, find_project, push_data
from annotate.formats.ls_export import image_reference
from annotate.runtime.errors import UserError
from quality.judging.analysis import JUDGMENT_COLUMNS
from quality.judging.design import (
    CHOICE,
    RATING,
    RATING_MAX,
    TIE_CHOICE,
    TIE_VALUE,
    pairwise_config,
    rating_config,
)
from quality.judging.ratings import RATING_COLUMNS

#: The task data field that names a study task (what a second push matches on).
TASK_KEY = "study_task"


def push_tasks(connection: Connection, plan: dict, project: str,
               document_root: str | None) -> dict:
    """Push a plan's tasks: the image and the left and right caption (pairwise) or the one
    caption to rate (rating); no system name."""
    paths = plan["images"]
    rating = plan.get("design") == "rating"
    data = [{TASK_KEY: t["task"], "image": image_reference(paths[t["image_id"]], document_root),
             **({"caption": t["caption"]} if rating else
                {"left_caption": t["left_caption"], "right_caption": t["right_caption"]})}
            for t in plan["tasks"]]
    unservable = [d["image"] for d in data
                  if not str(d["image"]).startswith(("/data/", "http://", "https://", "data:"))]
    if unservable:
        raise UserError(f"{len(unservable)} images are not under the server's document root "
                        f"({document_root}), e.g. {unservable[0]}: pass --document-root (the "
                        "server's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT)")
    config = rating_config() if rating else pairwise_config()
    summary = push_data(connection, project, config, data, TASK_KEY,
                        sorted(set(paths.values())), document_root)
    return {"project": project, "project_id": summary.project_id,
            "created": summary.created_project, "tasks_created": summary.tasks_created,
            "tasks_existing": summary.tasks_existing}


def pull_judgments(connection: Connection, plan: dict, project: str | int, export: Path,
                   timeout: float = 600) -> tuple[pd.DataFrame, dict]:
    """The judges' answers of the study's project, the left/right randomisation undone.

    Returns
    -------
    judgments : pd.DataFrame
        task, image_id, judge (e-mail), left, right, choice, lead_time; for a rating study
        task, image_id, judge, system, rating, lead_time.
    counts : dict
        annotations read, kept, and skipped by reason (cancelled, no answer, a task not in
        the plan, a rating off the scale).
    """
    target = find_project(connection, project)
    export_snapshot(connection, target, export, timeout, progress=False)
    return read_judgments(json.loads(export.read_text(encoding="utf-8")), plan, str(export))


def read_judgments(tasks: list, plan: dict, where: str) -> tuple[pd.DataFrame, dict]:
    """Judgments (or ratings) from a Label Studio JSON snapshot of a study project (see
    `pull_judgments`)."""
    if not isinstance(tasks, list):
        raise UserError(f"{where}: not a Label Studio JSON export (a list of tasks)")
    planned = {t["task"]: t for t in plan["tasks"]}
    rating = plan.get("design") == "rating"
    rows, skipped = [], {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    read = 0
    for task in tasks:
        key = (task.get("data") or {}).get(TASK_KEY)
        for annotation in task.get("annotations") or []:
            read += 1
            if key not in planned:
                skip("task not in the study's plan")
                continue
            if annotation.get("was_cancelled"):
                skip("cancelled (skipped by the judge)")
                continue
            results = annotation.get("result") or []
            answer = _rating(results) if rating else _choice(results)
            if answer is None:
                skip("no rating given" if rating else "no choice made")
                continue
            if rating and not (isinstance(answer, int | float) and answer % 1 == 0
                               and 1 <= answer <= RATING_MAX):
                skip(f"rating not a whole number from 1 to {RATING_MAX}")
                continue
            person = annotation.get("completed_by")
            judge = person.get("email") if isinstance(person, dict) else person
            shown = planned[key]
            row = {"task": key, "image_id": shown["image_id"], "judge": str(judge),
                   "lead_time": annotation.get("lead_time")}
            row.update({"system": shown["system"], "rating": int(answer)} if rating else
                       {"left": shown["left"], "right": shown["right"], "choice": answer})
            rows.append(row)
    columns = RATING_COLUMNS if rating else JUDGMENT_COLUMNS
    judgments = pd.DataFrame(rows, columns=[*columns, "lead_time"])
    return judgments, {"read": read, "kept": len(judgments), "skipped": skipped}


def _rating(results: list):
    """The stars given, else None."""
    for result in results:
        if result.get("from_name") == RATING:
            return (result.get("value") or {}).get("rating")
    return None


def _choice(results: list) -> str | None:
    """'tie' when the tie box is ticked, else the pairwise side, else None."""
    side = None
    for result in results:
        value = result.get("value") or {}
        if result.get("from_name") == TIE_CHOICE and TIE_VALUE in (value.get("choices") or []):
            return "tie"
        if result.get("from_name") == CHOICE and value.get("selected") in ("left", "right"):
            side = value["selected"]
    return side
