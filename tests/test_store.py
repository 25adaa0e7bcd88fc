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


def test_a_damaged_set_is_an_error_naming_the_file_for_every_command(small_set, tmp_path,
                                                                    capsys):
    """A truncated Parquet file, or a table edited by hand with a box outside its image: the
    store, `quality reliability` and `evaluate-pipeline --data` each stop with a message that
    names the file or the row, never a traceback, and write nothing."""
    from quality.cli import main as quality
    from quality.run.cli import main as pipeline

    cut = save(small_set, tmp_path / "cut")
    raw = (cut / "boxes.parquet").read_bytes()
    (cut / "boxes.parquet").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(StoreError, match=r"boxes\.parquet: not a readable Parquet file"):
        load(cut)
    edited = save(small_set, tmp_path / "edited")
    boxes = pd.read_parquet(edited / "boxes.parquet")
    boxes.loc[0, "x1"] = 1e6
    boxes.to_parquet(edited / "boxes.parquet")
    for folder, message in ((cut, "not a readable Parquet file"),
                            (edited, "box outside the image")):
        assert quality(["reliability", str(folder), "--json", str(tmp_path / "r.json")]) == 2
        assert message in capsys.readouterr().err
        assert pipeline(["--preset", "smoke", "--data", str(folder),
                         "--out", str(tmp_path / f"run-{folder.name}")]) == 2
        error = capsys.readouterr().err
        assert message in error and "Traceback" not in error
        assert not (tmp_path / "r.json").exists()
        assert not (tmp_path / f"run-{folder.name}" / "tables" / "meta.json").exists()


def test_two_writers_of_one_folder_leave_one_whole_set(small_set, tmp_path):
    """Two imports into the same --out at once: they take turns (a lock on the folder), so the
    folder holds one whole set — the last written — never tables of one and meta of the
    other."""
    import threading

    from annotate.tables.schema import TableSet

    other = TableSet(small_set.images.iloc[:1], small_set.annotations[
        small_set.annotations.image_id == small_set.images.image_id.iloc[0]],
        small_set.boxes[small_set.boxes.image_id == small_set.images.image_id.iloc[0]],
        small_set.captions.iloc[:0], small_set.labels)
    folder = tmp_path / "shared"
    for _ in range(5):
        threads = [threading.Thread(target=save, args=(ts, folder))
                   for ts in (small_set, other, small_set, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        back = load(folder)  # raises on a mixed set (counts differ from meta)
        assert back.counts() in (small_set.counts(), other.counts())


def test_a_full_disk_stops_the_import_with_a_message_and_no_half_set(tmp_path, monkeypatch,
                                                                    capsys):
    """The disk fills while the boxes table is written: `annotate import` says so (exit 2, no
    traceback) and leaves no table set that loads, nor temporary files."""
    import errno
    import os

    from annotate.cli import main as annotate
    from tests.conftest import REPO

    written = pd.DataFrame.to_parquet

    def fill_up(frame, path, *args, **kwargs):
        if "boxes" in str(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return written(frame, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", fill_up)
    out = tmp_path / "set"
    assert annotate(["import", str(REPO / "data/demo/export.json"), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "No space left on device" in error and "Traceback" not in error
    with pytest.raises(StoreError, match="incomplete or interrupted"):
        load(out)
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
