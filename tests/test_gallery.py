"""`quality gallery` on hand-made table sets: a planted disagreement is drawn where and how it
should be, per-annotator counts equal reliability.json's, pictures are read once (cached by
content hash), EXIF-rotated images are shown upright, unreadable files are counted. The run
folder's gallery (links from the report, counts against the run's JSON) is tested in
tests/test_report.py, which has a run."""

from __future__ import annotations

import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from annotate.tables import store
from quality.agreement.jobs import reliability_job
from quality.cli import main
from quality.gallery.jobs import GALLERY_JSON, gallery_job
from quality.gallery.model import COLOURS
from tests.quality_sets import make_set

A, B, C = "ann@a.org", "ben@b.org", "cy@c.org"


class Page(HTMLParser):
    """Every tag with its attributes, in order, and which panel (image) it sits in."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict, str | None]] = []
        self._panel: list[str | None] = [None]
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "div" and "data-image-id" in attrs:
            self._panel.append(attrs["data-image-id"])
        self.tags.append((tag, attrs, self._panel[-1]))

    def boxes(self, image_id: str) -> list[tuple[dict, dict]]:
        """(the box's <g> attributes, its <rect> attributes) on the panels of `image_id`."""
        out = []
        for k, (tag, attrs, panel) in enumerate(self.tags):
            if tag == "g" and panel == image_id:
                out.append((attrs, self.tags[k + 1][1]))
        return out


def planted_set(folder: Path, size=(120, 90)):
    """Three annotators on two images. img1: a circle all three drew; a square only A and B
    drew (C missed it); a box all drew, C labelling it triangle. img2: all agree."""
    boxes = []
    for who in (A, B, C):
        boxes.append(("img1", who, "circle", 10, 10, 40, 40))
        boxes.append(("img1", who, "square" if who != C else "triangle", 50, 50, 80, 80))
        boxes.append(("img2", who, "circle", 20, 20, 60, 60))
    boxes += [("img1", A, "square", 85, 10, 110, 35), ("img1", B, "square", 86, 11, 110, 35)]
    ts = make_set([(i, w) for i in ("img1", "img2") for w in (A, B, C)], boxes,
                  [("img1", w, f"caption by {w}") for w in (A, B, C)], size=size)
    folder.mkdir(parents=True, exist_ok=True)
    for image_id, colour in (("img1", "red"), ("img2", "blue")):
        Image.new("RGB", size, colour).save(folder / f"{image_id}.png")
    ts.images["path"] = [str(folder / f"{i}.png") for i in ts.images.image_id]
    ts.images["sha256"] = [hashlib.sha256(Path(p).read_bytes()).hexdigest()
                           for p in ts.images.path]  # as `annotate import` records it
    return ts


@pytest.fixture
def planted(tmp_path):
    ts = planted_set(tmp_path / "images")
    store.save(ts, tmp_path / "set")
    return tmp_path / "set"


def test_a_planted_missing_box_shows_as_only_these_annotators_in_its_colour(planted, tmp_path):
    record = gallery_job(planted, tmp_path / "g", progress=False)
    page = (tmp_path / "g" / record["links"]["disputed"]).read_text()
    parsed = Page(page)
    only = [(g, r) for g, r in parsed.boxes("img1") if "only" in g["class"].split()]
    assert len(only) == 2  # A's and B's boxes of the object C missed
    assert {g["data-who"] for g, _ in only} == {f"{A}, {B}"}
    assert {r["stroke"] for _, r in only} == {COLOURS["only"]}
    assert all(float(r["x"]) >= 85 and "focus" in g["class"] for g, r in only)
    conflict = [r for g, r in parsed.boxes("img1") if "label_conflict" in g["class"]]
    assert len(conflict) == 3 and {r["stroke"] for r in conflict} == {COLOURS["label_conflict"]}
    matched = [r for g, r in parsed.boxes("img1") if "matched" in g["class"].split()]
    assert len(matched) == 3 and {r["stroke"] for r in matched} == {COLOURS["matched"]}
    consensus = [r for g, r in parsed.boxes("img1") if "consensus" in g["class"]]
    assert len(consensus) == 3 and all("stroke-dasharray" in r for r in consensus)
    assert parsed.boxes("img2") == []  # everyone agreed on img2: not a disputed image
    assert record["views"]["disagreement/all"]["items"] == 1
    assert "cy@c.org" in page and "caption by cy@c.org" in page  # the captions beside it


def test_annotator_pages_count_what_reliability_json_counts(planted, tmp_path):
    reliability_job(store.load(planted), tmp_path / "r.json", n_boot=0, ceiling=False)
    reliability = json.loads((tmp_path / "r.json").read_text())  # as the artifact says
    record = gallery_job(planted, tmp_path / "g", progress=False)
    figures = record["figures"]["annotators"]
    for row in reliability["annotators"]:
        mine = figures[row["annotator"]]
        for rate in ("miss_rate", "spurious_rate", "label_error_rate"):
            assert mine[rate] == pytest.approx(row[rate], nan_ok=True), (row["annotator"], rate)
    # C missed the square A and B drew and mislabelled one box; A and B are charged nothing
    assert (figures[C]["missed"], figures[C]["wrong_label"]) == (1, 1)
    assert figures[A]["missed"] == figures[A]["spurious"] == figures[A]["wrong_label"] == 0
    page = (tmp_path / "g" / record["links"][f"annotator:{C}"]).read_text()
    assert 'data-items=\'1\'' in page  # one image with C's errors
    kinds = [g["class"].split()[1] for g, _ in Page(page).boxes("img1")]
    assert sorted(kinds) == ["matched", "missed_by_annotator", "wrong_label_by_annotator"]
    assert record["links"][f"annotator:{A}"]  # a page even with nothing to show


def test_every_link_and_picture_resolves_and_a_rerun_reads_no_image_again(planted, tmp_path):
    out = tmp_path / "g"
    gallery_job(planted, out, page_size=1, progress=False)
    assert_links_resolve(out)
    pictures = sorted((out / "img").iterdir())
    assert pictures and all(p.stat().st_size for p in pictures)
    for image in (planted.parent / "images").iterdir():  # the sources are gone ...
        image.unlink()
    record = gallery_job(planted, out, page_size=1, progress=False)
    assert record["images"]["unreadable"] == 0  # ... and the cache, by content hash, serves
    assert sorted((out / "img").iterdir()) == pictures
    assert_links_resolve(out)


def assert_links_resolve(folder: Path) -> int:
    """Every relative href and src of every page points at an existing file; the number of
    pages checked."""
    pages = list(folder.rglob("*.html"))
    for page in pages:
        for _tag, attrs, _ in Page(page.read_text()).tags:
            for name in ("href", "src"):
                target = attrs.get(name)
                if target and not re.match(r"^[a-z]+:", target) and not target.startswith("#"):
                    assert (page.parent / target).resolve().is_file(), (page, target)
    return len(pages)


def test_an_exif_rotated_image_is_shown_upright_and_a_bad_file_is_counted(tmp_path):
    # ultralytics patches PIL.Image.open on import (a file Pillow cannot identify then fails
    # with ModuleNotFoundError for its HEIF plugin); the gallery reads with Pillow's own opener,
    # so the pipeline, which imports ultralytics first, counts the bad file too
    import ultralytics.utils.patches  # noqa: F401

    ts = planted_set(tmp_path / "images", size=(300, 400))  # displayed 300 wide, 400 high
    stored = Image.new("RGB", (400, 300), "green")  # stored landscape, EXIF: rotate 90
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "images" / "img1.jpg", exif=exif)
    (tmp_path / "images" / "img2.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    ts.images["path"] = [str(tmp_path / "images" / "img1.jpg"), str(tmp_path / "images/img2.png")]
    ts.images["sha256"] = None
    ts.boxes.loc[(ts.boxes.image_id == "img2") & (ts.boxes.annotator == C), "label"] = "square"
    store.save(ts, tmp_path / "set")
    record = gallery_job(tmp_path / "set", tmp_path / "g", thumb=100, progress=False)
    (thumb,) = (tmp_path / "g" / "thumb").iterdir()
    with Image.open(thumb) as small:
        assert small.size == (75, 100)  # upright, as Label Studio and browsers show it
    assert record["images"]["unreadable"] == 1
    assert "img2.png" in record["images"]["problems"][0]
    page = (tmp_path / "g" / record["links"]["disputed"]).read_text()
    assert "image file not readable" in page


def test_gallery_command_on_an_export_file(tmp_path, capsys):
    from tests.conftest import REPO

    assert main(["gallery", str(REPO / "data/demo/export.json"), "--out",
                 str(tmp_path / "g")]) == 0
    printed = capsys.readouterr().out
    record = json.loads((tmp_path / "g" / GALLERY_JSON).read_text())
    assert record["kind"] == "set" and "Disputed images" in printed
    assert record["views"]["disagreement/all"]["items"] > 20
    assert assert_links_resolve(tmp_path / "g") > 5
    assert main(["gallery", str(tmp_path / "nothing.json")]) == 2
