"""Real files from ../shared/realdata import with the counts their README implies."""

import pytest

from annotate.formats.jsonio import ExportError
from annotate.formats.readers import import_file
from annotate.tables.schema import CROWD, HUMAN


def test_coco_instances_with_annotations_before_images(realdata):
    ts, summary = import_file(realdata / "coco_instances/instances_val2014_100imgs.json")
    assert summary.shape == "COCO instances" and len(ts.images) == 100
    assert len(ts.labels) == 80 and sum(summary.rejected.values()) == 0
    assert (ts.boxes.source == HUMAN).sum() == 830 and (ts.boxes.source == CROWD).sum() == 9
    assert "1146" in set(ts.images.image_id)  # ids as given, not "1146.0"


def test_coco_captions_file(realdata):
    ts, summary = import_file(realdata / "coco_captions/captions_val2014_fakecap1000_refs.json")
    assert summary.shape == "COCO captions"
    assert len(ts.images) == 1000 and len(ts.captions) == 5005
    per_image = ts.captions.groupby("image_id").annotator
    assert per_image.size().between(5, 6).all() and (per_image.nunique() == per_image.size()).all()


def test_coco_annotator_export_with_string_booleans(realdata):
    ts, summary = import_file(realdata / "coco_instances/coco_annotator_style_string_booleans.json")
    assert sorted(ts.images.image_id) == ["0", "1"] and len(ts.boxes) == 2
    assert sum(summary.rejected.values()) == 0 and (ts.boxes.source == HUMAN).all()


@pytest.mark.parametrize(("name", "images", "boxes"), [
    ("kalphacv_fruits", 1, 9), ("kalphacv_landscape_annotations", 1, 30),
    ("kalphacv_smile_fruits", 1, 12), ("kalphacv_test_annotation", 3, 29)])
def test_kalphacv_three_annotators_per_image(realdata, name, images, boxes):
    ts, summary = import_file(realdata / f"multi_annotator_boxes/{name}.json")
    assert len(ts.images) == images and len(ts.boxes) == boxes
    assert (ts.annotations.groupby("image_id").annotator.nunique() == 3).all()
    assert len(ts.annotations) == 3 * images and sum(summary.rejected.values()) == 0


def test_kalos_yolo_three_labelers(realdata):
    folder = realdata / "multi_annotator_boxes/kalos_yolo_3labelers"
    with pytest.raises(ExportError, match="pass --image-size"):
        import_file(folder)
    ts, summary = import_file(folder, image_size=(1000, 1000))
    assert len(ts.images) == 4 and len(ts.annotations) == 12
    assert sorted(ts.annotations.annotator.unique()) == ["labeler1", "labeler2", "labeler3"]
    assert ts.labels[0] == "Flood lv0" and sum(summary.rejected.values()) == 0


def _label_studio_yolo_export(realdata, out):
    """The folder Label Studio writes for "Export -> YOLO", made by its own converter
    (label-studio-sdk) from the two-annotator SDK export: classes.txt, labels/, notes.json."""
    from label_studio_sdk.converter import Converter

    config = (realdata / "labelstudio/sdk_yolo_2annotators.label_config.xml").read_text()
    Converter(config=config, project_dir=str(out), download_resources=False).convert_to_yolo(
        str(realdata / "labelstudio/sdk_yolo_2annotators.json"), str(out / "export"),
        is_dir=False)
    return out / "export"


def test_label_studio_yolo_export_folder(realdata, tmp_path):
    from PIL import Image

    folder = _label_studio_yolo_export(realdata, tmp_path)
    assert not (folder / "data.yaml").exists() and (folder / "classes.txt").is_file()
    with pytest.raises(ExportError, match="pass --image-size"):  # labels alone: no sizes
        import_file(folder)
    ts, summary = import_file(folder, image_size=(2800, 2800))
    assert ts.labels == ["parasites", "white"] and "classes.txt" in summary.shape
    assert len(ts.images) == 2 and len(ts.boxes) == 4
    first = ts.boxes[ts.boxes.label == "parasites"].iloc[0]  # the SDK file's first region
    assert first.x0 == pytest.approx(37.15846994535519 * 28, abs=1e-6)
    assert first.y0 == pytest.approx(70.67395264116576 * 28, abs=1e-6)
    # with the images downloaded (images/ beside labels/), sizes come from the files
    (folder / "images").mkdir(exist_ok=True)  # the converter leaves it empty
    for label in (folder / "labels").glob("*.txt"):
        Image.new("RGB", (280, 280)).save(folder / "images" / f"{label.stem}.png")
    ts, summary = import_file(folder)
    assert len(ts.images) == 2 and (ts.images.width == 280).all() and len(ts.boxes) == 4
    assert sum(summary.rejected.values()) == 0


def test_evalme_export(realdata):
    ts, summary = import_file(realdata / "labelstudio/evalme_highway_5tasks_3annotators.json")
    assert summary.tasks_kept == 5 and summary.annotations_kept == 15
    assert ts.annotations.annotator.nunique() == 3 and summary.predictions == 5
    model = ts.boxes[ts.boxes.source != HUMAN]
    assert len(model) == 30 and model.score.between(0, 1).all()


def test_sdk_two_annotators_by_id(realdata):
    ts, summary = import_file(realdata / "labelstudio/sdk_yolo_2annotators.json",
                              labels=["parasites", "white"])
    assert summary.tasks_kept == 2 and summary.annotations_kept == 3
    assert sorted(ts.annotations.annotator) == ["1", "1", "2"]


def test_sdk_annotation_plus_prediction(realdata):
    _, summary = import_file(realdata / "labelstudio/sdk_annotation_plus_prediction.json")
    assert summary.tasks_kept == 2 and summary.annotations_kept == 2 and summary.predictions == 2
    # one region of the model reaches 1.57% past the bottom edge, in the annotation (which
    # copied the prediction) and in the prediction: rejected as outside, counted
    assert summary.rejected == {"box: outside the image by more than 1%": 2}


def test_sdk_rect_textarea_cancelled(realdata, tmp_path):
    from PIL import Image

    for i in (1, 2, 3):
        Image.new("RGB", (200, 100)).save(tmp_path / f"page-{i}.png")
    ts, summary = import_file(realdata / "labelstudio/sdk_rect_textarea_cancelled.json",
                              images_root=tmp_path)
    assert summary.tasks_kept == 3 and summary.skipped == 1
    assert summary.rejected["annotation: no completed_by or updated_by (annotator unknown)"] == 2
    assert len(ts.annotations) == 0


def test_sdk_rotated_boxes_are_rejected_not_straightened(realdata):
    ts, summary = import_file(realdata / "labelstudio/sdk_rotated_boxes_obb.json")
    assert summary.tasks_kept == 3 and len(ts.boxes) == 0
    (reason,) = summary.rejected
    assert "rotated rectangle" in reason and summary.rejected[reason] == 25


def test_sdk_repeater_is_refused_naming_the_shape(realdata):
    for field in (None, "images"):  # found by its shape, with or without --image-field
        with pytest.raises(ExportError, match="nothing imported") as err:
            import_file(realdata / "labelstudio/sdk_repeater_rect_taxonomy.json",
                        image_field=field)
        assert "a repeater task (data.images is a list of 3 pages" in str(err.value)


@pytest.mark.parametrize("name", ["coco_instances/instances_val2014_fakebbox100_results.json",
                                  "coco_captions/captions_val2014_fakecap_results.json"])
def test_results_files_are_named_not_misread(realdata, name):
    with pytest.raises(ExportError, match=r"COCO .* results file"):
        import_file(realdata / name)


def test_cocoapi_detection_demo_scores_the_published_ap(realdata, tmp_path, capsys):
    """cocoapi's pycocoEvalDemo: 734 stored detections on the first 100 val2014 images give AP
    0.5046, AP50 0.6970, AP75 0.5730 (crowd regions as ignore regions), through the command."""
    from annotate.formats.readers import import_set
    from stage1_detect.cli import main as stage1

    import_set(realdata / "coco_instances/instances_val2014_100imgs.json", tmp_path / "set")
    # one annotator: its own gold, no --gold needed
    assert stage1(["evaluate", str(tmp_path / "set"), "--predictions",
                   str(realdata / "coco_instances/instances_val2014_fakebbox100_results.json"),
                   "--json", str(tmp_path / "eval.json")]) == 0
    import json

    report = json.loads((tmp_path / "eval.json").read_text())
    coco = report["coco"]
    published = {"ap": 0.5046, "ap50": 0.6970, "ap75": 0.5730, "ap_small": 0.5856,
                 "ap_medium": 0.5194, "ap_large": 0.5014, "ar1": 0.3868, "ar10": 0.5937,
                 "ar100": 0.5954, "ar_small": 0.6398, "ar_medium": 0.5664, "ar_large": 0.5643}
    assert {k: round(coco[k], 4) for k in published} == published
    assert coco["detections"] == 734 and coco["images"] == 100 and report["gold"] == "coco"
    assert report["excluded_detections"] == {"unknown_image": 0, "unknown_category": 0}
    printed = capsys.readouterr().out
    assert "(AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = 0.5194" in printed
    assert "(AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = 0.5643" in printed
    assert len(coco["per_class"]) > 10 and all(0 <= v <= 1 for v in coco["per_class"].values())


@pytest.mark.parametrize(("name", "published"), [
    ("kalphacv_fruits", 0.0222), ("kalphacv_landscape_annotations", 0.4889),
    ("kalphacv_smile_fruits", 0.494)])
def test_kalphacv_box_label_alpha_matches_the_authors(realdata, name, published):
    """Boxes matched at IoU >= 0.5, a missed box its own category, nominal alpha per image:
    the values published with kalphacv (GCPR 2022), whatever order the rows come in."""
    import numpy as np

    from annotate.tables.schema import TableSet
    from quality.agreement.reliability import reliability

    ts, _ = import_file(realdata / f"multi_annotator_boxes/{name}.json")
    assert round(reliability(ts, iou_threshold=0.5, n_boot=0).alphas["labels"].alpha, 4) == (
        published)
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(len(ts.boxes))
        shuffled = TableSet(ts.images, ts.annotations.iloc[::-1], ts.boxes.iloc[order],
                            ts.captions, ts.labels)
        alpha = reliability(shuffled, iou_threshold=0.5, n_boot=0).alphas["labels"].alpha
        assert round(alpha, 4) == published
