import json
import shutil

import numpy as np
import pytest

from annotate.formats.images import candidates, resolve
from annotate.formats.ls_import import import_export
from tests.conftest import LS_1_23


def _box(ts, image_id, annotator, label):
    b = ts.boxes
    row = b[(b.image_id == image_id) & (b.annotator == annotator) & (b.label == label)]
    assert len(row) == 1
    return row[["x0", "y0", "x1", "y1"]].iloc[0].tolist()


@pytest.mark.parametrize("name", ["plain", "snapshot", "snapshot_full", "min"])
def test_real_label_studio_1_23_exports(name):
    """Exports made by a real Label Studio 1.23.2 server: 3 tasks x 3 annotators, one skip."""
    ts, summary = import_export(LS_1_23 / f"{name}.json")
    assert summary.tasks_read == summary.tasks_kept == 3
    assert len(ts.annotations) == 8  # one row per completed annotation
    assert summary.skipped == (0 if name == "min" else 1)  # JSON-MIN leaves skips out
    assert sum(summary.rejected.values()) == 0
    assert ts.images.set_index("image_id")[["width", "height"]].to_dict("index") == {
        "a": {"width": 200, "height": 100}, "b": {"width": 160, "height": 120},
        "c": {"width": 100, "height": 50}}  # c has no original_width: read from the file
    ann1 = "ann1@example.com" if name == "snapshot_full" else "2"
    # x=5% y=10% w=20% h=30% of 200x100
    assert _box(ts, "a", ann1, "red circle") == pytest.approx([10, 10, 50, 40])
    # x=50% y=50% w=10% h=10% of 160x120
    assert _box(ts, "b", ann1, "blue square") == pytest.approx([80, 60, 96, 72])
    assert set(ts.annotations.annotator) == (
        {f"ann{i}@example.com" for i in (1, 2, 3)} if name == "snapshot_full" else {"2", "3", "4"})
    assert ts.annotations.lead_time.notna().all()
    assert len(ts.captions) == 8
    assert (ts.boxes.source == "human").sum() == 13
    # the skipped annotation (ann3 on b) leaves no row: "never completed", not "drew nothing"
    assert not ((ts.annotations.image_id == "b") & ts.annotations.annotator.isin(
        ["4", "ann3@example.com"])).any()


def test_predictions_need_the_expanded_snapshot():
    full, s_full = import_export(LS_1_23 / "snapshot_full.json")
    pred = full.boxes[full.boxes.source == "model:yolo-v1"]
    assert len(pred) == 6 and s_full.predictions == 3
    assert sorted(pred.score.round(2).unique()) == [0.42, 0.91]
    assert (pred.annotator == "model:yolo-v1").all()
    _, s_plain = import_export(LS_1_23 / "plain.json")
    assert s_plain.predictions_as_ids == 3
    assert "predictions were given as ids only" in str(s_plain)


def test_missing_images_still_import_from_original_size(tmp_path):
    shutil.copy(LS_1_23 / "snapshot_full.json", tmp_path)  # no images beside it
    ts, summary = import_export(tmp_path / "snapshot_full.json")
    assert summary.images_missing == 3 and len(ts.images) == 3  # sizes from predictions
    assert ts.images.path.str.startswith("/data/local-files/?d=").all()  # reference as given
    assert ts.images.sha256.isna().all()
    shutil.copy(LS_1_23 / "plain.json", tmp_path)
    ts, summary = import_export(tmp_path / "plain.json")
    # task c: no original size anywhere and no file -> rejected with a reason, and counted
    assert set(ts.images.image_id) == {"a", "b"}
    reason = next(r for r in summary.rejected if "image size unknown" in r)
    assert summary.rejected[reason] == 1 and "imgs/c.png" in summary.examples[reason][0]
    assert summary.rejected["annotation: its task was rejected"] == 3


def _task(task_id=1, results=None, **ann):
    return {"id": task_id, "data": {"image": "x.png", "width": 100, "height": 100},
            "annotations": [{"id": 1, "completed_by": {"id": 1, "email": "a@x"},
                             "result": results or [], **ann}]}


def _rect(x=10, y=10, w=20, h=20, label="cat", rotation=0, rid="r1"):
    return {"id": rid, "type": "rectanglelabels", "original_width": 100, "original_height": 100,
            "value": {"x": x, "y": y, "width": w, "height": h, "rotation": rotation,
                      "rectanglelabels": [label] if label else []}}


def _run(tmp_path, tasks, **kwargs):
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks))
    return import_export(path, **kwargs)


@pytest.mark.parametrize(("region", "reason"), [
    (_rect(w=-5), "width or height <= 0"),
    (_rect(rotation=30), "rotated rectangle"),
    (_rect(label=None), "no label"),
    (_rect(x=95, w=20), "outside the image by more than"),
    (_rect(label="horse"), "label not in the label map"),
    ({**_rect(), "value": {**_rect()["value"], "x": "abc"}}, "non-numeric"),
])
def test_bad_regions_are_counted_not_dropped_silently(tmp_path, region, reason):
    ts, summary = _run(tmp_path, [_task(results=[region, _rect(rid="ok")])],
                       labels=["cat", "dog"])
    assert len(ts.boxes) == 1 and ts.boxes.object_id.iloc[0] == "ok"
    (rule,) = summary.rejected
    assert reason in rule and summary.rejected[rule] == 1
    assert summary.examples[rule] == ["item 0 (task 1), annotation 1, region r1"]


def test_small_overshoot_is_clipped_and_counted(tmp_path):
    ts, summary = _run(tmp_path, [_task(results=[_rect(x=90, w=10.5)])])
    assert ts.boxes.x1.iloc[0] == 100 and summary.clipped_boxes == 1


def test_bad_tasks_and_repeats_are_counted(tmp_path):
    tasks = [{"id": 5, "annotations": []}, "garbage", _task(2, [_rect()]),
             _task(3, was_cancelled=True)]
    tasks[2]["annotations"].append({"id": 2, "completed_by": 1, "result": [],
                                    "created_at": "2030-01-01T00:00:00Z"})
    tasks[2]["annotations"].append({"id": 3, "completed_by": 1, "result": [_rect()],
                                    "created_at": "2020-01-01T00:00:00Z"})
    ts, summary = _run(tmp_path, tasks)
    assert summary.rejected["task: missing or non-object `data`"] == 1
    assert summary.rejected["task: not an object"] == 1
    assert summary.skipped == 1
    # user 1 is a@x (the email seen for id 1 in task 2): three annotations by one person
    assert summary.annotator_ids == {"1": "a@x"}
    repeat = "annotation: same annotator annotated the task again (kept the latest)"
    assert summary.rejected[repeat] == 2
    latest = ts.annotations[ts.annotations.annotator == "a@x"]
    assert latest.created_at.dt.year.tolist() == [2030]
    assert len(ts.boxes) == 0  # the older annotations' boxes went with them
    assert summary.annotations_read == 4 and summary.annotations_kept == 1
    # nothing lost silently: read = kept + skipped + rejected
    assert summary.annotations_read == (summary.annotations_kept + summary.skipped
                                        + summary.rejected[repeat])


def test_image_references_resolve(tmp_path):
    (tmp_path / "upload" / "3").mkdir(parents=True)
    (tmp_path / "upload" / "3" / "1a2b3c4d-cat.png").write_bytes(b"x")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a b.png").write_bytes(b"x")
    assert resolve("/data/upload/3/1a2b3c4d-cat.png", tmp_path) == (
        tmp_path / "upload/3/1a2b3c4d-cat.png").resolve()
    assert resolve("/data/local-files/?d=dir/a%20b.png", tmp_path) == (
        tmp_path / "dir/a b.png").resolve()
    assert resolve("dir/a b.png", tmp_path) == (tmp_path / "dir/a b.png").resolve()
    assert resolve("https://host/x/a%20b.png", tmp_path / "dir") == (
        tmp_path / "dir/a b.png").resolve()
    assert resolve("https://host/x/none.png", tmp_path) is None
    (tmp_path / "cat.png").write_bytes(b"x")  # upload file found without its hash prefix
    assert tmp_path / "cat.png" in candidates("/data/upload/9/deadbeef-cat.png", tmp_path)


def test_image_size_from_file_when_results_lack_it(tmp_path):
    shutil.copytree(LS_1_23 / "imgs", tmp_path / "imgs")
    task = {"id": 1, "data": {"image": "imgs/c.png"},
            "annotations": [{"id": 1, "completed_by": 7, "result": []}]}
    ts, _ = _run(tmp_path, [task])
    assert ts.images[["width", "height"]].iloc[0].tolist() == [100, 50]
    assert len(ts.images.sha256.iloc[0]) == 64
    assert np.isnan(ts.annotations.lead_time.iloc[0])


def test_annotator_from_updated_by_when_completed_by_is_absent(tmp_path):
    """The shape of label-studio-sdk's COCO-export test data: the annotation carries
    `updated_by` (and `last_created_by`) but no `completed_by`."""
    tasks = [_task(1, [_rect()]), _task(2, [_rect()])]
    for task in tasks:
        del task["annotations"][0]["completed_by"]
        task["annotations"][0].update(updated_by=308, last_created_by=308)
    tasks.append(_task(3, [_rect()]))
    del tasks[2]["annotations"][0]["completed_by"]  # neither: unknown, rejected
    ts, summary = _run(tmp_path, tasks)
    assert ts.annotations.annotator.tolist() == ["308", "308"]
    assert summary.annotators_from_updated_by == 2
    assert "no completed_by; their annotator is the user in updated_by" in str(summary)
    assert summary.rejected["annotation: no completed_by or updated_by (annotator unknown)"] == 1


@pytest.mark.parametrize(("data", "reason"), [
    ({"pages": ["https://x.org/1.jpg", "https://x.org/2.jpg"]}, "a repeater task (data.pages"),
    ({"image": [{"url": "/data/upload/1/a.png"}]}, "a repeater task (data.image is a list of 1"),
    ({"text": "a cat", "tags": ["cat", "dog"]}, "no 'image' field in data"),
])
def test_repeater_tasks_are_named_and_other_lists_are_not(tmp_path, data, reason):
    _, summary = _run(tmp_path, [{"id": 1, "data": data, "annotations": []}])
    (rejected,) = summary.rejected
    assert rejected.startswith(f"task: {reason}") and summary.tasks_kept == 0


def _bare(rid, x=10, label="cat", to_name="image", **extra):
    """A `<Rectangle>` + `<Labels>` pair sharing a region id (a common labelling config)."""
    return [{"id": rid, "type": "rectangle", "from_name": "box", "to_name": to_name,
             "original_width": 100, "original_height": 100,
             "value": {"x": x, "y": 10, "width": 20, "height": 20, "rotation": 0}, **extra},
            {"id": rid, "type": "labels", "from_name": "kind", "to_name": to_name,
             "value": {"labels": [label], "start": 0}}]


@pytest.mark.parametrize("loose", [False, True])
def test_which_control_a_region_belongs_to(tmp_path, loose):
    results = [
        *_bare("p1"),                                          # joined: a cat box
        *_bare("p2", x=40, label="dog"),                       # joined: a dog box
        {"id": "lonely", "type": "labels", "from_name": "kind", "to_name": "image",
         "value": {"labels": ["cat"]}},                        # a label of no rectangle
        {**_rect(rid="r1"), "from_name": "label", "to_name": "image"},
        {**_rect(rid="r2", x=50), "from_name": "label", "to_name": "image2"},  # other image
        {**_rect(rid="r3", x=60), "from_name": "label", "to_name": "image",
         "image_rotation": 90},                                # drawn on the turned view
        {"id": "c", "type": "textarea", "from_name": "caption", "to_name": "image",
         "value": {"text": ["a cat left of a dog"]}},
        {"id": "n", "type": "textarea", "from_name": "notes", "to_name": "image",
         "value": {"text": ["check the dog again"]}},         # reviewer notes, not caption
    ]
    if loose:  # one unreadable value sends the list through the value-by-value reader
        results.append({"id": "bad", "type": "rectanglelabels", "to_name": "image",
                        "value": {"x": "?", "y": 1, "width": 1, "height": 1,
                                  "rectanglelabels": ["cat"]}})
    ts, summary = _run(tmp_path, [_task(1, results)], labels=["cat", "dog"])
    assert sorted(ts.boxes.object_id) == ["p1", "p2", "r1"]
    assert ts.boxes.set_index("object_id").label.to_dict() == {"p1": "cat", "p2": "dog",
                                                               "r1": "cat"}
    assert ts.captions.caption.tolist() == ["a cat left of a dog"]
    assert summary.ignored_results["labels (no rectangle with its region id)"] == 1
    assert summary.ignored_results["textarea 'notes' (not the caption control 'caption')"] == 1
    rejected = {reason.split(" (")[0]: n for reason, n in summary.rejected.items()}
    assert rejected["box: on another object of the task"] == 1
    assert rejected["box: drawn on a turned image"] == 1
    assert len(ts.annotations) == 1


CONFIG = """<View>
  <Image name="image" value="$image"/><Image name="image2" value="$other"/>
  <RectangleLabels name="label" toName="image"><Label value="cat"/><Label value="dog"/>
  </RectangleLabels>
  <Rectangle name="box" toName="image"/>
  <Labels name="kind" toName="image"><Label value="cat"/><Label value="dog"/></Labels>
  <RectangleLabels name="other" toName="image2"><Label value="cat"/></RectangleLabels>
  <TextArea name="description" toName="image"/>
</View>"""


def test_the_labelling_config_decides_what_a_result_belongs_to(tmp_path, capsys):
    """With the config (`--labels CONFIG.xml`): boxes only from its rectangle controls on its
    Image, the caption only from its TextArea, whatever most results say."""
    from annotate.cli import main as annotate

    results = [
        *_bare("p1"),
        {**_rect(rid="r1"), "from_name": "label", "to_name": "image"},
        {**_rect(rid="r2", x=40), "from_name": "ghost", "to_name": "image"},  # not in config
        {**_rect(rid="r3", x=50), "from_name": "other", "to_name": "image2"},
        {**_rect(rid="r4", x=60), "from_name": "other", "to_name": "image2"},  # most results
        {"id": "c", "type": "textarea", "from_name": "description", "to_name": "image",
         "value": {"text": ["a cat"]}},
        {"id": "n", "type": "textarea", "from_name": "caption", "to_name": "image",
         "value": {"text": ["not the config's caption"]}},
    ]
    (tmp_path / "config.xml").write_text(CONFIG)
    (tmp_path / "export.json").write_text(json.dumps([_task(1, results)]))
    assert annotate(["import", str(tmp_path / "export.json"), "--labels",
                     str(tmp_path / "config.xml"), "--out", str(tmp_path / "set")]) == 0
    printed = capsys.readouterr().out
    from annotate.tables import store

    ts = store.load(tmp_path / "set")
    assert sorted(ts.boxes.object_id) == ["p1", "r1"]
    assert ts.captions.caption.tolist() == ["a cat"]
    assert "box: on another object of the task (its to_name is not 'image'" in printed
    assert "box: from a control the labelling config does not have on the image" in printed
    assert "textarea 'caption' (not the caption control 'description')" in printed


def test_a_repeated_region_id_is_rejected_within_one_annotator_only(tmp_path):
    def rect(rid, x):
        return {"id": rid, "type": "rectanglelabels", "from_name": "label", "to_name": "image",
                "original_width": 100, "original_height": 100,
                "value": {"x": x, "y": 10, "width": 10, "height": 10,
                          "rectanglelabels": ["cat"]}}

    tasks = [{"id": 1, "data": {"image": "a.png"}, "annotations": [
        {"id": 10, "completed_by": {"id": 1, "email": "a@x.org"},
         "result": [rect("r1", 5), rect("r1", 40), rect("r2", 60)]},
        {"id": 11, "completed_by": {"id": 2, "email": "b@x.org"},
         "result": [rect("r1", 5)]}]},  # the same id by another annotator: a box of its own
        {"id": 2, "data": {"image": "b.png"}, "annotations": [
            {"id": 12, "completed_by": {"id": 1, "email": "a@x.org"},
             "result": [rect("r1", 5)]}]}]  # the same id on another image: its own too
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks))
    ts, summary = import_export(path, images_root=tmp_path)
    reason = "box: duplicate region id in one annotation or prediction"
    assert summary.rejected[reason] == 1
    assert "annotation 10, region r1" in str(summary.examples[reason])
    kept = ts.boxes.sort_values(["image_id", "annotator", "x0"])
    assert kept[["image_id", "annotator", "object_id", "x0"]].values.tolist() == [
        ["1", "a@x.org", "r1", 5.0], ["1", "a@x.org", "r2", 60.0], ["1", "b@x.org", "r1", 5.0],
        ["2", "a@x.org", "r1", 5.0]]  # the first of the repeated pair stays


def test_a_number_past_float_range_costs_its_value_not_the_file(tmp_path):
    # 1e400 is valid JSON but no float: the box it stands in is rejected, the rest is read
    path = tmp_path / "export.json"
    region = json.dumps(_rect(rid="far")).replace('"x": 10', '"x": 1e400')
    path.write_text(f'[{{"id": 1, "data": {{"image": "x.png", "width": 100, "height": 100}}, '
                    f'"annotations": [{{"id": 1, "completed_by": 1, "lead_time": 1e400, '
                    f'"result": [{region}, {json.dumps(_rect(rid="ok"))}]}}]}}]')
    ts, summary = import_export(path)
    assert ts.boxes.object_id.tolist() == ["ok"]
    assert summary.rejected == {"box: missing or non-numeric x/y/width/height": 1}
    assert summary.examples["box: missing or non-numeric x/y/width/height"] == [
        "item 0 (task 1), annotation 1, region far"]
