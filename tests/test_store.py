import json

import pandas as pd
import pytest

from annotate.runtime.atomic import atomic_path, write_json
from annotate.tables.store import StoreError, load, save
from tests.conftest import frames_equal


def test_save_load_round_trip(small_set, tmp_path):
    save(small_set, tmp_path / "set")
    back = load(tmp_path / "set")
    for name, keys in [("images", ["image_id"]), ("annotations", ["image_id", "annotator"]),
                       ("boxes", ["image_id", "annotator", "object_id"]),
                       ("captions", ["image_id", "annotator"])]:
        frames_equal(back.table(name), small_set.table(name), keys)
    assert back.labels == ["cat", "dog"]
    meta = json.loads((tmp_path / "set" / "meta.json").read_text())
    assert meta["counts"] == {"images": 2, "annotations": 3, "boxes": 3, "captions": 1}


def test_split_column_survives(small_set, tmp_path):
    small_set.images["split"] = ["train", "test"]
    assert load(save(small_set, tmp_path / "s")).images.split.tolist() == ["train", "test"]


def test_incomplete_set_is_refused(small_set, tmp_path):
    folder = save(small_set, tmp_path / "set")
    pd.DataFrame(small_set.boxes.iloc[:1]).to_parquet(folder / "boxes.parquet")
    with pytest.raises(StoreError, match=r"1 rows but meta\.json says 3"):
        load(folder)
    (folder / "meta.json").unlink()
    with pytest.raises(StoreError, match="incomplete or interrupted"):
        load(folder)
    with pytest.raises(StoreError, match="not a table set"):
        load(tmp_path / "nowhere")


def test_invalid_set_is_not_written(small_set, tmp_path):
    small_set.boxes.loc[0, "label"] = "horse"
    with pytest.raises(ValueError, match="unknown label"):
        save(small_set, tmp_path / "bad")
    assert not (tmp_path / "bad" / "meta.json").exists()


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = write_json(tmp_path / "x.json", {"v": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text('{"v": 2, "trunc')
        raise RuntimeError("crash mid-write")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_the_data_version_follows_the_content_not_where_the_files_live(small_set):
    """Two checkouts of one data set (image paths differ, bytes the same) share a version; a
    changed image or box changes it."""
    from annotate.tables.schema import TableSet
    from annotate.tables.versions import data_version

    def with_images(images):
        return TableSet(images, small_set.annotations, small_set.boxes, small_set.captions,
                        small_set.labels)

    hashed = small_set.images.assign(sha256=["a" * 64, "b" * 64])
    here = with_images(hashed)
    there = with_images(hashed.assign(path=["/elsewhere/a.png", "/elsewhere/b.png"]))
    assert data_version(here) == data_version(there)
    other_bytes = with_images(hashed.assign(sha256=["c" * 64, "b" * 64]))
    assert data_version(other_bytes) != data_version(here)
    # an image whose file was never read is known by its path alone
    unread = with_images(small_set.images.assign(sha256=None))
    moved = with_images(unread.images.assign(path=["x.png", "b.png"]))
    assert data_version(unread) != data_version(moved)
    fewer_boxes = TableSet(here.images, here.annotations, here.boxes.iloc[:1], here.captions,
                           here.labels)
    assert data_version(fewer_boxes) != data_version(here)
