"""Shared fixtures. Tests run offline: no hub downloads, no GUI backends, no user config writes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="twostage-yolo-"))

from annotate.tables.schema import TableSet

DATA = Path(__file__).parent / "data"
LS_1_23 = DATA / "ls_1_23"
REPO = Path(__file__).parent.parent


@pytest.fixture
def small_set() -> TableSet:
    """Two images, two annotators (b never saw image 2), one model: every table non-empty."""
    return TableSet(
        images=[{"image_id": "1", "path": "a.png", "width": 100, "height": 50, "group_id": "g1"},
                {"image_id": "2", "path": "b.png", "width": 80, "height": 80, "group_id": "g1"}],
        annotations=[
            {"image_id": "1", "annotator": "a", "source": "human", "lead_time": 3.5,
             "created_at": "2026-01-01T10:00:00Z"},
            {"image_id": "1", "annotator": "b", "source": "human", "lead_time": 2.0,
             "created_at": "2026-01-01T10:01:00Z"},
            {"image_id": "2", "annotator": "a", "source": "human", "lead_time": None,
             "created_at": None}],
        boxes=[
            {"image_id": "1", "annotator": "a", "object_id": "r1", "label": "cat",
             "x0": 10, "y0": 5, "x1": 30, "y1": 25, "source": "human"},
            {"image_id": "1", "annotator": "b", "object_id": "r1", "label": "dog",
             "x0": 11, "y0": 5, "x1": 31, "y1": 26, "source": "human"},
            {"image_id": "2", "annotator": "model:v1", "object_id": "p1", "label": "cat",
             "x0": 0, "y0": 0, "x1": 80, "y1": 80, "score": 0.7, "source": "model:v1"}],
        captions=[{"image_id": "1", "annotator": "a", "caption": "a cat", "source": "human"}],
        labels=["cat", "dog"])


def frames_equal(left: pd.DataFrame, right: pd.DataFrame, keys: list[str]) -> None:
    """Assert two tables hold the same rows, whatever their order (floats to 1e-9)."""
    pd.testing.assert_frame_equal(
        left.sort_values(keys).reset_index(drop=True)[sorted(left.columns)],
        right.sort_values(keys).reset_index(drop=True)[sorted(right.columns)],
        check_exact=False, rtol=1e-9, atol=1e-9)

REALDATA = REPO.parent / "shared" / "realdata"


@pytest.fixture
def realdata() -> Path:
    """`../shared/realdata` (public files nobody here wrote). A user's clone lacks it: the test
    skips with the reason; CI sets TWOSTAGE_REQUIRE_REALDATA=1 so that it fails instead."""
    if not REALDATA.is_dir():
        if os.environ.get("TWOSTAGE_REQUIRE_REALDATA") == "1":
            pytest.fail(f"{REALDATA} is missing and TWOSTAGE_REQUIRE_REALDATA=1")
        pytest.skip(f"{REALDATA} is not here (it sits beside the project in CI)")
    return REALDATA
