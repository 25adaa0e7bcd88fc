import json

import hypothesis.strategies as st
import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from label_studio_sdk.label_interface import LabelInterface

from annotate.formats.ls_export import image_reference, labeling_config, to_tasks
from annotate.formats.ls_import import import_export
from annotate.tables.schema import TableSet
from tests.conftest import LS_1_23, frames_equal


def test_labeling_config_parses_with_label_studio_sdk():
    labels = ["red circle", 'odd "quoted" & <label>', "blue square"]
    li = LabelInterface(labeling_config(labels))
    rect = li.get_control("label")
    assert list(rect.labels) == labels
    assert li.get_control("caption").tag.lower() == "textarea"
    assert "caption" not in labeling_config(labels, caption=False)


def test_predictions_become_pre_annotations(small_set):
    extra = pd.DataFrame([{"image_id": "1", "annotator": "model:det-2", "object_id": "q",
                           "label": "dog", "x0": 0.0, "y0": 0.0, "x1": 50.0, "y1": 25.0,
                           "score": 0.25, "source": "model:det-2"}])
    tasks = to_tasks(small_set, predictions=extra, include_annotations=False)
    assert [t["data"]["image_id"] for t in tasks] == ["1", "2"]
    assert "annotations" not in tasks[0]
    (pred,) = tasks[0]["predictions"]
    assert pred["model_version"] == "det-2" and pred["score"] == 0.25
    (region,) = pred["result"]
    assert region["original_width"] == 100 and region["original_height"] == 50
    assert region["value"] == {"x": 0.0, "y": 0.0, "width": 50.0, "height": 50.0, "rotation": 0,
                               "rectanglelabels": ["dog"]}
    assert region["score"] == 0.25 and region["from_name"] == "label"
    assert tasks[1]["predictions"][0]["model_version"] == "v1"


def test_local_files_urls_under_the_document_root(tmp_path):
    path = tmp_path / "imgs" / "a.png"
    assert image_reference(str(path), tmp_path) == "/data/local-files/?d=imgs/a.png"
    assert image_reference("/elsewhere/a.png", tmp_path) == "/elsewhere/a.png"


def test_real_export_reimports_identically(tmp_path):
    ts, _ = import_export(LS_1_23 / "snapshot_full.json")
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(to_tasks(ts)))
    back, summary = import_export(path, images_root=LS_1_23)
    _assert_same(back, ts)
    assert sum(summary.rejected.values()) == 0


def _assert_same(a: TableSet, b: TableSet) -> None:
    frames_equal(a.images, b.images, ["image_id"])
    frames_equal(a.annotations, b.annotations, ["image_id", "annotator"])
    frames_equal(a.boxes, b.boxes, ["image_id", "annotator", "object_id"])
    frames_equal(a.captions, b.captions, ["image_id", "annotator", "source"])
    assert a.labels == b.labels


text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
               min_size=1, max_size=12)


@st.composite
def table_sets(draw):
    labels = draw(st.lists(text, min_size=1, max_size=4, unique=True))
    annotators = draw(st.lists(text, min_size=1, max_size=3, unique=True))
    images, anns, boxes, caps = [], [], [], []
    for i in range(draw(st.integers(1, 4))):
        w, h = draw(st.integers(1, 4000)), draw(st.integers(1, 4000))
        images.append({"image_id": f"img{i}", "path": f"/nowhere/{i}.png", "width": w,
                       "height": h, "group_id": draw(st.none() | text),
                       "sha256": draw(st.none() | st.just("ab" * 32))})
        seen = draw(st.lists(st.sampled_from(annotators), unique=True, max_size=3))
        for who in seen:
            anns.append({"image_id": f"img{i}", "annotator": who, "source": "human",
                         "lead_time": draw(st.none() | st.floats(0, 1e4)),
                         "created_at": draw(st.none() | st.datetimes(
                             min_value=pd.Timestamp("2000-01-01").to_pydatetime(),
                             max_value=pd.Timestamp("2100-01-01").to_pydatetime()).map(
                                 lambda d: pd.Timestamp(d, tz="UTC")))})
            if draw(st.booleans()):
                caps.append({"image_id": f"img{i}", "annotator": who, "caption": draw(text),
                             "source": "human"})
        owners = [(who, "human") for who in seen] + [("model:m1", "model:m1")]
        for k in range(draw(st.integers(0, 5))):
            who, source = draw(st.sampled_from(owners))
            x0, x1 = sorted(draw(st.lists(st.floats(0, w), min_size=2, max_size=2, unique=True)))
            y0, y1 = sorted(draw(st.lists(st.floats(0, h), min_size=2, max_size=2, unique=True)))
            if x1 - x0 < 1e-6 * w or y1 - y0 < 1e-6 * h:
                continue
            boxes.append({"image_id": f"img{i}", "annotator": who, "object_id": f"o{k}",
                          "label": draw(st.sampled_from(labels)), "x0": x0, "y0": y0, "x1": x1,
                          "y1": y1, "source": source,
                          "score": draw(st.floats(0, 1)) if source != "human" else np.nan})
    return TableSet(images, anns, boxes, caps, labels).validate()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(ts=table_sets())
def test_export_then_import_is_lossless(tmp_path, ts):
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(to_tasks(ts)))
    back, summary = import_export(path, labels=ts.labels)
    assert sum(summary.rejected.values()) == 0, summary
    _assert_same(back, ts)
