"""The gallery job: `quality gallery`, the pipeline's gallery step and the tests call
`gallery_job`; nothing else writes a gallery folder."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from annotate.formats.readers import read_tables
from annotate.runtime.atomic import write_json, write_text
from annotate.runtime.errors import UserError
from annotate.tables import store
from annotate.tables.schema import check_errors
from annotate.tables.views import gold_boxes, reference_boxes
from quality import workspace
from quality.agreement.units import SAME_OBJECT_IOU
from quality.gallery.annotators import annotator_views
from quality.gallery.captions import caption_views
from quality.gallery.detector import detector_views
from quality.gallery.images import FULL, THUMBS, write_pictures
from quality.gallery.leakage import leakage_views
from quality.gallery.model import View
from quality.gallery.pages import STYLE, page_count, page_name, render_index, render_view
from quality.gold.consensus import TIE_KEEP
from quality.gold.jobs import CONSENSUS_SUMMARY

log = logging.getLogger(__name__)
#: What the gallery folder holds besides the picture caches (removed before a rebuild).
PAGE_FOLDERS = ("disagreement", "annotators", "stage1", "stage2", "leakage")
#: The gallery's record (written last): views, their pages, the report's links, the figures.
GALLERY_JSON = Path(workspace.ARTIFACTS["gallery"].path).name


def gallery_job(source: str | os.PathLike, out: str | os.PathLike | None = None, *,
                page_size: int = 48, thumb: int = 256, progress: bool = True) -> dict:
    """A static, offline gallery of the images behind the figures.

    Parameters
    ----------
    source : path
        A pipeline run folder (`evaluate-pipeline --out DIR`: every view) or a table set
        (folder or export file: the annotators' views).
    out : path, optional
        The gallery folder; default `gallery/` in the run folder or beside the set. Pictures
        already there (named by content hash) are reused; pages are rebuilt.
    page_size : int
        Images per page.
    thumb : int
        Longest side of a thumbnail in pixels.
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        What `gallery.json` holds: per view its title, first page, pages and counts; `links`
        (the report's names for the views -> first page); the figures behind the counts; the
        pictures written and the ones that could not be read.
    """
    if page_size < 1 or thumb < 16:
        raise UserError(f"page_size must be >= 1 and thumb >= 16, got {page_size}, {thumb}")
    source = Path(source)
    is_run = source.is_dir() and workspace.exists(source, "tables")
    out = gallery_folder(source, out)
    views, figures, images = (_run_views(source) if is_run else _set_views(source))
    _clear(out)
    shown = {p.image_id for v in views for c in v.cards for p in c.panels}
    pictures = write_pictures(images[images.image_id.isin(shown)], out, thumb, progress)
    for view in tqdm(views, desc="gallery pages", unit="view", disable=not progress):
        for name, text in render_view(view, pictures, page_size):  # one view's pages at a time
            write_text(out / name, text)
    links, entries = {}, {}
    for view in views:
        first = page_name(view.key, 1)
        entries[view.key] = {"title": view.title, "page": first, "link": view.link,
                             "pages": page_count(view, page_size), "unit": view.unit,
                             "items": view.items, "cards": len(view.cards)}
        if view.link:
            links[view.link] = first
    problems = sorted({p.problem for p in pictures.values() if p.problem})
    summary = {"source": str(source.resolve()), "kind": "run" if is_run else "set",
               "views": entries, "links": links, "figures": figures,
               "images": {"shown": len(shown), "unreadable": len(problems),
                          "problems": problems[:20]},
               "settings": {"page_size": page_size, "thumb": thumb}}
    if problems:
        log.warning("%d images could not be shown (first: %s)", len(problems), problems[0])
    write_text(out / "gallery.css", STYLE)
    write_text(out / "index.html", render_index(str(source), views, page_size, figures, links))
    write_json(out / GALLERY_JSON, summary)  # written last: its presence marks a whole gallery
    return summary


def gallery_folder(source: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Where the gallery of `source` goes: `out`, else `gallery/` in a run or set folder, or
    beside an export file."""
    if out is not None:
        return Path(out)
    source = Path(source)
    return (source if source.is_dir() else source.parent) / workspace.GALLERY


def _clear(out: Path) -> None:
    """Remove the pages of an earlier build (its pictures stay: they are a cache by content),
    the index record first, so that a build that fails midway never looks complete."""
    (out / GALLERY_JSON).unlink(missing_ok=True)
    (out / "index.html").unlink(missing_ok=True)
    for name in PAGE_FOLDERS:
        shutil.rmtree(out / name, ignore_errors=True)
    for name in (FULL, THUMBS):
        (out / name).mkdir(parents=True, exist_ok=True)


def _set_views(source: Path) -> tuple[list[View], dict, pd.DataFrame]:
    ts = read_tables(source)
    views, figures = annotator_views(ts)
    return views, figures, ts.images


def _run_views(run: Path) -> tuple[list[View], dict, pd.DataFrame]:
    """Every view a run folder's artifacts allow: annotators from its tables (with the
    consensus step's settings), detectors and captions from its split set and stage outputs,
    leakage from its audit."""
    ts = store.load(workspace.path(run, "tables"))
    settings = {"iou": SAME_OBJECT_IOU, "tie": TIE_KEEP}
    summary = workspace.path(run, "gold") / CONSENSUS_SUMMARY
    if summary.exists():
        settings.update(json.loads(summary.read_text()).get("settings", {}))
    views, figures = annotator_views(ts, settings["iou"], settings["tie"])
    images = ts.images
    if not workspace.exists(run, "split"):
        return views, figures, images
    split = store.load(workspace.path(run, "split"))
    gold = gold_boxes(split)
    figures["detectors"] = {}
    deployed = None
    for name, folder in workspace.DETECTORS.items():
        errors_path = run / folder / "errors_test.parquet"
        predicted_path = run / folder / "predicted_test.parquet"
        if not (errors_path.exists() and predicted_path.exists()):
            continue
        errors = check_errors(pd.read_parquet(errors_path), str(errors_path))
        predicted = pd.read_parquet(predicted_path)
        found, figures["detectors"][name] = detector_views(name, errors, predicted, gold, split)
        views += found
        if name == workspace.DEPLOYED_DETECTOR:
            deployed = errors, predicted
    variants = {folder.name: (pd.read_parquet(folder / workspace.CAPTIONS_GOLD),
                              pd.read_parquet(folder / workspace.CAPTIONS_PREDICTED))
                for folder in workspace.variants(run)}
    if variants and deployed is not None:
        found, figures["stage2"] = caption_views(variants, *deployed, gold, split,
                                                 workspace.DEPLOYED_DETECTOR)
        views += found
    if workspace.exists(run, "audit"):
        findings = pd.DataFrame(json.loads(workspace.path(run, "audit").read_text())
                                .get("findings", []))
        if not findings.empty:
            found, figures["leakage"] = leakage_views(findings, reference_boxes(split))
            views += found
    return views, figures, images

