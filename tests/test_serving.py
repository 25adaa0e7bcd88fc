"""`stage1-detect serve`: Label Studio's ML backend contract, in process (FastAPI's test
client, as the official backend's tests do), with the shipped detector weights so that the
boxes are real. The live round trip through a Label Studio server is in test_ls_live.py."""

from __future__ import annotations

import base64
import functools
import http.server
import io
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from annotate.formats.ls_export import labeling_config
from annotate.runtime.errors import UserError
from stage1_detect.cli import main
from stage1_detect.predict import detector_version, predict
from stage1_detect.serving.app import make_app
from stage1_detect.serving.images import ImageSource, ImageUnavailable
from stage1_detect.serving.labels import parse_label_map, target
from stage1_detect.serving.predictor import DEFAULT_THRESHOLD, HandOver, Predictor
from stage1_detect.train import SHIPPED_WEIGHTS
from tests.conftest import REPO

WEIGHTS = SHIPPED_WEIGHTS["shapes-tiny.pt"]
IMAGES = sorted((REPO / "data/demo/images").glob("*.jpg"))[:4]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A local-files document root holding four demo images, a cut JPEG and a non-image."""
    folder = tmp_path_factory.mktemp("document-root")
    (folder / "demo").mkdir()
    for path in IMAGES:
        shutil.copy(path, folder / "demo" / path.name)
    raw = IMAGES[0].read_bytes()
    (folder / "demo" / "cut.jpg").write_bytes(raw[:len(raw) // 2])
    (folder / "demo" / "notes.jpg").write_text("not a picture")
    return folder


@pytest.fixture(scope="module")
def predictor(root) -> Predictor:
    return Predictor(WEIGHTS, ImageSource(document_root=root))


@pytest.fixture(scope="module")
def client(predictor) -> TestClient:
    return TestClient(make_app(predictor))


@pytest.fixture(scope="module")
def config(predictor) -> str:
    return labeling_config(predictor.classes, caption=False)


@pytest.fixture(scope="module")
def own(predictor) -> pd.DataFrame:
    """The model's own output on the demo files (stage1-detect predict), at the threshold."""
    images = pd.DataFrame({"image_id": [p.name for p in IMAGES], "path": [str(p) for p in
                                                                           IMAGES]})
    boxes = predict(WEIGHTS, images)
    return boxes[boxes.score >= predictor.hand_over.threshold]


def local(name: str) -> dict:
    return {"image": f"/data/local-files/?d=demo/{name}"}


def pixels(prediction: dict) -> pd.DataFrame:
    """A prediction's regions back in pixels."""
    rows = []
    for region in prediction["result"]:
        v, w, h = region["value"], region["original_width"], region["original_height"]
        rows.append({"label": v["rectanglelabels"][0], "x0": v["x"] * w / 100,
                     "y0": v["y"] * h / 100, "x1": (v["x"] + v["width"]) * w / 100,
                     "y1": (v["y"] + v["height"]) * h / 100, "score": region["score"]})
    return pd.DataFrame(rows)


def test_health_and_setup_say_what_is_served(client, config):
    health = client.get("/health").json()
    assert health["status"] == "UP" and health["model_version"] == detector_version(WEIGHTS)
    assert health["model_version"].startswith("shapes-tiny-")
    assert health["threshold"] == DEFAULT_THRESHOLD and "default" in health["threshold_from"]
    setup = client.post("/setup", json={"project": "1.1", "schema": config,
                                        "hostname": "http://localhost:8080",
                                        "access_token": "abc"})
    assert setup.status_code == 200 and setup.json() == {"model_version":
                                                         health["model_version"]}
    assert client.get("/versions").json() == {"versions": [health["model_version"]]}


def test_setup_refuses_a_config_that_cannot_take_the_boxes(client):
    no_boxes = '<View><Image name="image" value="$image"/><TextArea name="t" toName="image"/>' \
               "</View>"
    reply = client.post("/setup", json={"schema": no_boxes})
    assert reply.status_code == 400 and "RectangleLabels" in reply.json()["error"]
    other = labeling_config(["car", "person"])
    reply = client.post("/setup", json={"schema": other})
    assert reply.status_code == 400 and "none of the detector's classes" in reply.json()["error"]


def test_predict_matches_the_models_own_output(client, config, own):
    tasks = [{"id": k, "data": local(p.name)} for k, p in enumerate(IMAGES)]
    reply = client.post("/predict", json={"tasks": tasks, "label_config": config})
    assert reply.status_code == 200
    body = reply.json()
    assert len(body["results"]) == len(tasks)
    for prediction, path in zip(body["results"], IMAGES, strict=True):
        assert prediction["model_version"] == detector_version(WEIGHTS)
        got = pixels(prediction).sort_values(["label", "x0"]).reset_index(drop=True)
        want = own[own.image_id == path.name].sort_values(["label", "x0"]).reset_index(
            drop=True)
        assert len(got) == len(want) > 0
        assert got.label.tolist() == want.label.tolist()
        np.testing.assert_allclose(got[["x0", "y0", "x1", "y1"]], want[["x0", "y0", "x1",
                                                                         "y1"]], atol=1e-3)
        np.testing.assert_allclose(got.score, want.score, atol=1e-6)
        assert prediction["score"] == pytest.approx(want.score.mean())
        with Image.open(path) as image:
            region = prediction["result"][0]
            assert (region["original_width"], region["original_height"]) == image.size
    reports = body["meta"]["tasks"]
    assert [r["boxes"] for r in reports] == [len(own[own.image_id == p.name]) for p in IMAGES]
    assert all(r["error"] is None for r in reports)


def test_each_unreadable_task_gets_no_prediction_and_its_reason(client, config):
    tasks = [{"id": 1, "data": local(IMAGES[0].name)},
             {"id": 2, "data": local("missing.jpg")},
             {"id": 3, "data": {"image": "/data/local-files/?d=../../etc/passwd"}},
             {"id": 4, "data": local("cut.jpg")},
             {"id": 5, "data": local("notes.jpg")},
             {"id": 6, "data": {"image": "/data/upload/3/abc-photo.jpg"}},
             {"id": 7, "data": {"text": "no image field"}},
             {"id": 8, "data": {"image": "s3://bucket/key.jpg"}}]
    reply = client.post("/predict", json={"tasks": tasks, "label_config": config})
    assert reply.status_code == 200
    body = reply.json()
    assert body["results"][0]["result"] and body["results"][1:] == [[]] * 7
    reasons = {r["task"]: r["error"] for r in body["meta"]["tasks"]}
    assert reasons[1] is None
    assert "no file" in reasons[2]
    assert "leaves the document root" in reasons[3]
    assert "not a readable image" in reasons[4] and "not a readable image" in reasons[5]
    assert "401" in reasons[6] or "LABEL_STUDIO_URL" in reasons[6] or "fetching" in reasons[6]
    assert "no 'image' field" in reasons[7]
    assert "s3://" in reasons[8]


def test_an_upload_without_a_server_names_the_variables(root):
    source = ImageSource(document_root=root)
    with pytest.raises(ImageUnavailable, match="LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY"):
        source.read("/data/upload/3/abc-photo.jpg")
    no_root = ImageSource()
    with pytest.raises(ImageUnavailable, match="--document-root"):
        no_root.read("/data/local-files/?d=demo/x.jpg")


def test_inline_http_and_exif_rotated_images(predictor, config, tmp_path):
    picture = Image.open(IMAGES[0]).convert("RGB").resize((320, 240))
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned a quarter: 240 x 320
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", exif=exif)
    (tmp_path / "turned.jpg").write_bytes(buffer.getvalue())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        inline = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
        url = f"http://127.0.0.1:{server.server_address[1]}/turned.jpg"
        answer = predictor.predict([{"id": 1, "data": {"image": inline}},
                                    {"id": 2, "data": {"image": url}},
                                    {"id": 3, "data": {"image": url + ".missing"}}], config)
    finally:
        server.shutdown()
    first, second, third = answer["results"]
    assert first == second and first["result"]  # the same picture, inline and over http
    assert {(r["original_width"], r["original_height"]) for r in first["result"]} == {
        (240, 320)}
    assert third == [] and "answered 404" in answer["meta"]["tasks"][2]["error"]


def test_unmapped_classes_and_the_threshold_are_counted(root):
    threshold = 0.7
    strict = Predictor(WEIGHTS, ImageSource(document_root=root), threshold=threshold,
                       label_map={"yellow circle": "Sun"})
    xml = ('<View><Image name="photo" value="$img"/><RectangleLabels name="shapes" '
           'toName="photo"><Label value="Sun"/><Label value="Square" '
           'predicted_values="blue square,green square"/></RectangleLabels></View>')
    tasks = [{"id": p.name, "data": {"img": f"/data/local-files/?d=demo/{p.name}"}}
             for p in IMAGES]
    answer = strict.predict(tasks, xml)
    raw = predict(WEIGHTS, pd.DataFrame({"image_id": [p.name for p in IMAGES],
                                         "path": [str(p) for p in IMAGES]}))
    kept = raw[raw.score >= threshold]
    mapped = kept.label.isin(["yellow circle", "blue square", "green square"])
    reports = {r["task"]: r for r in answer["meta"]["tasks"]}
    for name, report in reports.items():
        mine = raw.image_id == name
        assert report["below_threshold"] == (mine & (raw.score < threshold)).sum()
        assert report["unmapped"] == kept[~mapped & (kept.image_id == name)].label \
            .value_counts().to_dict()
        assert report["boxes"] == (mapped & (kept.image_id == name)).sum()
    assert sum(sum(r["unmapped"].values()) for r in reports.values()) > 0  # the case occurs
    assert sum(r["below_threshold"] for r in reports.values()) > 0
    shown = [r["value"]["rectanglelabels"][0] for p in answer["results"] for r in p["result"]]
    assert sorted(shown) == sorted(kept.label[mapped].map(
        {"yellow circle": "Sun", "blue square": "Square", "green square": "Square"}))
    assert all(r["from_name"] == "shapes" and r["to_name"] == "photo"
               for p in answer["results"] for r in p["result"])


def test_the_run_folder_gives_threshold_suppression_and_provenance(tmp_path):
    stage1 = tmp_path / "run" / "stage1"
    weights = stage1 / "train" / "weights" / "best.pt"
    weights.parent.mkdir(parents=True)
    shutil.copy(WEIGHTS, weights)
    (stage1 / "run.json").write_text(json.dumps({"weights": str(weights), "data_version": "d1",
                                                 "source_version": "s1"}))
    (stage1 / "threshold.json").write_text(json.dumps({"chosen": 0.4, "suppress_iou": 0.5}))
    served = Predictor(tmp_path / "run")  # a pipeline run folder: its stage1/
    about = served.describe()
    assert about["model_version"] == detector_version(weights)
    assert about["model_version"].startswith("stage1-")  # <run folder>-<sha256[:8]>
    assert (about["threshold"], about["suppress_iou"]) == (0.4, 0.5)
    assert (about["data_version"], about["source_version"]) == ("d1", "s1")
    assert "chosen on validation" in about["threshold_from"]
    assert HandOver.of_run(stage1, threshold=0.3, suppress_iou=None) == HandOver(0.3, None,
                                                                                 "given")
    with pytest.raises(UserError, match="outside"):
        HandOver.of_run(stage1, threshold=0.01)


def test_label_rules_and_their_errors():
    xml = ('<View><Image name="i" value="$image"/><RectangleLabels name="r" toName="i">'
           '<Label value="Dog"/><Label value="dog "/></RectangleLabels></View>')
    with pytest.raises(UserError, match="several project labels"):
        target(xml, ["DOG"])
    assert target(xml, ["Dog"]).mapping == {"Dog": "Dog"}  # the exact name first
    with pytest.raises(UserError, match="does not have"):
        target(xml, ["cat"], {"cat": "Cat"})
    assert parse_label_map("a=B, c = D") == {"a": "B", "c": "D"}
    with pytest.raises(UserError, match="expected"):
        parse_label_map("a-B")


def test_webhook_events_are_accepted_and_counted(client):
    reply = client.post("/webhook", json={"action": "ANNOTATION_CREATED", "annotation": {}})
    assert reply.status_code == 200 and reply.json()["action"] == "ANNOTATION_CREATED"
    assert client.get("/metrics").json()["events"]["ANNOTATION_CREATED"] >= 1


def test_bad_requests_get_400_with_the_reason(client, config):
    assert client.post("/predict", json={"tasks": [], "label_config": config}).status_code \
        == 400
    reply = client.post("/predict", json={"tasks": [{"id": 1, "data": {}}]})
    assert reply.status_code == 400 and "label_config" in reply.json()["error"]


def test_serve_refuses_a_bad_label_map_before_loading(capsys):
    assert main(["serve", str(WEIGHTS), "--label-map", "nonsense"]) == 2
    assert "expected 'model class=Project label'" in capsys.readouterr().err
