"""A large export is walked in forked processes at once; the result must be that of one walk."""

import json
import os
import time

import pytest

from annotate.formats import ls_import
from annotate.formats.ls_import import import_export
from annotate.runtime.forked import ForkedParts, PartFailed, can_fork

needs_fork = pytest.mark.skipif(not can_fork(), reason="parts run in forked children on Linux")


@needs_fork
def test_parts_run_in_children_and_come_back_in_order():
    parent = os.getpid()
    with ForkedParts(lambda k: (k, os.getpid() != parent), 4) as children:
        assert len(children.children) == 3
        assert children.collect() == [(1, True), (2, True), (3, True)]


@needs_fork
@pytest.mark.parametrize(("fail", "message"), [
    ("raise", "ValueError: only in the child"),  # the child's traceback, in the error
    ("die", "its result could not be read (EOFError"),  # killed before it said a word
])
def test_a_part_that_fails_in_its_child_is_an_error_naming_it(fail, message):
    def part(k):
        if k == 2 and fail == "raise":
            raise ValueError("only in the child")
        if k == 2:
            os._exit(3)
        return k

    with ForkedParts(part, 3) as children, pytest.raises(PartFailed) as failed:
        children.collect()
    assert "part 2 failed in its child process" in str(failed.value)
    assert message in str(failed.value)


@needs_fork
def test_leaving_the_block_without_collecting_stops_and_reaps_the_children():
    with ForkedParts(lambda k: time.sleep(60), 3) as children:
        pids = [pid for pid, _ in children.children]
    for pid in pids:  # reaped: not even a zombie is left
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _rect(rid, x=10.0, label="cat", **extra):
    return {"id": rid, "type": "rectanglelabels", "from_name": "label", "to_name": "image",
            "original_width": 100, "original_height": 80,
            "value": {"x": x, "y": 10, "width": 20, "height": 20, "rotation": 0,
                      "rectanglelabels": [label]}, **extra}


def _export(n: int) -> list:
    """`n` tasks with something unusual every few: every kind of drop, spread over the file."""
    tasks = []
    for i in range(n):
        results = [_rect(f"t{i}a"), _rect(f"t{i}b", x=50, label="dog" if i % 2 else "cat"),
                   {"id": f"t{i}c", "type": "textarea", "from_name": "caption",
                    "to_name": "image", "value": {"text": [f"caption {i}"]}}]
        if i % 7 == 3:
            results.append(_rect(f"t{i}bad", x="far"))  # one bad value: the loose reader
        if i % 11 == 5:
            results.append({"id": f"t{i}r", "type": "rectangle", "from_name": "box",
                            "to_name": "image", "original_width": 100, "original_height": 80,
                            "value": {"x": 5, "y": 5, "width": 10, "height": 10}})
            results.append({"id": f"t{i}r", "type": "labels", "from_name": "kind",
                            "to_name": "image", "value": {"labels": ["bird"]}})
        annotations = [{"id": 10 * i + k, "completed_by": {"id": k, "email": f"p{k}@x.org"},
                        "result": results if k == 1 else results[:1] + results[2:],
                        "was_cancelled": i % 13 == 6 and k == 2}
                       for k in (1, 2)]
        task = {"id": i, "data": {"image": f"/data/local-files/?d=img/{i}.png"},
                "annotations": annotations,
                "predictions": [{"id": i, "model_version": "v1", "score": 0.5,
                                 "result": [_rect(f"p{i}", score=0.9)]}]}
        tasks.append(task)
    tasks[4] = "garbage"
    tasks[9]["data"] = None
    tasks[17] = dict(tasks[2])  # a repeated task id, far from its first
    tasks[25]["annotations"][0]["result"] = None
    return tasks


@needs_fork
def test_an_export_walked_in_parts_imports_exactly_as_in_one_walk(tmp_path):
    path = tmp_path / "export.json"
    path.write_text(json.dumps(_export(40)))
    one = import_export(path, workers=1)
    parts = import_export(path, workers=4)
    assert ls_import._parts(40, 4) == 4
    for table in ("images", "annotations", "boxes", "captions"):
        assert getattr(one[0], table).equals(getattr(parts[0], table)), table
    assert vars(one[1]) == vars(parts[1])
    summary = parts[1]
    assert summary.tasks_read == 40 and summary.boxes > 100
    assert summary.boxes == one[1].boxes
    # locations name the file's items, whichever process walked them and after rejected ones
    assert summary.examples["task: not an object"] == ["item 4"]
    assert summary.examples["annotation: `result` is null"] == [
        "item 25 (task 25), annotation 251"]
    duplicate = next(r for r in summary.rejected if r.startswith("task: duplicate task id"))
    assert summary.examples[duplicate] == ["item 17 (task 2): image_id 2"]
    bad = next(r for r in summary.rejected if "non-numeric" in r)
    assert summary.rejected[bad] == 10  # two annotators in each of tasks 3, 10, 24, 31, 38
    assert summary.examples[bad][0] == "item 3 (task 3), annotation 31, region t3bad"


def test_the_walk_is_split_only_when_each_part_is_large_enough(monkeypatch):
    monkeypatch.setattr(ls_import, "cores", lambda: 16)
    assert ls_import._parts(10, None) == 1
    assert ls_import._parts(2 * ls_import.TASKS_PER_PART, None) == 2
    assert ls_import._parts(100 * ls_import.TASKS_PER_PART, None) == ls_import.MAX_PARTS
    assert ls_import._parts(10, 3) == 3 and ls_import._parts(2, 3) == 2
