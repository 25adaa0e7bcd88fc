"""A corpus of broken and unusual inputs, one class of problem per test (issue 13).

Each case asserts the exact kept / rejected / nulled counts and that the message names where the
problem is; nothing ends in a traceback, a location-less error or a silent change.
"""

import base64
import codecs
import io
import json
import os
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from annotate.cli import main
from annotate.formats.jsonio import ExportError
from annotate.formats.labels import LabelConfig
from annotate.formats.ls_import import import_export
from annotate.formats.readers import import_file, import_set
from annotate.formats.yolo_import import from_yolo
from annotate.runtime.errors import UserError
from annotate.tables import store
from tests.conftest import LS_1_23

PNG = io.BytesIO()
Image.new("RGB", (40, 30), "red").save(PNG, format="PNG")
PNG_BYTES = PNG.getvalue()
DATA_URL = "data:image/png;base64," + base64.b64encode(PNG_BYTES).decode()


def rect(rid="r1", x=10, y=10, w=20, h=20, label="cat", ow=100, oh=100, **extra):
    value = {"x": x, "y": y, "width": w, "height": h, "rotation": 0,
             "rectanglelabels": [label]}
    value.update({k: v for k, v in extra.items() if k in ("rotation",)})
    region = {"id": rid, "type": "rectanglelabels", "from_name": "label", "to_name": "image",
              "original_width": ow, "original_height": oh, "value": value}
    region.update({k: v for k, v in extra.items() if k not in ("rotation",)})
    return region


def ann(aid=1, user=None, result=None, **extra):
    out = {"id": aid, "completed_by": user if user is not None else {"id": 1, "email": "a@x"},
           "result": [rect()] if result is None else result}
    out.update(extra)
    return out


def task(tid=1, image="x.png", annotations=None, **extra):
    out = {"id": tid, "data": {"image": image, "width": 100, "height": 100},
           "annotations": annotations or [ann()]}
    out.update(extra)
    return out


def run(tmp_path, tasks, **kwargs):
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks))
    return import_export(path, **kwargs)


def only(counter, fragment):
    """The count of the one reason containing `fragment` (and that there is exactly one)."""
    matches = [r for r in counter if fragment in r]
    assert len(matches) == 1, (fragment, dict(counter))
    return counter[matches[0]]


def examples(summary, fragment):
    (reason,) = [r for r in summary.examples if fragment in r]
    return summary.examples[reason]


# 1. image references of every kind ------------------------------------------------------------

def test_inline_data_url_image_imports_and_is_written_under_the_set(tmp_path):
    tasks = [task(1, DATA_URL, [ann(result=[rect(ow=40, oh=30, w=50, h=50)])]),
             task(2, "data:image/png;base64,@@@notbase64", [ann(2)])]
    ts, summary = run(tmp_path, tasks)
    assert summary.images_inline == 1
    assert only(summary.rejected, "image unreadable") == 1
    assert "item 1 (task 2)" in examples(summary, "image unreadable")[0]
    image = ts.images.iloc[0]
    assert (image.width, image.height) == (40, 30)  # from the decoded bytes
    assert image.sha256 == __import__("hashlib").sha256(PNG_BYTES).hexdigest()
    (tmp_path / "export.json").write_text(json.dumps(tasks[:1]))
    import_set(tmp_path / "export.json", tmp_path / "set")
    saved = store.load(tmp_path / "set").images.iloc[0]
    assert saved.path.startswith(str((tmp_path / "set" / "media").resolve()))
    with open(saved.path, "rb") as handle:
        assert handle.read() == PNG_BYTES


def test_probing_never_raises(tmp_path):
    long_name = "a" * 5000 + ".png"  # OSError: File name too long, if probed carelessly
    tasks = [task(1, long_name), task(2, "with\x00nul.png"), task(3, "http://[::1/x.png")]
    ts, summary = run(tmp_path, tasks)
    assert len(ts.images) == 3 and summary.images_missing == 3


# 2. confinement -------------------------------------------------------------------------------

@pytest.mark.parametrize("ref", ["../outside.png", "OUTSIDE_ABS", "file://OUTSIDE_ABS",
                                 "/data/local-files/?d=../outside.png"])
def test_references_outside_the_images_root_are_never_opened(tmp_path, ref):
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside.png"
    outside.write_bytes(PNG_BYTES)
    ref = ref.replace("OUTSIDE_ABS", str(outside))
    ts, summary = run(root, [task(1, ref)], images_root=root)
    assert summary.images_outside_root == 1 and summary.images_missing == 0
    assert ts.images.path.iloc[0] == ref  # the reference is kept as given
    assert ts.images.sha256.isna().all()  # never read
    ts, summary = run(root, [task(1, ref)], images_root=root, allow_outside_root=True)
    assert summary.images_outside_root == 0 and len(ts.images.sha256.iloc[0]) == 64
    with pytest.raises(ExportError, match="outside the images root"):
        import_set(root / "export.json", tmp_path / "set", strict=True, images_root=root)


def test_etc_passwd_is_not_read(tmp_path):
    ts, summary = run(tmp_path, [task(1, "/etc/passwd")])
    assert summary.images_outside_root == 1 and ts.images.sha256.isna().all()
    assert "images root" in str(summary)


# 3. duplicate task ids ------------------------------------------------------------------------

def test_duplicate_task_is_rejected_with_everything_attached(tmp_path):
    first = task(1, "a.png", [ann(1, {"id": 1, "email": "a@x"}), ann(2, {"id": 2, "email": "b@x"})])
    second = task(1, "b.png", [ann(3, {"id": 1, "email": "a@x"}, [rect("z", label="dog")])],
                  predictions=[{"id": 9, "model_version": "m", "result": [rect("p")]}])
    third = task(2, "c.png", [ann(4)], data={"image": "c.png", "image_id": "1"})  # same image id
    ts, summary = run(tmp_path, [first, second, third])
    assert summary.tasks_read == 3 and summary.tasks_kept == 1
    assert only(summary.rejected, "duplicate task id or image id") == 2
    assert only(summary.rejected, "annotation: its task was rejected") == 2
    assert only(summary.rejected, "prediction: its task was rejected") == 1
    assert set(ts.images.path) == {"a.png"}
    assert sorted(ts.annotations.annotator) == ["a@x", "b@x"]  # image a's annotations intact
    assert set(ts.boxes.label) == {"cat"} and set(ts.boxes.source) == {"human"}
    assert "item 1 (task 1)" in examples(summary, "duplicate task id")[0]


# 4. one person, one annotator -----------------------------------------------------------------

def test_user_id_int_object_and_email_are_one_annotator(tmp_path):
    tasks = [task(1, "a.png", [ann(1, 7)]), task(2, "b.png", [ann(2, {"id": 7})]),
             task(3, "c.png", [ann(3, {"id": 7, "email": "ann@x.org"})]),
             task(4, "d.png", [ann(4, 8)])]
    ts, summary = run(tmp_path, tasks)
    assert sorted(ts.annotations.annotator.unique()) == ["8", "ann@x.org"]
    assert (ts.annotations.annotator == "ann@x.org").sum() == 3
    assert summary.annotator_ids == {"7": "ann@x.org"}
    assert "7 -> ann@x.org" in str(summary)


# 5. missing is not empty ----------------------------------------------------------------------

def test_missing_null_or_non_list_result_is_rejected_not_empty(tmp_path):
    no_result = {"id": 2, "completed_by": 2}
    tasks = [task(1, "a.png", [ann(1, 1, []), no_result, ann(3, 3, None) | {"result": None},
                               ann(4, 4, None) | {"result": {"x": 1}}])]
    ts, summary = run(tmp_path, tasks)
    assert list(ts.annotations.annotator) == ["1"] and len(ts.boxes) == 0  # [] = drew nothing
    assert only(summary.rejected, "no `result`") == 1
    assert only(summary.rejected, "`result` is null") == 1
    assert only(summary.rejected, "`result` is not a list") == 1
    assert examples(summary, "no `result`") == ["item 0 (task 1), annotation 2"]


def test_identity_comes_from_the_user_id_and_normalised_emails(tmp_path):
    """One person per user id whatever the e-mail's case, spaces or later change; two ids
    with one e-mail are one person; an e-mail without an id joins the person it names."""
    tasks = [task(1, "a.png", [ann(1, {"id": 7, "email": " Ann@X.org "})]),
             task(2, "b.png", [ann(2, {"id": 7, "email": "ann@x.org"})]),
             task(3, "c.png", [ann(3, {"id": 7, "email": "ann@new.org"})]),  # changed later
             task(4, "d.png", [ann(4, {"id": 9, "email": "ANN@x.org"})]),  # a second account
             task(5, "e.png", [ann(5, {"email": "ann@X.ORG"})]),  # no id at all
             task(6, "f.png", [ann(6, {"id": 8, "email": "bob@x.org"})])]
    ts, summary = run(tmp_path, tasks)
    # the person keeps the first spelling seen (export -> import stays lossless)
    assert ts.annotations.annotator.value_counts().to_dict() == {" Ann@X.org ": 5,
                                                                 "bob@x.org": 1}
    assert summary.notes.count(
        "user id 7 appears with several e-mails ( Ann@X.org , ann@new.org): one person, named "
        " Ann@X.org ") == 1
    assert "user ids 7, 9 share the e-mail  Ann@X.org : one person" in summary.notes
    assert not any("bob" in note for note in summary.notes)


def test_task_without_the_image_field_is_rejected_unless_named(tmp_path):
    tasks = [{"id": 1, "data": {"img": "a.png", "text": "x"}, "annotations": [ann()]}]
    ts, summary = run(tmp_path, tasks, labels=["cat"])
    assert summary.tasks_kept == 0 and only(summary.rejected, "no 'image' field") == 1
    assert "data keys img, text" in examples(summary, "no 'image' field")[0]
    ts, summary = run(tmp_path, tasks, image_field="img")
    assert list(ts.images.path) == ["a.png"] and len(ts.boxes) == 1


def test_was_cancelled_as_text(tmp_path):
    tasks = [task(1, "a.png", [ann(1, 1, was_cancelled="false"), ann(2, 2, was_cancelled="true"),
                               ann(3, 3, was_cancelled="maybe")])]
    ts, summary = run(tmp_path, tasks)
    assert list(ts.annotations.annotator) == ["1"] and summary.skipped == 1
    assert only(summary.rejected, "was_cancelled is not a boolean") == 1


# 6. one bad value never refuses the whole file ------------------------------------------------

def test_bad_values_are_nulled_or_rejected_with_their_location(tmp_path):
    tasks = [task(1, "a.png", [
        ann(1, 1, [rect("r1"), rect("r2", rotation="abc"), rect("r3", ow=0), rect("r4", ow="320")],
            created_at="garbage", lead_time="12s"),
        ann(2, 2, created_at="2026-01-02T03:04:05Z", lead_time=-5)],
        predictions=[{"id": 5, "model_version": "m1", "score": "high",
                      "result": [rect("p1"), rect("p2", score=1.7), rect("p3", score=0.4)]}])]
    ts, summary = run(tmp_path, tasks)
    assert summary.tasks_kept == 1 and len(ts.annotations) == 2
    assert only(summary.rejected, "rotation is not a number") == 1
    assert examples(summary, "rotation is not a number") == [
        "item 0 (task 1), annotation 1, region r2"]
    assert only(summary.nulled, "original_width/height not a") == 2  # 0 and "320"
    assert only(summary.nulled, "created_at not an ISO 8601") == 1
    assert only(summary.nulled, "lead_time not a non-negative") == 2  # "12s" and -5
    assert only(summary.nulled, "score not a number in [0, 1]") == 2  # "high" (fallback), 1.7
    assert "item 0 (task 1), annotation 1" in examples(summary, "created_at")[0]
    human = ts.boxes[ts.boxes.source == "human"]
    assert sorted(human.object_id) == ["r1", "r1", "r3", "r4"]  # sizes nulled, boxes kept
    model = ts.boxes[ts.boxes.source == "model:m1"].set_index("object_id").score
    assert model.isna().tolist() == [True, True, False] and model["p3"] == 0.4
    assert ts.annotations.lead_time.isna().all() and ts.annotations.created_at.notna().sum() == 1


# 7. no traceback, ever ------------------------------------------------------------------------

def test_value_that_is_a_list_and_a_non_image_file(tmp_path):
    (tmp_path / "notes.png").write_text("this is not an image")
    tasks = [task(1, "a.png", [ann(result=[rect("ok"), {"id": "bad", "type": "rectanglelabels",
                                                         "value": [1, 2, 3]}, "junk"])]),
             task(2, "notes.png", [ann(2)])]
    ts, summary = run(tmp_path, tasks)
    assert only(summary.rejected, "`value` is not an object") == 1
    assert only(summary.rejected, "result: not an object") == 1
    assert only(summary.rejected, "image unreadable") == 1
    assert "notes.png: not an image" in examples(summary, "image unreadable")[0]
    assert list(ts.boxes.object_id) == ["ok"]


@pytest.mark.parametrize(("content", "message"), [
    (codecs.BOM_UTF16_LE + '[{"id": 1}]'.encode("utf-16-le"), "UTF-16 text"),
    ('[{"id": 1}]'.encode("utf-16-le"), "UTF-16 or UTF-32"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'[{"id": 1, "data": {"image": "a.png"},}]', "line 1, column 39: trailing comma"),
    (b'[\n{"id": 1,\n "data": {', "the file ends early"),
    (b"", "empty file"),
    (b'{"hello": 1}', "expected a JSON list of tasks, found an object"),
    (b'"just text"', "expected a JSON list of tasks, found a string"),
])
def test_unreadable_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "e.json"
    path.write_bytes(content)
    with pytest.raises(ExportError, match=message) as err:
        import_file(path)
    assert str(path) in str(err.value)


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(codecs.BOM_UTF8 + json.dumps([task()]).encode())
    ts, _ = import_file(path)
    assert len(ts.boxes) == 1


def test_malformed_labeling_config_names_the_file(tmp_path):
    path = tmp_path / "config.xml"
    path.write_text('<View><Image name="image" value="$image"/><RectangleLabels name="l"')
    with pytest.raises(UserError, match=r"config\.xml: not a valid labeling config"):
        LabelConfig.from_file(path)


def test_cli_user_errors_are_one_line_and_bugs_keep_their_traceback(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_bytes(codecs.BOM_UTF16_LE + "[]".encode("utf-16-le"))
    done = subprocess.run([sys.executable, "-m", "annotate.cli", "import", str(bad), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and str(bad) in done.stderr
    code = ("import sys, annotate.cli as c; c.cmd_summary = lambda a: 1 / 0; "
            "sys.argv = ['annotate', 'summary', 'x']; sys.exit(c.main())")
    bug = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert bug.returncode != 0 and "ZeroDivisionError" in bug.stderr
    assert "Traceback" in bug.stderr


def test_labels_config_gives_the_image_field(tmp_path, capsys):
    config = tmp_path / "config.xml"
    config.write_text('<View><Image name="img" value="$photo"/><RectangleLabels name="label" '
                      'toName="img"><Label value="cat"/></RectangleLabels></View>')
    (tmp_path / "e.json").write_text(json.dumps([{"id": 1, "data": {"photo": "a.png"},
                                                  "annotations": [ann()]}]))
    assert main(["import", str(tmp_path / "e.json"), "--out", str(tmp_path / "s"), "--labels",
                 str(config)]) == 0
    assert list(store.load(tmp_path / "s").images.path) == ["a.png"]


# JSON-MIN --------------------------------------------------------------------------------------

def test_json_min_bad_rows_are_counted(tmp_path):
    rows = json.loads((LS_1_23 / "min.json").read_text())
    rows[0]["label"][0]["x"] = "left"
    rows[1]["lead_time"] = "slow"
    del rows[2]["annotator"]
    rows.append("not a row")
    path = tmp_path / "min.json"
    path.write_text(json.dumps(rows))
    ts, summary = import_export(path, images_root=LS_1_23)
    assert summary.shape == "JSON-MIN" and summary.annotations_read == 9
    assert only(summary.rejected, "non-numeric x/y/width/height") == 1
    assert only(summary.rejected, "annotation: no annotator") == 1
    assert only(summary.rejected, "annotation: not an object") == 1
    assert only(summary.nulled, "lead_time") == 1
    assert len(ts.annotations) == 7


# 8. COCO as people have it --------------------------------------------------------------------

def coco(images, annotations, categories=({"id": 1, "name": "cat"},)):
    return {"annotations": annotations, "images": images, "categories": list(categories)}


def test_coco_detection_ignores_key_order_and_keeps_ids(tmp_path):
    data = coco([{"id": 139, "file_name": "a.jpg", "width": 100, "height": 80},
                 {"file_name": "noid.jpg", "width": 10, "height": 10},
                 {"id": 7, "file_name": "b.jpg", "width": 50, "height": 50}],
                [{"id": 1, "image_id": 139, "category_id": 1, "bbox": [1, 2, 30, 40],
                  "iscrowd": "false"},
                 {"id": 2, "image_id": 139, "category_id": 1, "bbox": [0, 0, 100, 80],
                  "iscrowd": 1},
                 {"id": 3, "image_id": 139, "category_id": 9, "bbox": [1, 1, 5, 5]},
                 {"id": 4, "image_id": 7, "category_id": 1, "bbox": [1, 1, 5, "x"]},
                 {"id": 5, "image_id": 7, "category_id": 1, "bbox": [1, 1, 5, 5],
                  "iscrowd": "maybe"}])
    path = tmp_path / "instances.json"
    path.write_text(" " * 5000 + json.dumps(data))  # the first 4 KB say nothing
    ts, summary = import_file(path)
    assert summary.shape == "COCO instances"
    assert sorted(ts.images.image_id) == ["139", "7"]
    assert only(summary.rejected, "without an `id`") == 1
    assert only(summary.rejected, "category_id not in") == 1
    assert only(summary.rejected, "bbox is not") == 1
    assert only(summary.rejected, "iscrowd is not a boolean") == 1
    assert "annotation id 3" in examples(summary, "category_id not in")[0]
    assert sorted(ts.boxes.source) == ["crowd", "human"] and summary.crowd_regions == 1


def test_coco_several_annotators_in_one_file(tmp_path):
    data = coco([{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100, "annotator": "A"},
                 {"id": 2, "file_name": "a.jpg", "width": 100, "height": 100, "annotator": "B"},
                 {"id": 3, "file_name": "a.jpg", "width": 100, "height": 100, "annotator": "C"}],
                [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10]},
                 {"id": 2, "image_id": 2, "category_id": 1, "bbox": [2, 1, 10, 10]}])
    (tmp_path / "c.json").write_text(json.dumps(data))
    ts, summary = import_file(tmp_path / "c.json")
    assert list(ts.images.image_id) == ["1"] and summary.tasks_kept == 1
    assert sorted(ts.annotations.annotator) == ["A", "B", "C"]  # C saw it and drew nothing
    assert sorted(ts.boxes.annotator) == ["A", "B"]
    per_annotation = coco([{"id": 1, "file_name": "a.jpg", "width": 9, "height": 9}],
                          [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2],
                            "annotator": "x"},
                           {"id": 2, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2],
                            "annotator": "y"}])
    (tmp_path / "d.json").write_text(json.dumps(per_annotation))
    ts, summary = import_file(tmp_path / "d.json")
    assert sorted(ts.annotations.annotator) == ["x", "y"]
    assert any("seen the images they annotated" in n for n in summary.notes)


def test_coco_captions_only(tmp_path):
    data = {"images": [{"id": 5, "file_name": "a.jpg", "width": 10, "height": 10}],
            "annotations": [{"id": 1, "image_id": 5, "caption": " A cat. "},
                            {"id": 2, "image_id": 5, "caption": "Two cats."},
                            {"id": 3, "image_id": 6, "caption": "orphan"}]}
    (tmp_path / "captions_x.json").write_text(json.dumps(data))
    ts, summary = import_file(tmp_path / "captions_x.json")
    assert summary.shape == "COCO captions"
    assert list(ts.captions.caption) == ["A cat.", "Two cats."]
    assert list(ts.captions.annotator) == ["coco-1", "coco-2"]
    assert only(summary.rejected, "caption: image_id not in") == 1


def test_nan_and_infinity_tokens_refuse_one_value_not_the_file(tmp_path):
    """`json.dumps` writes NaN and Infinity, which are not JSON: each stands for a missing
    value, nulled or rejected where it is, counted; the rest of the file imports."""
    tasks = [task(1, "a.png", [ann(1, result=[rect("r1"), rect("r2", x="NAN_TOKEN")],
                                   lead_time="INF_TOKEN")]),
             task(2, "b.png", [ann(2, result=[rect("r3")], lead_time=4.5)])]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks).replace('"NAN_TOKEN"', "NaN")
                    .replace('"INF_TOKEN"', "-Infinity"))
    ts, summary = import_export(path)
    assert len(ts.images) == 2 and sorted(ts.boxes.object_id) == ["r1", "r3"]
    assert only(summary.rejected, "non-numeric x/y/width/height") == 1
    assert "region r2" in examples(summary, "non-numeric x/y/width/height")[0]
    assert ts.annotations.lead_time.isna().tolist() == [True, False]
    assert "2 NaN/Infinity number tokens (not JSON) read as missing values" in \
        " ".join(summary.notes)
    data = coco([{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}],
                [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
                 {"id": 2, "image_id": 1, "category_id": 1, "bbox": ["NAN_TOKEN", 1, 5, 5]},
                 {"id": 3, "image_id": 1, "category_id": 1, "bbox": [1e308, 1, 5, 5]}])
    (tmp_path / "coco.json").write_text(json.dumps(data).replace('"NAN_TOKEN"', "NaN"))
    ts, summary = import_file(tmp_path / "coco.json")
    assert list(ts.boxes.object_id) == ["1"]
    assert "annotation id 2" in examples(summary, "bbox is not")[0]
    assert "annotation id 3" in examples(summary, "outside the image")[0]
    assert "1 NaN/Infinity number tokens" in " ".join(summary.notes)


def test_instances_given_as_captions_is_a_clear_error_and_writes_nothing(tmp_path, capsys):
    from annotate.cli import main as annotate

    instances = coco([{"id": 5, "file_name": "a.jpg", "width": 10, "height": 10}],
                     [{"id": 1, "image_id": 5, "category_id": 1, "bbox": [1, 1, 5, 5]}])
    captions = {"images": instances["images"],
                "annotations": [{"id": 1, "image_id": 5, "caption": "a cat"}]}
    (tmp_path / "instances.json").write_text(json.dumps(instances))
    (tmp_path / "captions.json").write_text(json.dumps(captions))
    for export, extra in (("instances.json", "instances.json"),   # the same file twice
                          ("captions.json", "instances.json")):   # the two swapped
        assert annotate(["import", str(tmp_path / export), "--captions",
                         str(tmp_path / extra), "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert f"{tmp_path / extra}: passed as --captions but its annotations have no " \
               "`caption` (they have boxes: it is a COCO instances file" in err
        assert "Traceback" not in err and not (tmp_path / "out").exists()
    assert annotate(["import", str(tmp_path / "instances.json"), "--captions",
                     str(tmp_path / "captions.json"), "--out", str(tmp_path / "out")]) == 0


def test_captions_that_are_not_text_are_counted_not_a_crash(tmp_path):
    data = {"images": [{"id": 5, "file_name": "a.jpg", "width": 10, "height": 10}],
            "annotations": [{"id": 1, "image_id": 5, "caption": 7},
                            {"id": 2, "image_id": 5, "caption": None}]}
    (tmp_path / "instances.json").write_text(json.dumps(coco(
        data["images"], [{"id": 1, "image_id": 5, "category_id": 1, "bbox": [1, 1, 5, 5]}])))
    (tmp_path / "captions.json").write_text(json.dumps(data))
    ts, summary = import_file(tmp_path / "instances.json",
                              coco_captions=str(tmp_path / "captions.json"))
    assert ts.captions.empty and only(summary.rejected, "caption: empty or not text") == 2


# 9. YOLO line by line -------------------------------------------------------------------------

def yolo_set(tmp_path, lines, names="names: [cat, dog]\n"):
    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "labels" / "train").mkdir(parents=True)
    Image.new("RGB", (100, 50)).save(tmp_path / "images" / "train" / "a.png")
    (tmp_path / "labels" / "train" / "a.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "labels" / "train" / "ghost.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (tmp_path / "data.yaml").write_text(f"train: images/train\n{names}")
    return tmp_path / "data.yaml"


def test_yolo_bad_lines_are_rejected_with_file_and_line(tmp_path):
    path = yolo_set(tmp_path, ["0 0.5 0.5 0.2 0.2", "1.7 0.5 0.5 0.2 0.2", "2 0.5 0.5 0.2 0.2",
                               "0 1.5 0.5 0.2 0.2", "0 0.5 0.5", "1 0.5 0.5 0.2 0.2 0.9",
                               "0 0.5 0.5 0 0.1", "0 0.99 0.5 0.2 0.2"])
    ts, summary = from_yolo(path)
    label = tmp_path / "labels" / "train" / "a.txt"
    assert examples(summary, "class is not an integer") == [f"{label}:2"]
    assert examples(summary, "class outside names") == [f"{label}:3"]
    assert examples(summary, "coordinate outside [0, 1]") == [f"{label}:4"]
    assert examples(summary, "5 or 6 fields") == [f"{label}:5"]
    assert examples(summary, "width or height is 0") == [f"{label}:7"]
    assert examples(summary, "outside the image by more than") == [f"{label}:8"]
    assert only(summary.rejected, "label file without an image") == 1  # ghost.txt
    assert sorted(ts.boxes.source) == ["human", "model:yolo"]
    assert ts.boxes[ts.boxes.source == "human"][["x0", "x1"]].values.tolist() == [[40, 60]]


@pytest.mark.parametrize(("names", "message"), [
    ("nc: 2\n", r"data.yaml: no `names` list"),
    ("names: [cat, dog\n", r"data.yaml:3: invalid YAML"),
    # a repeated name would merge two classes' boxes into one label without a word
    ("names: [square, square, circle]\n",
     r"data.yaml: `names` must name each class once.*'square' is class 0, 1"),
    ("names: {0: cat, 1: ' cat'}\n", r"'cat' is class 0, 1"),
    ("names: [cat, '']\n", r"an empty name"),
])
def test_yolo_bad_data_yaml(tmp_path, names, message):
    path = yolo_set(tmp_path, ["0 0.5 0.5 0.2 0.2"], names)
    with pytest.raises(ExportError, match=message):
        from_yolo(path)


# 10. nothing quietly empty or stale -----------------------------------------------------------

def test_import_that_keeps_nothing_fails(tmp_path, capsys):
    (tmp_path / "e.json").write_text(json.dumps([{"id": 1, "data": {"text": "x"}}]))
    assert main(["import", str(tmp_path / "e.json"), "--out", str(tmp_path / "s")]) == 2
    assert "nothing imported: 1 tasks/images read, none kept" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_failed_reimport_leaves_the_old_set_and_says_so(tmp_path, capsys):
    assert main(["import", str(LS_1_23 / "snapshot_full.json"), "--out", str(tmp_path / "s")]) == 0
    before = store.load(tmp_path / "s").counts()
    (tmp_path / "bad.json").write_text("[{")
    capsys.readouterr()
    assert main(["import", str(tmp_path / "bad.json"), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and f"the set already in {tmp_path / 's'} was left as it was" in err
    assert store.load(tmp_path / "s").counts() == before


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        import_set(LS_1_23 / "snapshot_full.json", tmp_path / "s")
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "s").iterdir()}
    assert set(modes.values()) == {0o644}, modes


def test_reliability_without_any_unit_says_so(tmp_path, capsys):
    from quality.cli import main as quality

    import_set(LS_1_23 / "snapshot_full.json", tmp_path / "s")
    one = store.load(tmp_path / "s")
    keep = one.annotations.annotator == "ann1@example.com"
    single = type(one)(one.images, one.annotations[keep],
                       one.boxes[one.boxes.annotator.isin(["ann1@example.com"])],
                       one.captions[one.captions.annotator == "ann1@example.com"], one.labels)
    store.save(single, tmp_path / "single")
    assert quality(["reliability", str(tmp_path / "single")]) == 2
    err = capsys.readouterr().err
    assert "no agreement to measure" in err and "nan" not in err.lower()


# 12. the live server's options cannot be misread ----------------------------------------------

def test_generated_password_starting_with_a_dash_stays_a_value(tmp_path):
    import argparse

    from tests.ls_server import server_args

    parser = argparse.ArgumentParser()
    for name in ("--data-dir", "--username", "--password", "--user-token", "--internal-host",
                 "--port"):
        parser.add_argument(name)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args(server_args(tmp_path, 8080, "-starts-with-dash", "tok"))
    assert args.password == "-starts-with-dash" and args.port == "8080"


def test_round_trip_still_exact_after_copying_images(tmp_path):
    shutil.copytree(LS_1_23 / "imgs", tmp_path / "imgs")
    ts, summary = import_export(LS_1_23 / "snapshot_full.json", images_root=tmp_path)
    assert summary.images_missing == 0 and ts.images.sha256.notna().all()
