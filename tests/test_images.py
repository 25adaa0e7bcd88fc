"""What an image is: the file a reference names (no guessing between two files of one name),
inside the images root (links resolved), whole (a cut file is counted), at the size it is shown
(EXIF orientation), the same size for the importer, the YOLO data set and ultralytics' loader."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from annotate.formats.images import FOUND, MISSING, OUTSIDE, UNREADABLE, locate, locate_all
from annotate.formats.ls_import import import_export

ORIENTATION = 0x0112


def jpeg(path, size=(320, 240), orientation=None, quality=90):
    """A JPEG stored at `size` (width, height): white left half, black right half."""
    pixels = np.zeros((size[1], size[0], 3), np.uint8)
    pixels[:, : size[0] // 2] = 255
    exif = Image.Exif()
    if orientation:
        exif[ORIENTATION] = orientation
    Image.fromarray(pixels).save(path, quality=quality, exif=exif)
    return path


@pytest.mark.parametrize(("orientation", "shown"), [(None, (320, 240)), (1, (320, 240)),
                                                    (3, (320, 240)), (6, (240, 320)),
                                                    (8, (240, 320)), (5, (240, 320))])
def test_size_is_the_displayed_size(tmp_path, orientation, shown):
    jpeg(tmp_path / "a.jpg", orientation=orientation)
    found = locate("a.jpg", tmp_path)
    assert found.status == FOUND and (found.width, found.height) == shown


def test_a_file_cut_short_is_unreadable_not_an_image(tmp_path):
    raw = jpeg(tmp_path / "a.jpg").read_bytes()
    (tmp_path / "half.jpg").write_bytes(raw[: len(raw) // 2])
    Image.new("RGB", (50, 40)).save(tmp_path / "a.png")
    png = (tmp_path / "a.png").read_bytes()
    (tmp_path / "half.png").write_bytes(png[:-20])
    (tmp_path / "trailer.jpg").write_bytes(raw + b"\0" * 300)  # bytes after the end: fine
    frame = locate_all(["a.jpg", "half.jpg", "a.png", "half.png", "trailer.jpg"], tmp_path)
    assert frame.status.tolist() == [FOUND, UNREADABLE, FOUND, UNREADABLE, FOUND]
    assert "truncated" in frame.detail[1] and "half.jpg" in frame.detail[1]
    assert "no IEND chunk" in frame.detail[3]


def test_a_link_out_of_the_root_is_outside(tmp_path):
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    jpeg(elsewhere / "secret.jpg")
    jpeg(root / "inside.jpg")
    (root / "link.jpg").symlink_to(elsewhere / "secret.jpg")
    (root / "inner.jpg").symlink_to(root / "inside.jpg")
    frame = locate_all(["link.jpg", "inner.jpg"], root)
    assert frame.status.tolist() == [OUTSIDE, FOUND]
    assert frame.sha256[0] is None  # never opened nor hashed
    assert locate("link.jpg", root, allow_outside=True).status == FOUND
    # the same through Label Studio's local-files URLs (read without parsing the URL)
    local = "/data/local-files/?d="
    frame = locate_all([local + "link.jpg", local + "inner.jpg", local + "inside.jpg",
                        local + "../elsewhere/secret.jpg", local + "sub/../inside.jpg"], root)
    assert frame.status.tolist() == [OUTSIDE, FOUND, FOUND, OUTSIDE, FOUND]
    assert frame.path[2] == str(root / "inside.jpg") == frame.path[4]
    assert locate(local + "link.jpg", root, allow_outside=True).status == FOUND


def test_only_a_reference_that_names_a_file_resolves_to_it(tmp_path):
    jpeg(tmp_path / "a.jpg")
    (tmp_path / "sub").mkdir()
    refs = ["https://one.example/x/a.jpg", "https://two.example/y/a.jpg",  # share a name
            "sub/a.jpg",  # a relative path that does not exist: not the root's a.jpg
            "https://three.example/z/b.jpg"]
    jpeg(tmp_path / "b.jpg")
    frame = locate_all(refs, tmp_path)
    assert frame.status.tolist() == [MISSING, MISSING, MISSING, FOUND]
    assert "shared by other references" in frame.detail[0]
    (tmp_path / "one.example" / "x").mkdir(parents=True)  # a mirrored download names it
    jpeg(tmp_path / "one.example" / "x" / "a.jpg")
    assert locate_all(refs, tmp_path).status.tolist()[:2] == [FOUND, MISSING]


def test_exif_rotated_image_end_to_end_through_ultralytics(tmp_path):
    """Stored 320x240 with orientation 6, shown 240x320: the images table, the YOLO data set
    and ultralytics' loader all see 240x320 and the box where the annotator drew it."""
    from ultralytics.data.dataset import YOLODataset

    from annotate.formats.yolo import to_yolo

    jpeg(tmp_path / "rot.jpg", orientation=6)
    region = {"id": "r1", "type": "rectanglelabels", "from_name": "label", "to_name": "image",
              "value": {"x": 10, "y": 20, "width": 30, "height": 40, "rotation": 0,
                        "rectanglelabels": ["cat"]}}  # no original_width: the file decides
    task = {"id": 1, "data": {"image": "rot.jpg"},
            "annotations": [{"id": 1, "completed_by": 1, "result": [region]}]}
    (tmp_path / "export.json").write_text(json.dumps([task]))
    ts, _ = import_export(tmp_path / "export.json", labels=["cat"])
    assert ts.images[["width", "height"]].iloc[0].tolist() == [240, 320]
    box = ts.boxes.iloc[0]
    assert [box.x0, box.y0, box.x1, box.y1] == pytest.approx([24, 64, 96, 192])
    data_yaml = to_yolo(ts, tmp_path / "yolo")
    dataset = YOLODataset(img_path=str(data_yaml.parent / "images" / "train"), imgsz=320,
                          augment=False, data={"names": {0: "cat"}, "nc": 1, "channels": 3})
    image, original, _ = dataset.load_image(0)
    assert original == (320, 240)  # (height, width) as shown
    label = dataset.labels[0]
    assert label["shape"] == (320, 240)
    np.testing.assert_allclose(label["bboxes"][0], [60 / 240, 128 / 320, 72 / 240, 128 / 320],
                               atol=1e-5)
    # the picture itself is turned: the white half (stored left) is at the top when shown
    assert image[: image.shape[0] // 4].mean() > 200 and image[-image.shape[0] // 4:].mean() < 50


def test_the_file_decides_the_size_when_results_say_another(tmp_path):
    """Every region says 640x480, the file is 320x240: the image is 320x240 and the percent
    coordinates are converted against it (never a size the file does not have), with a note."""
    jpeg(tmp_path / "small.jpg")  # 320 x 240
    region = {"id": "r1", "type": "rectanglelabels", "original_width": 640,
              "original_height": 480, "value": {"x": 25, "y": 50, "width": 50, "height": 25,
                                                "rotation": 0, "rectanglelabels": ["cat"]}}
    tasks = [{"id": 1, "data": {"image": "small.jpg"},
              "annotations": [{"id": 1, "completed_by": 1, "result": [region]}]},
             {"id": 2, "data": {"image": "gone.jpg"},  # no file: the results' size stands
              "annotations": [{"id": 2, "completed_by": 1, "result": [region]}]}]
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    ts, summary = import_export(tmp_path / "export.json", labels=["cat"])
    sizes = ts.images.set_index("image_id")[["width", "height"]]
    assert sizes.loc["1"].tolist() == [320, 240] and sizes.loc["2"].tolist() == [640, 480]
    boxes = ts.boxes.set_index("image_id")
    assert boxes.loc["1", ["x0", "y0", "x1", "y1"]].tolist() == [80, 120, 240, 180]
    assert boxes.loc["2", ["x0", "y0", "x1", "y1"]].tolist() == [160, 240, 480, 360]
    (note,) = [n for n in summary.notes if "another image size than the file" in n]
    assert note.startswith("1 tasks") and "640x480, the file 320x240" in note
    assert sum(summary.rejected.values()) == 0


def test_a_non_image_stays_unreadable_after_ultralytics_is_imported(tmp_path):
    """ultralytics replaces PIL.Image.open with a wrapper that, on a file Pillow cannot read,
    tries to install a HEIF plugin; the importer must still count the file as unreadable."""
    import ultralytics.utils.patches  # noqa: F401 - applies the patch

    (tmp_path / "notes.png").write_text("this is not an image")
    found = locate("notes.png", tmp_path)
    assert found.status == UNREADABLE and "not an image PIL can read" in found.detail


def test_coco_entries_that_disagree_on_a_size_never_set_it(tmp_path):
    """kalphacv-style entries of one file (one per annotator) that disagree on its size: the
    file's size is the image's; the boxes of the entry whose size is not it are rejected with
    the reason (COCO boxes are pixels of their entry's size), counted with a note."""
    from annotate.formats.coco_import import from_coco

    jpeg(tmp_path / "a.jpg")  # 320 x 240
    coco = {"images": [{"id": 1, "file_name": "a.jpg", "width": 320, "height": 240,
                        "annotator": "ann"},
                       {"id": 2, "file_name": "a.jpg", "width": 640, "height": 480,
                        "annotator": "bob"},
                       {"id": 3, "file_name": "gone.jpg", "width": 100, "height": 100,
                        "annotator": "ann"},
                       {"id": 4, "file_name": "gone.jpg", "width": 200, "height": 100,
                        "annotator": "bob"}],
            "categories": [{"id": 1, "name": "cat"}],
            "annotations": [{"id": k, "image_id": k, "category_id": 1, "bbox": [10, 10, 50, 50]}
                            for k in (1, 2, 3, 4)]}
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    ts, summary = from_coco(tmp_path / "coco.json")
    sizes = ts.images.set_index("path")[["width", "height"]]
    assert sizes.loc[str((tmp_path / "a.jpg").resolve())].tolist() == [320, 240]
    assert sizes.loc["gone.jpg"].tolist() == [100, 100]  # no file: the first entry's
    assert sorted(ts.boxes.annotator) == ["ann", "ann"]
    (reason,) = summary.rejected
    assert reason.startswith("box: its images entry gives another size") and \
        summary.rejected[reason] == 2
    assert any(n.startswith("2 image entries give another size") for n in summary.notes)
