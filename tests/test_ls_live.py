"""`annotate push` / `annotate pull` against a real Label Studio server (see tests/ls_server.py).

Locally the module skips with the reason when the server cannot be installed; CI sets
TWOSTAGE_REQUIRE_LABEL_STUDIO=1 so that it fails instead.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from annotate.cli import main
from annotate.formats.ls_client import LabelStudioError, connect, find_project, pull, push
from annotate.formats.ls_export import to_tasks
from annotate.formats.ls_import import import_export
from annotate.tables import store
from annotate.tables.schema import TableSet, model_source
from quality.agreement.reliability import reliability
from stage1_detect.train import SHIPPED_WEIGHTS
from tests import ls_server
from tests.conftest import REPO

SHIPPED = SHIPPED_WEIGHTS["shapes-tiny.pt"]
USERS = ["ann1@example.com", "ann2@example.com", "ann3@example.com"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("label-studio")
    document_root = root / "files"
    document_root.mkdir()
    try:
        running = ls_server.start(root, document_root)
    except ls_server.Unavailable as err:
        if os.environ.get("TWOSTAGE_REQUIRE_LABEL_STUDIO") == "1":
            pytest.fail(f"Label Studio is required here but could not start: {err}")
        pytest.skip(f"Label Studio could not be installed or started here: {err}")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def demo_set(server) -> TableSet:
    """Twelve demo images copied under the server's document root."""
    ts, _ = import_export(REPO / "data/demo/export.json")
    images = ts.images.head(12).copy()
    folder = server.document_root / "demo"
    folder.mkdir(exist_ok=True)
    paths = []
    for path in images.path:
        target = folder / os.path.basename(path)
        shutil.copy(path, target)
        paths.append(str(target))
    images["path"] = paths
    return TableSet(images, ts.annotations.iloc[:0], ts.boxes.iloc[:0], ts.captions.iloc[:0],
                    ts.labels)


def annotated_by(demo_set: TableSet) -> TableSet:
    """What three users will annotate: the demo truth, shifted by k px per user, user 3 calling
    every red circle a yellow circle, and user 2 skipping one image."""
    truth = store.load(REPO / "data/demo/truth")
    ids = set(demo_set.images.image_id)
    boxes, captions, annotations = [], [], []
    for k, user in enumerate(USERS):
        for image_id in sorted(ids):
            if k == 1 and image_id == sorted(ids)[0]:
                continue  # skipped: no annotation row
            mine = truth.boxes[truth.boxes.image_id == image_id].assign(
                annotator=user, source="human", score=np.nan)
            mine[["x0", "x1"]] += k
            if k == 2:
                mine["label"] = mine.label.replace("red circle", "yellow circle")
            boxes.append(mine)
            captions.append(pd.DataFrame({"image_id": [image_id], "annotator": user,
                                          "caption": f"caption {k} of {image_id}",
                                          "source": "human"}))
            annotations.append({"image_id": image_id, "annotator": user, "source": "human",
                                "lead_time": 5.0 + k})
    return TableSet(demo_set.images, annotations, pd.concat(boxes), pd.concat(captions),
                    labels=demo_set.labels)


def test_push_annotate_pull_round_trip(server, demo_set, tmp_path):
    connection = connect(server.url, server.token)
    truth = store.load(REPO / "data/demo/truth")
    predictions = truth.boxes[truth.boxes.image_id.isin(demo_set.images.image_id)].assign(
        source=model_source("yolo-test"), annotator="yolo-test", score=0.9)
    first = push(connection, demo_set, "round trip", str(server.document_root), predictions)
    assert first.created_project and first.tasks_created == 12
    again = push(connection, demo_set, "round trip", str(server.document_root), predictions)
    assert (again.created_project, again.tasks_created, again.tasks_existing,
            again.predictions_added) == (False, 0, 12, 0)

    client = connection.client
    project = find_project(connection, "round trip")
    tasks = {t.data["image_id"]: t for t in client.tasks.list(project=project.id, fields="all")}
    assert len(tasks) == 12
    prediction = client.predictions.list(task=next(iter(tasks.values())).id)[0]
    assert prediction.model_version == "yolo-test" and prediction.score == pytest.approx(0.9)
    region = prediction.result[0]
    assert region["original_width"] > 0 and region["original_height"] > 0
    assert "score" in region

    expected = annotated_by(demo_set)
    user_ids = {u: client.users.create(username=u.split("@")[0], email=u,
                                       password="pass-12345!").id for u in USERS}
    results = {(t["data"]["image_id"], a["completed_by"]["email"]): a["result"]
               for t in to_tasks(expected) for a in t.get("annotations", [])}
    for (image_id, user), result in results.items():
        client.annotations.create(id=tasks[image_id].id, result=result,
                                  completed_by=user_ids[user], lead_time=5.0 +
                                  USERS.index(user))
    skipped_image = sorted(tasks)[0]
    client.annotations.create(id=tasks[skipped_image].id, result=[],
                              completed_by=user_ids[USERS[1]], was_cancelled=True)

    pulled, summary, export = pull(connection, "round trip", tmp_path / "pulled",
                                   images_root=str(server.document_root), progress=False)
    assert export.is_file() and server.token not in export.read_text()
    assert summary.to_dict()["skipped"] == 1
    got = pulled.annotations.set_index(["image_id", "annotator"]).sort_index()
    want = expected.annotations.set_index(["image_id", "annotator"]).sort_index()
    assert got.index.equals(want.index)  # user by user, the skipped one absent
    np.testing.assert_allclose(got.lead_time, want.lead_time)
    keys = ["image_id", "annotator", "label", "x0"]
    got_boxes = pulled.boxes[pulled.boxes.source == "human"].sort_values(keys)
    want_boxes = expected.boxes.sort_values(keys)
    assert got_boxes.label.tolist() == want_boxes.label.tolist()
    for column in ("x0", "y0", "x1", "y1"):
        np.testing.assert_allclose(got_boxes[column], want_boxes[column], atol=1e-6)
    assert sorted(pulled.captions[pulled.captions.source == "human"].caption) == sorted(
        expected.captions.caption)
    model = pulled.boxes[pulled.boxes.source == model_source("yolo-test")]
    assert len(model) == len(predictions)
    assert (pulled.images.path.map(os.path.exists)).all()  # resolved under the document root

    report = reliability(pulled, n_boot=50)  # feeds quality with no hand editing
    assert report.alphas["labels"].n_units > 0 and len(report.annotators) == 3


def test_cli_push_pull_and_personal_access_token(server, demo_set, tmp_path, monkeypatch):
    store.save(demo_set, tmp_path / "set")
    pat = connect(server.url, server.token).client.tokens.create().token
    monkeypatch.setenv("LABEL_STUDIO_URL", server.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", pat)  # a personal access token
    assert main(["push", str(tmp_path / "set"), "--project", "cli project",
                 "--document-root", str(server.document_root)]) == 0
    assert main(["pull", "--project", "cli project", "--out", str(tmp_path / "out"),
                 "--document-root", str(server.document_root)]) == 0
    assert len(store.load(tmp_path / "out").images) == 12


def test_clear_errors_that_never_show_the_key(server, capsys):
    with pytest.raises(LabelStudioError, match="refused the API key \\(401\\)") as bad:
        connect(server.url, "f" * 40)
    assert "f" * 40 not in str(bad.value)
    with pytest.raises(LabelStudioError, match=r"cannot reach Label Studio at http://127\.0\.0\.1:9"):
        connect("http://127.0.0.1:9", "secret-key-123")
    with pytest.raises(LabelStudioError, match="no project titled 'nope'"):
        find_project(connect(server.url, server.token), "nope")
    assert main(["pull", "--project", "nope", "--out", "/tmp/x", "--url", server.url,
                 "--api-key", server.token]) == 2
    err = capsys.readouterr().err
    assert "no project titled" in err and server.token not in err


def test_pasted_inline_image_comes_back_as_a_file(server, tmp_path):
    """A task whose image is a data: URL (how Label Studio keeps a pasted image) is exported by
    the real server as is, and pulled into a set whose image is a file under the set."""
    import base64
    import io

    from PIL import Image

    from annotate.formats.ls_export import labeling_config

    raw = io.BytesIO()
    Image.new("RGB", (40, 30), "blue").save(raw, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(raw.getvalue()).decode()
    connection = connect(server.url, server.token)
    client = connection.client
    project = client.projects.create(title="inline image",
                                     label_config=labeling_config(["cat", "dog"]))
    client.projects.import_tasks(id=project.id, request=[{"image": url}])
    (task,) = client.tasks.list(project=project.id, fields="all")
    user = client.users.create(username="inline", email="inline@example.com",
                               password="pass-12345!")
    region = {"id": "r1", "type": "rectanglelabels", "from_name": "label", "to_name": "image",
              "original_width": 40, "original_height": 30,
              "value": {"x": 25, "y": 10, "width": 50, "height": 50, "rotation": 0,
                        "rectanglelabels": ["cat"]}}
    client.annotations.create(id=task.id, result=[region], completed_by=user.id)
    pulled, summary, _ = pull(connection, "inline image", tmp_path / "pulled", progress=False)
    assert summary.images_inline == 1 and sum(summary.rejected.values()) == 0
    image = pulled.images.iloc[0]
    assert (image.width, image.height) == (40, 30)
    assert image.path.startswith(str((tmp_path / "pulled" / "media").resolve()))
    with open(image.path, "rb") as handle:
        assert handle.read() == raw.getvalue()
    box = pulled.boxes.iloc[0]
    assert (box.annotator, box.label, box.x0, box.y0, box.x1, box.y1) == (
        "inline@example.com", "cat", 10, 3, 30, 18)


@pytest.fixture(scope="module")
def demo_full(server) -> TableSet:
    """The whole demo set (200 images, three annotators each) under the document root."""
    ts, _ = import_export(REPO / "data/demo/export.json")
    folder = server.document_root / "demo-all"
    folder.mkdir(exist_ok=True)
    for path in ts.images.path:
        shutil.copy(path, folder / os.path.basename(path))
    ts.images["path"] = [str(folder / os.path.basename(p)) for p in ts.images.path]
    return ts


def _users(client, emails) -> dict[str, int]:
    have = {u.email: u.id for u in client.users.list()}
    return {e: have.get(e) or client.users.create(username=e.split("@")[0].replace(".", "-"),
                                                  email=e, password="pass-12345!").id
            for e in emails}


def test_relabel_study_plan_push_blind_annotate_pull_and_target(server, demo_full, tmp_path,
                                                               monkeypatch):
    """Done when: the demo with one label per image (two on a 40-image pilot), a plan for
    +-0.1, the sample pushed blind, labelled by API-created users, pulled, and the union's
    interval about as wide as planned."""
    from quality.cli import main as quality
    from tests.test_relabel import single_demo

    monkeypatch.setenv("LABEL_STUDIO_URL", server.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", server.token)
    single = single_demo()
    single.images = demo_full.images
    store.save(single, tmp_path / "set")
    study = tmp_path / "study"
    assert quality(["plan-relabel", str(tmp_path / "set"), "--target-ci", "0.1", "--out",
                    str(study), "--n-boot", "1000"]) == 0
    plan = json.loads((study / "sample.json").read_text())
    sample = [row["image_id"] for row in plan["sample"]]
    assert plan["pilot"]["images"] == 40 and len(sample) == plan["needed_images"] - 40 > 10

    assert main(["push", str(tmp_path / "set"), "--sample", str(study / "sample.json"),
                 "--project", "relabel round 1", "--document-root",
                 str(server.document_root)]) == 0
    connection = connect(server.url, server.token)
    client = connection.client
    project = find_project(connection, "relabel round 1")
    tasks = {t.data["image_id"]: t for t in client.tasks.list(project=project.id, fields="all")}
    assert sorted(tasks) == sorted(sample)
    for task in tasks.values():  # blind: nothing anyone said before
        assert not task.annotations and not task.predictions
        assert not client.predictions.list(task=task.id)
    pushed = json.loads((study / "push.json").read_text())
    assert pushed["project_id"] == project.id and pushed["images"] == len(sample)

    # each sampled image is labelled by one of the demo annotators it had not been given to
    had = single.annotations.groupby("image_id").annotator.agg(set)
    results = {(t["data"]["image_id"], a["completed_by"]["email"]): a["result"]
               for t in to_tasks(demo_full.subset(sample)) for a in t["annotations"]}
    people = {image: sorted(a for (i, a) in results if i == image and a not in had[image])[0]
              for image in sample}
    ids = _users(client, set(people.values()))
    for image, person in people.items():
        client.annotations.create(id=tasks[image].id, result=results[image, person],
                                  completed_by=ids[person], lead_time=20.0)

    assert main(["pull", "--project", "relabel round 1", "--out", str(study / "pulled"),
                 "--document-root", str(server.document_root), "--sample",
                 str(study / "sample.json")]) == 0
    pulled = json.loads((study / "pull.json").read_text())
    assert pulled["labelled_images"] == len(sample) and pulled["not_yet_labelled"] == 0

    assert quality(["reliability", str(tmp_path / "set"), "--add", str(study / "pulled"),
                    "--plan", str(study / "sample.json"), "--n-boot", "1000"]) == 0
    check = json.loads((study / "reliability.json").read_text())
    assert check["images"] == plan["needed_images"]
    assert check["half_width"] == pytest.approx(plan["expected_half_width"], rel=0.2)
    assert check["met"] and check["half_width"] <= 0.1 and check["more_images"] == 0
    import mlflow

    tracking = mlflow.MlflowClient(check["mlflow"]["tracking_uri"])
    steps = {r.data.tags["step"] for r in tracking.search_runs(
        [tracking.get_experiment_by_name("twostage-studies").experiment_id],
        filter_string=f"tags.study_folder = '{study.resolve()}'")}
    assert steps == {"sample", "push", "pull", "reliability"}


def test_adjudication_round_trip_changes_the_consensus(server, demo_full, tmp_path,
                                                      monkeypatch):
    from quality.cli import main as quality
    from quality.gold.consensus import build_consensus

    monkeypatch.setenv("LABEL_STUDIO_URL", server.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", server.token)
    store.save(demo_full, tmp_path / "set")
    review = tmp_path / "review"
    assert quality(["adjudicate", str(tmp_path / "set"), "--top", "4", "--project",
                    "review round 1", "--out", str(review), "--document-root",
                    str(server.document_root)]) == 0
    record = json.loads((review / "review.json").read_text())
    connection = connect(server.url, server.token)
    client = connection.client
    project = find_project(connection, "review round 1")
    assert record["project_id"] == project.id
    tasks = {t.data["image_id"]: t for t in client.tasks.list(project=project.id, fields="all")}
    assert sorted(tasks) == sorted(record["image_ids"])
    for image, task in tasks.items():  # every annotator's version, as predictions only
        assert not task.annotations
        versions = {p.model_version for p in client.predictions.list(task=task.id)}
        assert versions == set(demo_full.annotations.annotator[
            demo_full.annotations.image_id == image])

    # the reviewer takes a version that differs from the vote on the most disputed image, and
    # one that agrees with it on the next
    vote = build_consensus(demo_full).tables.boxes
    vote = vote[vote.source == "consensus"]
    first = record["review"][0]["image_id"]
    second = next(u["image_id"] for u in record["review"] if u["image_id"] != first)

    def labels_of(frame, image):
        return sorted(frame.label[frame.image_id == image])

    reviewer = _users(client, ["reviewer@example.com"])["reviewer@example.com"]
    chosen = {}
    for image, agree in ((first, False), (second, True)):
        people = demo_full.boxes[demo_full.boxes.image_id == image].annotator.unique()
        fits = [p for p in sorted(people) if (labels_of(demo_full.boxes[
            demo_full.boxes.annotator == p], image) == labels_of(vote, image)) == agree]
        pick = (fits or sorted(people))[0]
        prediction = next(p for p in client.predictions.list(task=tasks[image].id)
                          if p.model_version == pick)
        client.annotations.create(id=tasks[image].id, result=prediction.result,
                                  completed_by=reviewer)
        chosen[image] = pick

    assert quality(["adjudicate", str(tmp_path / "set"), "--pull", "--out", str(review),
                    "--document-root", str(server.document_root)]) == 0
    done = json.loads((review / "adjudication.json").read_text())
    assert done["reviewed_images"] == 2 and done["reviewers"] == ["reviewer@example.com"]
    assert done["overturned"] >= 1
    decided = store.load(review / "adjudicated")
    result = build_consensus(decided)
    gold = result.tables.boxes[result.tables.boxes.source == "consensus"]
    for image, person in chosen.items():
        want = demo_full.boxes[(demo_full.boxes.image_id == image)
                               & (demo_full.boxes.annotator == person)]
        assert sorted(gold[gold.image_id == image].label) == sorted(want.label)
    assert labels_of(gold, first) != labels_of(vote, first)
    assert result.adjudication["images"] == 2


@pytest.fixture(scope="module")
def backend(server, tmp_path_factory):
    """`stage1-detect serve` of the shipped detector weights, in its own process, told where
    Label Studio and its document root are (for local files and uploads)."""
    import subprocess
    import sys
    import time
    import urllib.request

    log = tmp_path_factory.mktemp("backend") / "backend.log"
    port = ls_server._free_port()
    env = {**os.environ, "LABEL_STUDIO_URL": server.url, "LABEL_STUDIO_API_KEY": server.token}
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "stage1_detect.cli", "serve", str(SHIPPED), "--port",
             str(port), "--document-root", str(server.document_root)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"stage1-detect serve exited ({process.returncode}): "
                        f"{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                if reply.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail(f"stage1-detect serve did not answer: {log.read_text()[-2000:]}")
    yield url, log
    process.terminate()
    process.wait(20)


def test_ml_backend_pre_annotates_what_the_annotator_opens(server, demo_set, backend,
                                                           tmp_path, capsys):
    """Done when: a project connected to `stage1-detect serve` shows the detector's boxes when
    an annotator opens a task (the labelling page loads GET /api/tasks/ID, which asks the
    backend); the rest in bulk through Label Studio; pulled back as `model:<version>` rows
    equal to the model's own output; a task whose image cannot be read gets a reason."""
    import httpx

    from annotate.formats.ls_export import image_reference, labeling_config
    from stage1_detect.predict import detector_version, predict
    from stage1_detect.serving.bulk import preannotate
    from stage1_detect.serving.predictor import DEFAULT_THRESHOLD

    url, log = backend
    version = detector_version(SHIPPED)
    connection = connect(server.url, server.token)
    client = connection.client
    images = demo_set.images.head(3)
    classes = sorted(store.load(REPO / "data/demo/truth").labels)
    project = client.projects.create(title="ml backend", label_config=labeling_config(classes))
    client.projects.import_tasks(id=project.id, request=[
        *({"image": image_reference(p, server.document_root), "image_id": i}
          for p, i in zip(images.path, images.image_id, strict=True)),
        {"image": "/data/local-files/?d=demo/missing.jpg", "image_id": "missing"}])
    upload = httpx.post(f"{server.url}/api/projects/{project.id}/import",
                        headers={"Authorization": f"Token {server.token}"},
                        files={"file": ("uploaded.jpg", Path(images.path.iloc[0]).read_bytes(),
                                        "image/jpeg")}, timeout=60)
    assert upload.status_code == 201, upload.text
    client.ml.create(project=project.id, url=url, title="twostage", is_interactive=False)
    tasks = {t.id: t for t in client.tasks.list(project=project.id, fields="all")}
    assert len(tasks) == 5 and not any(t.predictions for t in tasks.values())

    first = min(tasks)
    opened = client.tasks.get(id=str(first))  # what the annotator's page loads
    (shown,) = opened.predictions
    shown = shown if isinstance(shown, dict) else shown.dict()
    assert shown["model_version"] == version and shown["result"]

    done = preannotate(connection, project.id, batch=2, progress=False)
    assert (done.tasks, done.already, done.requested, done.predicted) == (5, 1, 4, 3)
    assert "missing.jpg" in log.read_text() and "no file" in log.read_text()
    from stage1_detect.cli import main as stage1_main

    assert stage1_main(["preannotate", "ml backend", "--batch", "2", "--url", server.url,
                        "--api-key", server.token]) == 0  # resumes: only the failed task
    assert "4 already pre-annotated, 0 of 1 pre-annotated now; 1 got no prediction" in \
        capsys.readouterr().out
    bare = client.projects.create(title="no backend", label_config=labeling_config(classes))
    with pytest.raises(LabelStudioError, match="has no ML backend"):
        preannotate(connection, bare.id, progress=False)
    with pytest.raises(LabelStudioError, match="does not answer /health"):
        preannotate(connection, bare.id, backend="http://127.0.0.1:9", progress=False)

    uploaded = next(t for t in client.tasks.list(project=project.id, fields="all")
                    if "/data/upload/" in str(t.data.get("image")))
    (by_upload,) = client.predictions.list(task=uploaded.id)
    assert by_upload.model_version == version and by_upload.result  # fetched with the token

    pulled, _, _ = pull(connection, "ml backend", tmp_path / "pulled",
                        images_root=str(server.document_root), progress=False)
    got = pulled.boxes[pulled.boxes.source == model_source(version)]
    own = predict(SHIPPED, images)
    own = own[own.score >= DEFAULT_THRESHOLD]
    keys = ["image_id", "label", "x0"]
    got = got[got.image_id.isin(images.image_id)].sort_values(keys).reset_index(drop=True)
    own = own.sort_values(keys).reset_index(drop=True)
    assert len(got) == len(own) > 0 and got.label.tolist() == own.label.tolist()
    for column in ("x0", "y0", "x1", "y1"):
        np.testing.assert_allclose(got[column], own[column], atol=0.01)
    np.testing.assert_allclose(got.score, own.score, atol=1e-6)


def test_judgment_study_pushed_blind_answered_by_two_judges_pulled_and_analysed(
        server, demo_set, tmp_path, monkeypatch):
    """Done when: a pairwise study's tasks reach Label Studio without system names, two
    API-created judges answer (one ties once), the pull undoes each task's left/right order,
    and the win rate is what they chose."""
    from annotate.runtime.atomic import write_json, write_parquet
    from annotate.runtime.jsonable import records
    from quality.cli import main as quality
    from quality.judging.design import TIE_CHOICE, TIE_VALUE, draw_tasks

    monkeypatch.setenv("LABEL_STUDIO_URL", server.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", server.token)
    images = demo_set.images.head(6)
    captions = pd.DataFrame([{"image_id": i, "system": s, "caption": f"{s} caption of {i}"}
                             for i in images.image_id for s in ("sysA", "sysB")])
    tasks = draw_tasks(captions, ["sysA", "sysB"], 6, seed=1)
    assert 0 < (tasks.left == "sysA").sum() < 6  # both orders occur
    study = tmp_path / "study"
    write_json(study / "plan.json", {"systems": ["sysA", "sysB"], "tasks": records(tasks),
                                     "images": dict(zip(images.image_id, images.path,
                                                        strict=True))})
    write_parquet(study / "scores.parquet", captions.assign(
        cider_d=(captions.system == "sysA").astype(float))[["image_id", "system", "cider_d"]])
    assert quality(["judge-push", str(study), "--project", "judging round 1",
                    "--document-root", str(server.document_root)]) == 0
    assert quality(["judge-push", str(study), "--project", "judging round 1",
                    "--document-root", str(server.document_root)]) == 0  # no duplicates
    connection = connect(server.url, server.token)
    client = connection.client
    project = find_project(connection, "judging round 1")
    pushed = list(client.tasks.list(project=project.id, fields="all"))
    assert len(pushed) == 6
    for task in pushed:  # blind: the captions, never the systems behind them
        assert "sysA" not in json.dumps({k: v for k, v in task.data.items()
                                         if not k.endswith("_caption")})
        assert str(task.data["image"]).startswith("/data/local-files/")
    side_of_a = {t.task: ("left" if t.left == "sysA" else "right") for t in tasks.itertuples()}
    judges = _users(client, ["judge1@example.com", "judge2@example.com"])
    for k, task in enumerate(sorted(pushed, key=lambda t: t.data["study_task"])):
        key = task.data["study_task"]
        pick = [{"from_name": "choice", "to_name": "choice", "type": "pairwise",
                 "value": {"selected": side_of_a[key]}}]
        tie = [{"from_name": TIE_CHOICE, "to_name": "image", "type": "choices",
                "value": {"choices": [TIE_VALUE]}}]
        client.annotations.create(id=task.id, result=pick, completed_by=judges[
            "judge1@example.com"], lead_time=5.0)
        client.annotations.create(id=task.id, result=tie if k == 0 else pick,
                                  completed_by=judges["judge2@example.com"], lead_time=7.0)
    assert quality(["judge-pull", str(study)]) == 0
    pulled = json.loads((study / "pull.json").read_text())
    assert (pulled["read"], pulled["kept"], pulled["judges"]) == (12, 12, 2)
    assert pulled["median_seconds_per_judgment"] == 6.0
    judgments = pd.read_parquet(study / "judgments.parquet")
    merged = judgments.merge(tasks[["task", "left", "right"]], on="task", suffixes=("", "_plan"))
    assert (merged.left == merged.left_plan).all() and (merged.right == merged.right_plan).all()
    assert quality(["judgments", str(study), "--n-boot", "100"]) == 0
    result = json.loads((study / "judgments.json").read_text())
    (pair,) = result["win_rates"]
    assert (pair["a"], pair["b"], pair["ties"]) == ("sysA", "sysB", 1)
    assert pair["win_rate"] == pytest.approx(11.5 / 12)
    assert result["metrics"]["metrics"]["cider_d"]["system_agreement"] == 1.0


def test_rating_study_pushed_blind_rated_by_two_judges_pulled_and_analysed(
        server, demo_set, tmp_path, monkeypatch):
    """A rating study: the server accepts the generated config (stars and rubric), its tasks
    carry one caption and no system name, two API-created judges give stars, the pull maps each
    rating back to its system, and the mean ratings are the stars given."""
    from annotate.runtime.atomic import write_json, write_parquet
    from annotate.runtime.jsonable import records
    from quality.cli import main as quality
    from quality.judging.design import RATING, draw_rating_tasks

    monkeypatch.setenv("LABEL_STUDIO_URL", server.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", server.token)
    images = demo_set.images.head(3)
    captions = pd.DataFrame([{"image_id": i, "system": s, "caption": f"{s} caption of {i}"}
                             for i in images.image_id for s in ("sysA", "sysB")])
    tasks = draw_rating_tasks(captions, ["sysA", "sysB"], 3, seed=1)
    study = tmp_path / "study"
    write_json(study / "plan.json", {"design": "rating", "systems": ["sysA", "sysB"],
                                     "tasks": records(tasks), "images": dict(zip(
                                         images.image_id, images.path, strict=True))})
    write_parquet(study / "scores.parquet", captions.assign(
        cider_d=(captions.system == "sysA").astype(float))[["image_id", "system", "cider_d"]])
    assert quality(["judge-push", str(study), "--project", "rating round 1",
                    "--document-root", str(server.document_root)]) == 0
    connection = connect(server.url, server.token)
    client = connection.client
    project = find_project(connection, "rating round 1")
    assert 'maxRating="5"' in client.projects.get(id=project.id).label_config
    pushed = list(client.tasks.list(project=project.id, fields="all"))
    assert len(pushed) == 6
    system_of = dict(zip(tasks.task, tasks.system, strict=True))
    for task in pushed:
        assert "sys" not in json.dumps({k: v for k, v in task.data.items() if k != "caption"})
    judges = _users(client, ["rater1@example.com", "rater2@example.com"])
    for task in pushed:
        stars = 5 if system_of[task.data["study_task"]] == "sysA" else 2
        for k, email in enumerate(judges):
            client.annotations.create(id=task.id, result=[
                {"from_name": RATING, "to_name": "caption", "type": "rating",
                 "value": {"rating": stars - k}}], completed_by=judges[email], lead_time=3.0)
    assert quality(["judge-pull", str(study)]) == 0
    pulled = json.loads((study / "pull.json").read_text())
    assert (pulled["read"], pulled["kept"], pulled["judges"]) == (12, 12, 2)
    rated = pd.read_parquet(study / "judgments.parquet")
    assert (rated.system == rated.task.map(system_of)).all()
    assert quality(["judgments", str(study), "--n-boot", "100"]) == 0
    result = json.loads((study / "judgments.json").read_text())
    means = {m["system"]: m["mean"] for m in result["means"]}
    assert means == {"sysA": 4.5, "sysB": 1.5}  # 5 and 4, 2 and 1
    (difference,) = result["differences"]
    assert difference["difference"] == 3.0 and result["judges"]["level"] == "ordinal"
    leniency = {j["judge"]: j["leniency"] for j in result["judges"]["judges"]}
    assert leniency == {"rater1@example.com": 1.0, "rater2@example.com": -1.0}  # vs the other
