"""The plumbing every layer shares: MLflow's tracking URI set and restored in one place,
JSON-ready records."""

from __future__ import annotations

import json
import math
import os

import mlflow
import pandas as pd
import pytest

from annotate.runtime.jsonable import records
from annotate.runtime.tracking import URI_VARIABLE, tracking, tracking_uri


def test_tracking_records_into_the_store_it_names_and_restores_the_environment(
        tmp_path, monkeypatch):
    monkeypatch.delenv(URI_VARIABLE, raising=False)
    stores = [f"sqlite:///{tmp_path / name / 'mlflow.db'}" for name in ("a", "b")]
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    ids = []
    for uri in stores:
        assert tracking_uri(None, uri.removeprefix("sqlite:///").rsplit("/", 1)[0]) == uri
        with tracking(uri) as tracked:
            assert tracked.get_tracking_uri() == uri
            tracked.set_experiment("e")
            with tracked.start_run() as run:
                ids.append(run.info.run_id)
        assert URI_VARIABLE not in os.environ  # the next default is not the last store
    for uri, run_id in zip(stores, ids, strict=True):
        found = {r.info.run_id for r in mlflow.MlflowClient(uri).search_runs(
            [mlflow.MlflowClient(uri).get_experiment_by_name("e").experiment_id])}
        assert found == {run_id}


def test_a_users_variable_wins_and_survives(tmp_path, monkeypatch):
    mine = f"sqlite:///{tmp_path / 'mine.db'}"
    monkeypatch.setenv(URI_VARIABLE, mine)
    assert tracking_uri(None, tmp_path / "run") == mine
    assert tracking_uri("http://127.0.0.1:1", tmp_path / "run") == "http://127.0.0.1:1"
    with tracking(f"sqlite:///{tmp_path / 'other.db'}"):
        pass
    assert os.environ[URI_VARIABLE] == mine


def test_tracking_restores_after_a_failure(tmp_path, monkeypatch):
    monkeypatch.delenv(URI_VARIABLE, raising=False)
    with pytest.raises(RuntimeError, match="step failed"), \
            tracking(f"sqlite:///{tmp_path / 'x.db'}"):
        raise RuntimeError("step failed")
    assert URI_VARIABLE not in os.environ


def test_records_are_valid_json_with_nulls():
    frame = pd.DataFrame({"a": [1.0, math.nan], "t": [pd.Timestamp("2026-01-01"), pd.NaT],
                          "s": ["x", None]})
    rows = records(frame)
    assert rows[1] == {"a": None, "t": None, "s": None}
    assert "NaN" not in json.dumps(rows, default=str)


def test_a_handler_made_inside_a_captured_block_survives_it(tmp_path):
    """ultralytics makes its logger's handler on first import, inside a step's captured block,
    on the step's log file; after the block that file is closed, and the handler must not
    write to it ("Logging error ... I/O operation on closed file" in every later log)."""
    import logging
    import sys

    from annotate.runtime.capture import captured

    name = "twostage-test-library"
    with captured(tmp_path / "first.log"):
        library = logging.getLogger(name)
        library.addHandler(logging.StreamHandler(sys.stdout))
        library.warning("inside the first step")
    try:
        with captured(tmp_path / "second.log"):
            library.warning("inside the second step")
        first = (tmp_path / "first.log").read_text()
        second = (tmp_path / "second.log").read_text()
        assert "inside the first step" in first and "inside the second step" in second
        assert "Logging error" not in first + second
    finally:
        library.handlers.clear()
