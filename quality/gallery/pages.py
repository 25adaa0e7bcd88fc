"""HTML for the gallery: one stylesheet, an index, and each view's cards on numbered pages.
No script, no server: pictures load lazily from files beside the pages, boxes are SVG drawn
over them in the image's own pixel frame (`viewBox`), so one thumbnail serves every view."""

from __future__ import annotations

import html
import math

from quality.gallery.images import Picture
from quality.gallery.model import COLOURS, DASHED, LEGEND, Box, Card, View, slug
from quality.report.tables import confusion_table

STYLE = """
body{font-family:sans-serif;margin:1.5em;color:#222}
nav{font-size:.9em;margin-bottom:.5em}
h1{font-size:1.4em;margin:.2em 0}
.intro{max-width:70em}
.pager a,.pager span{margin-right:.6em}
.legend span{display:inline-block;margin-right:1em;font-size:.85em}
.legend i{display:inline-block;width:1.6em;height:.8em;border:2px solid;margin-right:.3em;
vertical-align:middle}
.legend i.dashed{border-style:dashed}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #ccc;border-radius:4px;padding:6px;margin:0;max-width:560px}
.card figcaption{font-size:.9em;margin-bottom:4px}
.card .fig{margin-left:.8em;color:#444}
.panels{display:flex;gap:6px}
.panel{width:256px}
.pic{position:relative;width:256px;background:#eee}
.pic img{display:block;width:100%;height:100%}
.pic svg{position:absolute;left:0;top:0;width:100%;height:100%;pointer-events:none}
.pic rect{fill:none;vector-effect:non-scaling-stroke;stroke-width:1.5px;
pointer-events:visibleStroke}
.pic .focus rect{stroke-width:3px}
.pic text{paint-order:stroke;stroke:#fff;stroke-width:2px;font-family:sans-serif}
.pic.missing{padding:1em;font-size:.85em;color:#b35900;height:auto}
.heading{font-size:.8em;color:#555}
.notes{font-size:.8em;margin:4px 0;padding-left:1.2em}
table{border-collapse:collapse;font-size:.8em;margin-top:4px}
td,th{border:1px solid #ddd;padding:1px 5px;text-align:left;vertical-align:top}
td.n{text-align:right}
.matrix td{text-align:right;min-width:2.5em}
.matrix td a{display:block}
"""


def page_name(key: str, number: int) -> str:
    """The file of page `number` (from 1) of view `key`, relative to the gallery folder."""
    return f"{key}-{number:03d}.html"


def page_count(view: View, page_size: int) -> int:
    return max(1, math.ceil(len(view.cards) / page_size))


def render_view(view: View, pictures: dict[str, Picture], page_size: int
                ) -> list[tuple[str, str]]:
    """Every page of a view: (file name relative to the gallery, HTML)."""
    up = "../" * view.key.count("/")
    total = page_count(view, page_size)
    head = (f"<p class='count' data-view='{html.escape(view.key)}' data-unit='{view.unit}' "
            f"data-items='{view.items}' data-cards='{len(view.cards)}'>{view.items} "
            f"{html.escape(view.unit)}" + (f" on {len(view.cards)} images" if view.unit not in (
                "images", "pairs") else "") + "</p>")
    figures = "".join(f"<span class='fig' data-figure='{html.escape(name)}'>"
                      f"{html.escape(name.replace('_', ' '))}: {_value(value)}</span>"
                      for name, value in view.figures)
    pages = []
    for number in range(1, total + 1):
        chunk = view.cards[(number - 1) * page_size: number * page_size]
        pager = _pager(view.key, number, total)
        body = "".join(_card(card, pictures, up) for card in chunk)
        pages.append((page_name(view.key, number), _document(
            view.title, up,
            f"<nav><a href='{up}index.html'>gallery</a> &rsaquo; {html.escape(view.title)}</nav>"
            f"<h1>{html.escape(view.title)}</h1><p class='intro'>{html.escape(view.intro)}</p>"
            f"{head}<p>{figures}</p>{legend(view.legend)}{pager}"
            f"<div class='cards'>{body}</div>{pager}")))
    return pages


def _document(title: str, up: str, body: str) -> str:
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title>"
            f"<link rel='stylesheet' href='{up}gallery.css'></head><body>{body}</body></html>")


def _pager(key: str, number: int, total: int) -> str:
    if total == 1:
        return ""
    stem = key.rsplit("/", 1)[-1]
    links = []
    for k in sorted({1, number - 1, number, number + 1, total} & set(range(1, total + 1))):
        target = page_name(stem, k)
        links.append(f"<span>{k}</span>" if k == number else f"<a href='{target}'>{k}</a>")
    prev = f"<a href='{page_name(stem, number - 1)}'>&lsaquo; previous</a>" if number > 1 else ""
    following = (f"<a href='{page_name(stem, number + 1)}'>next &rsaquo;</a>"
                 if number < total else "")
    return (f"<p class='pager'>page {number} of {total}: {prev}{''.join(links)}"
            f"{following}</p>")


def legend(kinds: tuple[str, ...]) -> str:
    """The colour key of a page's boxes."""
    return "<p class='legend'>" + "".join(
        f"<span><i class='{'dashed' if k in DASHED else ''}' style='border-color:"
        f"{COLOURS[k]}'></i>{html.escape(LEGEND[k])}</span>" for k in kinds) + "</p>"


def _value(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3g}"
    return html.escape(str(value))


def _card(card: Card, pictures: dict[str, Picture], up: str) -> str:
    figures = "".join(f"<span class='fig' data-figure='{html.escape(n)}'>{html.escape(n)}: "
                      f"{_value(v)}</span>" for n, v in card.figures)
    panels = "".join(_panel(p.image_id, p.heading, p.boxes, pictures.get(p.image_id), up)
                     for p in card.panels)
    notes = ("<ul class='notes'>" + "".join(f"<li>{html.escape(n)}</li>" for n in card.notes)
             + "</ul>") if card.notes else ""
    table = ""
    if card.table and card.table[1]:
        header, rows = card.table
        table = ("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
                 + "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row)
                           + "</tr>" for row in rows) + "</table>")
    return (f"<figure class='card' id='c-{slug(card.key)}' data-key='{html.escape(card.key)}'>"
            f"<figcaption><b>{html.escape(card.title)}</b>{figures}</figcaption>"
            f"<div class='panels'>{panels}</div>{notes}{table}</figure>")


def _panel(image_id: str, heading: str, boxes: list[Box], picture: Picture | None,
           up: str) -> str:
    label = f"<div class='heading'>{html.escape(heading)}</div>"
    if picture is None or picture.full is None:
        reason = picture.problem if picture else "image not in the set"
        return (f"<div class='panel' data-image-id='{html.escape(image_id)}'><div class='pic "
                f"missing'>{html.escape(reason)}</div>{label}</div>")
    w, h = picture.width, picture.height
    size = max(w, h) / 22
    drawn = "".join(_box(b, size, h) for b in boxes)
    return (f"<div class='panel' data-image-id='{html.escape(image_id)}'>"
            f"<div class='pic' style='aspect-ratio:{w}/{h}'><a href='{up}{picture.full}'>"
            f"<img loading='lazy' src='{up}{picture.thumb}' alt='image "
            f"{html.escape(image_id)}'></a><svg viewBox='0 0 {w} {h}' font-size='{size:.1f}'>"
            f"{drawn}</svg></div>{label}</div>")


def _box(box: Box, size: float, height: float) -> str:
    colour = COLOURS[box.kind]
    dash = " stroke-dasharray='4 3'" if box.kind in DASHED else ""
    if box.kind in DASHED:  # reference boxes: their text under the box, apart from the rest
        y = box.y1 + size if box.y1 + size <= height else box.y1 - 2
    else:
        y = box.y0 - 2 if box.y0 > size else box.y0 + size
    return (f"<g class='box {box.kind}{' focus' if box.focus else ''}' data-who="
            f"'{html.escape(box.who)}'><rect x='{box.x0:.1f}' y='{box.y0:.1f}' "
            f"width='{box.x1 - box.x0:.1f}' height='{box.y1 - box.y0:.1f}' stroke='{colour}'"
            f"{dash}><title>{html.escape(box.title or box.text)}</title></rect>"
            f"<text x='{box.x0 + 1:.1f}' y='{y:.1f}' fill='{colour}'>{html.escape(box.text)}"
            "</text></g>")


#: The index's sections: key prefix -> heading.
SECTIONS = {"disagreement/": "Annotators: disputed images",
            "annotators/": "Annotators: one page each",
            "stage1/": "Stage 1: the detectors' errors",
            "stage2/": "Stage 2: captions from gold and from the detector",
            "leakage/": "Leakage across splits"}


def render_index(source: str, views: list[View], page_size: int, figures: dict,
                 links: dict[str, str]) -> str:
    """The gallery's front page: every view with its count, and each detector's confusion
    matrix with a link per cell (drawn as the report draws it)."""
    parts = [f"<h1>twostage gallery</h1><p>From <code>{html.escape(source)}</code>. Each "
             "link opens the images behind one figure of the report; pages hold "
             f"{page_size} images each.</p>"]
    for prefix, heading in SECTIONS.items():
        # a confusion cell's view is reached from its cell of the matrix
        chosen = [v for v in views if v.key.startswith(prefix) and "/cell-" not in v.key]
        if not chosen:
            continue
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        if prefix == "stage1/":
            for name, block in (figures.get("detectors") or {}).items():
                parts.append(f"<h3>{html.escape(name)}: confusion matrix (click a cell)</h3>"
                             + confusion_table(block["confusion"], name, links, ""))
        parts.append("<ul>" + "".join(
            f"<li><a href='{page_name(v.key, 1)}' data-view='{html.escape(v.key)}'>"
            f"{html.escape(v.title)}</a>: <span data-items='{v.items}'>{v.items}</span> "
            f"{html.escape(v.unit)}</li>" for v in chosen) + "</ul>")
    return _document("twostage gallery", "", "".join(parts))

