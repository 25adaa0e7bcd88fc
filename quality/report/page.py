"""`quality report`: one self-contained HTML page (plots embedded as PNG data, no scripts, no
CDN) and `report.json` with every figure on it, from whatever a run folder holds.

Every number on the page is written from the same dictionary that becomes report.json, each
inside an element carrying its JSON path (`data-key`), so a test can check page against JSON.
A section whose inputs are missing says so and names the command that makes them.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageOps

from annotate.runtime.atomic import write_json, write_text
from annotate.runtime.pillow import open_image
from annotate.tables import store
from annotate.tables.schema import HUMAN
from quality import workspace
from quality.report.tables import confusion_table

COLOURS = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]
HEADLINE_METRICS = ("cider_d", "rouge_l", "content", "bleu_4")


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def collect(run: str | os.PathLike) -> dict:
    """Every figure the report shows, read from the artifacts in `run`.

    Parameters
    ----------
    run : path
        A run folder (`quality.workspace` names its artifacts).

    Returns
    -------
    dict
        What `report.json` holds: the figures of every artifact present and, under `missing`,
        the command that makes each artifact that is not (with the run's own settings from
        `run.json` when it is there). Nothing is computed here.
    """
    run = Path(run)
    record = _read_json(workspace.path(run, "run")) or {}
    settings = record.get("settings") or {}
    figures: dict = {"run": str(run.resolve()), "missing": {
        name: artifact.command_for(run, settings)
        for name, artifact in workspace.ARTIFACTS.items() if not workspace.exists(run, name)}}
    if record:
        figures["provenance"] = {key: record.get(key) for key in (
            "data_version", "split_versions", "source_version", "settings")}
        if record.get("mlflow"):
            figures["mlflow"] = record["mlflow"]

    def have(name: str) -> bool:
        return name not in figures["missing"]

    if have("reliability"):
        figures["reliability"] = _read_json(workspace.path(run, "reliability"))
    if have("consensus"):
        figures["consensus"] = _read_json(workspace.path(run, "consensus"))
    if have("split") and (workspace.path(run, "split") / "split_report.json").exists():
        figures["split"] = _read_json(workspace.path(run, "split") / "split_report.json")
    if have("audit"):
        audit = _read_json(workspace.path(run, "audit"))
        figures["audit"] = {"counts": audit["counts"], "settings": audit["settings"]}
    if have("stage1"):
        trained = _read_json(workspace.path(run, "stage1"))
        figures["stage1"] = {"val": trained.get("val", {}), "config": trained.get("config", {}),
                             "data_version": trained.get("data_version"),
                             "source_version": trained.get("source_version")}
        if have("evaluate"):
            figures["stage1"]["test"] = _read_json(workspace.path(run, "evaluate"))
        thresholds = {name: _read_json(run / folder / workspace.THRESHOLD)
                      for name, folder in workspace.DETECTORS.items()}
        figures["stage1"]["thresholds"] = {k: v for k, v in thresholds.items() if v}
    if have("robustness"):
        figures["robustness"] = _read_json(workspace.path(run, "robustness"))
        if "summary" in figures["robustness"]:
            figures["summary"] = figures["robustness"]["summary"]
    if have("sanity"):
        figures["sanity"] = _read_json(workspace.path(run, "sanity"))
    if have("judging"):
        figures["judging"] = _read_json(workspace.path(run, "judging"))
    if have("gallery"):
        gallery = _read_json(workspace.path(run, "gallery"))
        figures["gallery"] = {"links": gallery.get("links", {}),
                              "figures": gallery.get("figures", {})}
    replicates = _read_json(run / REPLICATES)  # only a run with --replicates K > 1 has it
    if replicates:
        figures["replicates"] = replicates
    return figures


#: Written by a run with training replicates (`quality.cascade.replicates`); optional.
REPLICATES = "replicates.json"


#: The artifacts each section of the page reads, in the order that makes them: a section whose
#: figures are missing names the commands of the missing ones.
SECTION_NEEDS = {
    "Verdict": ("tables", "gold", "split", "stage1", "raw", "stage2", "threshold", "errors",
                "captions", "robustness"),
    "Annotator agreement": ("tables", "reliability", "consensus"),
    "Splits and leakage": ("gold", "split", "audit"),
    "Stage 1: detector": ("split", "stage1", "raw", "stage2", "threshold", "evaluate"),
    "Stage 2: gold vs predicted input": ("stage2", "threshold", "errors", "captions",
                                         "robustness"),
    "Validation vs test": ("captions", "robustness"),
    "People": ("split", "stage2", "captions", "judging"),
    "Sanity checks": ("split", "sanity"),
    "Run record": ("run",),
}


def build(run: str | os.PathLike, out: str | os.PathLike) -> Path:
    """The report job: one static page and its figures, from a run folder's artifacts.

    Parameters
    ----------
    run : path
        The run folder; only read.
    out : path
        Folder for `report.html` (self-contained, offline) and `report.json` (every figure on
        the page, and the command for each missing artifact).

    Returns
    -------
    Path
        The page.
    """
    figures = collect(run)
    out = Path(out)
    if "gallery" in figures:  # links relative to the page, so the folder works offline
        figures["gallery"]["href"] = Path(os.path.relpath(
            workspace.path(run, "gallery").parent, out)).as_posix()
    page = render(figures, Path(run))
    write_json(out / "report.json", figures)
    write_text(out / "report.html", page)
    return out / "report.html"


# --------------------------------------------------------------------------- rendering
#: The pages' stylesheet (the report and `quality compare`'s page).
STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
         "h2{border-bottom:1px solid #ccc}table{border-collapse:collapse;margin:.5em 0}"
         "td,th{border:1px solid #ddd;padding:2px 8px;text-align:right}"
         "th:first-child,td:first-child{text-align:left}.missing{background:#fff4e5;"
         "padding:.5em 1em;border-left:4px solid #f0a030}img.plot{max-width:100%}"
         "img.sample{border:1px solid #ccc;margin:4px;max-width:300px}"
         ".ceiling{color:#555}.warn{color:#b35900}")


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    return f"{float(value):.4g}"


def _fig(key: str, value) -> str:
    """A figure on the page, tagged with its path in report.json."""
    return f'<span class="fig" data-key="{html.escape(key)}">{_fmt(value)}</span>'


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img class="plot" alt="plot" src="data:image/png;base64,{data}">'


def _image_tag(image: Image.Image, alt: str) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img class="sample" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _missing(figures: dict, *names: str) -> str:
    """The commands that make the missing ones of `names`, in order (empty when none is)."""
    rows = [f"<li><code>{html.escape(figures['missing'][n])}</code></li>" for n in names
            if n in figures["missing"]]
    if not rows:
        return ""
    return ('<div class="missing"><p>Not in this run yet; make it with:</p><ul>'
            + "".join(rows) + "</ul></div>")


def _absent(figures: dict, title: str) -> str:
    """A section whose figures are missing: its title and the commands that make them."""
    block = _missing(figures, *SECTION_NEEDS[title]) or (
        '<div class="missing"><p>Not in this run: its artifacts hold no such figures (made '
        "by an older version?); rerun <code>evaluate-pipeline</code>.</p></div>")
    return f"<section><h2>{html.escape(title)}</h2>{block}</section>"


def render(figures: dict, run: Path) -> str:
    sections = [_verdict_section(figures), _reliability_section(figures, run),
                _split_section(figures),
                _stage1_section(figures), _robustness_section(figures, run),
                _agreement_section(figures), _people_section(figures),
                _sanity_section(figures), _provenance_section(figures)]
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<title>twostage report</title>" f"<style>{STYLE}</style></head><body>"
            f"<h1>twostage report</h1><p>Run folder: <code>{html.escape(figures['run'])}</code>"
            "</p>" + _gallery_line(figures) + "".join(sections) + "</body></html>")


def _gallery_line(figures: dict) -> str:
    """Where to look at the images behind the figures (`quality gallery`)."""
    if "gallery" not in figures:
        return _missing(figures, "gallery")
    href = html.escape(f"{figures['gallery']['href']}/index.html")
    return (f"<p class='gallery'>The images behind the figures: <a href='{href}'>gallery</a> "
            "(offline pages; counts, table rows and matrix cells below link to their "
            "images).</p>")


def _linked(figures: dict, link: str, text: str) -> str:
    """`text` (already HTML) as a link to the gallery page of `link`, when the run's gallery
    has one (gallery.json's `links`)."""
    gallery = figures.get("gallery") or {}
    page = (gallery.get("links") or {}).get(link)
    if page is None:
        return text
    return f"<a class='to-gallery' href='{html.escape(gallery['href'] + '/' + page)}'>{text}</a>"


def _verdict_section(figures: dict) -> str:
    """The answer first: the verdict sentences of `robustness.json`'s summary and one plot
    (every variant on gold and predicted input next to the ceilings), the gap of every variant
    per detector with its interval, each detector's error rates and confusion."""
    block = figures.get("summary")
    if not block:
        return _absent(figures, "Verdict")
    out = ["<section><h2>Verdict</h2>"]
    replicates = figures.get("replicates")
    if replicates:
        out.append(_replicates(replicates))
        out.append(f"<h3>Seed {html.escape(str(replicates['seeds'][0]))} alone (one trained "
                   "model per variant; intervals over test images only)</h3>")
    out += [f"<p>{html.escape(line)}</p>" for line in block.get("verdict", [])]
    out += _people_verdict(figures.get("judging"))
    out.append(_verdict_plot(block))
    rows = []
    for kind in ("gap", "baseline"):
        for detector, variants in block[kind].items():
            entries = variants.items() if kind == "gap" else [("rule baseline", variants)]
            for variant, e in entries:
                key = (f"summary.gap.{detector}.{variant}" if kind == "gap"
                       else f"summary.baseline.{detector}")
                rows.append([html.escape(f"{detector}: {variant}"), *[
                    _with_interval(key, e, name, low, high) for name, low, high in (
                        ("gold", "gold_ci_low", "gold_ci_high"),
                        ("predicted", "predicted_ci_low", "predicted_ci_high"),
                        ("drop", "ci_low", "ci_high"),
                        ("reduction", "reduction_ci_low", "reduction_ci_high"),
                        ("predicted_change", "predicted_change_ci_low",
                         "predicted_change_ci_high"),
                        ("gold_change", "gold_change_ci_low", "gold_change_ci_high"))]])
    if block.get("resampled"):
        out.append("<p>Intervals in this section resample "
                   + _resampled("summary.resampled", block["resampled"]) + ".</p>")
    out.append(_table([f"detector: variant ({block['metric']}, [95% CI])", "gold input",
                       "predicted input", "drop", "gap closed",
                       "predicted input vs gold-trained", "gold input vs gold-trained"], rows))
    rates = ("threshold", "recall", "miss_rate", "spurious_rate", "wrong_label_rate",
             "mislocated_rate")
    out.append(_table(["detector", *[r.replace("_", " ") for r in rates]], [
        [html.escape(name), *[_fig(f"summary.detectors.{name}.{r}", d.get(r)) for r in rates]]
        for name, d in block["detectors"].items()]))
    out.append(_confusion_plot(block["detectors"]))
    gallery = figures.get("gallery")
    if gallery:
        out += [f"<h3>{html.escape(name)}: confusion matrix (a cell opens its images)</h3>"
                + confusion_table(d["confusion"], name, gallery["links"], gallery["href"] + "/")
                for name, d in block["detectors"].items() if d.get("confusion")]
    return "".join(out) + "</section>"


def _people_verdict(people: dict | None) -> list[str]:
    """The judges' verdict sentences (`judgments.json`), each figure in them tagged, and
    where the People section has the rest."""
    if not people or not people.get("verdict"):
        return []
    return [f"<p class='people'>{html.escape(line)} <a href='#people'>(people)</a></p>"
            for line in people["verdict"]]


def _replicates(block: dict) -> str:
    """The verdict over training replicates: its sentences and every figure with its interval
    over test images x replicates and the training share of its variance."""
    out = [f"<p>{html.escape(line)}</p>" for line in block["verdict"]]
    rows = []

    def row(label: str, key: str, entry: dict, value: str = "value") -> list[str]:
        share, repeat = entry["variance"]["training_share"], entry.get("rerun_same_call")
        return [html.escape(label), _fig(f"{key}.{value}", entry[value]),
                _fig(f"{key}.ci_low", entry["ci_low"]), _fig(f"{key}.ci_high", entry["ci_high"]),
                _fig(f"{key}.variance.training_share", share) if share is not None
                else "not measured",
                _fig(f"{key}.rerun_same_call", repeat) if repeat is not None else "—"]

    for detector, variants in block["gap"].items():
        for variant, entry in variants.items():
            key = f"replicates.gap.{detector}.{variant}"
            rows.append(row(f"{detector}: {variant}: drop", f"{key}.drop", entry["drop"]))
            for name in ("predicted_change", "gold_change"):
                if name in entry:
                    rows.append(row(f"{detector}: {variant}: {name.replace('_', ' ')} vs "
                                    "gold-trained", f"{key}.{name}", entry[name], "difference"))
            if "reduction" in entry:
                rows.append(row(f"{detector}: {variant}: gap closed", f"{key}.reduction",
                                entry["reduction"]))
    out.append(_table([f"figure ({block['metric']}, {block['replicates']} replicates x "
                       f"{block['test_images']} test images)", "value", "95% CI low",
                       "95% CI high", "training share of the variance",
                       "a rerun makes the same call (if the difference is as measured)"], rows))
    return "".join(out)


def _with_interval(key: str, entry: dict, name: str, low: str, high: str) -> str:
    """A figure and its interval, or n/a."""
    if entry.get(name) is None:
        return "n/a"
    return (f"{_fig(f'{key}.{name}', entry[name])} [{_fig(f'{key}.{low}', entry[low])}, "
            f"{_fig(f'{key}.{high}', entry[high])}]")


def _verdict_plot(block: dict) -> str:
    """One picture of the verdict: per variant (deployed detector) the score on perfect input
    and on each detector's output with 95% intervals, the rule baseline beside them, and the
    perfect-input and human ceilings as lines."""
    detectors = list(block["gap"])
    if not detectors:
        return ""
    deployed = block.get("deployed", detectors[0])
    entries = dict(block["gap"].get(deployed, {}))
    if deployed in block["baseline"]:
        entries["rule baseline"] = block["baseline"][deployed]
    names = list(entries)
    x = np.arange(len(names))
    fig = Figure(figsize=(7.5, 3.6), layout="constrained")
    ax = fig.subplots()

    def points(values: dict, field: str, offset: float, **style) -> None:
        y = np.array([values[n][field] if n in values else np.nan for n in names], float)
        low = np.array([values[n][f"{field}_ci_low"] if n in values else np.nan
                        for n in names], float)
        high = np.array([values[n][f"{field}_ci_high"] if n in values else np.nan
                         for n in names], float)
        ax.errorbar(x + offset, y, yerr=[y - low, high - y], fmt="o", capsize=3, **style)

    points(entries, "gold", -0.15, color="#2ca02c", label="perfect input")
    points(entries, "predicted", 0.0, color="#d62728", label=f"{deployed} output")
    for other in [d for d in detectors if d != deployed]:
        others = dict(block["gap"][other])
        if other in block["baseline"]:
            others["rule baseline"] = block["baseline"][other]
        points(others, "predicted", 0.15, color="#7f7f7f", mfc="white",
               label=f"{other} output")
    ceilings = block.get("ceilings") or {}
    if ceilings.get("perfect_input") is not None:
        ax.axhline(ceilings["perfect_input"], color="#2ca02c", ls=":", lw=1,
                   label="perfect-input ceiling (gold-trained)")
    if ceilings.get("human") is not None:
        ax.axhline(ceilings["human"], color="black", ls="--", lw=1,
                   label="human ceiling (k - 1 refs)")
        if ceilings.get("human_ci_low") is not None:
            ax.axhspan(ceilings["human_ci_low"], ceilings["human_ci_high"], color="black",
                       alpha=0.08)
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_ylabel(block["metric"])
    ax.set_title(f"{block['metric']} on {block['test_images']} test images, 95% intervals")
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1, 0.5))
    return _png(fig)


def _confusion_plot(detectors: dict) -> str:
    """Each detector's confusion matrix (gold rows + spurious, predicted columns + missed)."""
    names = [n for n, d in detectors.items() if d.get("confusion")]
    if not names:
        return ""
    fig = Figure(figsize=(5 * len(names), 4.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(names)))
    for ax, name in zip(axes, names, strict=True):
        c = detectors[name]["confusion"]
        counts = np.array(c["counts"], dtype=float)
        ax.imshow(counts, cmap="Blues")
        ax.set_xticks(range(len(c["columns"])), c["columns"], rotation=45, ha="right")
        ax.set_yticks(range(len(c["rows"])), c["rows"])
        for (i, j), value in np.ndenumerate(counts):
            if value:
                ax.text(j, i, f"{int(value)}", ha="center", va="center", fontsize=8,
                        color="white" if value > counts.max() / 2 else "black")
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        ax.set_title(name)
    return _png(fig)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _reliability_section(figures: dict, run: Path) -> str:
    rel = figures.get("reliability")
    if rel is None:
        return _absent(figures, "Annotator agreement")
    out = ["<section><h2>Annotator agreement</h2>"]
    kinds = [k for k in ("labels", "boxes", "captions", "counts") if k in rel]
    rows = []
    for k in kinds:
        rows.append([k, *_alpha_cells(f"reliability.{k}", rel[k])])
        if "absent_excluded" in rel[k]:
            rows.append([f"{k}, absent excluded",
                         *_alpha_cells(f"reliability.{k}.absent_excluded",
                                       rel[k]["absent_excluded"])])
    out.append(_table(["", "alpha", "95% CI low", "95% CI high", "units", "CI resamples",
                       "note"], rows))
    per_class = rel.get("per_class") or {}
    if per_class:
        out.append("<h3>Per class (is it this class? absent counts as not)</h3>")
        out.append(_table(["class", "alpha", "95% CI low", "95% CI high", "units",
                           "CI resamples", "note"], [
            [html.escape(name), *_alpha_cells(f"reliability.per_class.{name}", a)]
            for name, a in per_class.items()]))
    annotators = rel.get("annotators", [])
    columns = [c for c in ("labels_agreement", "boxes_agreement", "captions_agreement")
               if annotators and c in annotators[0]]
    if annotators and columns:
        fig = Figure(figsize=(8, 0.5 + 0.45 * len(annotators)), layout="constrained")
        ax = fig.subplots()
        y = np.arange(len(annotators))
        height = 0.8 / len(columns)
        for k, column in enumerate(columns):
            ax.barh(y + k * height, [a[column] or 0 for a in annotators], height,
                    label=column.split("_")[0])
        ax.set_yticks(y + height * (len(columns) - 1) / 2, [a["annotator"] for a in annotators])
        ax.set_xlim(0, 1)
        ax.set_xlabel("agreement with the other annotators")
        ax.legend(loc="upper left", bbox_to_anchor=(1, 1))
        out.append(_png(fig))
        out.append(_table(["annotator", "images", "miss rate", "spurious rate",
                           "labels alpha without"], [
            [_linked(figures, f"annotator:{a['annotator']}", html.escape(a["annotator"])),
             _fig(f"reliability.annotators.{i}.n_images",
                                               a["n_images"]),
             _fig(f"reliability.annotators.{i}.miss_rate", a.get("miss_rate")),
             _fig(f"reliability.annotators.{i}.spurious_rate", a.get("spurious_rate")),
             _fig(f"reliability.annotators.{i}.labels_alpha_without",
                  a.get("labels_alpha_without"))] for i, a in enumerate(annotators)]))
    ceiling = rel.get("human_ceiling")
    if ceiling:
        pooled = ceiling["pooled"]
        parts = [f"{m} " + _fig(f"reliability.human_ceiling.pooled.{m}.score", v["score"])
                 for m, v in pooled.items()]
        unit = (ceiling.get("resampled") or {}).get("unit")
        out.append("<p class='ceiling'>Human ceiling (each annotator against the others): "
                   + ", ".join(parts)
                   + (f" (95% intervals resample {html.escape(unit)}s)" if unit else "")
                   + "</p>")
    out.append(_disagreements(rel, run, figures))
    out.append(_consensus(figures))
    return "".join(out) + "</section>"


def _consensus(figures: dict) -> str:
    """What the gold labels rest on: the vote, and the reviewers' decisions that replaced it."""
    block = figures.get("consensus")
    if block is None:
        return _missing(figures, "consensus")
    flags = ", ".join(_linked(figures, f"flag:{k}", f"{_fig(f'consensus.flags.{k}', n)} "
                              f"{html.escape(k.replace('_', ' '))}")
                      for k, n in block["flags"].items()) or "none"
    out = [f"<h3>Consensus</h3><p>{_fig('consensus.consensus_boxes', block['consensus_boxes'])} "
           f"gold boxes from {_fig('consensus.box_clusters', block['box_clusters'])} box "
           "clusters (majority vote); flagged for review: " + flags + ".</p>"]
    decided = block.get("adjudication") or {}
    if decided:
        key = "consensus.adjudication"
        out.append(
            f"<p>Adjudicated: {_fig(f'{key}.images', decided['images'])} images were decided by a "
            "reviewer instead of the vote. The vote was overturned for "
            f"{_fig(f'{key}.overturned', decided['overturned'])} of "
            f"{_fig(f'{key}.objects', decided['objects'])} objects (share "
            f"{_fig(f'{key}.overturned_share', decided['overturned_share'])}: "
            f"{_fig(f'{key}.relabelled', decided['relabelled'])} relabelled, "
            f"{_fig(f'{key}.removed', decided['removed'])} removed, "
            f"{_fig(f'{key}.added', decided['added'])} added) and for "
            f"{_fig(f'{key}.captions_overturned', decided['captions_overturned'])} of "
            f"{_fig(f'{key}.captions', decided['captions'])} captions.</p>")
    else:
        out.append("<p>No image was adjudicated (<code>quality adjudicate</code> sends the most "
                   "disputed ones to a reviewer).</p>")
    return "".join(out)


def _alpha_cells(key: str, a: dict) -> list[str]:
    """alpha, its interval, its units and the artifact's warning (shown, never computed here)."""
    warning = a.get("warning")
    return [_fig(f"{key}.alpha", a["alpha"]), _fig(f"{key}.ci_low", a["ci_low"]),
            _fig(f"{key}.ci_high", a["ci_high"]), _fig(f"{key}.n_units", a["n_units"]),
            _resampled(f"{key}.resampled", a.get("resampled") or {}),
            f"<span class='warn'>&#9888; {html.escape(warning)}</span>" if warning else ""]


def _resampled(key: str, resampled: dict) -> str:
    """What an interval resampled, as the artifact says: '198 images x 1000'."""
    if not resampled.get("n_boot"):
        return "none"
    unit = "units" if resampled.get("unit") == "unit" else f"{resampled.get('unit')}s"
    count = (_fig(f"{key}.count", resampled["count"]) + " " if "count" in resampled else "")
    paired = " (paired)" if resampled.get("paired") else ""
    training = ("; training variance not measured (one trained model)"
                if resampled.get("training_variance") == "not measured" else "")
    return (f"{count}{html.escape(unit)}{paired} &times; "
            f"{_fig(f'{key}.n_boot', resampled['n_boot'])}{training}")


def _disagreements(rel: dict, run: Path, figures: dict) -> str:
    """The box units with most disagreement: the image with every annotator's boxes."""
    review = list({u["image_id"]: u for u in rel.get("boxes", {}).get("review", [])}
                  .values())[:4]  # one picture per image
    folder = workspace.path(run, "tables")
    if not review:
        return ""
    if not folder.exists():
        return ("<h3>Most disagreement</h3><p class='missing'>The images are not drawn: the "
                f"run's tables are missing (<code>{html.escape(str(folder))}</code>).</p>")
    ts = store.load(folder, validate=False)
    paths = ts.images.set_index("image_id").path
    human = ts.boxes[ts.boxes.source == HUMAN]
    tags = []
    for unit in review:
        image_id = unit["image_id"]
        if image_id not in paths.index or not Path(paths[image_id]).exists():
            continue
        boxes = human[human.image_id == image_id]
        names = sorted(boxes.annotator.unique())
        picture = _draw(paths[image_id], boxes, {n: COLOURS[i % len(COLOURS)]
                                                 for i, n in enumerate(names)}, "annotator")
        tags.append(_image_tag(picture, f"image {image_id}: every annotator's boxes"))
    if not tags:
        return ""
    disputed = (figures.get("gallery") or {}).get("figures", {}).get("disputed_images")
    more = "" if disputed is None else "<p>" + _linked(
        figures, "disputed", f"All {_fig('gallery.figures.disputed_images', disputed)} "
        "disputed images, colour-coded by agreement") + "</p>"
    return ("<h3>Most disagreement (every annotator's boxes, one colour each)</h3>"
            + "".join(tags) + more)


def _draw(path: str, boxes: pd.DataFrame, colours: dict, key: str) -> Image.Image:
    with open_image(path) as source:  # as displayed (EXIF orientation): the boxes' frame
        picture = ImageOps.exif_transpose(source).convert("RGB")
    draw = ImageDraw.Draw(picture)
    for row in boxes.itertuples():
        colour = colours.get(getattr(row, key), "#000000")
        draw.rectangle([row.x0, row.y0, row.x1, row.y1], outline=colour, width=2)
        draw.text((row.x0 + 2, row.y0 + 1), str(row.label)[:14], fill=colour)
    return picture


def _split_section(figures: dict) -> str:
    if figures.get("split") is None and figures.get("audit") is None:
        return _absent(figures, "Splits and leakage")
    out = ["<section><h2>Splits and leakage</h2>"]
    split = figures.get("split")
    if split is None:
        out.append(_missing(figures, "split"))
    else:
        out.append(_table(["split", "images", "groups", "objects", "share"], [
            [html.escape(str(s["index"])), _fig(f"split.splits.{i}.images", s["images"]),
             _fig(f"split.splits.{i}.groups", s["groups"]),
             _fig(f"split.splits.{i}.objects", s["objects"]),
             _fig(f"split.splits.{i}.share", s["share"])]
            for i, s in enumerate(split["splits"])]))
        out.append("<p>Largest class-share difference between splits: "
                   f"{_fig('split.max_class_share_gap', split['max_class_share_gap'])}</p>")
        shares = pd.DataFrame(split["class_shares"])
        if not shares.empty:
            fig = Figure(figsize=(8, 3), layout="constrained")
            ax = fig.subplots()
            shares.plot.bar(ax=ax)
            ax.set_ylabel("share of images containing the class")
            out.append(_png(fig))
        adequacy = split.get("adequacy", {})
        for name, entry in adequacy.items():
            key = f"split.adequacy.{name}"
            widths = [f"{m} " + _fig(f"{key}.{m}.ci_width", v["ci_width"])
                      + (f" (paired MDD {_fig(f'{key}.{m}.paired_mdd', v['paired_mdd'])})"
                         if v.get("paired_mdd") is not None else "")
                      for m, v in entry.items() if isinstance(v, dict)]
            out.append(f"<p>{html.escape(name)} ({_fig(f'{key}.images', entry['images'])} "
                       "images): 95% CI width " + ", ".join(widths) + " (from human captions, "
                       "before any model)</p>")
    audit = figures.get("audit")
    if audit is None:
        out.append(_missing(figures, "audit"))
    else:
        counts = audit["counts"]
        absent = [k for k in ("input_leaks", "identifier_leaks") if k not in counts]
        out.append(_table(["leakage finding", "count"], [
            [_linked(figures, f"leakage:{k}", k.replace("_", " ")), _fig(f"audit.counts.{k}", v)]
            for k, v in counts.items()]
            + [[k.replace("_", " "), "not computed: rerun <code>quality audit</code>"]
               for k in absent]))
    return "".join(out) + "</section>"


def _stage1_section(figures: dict) -> str:
    stage1 = figures.get("stage1")
    if stage1 is None:
        return _absent(figures, "Stage 1: detector")
    out = ["<section><h2>Stage 1: detector</h2>"]
    test = stage1.get("test") or {}
    mean_ap = test.get("map", {})
    out.append("<p>Test mAP50 " + _fig("stage1.test.map.map50", mean_ap.get("map50"))
               + ", mAP50-95 " + _fig("stage1.test.map.map50_95", mean_ap.get("map50_95"))
               + "</p>")
    errors = test.get("errors", [])
    if errors:
        out.append(_table(["class", "gold", "miss rate", "wrong label", "spurious", "mean IoU"], [
            [_linked(figures, f"detector:{workspace.DEPLOYED_DETECTOR}:" + (
                "errors" if e["class"] == "all" else f"class:{e['class']}"),
                     html.escape(str(e["class"]))),
             _fig(f"stage1.test.errors.{i}.gold", e["gold"]),
             _fig(f"stage1.test.errors.{i}.miss_rate", e["miss_rate"]),
             _fig(f"stage1.test.errors.{i}.wrong_label_rate", e["wrong_label_rate"]),
             _fig(f"stage1.test.errors.{i}.spurious_rate", e["spurious_rate"]),
             _fig(f"stage1.test.errors.{i}.mean_iou", e["mean_iou"])]
            for i, e in enumerate(errors)]))
        out.append(_error_types(figures))
    else:
        out.append(_missing(figures, "raw", "stage2", "threshold", "evaluate"))
    thresholds = stage1.get("thresholds") or {}
    if not thresholds:
        out.append(_missing(figures, "raw", "stage2", "threshold"))
    if thresholds:
        out.append("<h3>Operating threshold</h3><p>Each detector's confidence threshold is the "
                   "one whose detections give the best stage-2 score on the validation split "
                   "(captioned by the gold-trained model); ties go to the higher threshold. At the "
                   "best thresholds, class-agnostic suppression of overlapping boxes is tried "
                   "at each IoU and kept only when it scores higher. "
                   "The chosen point's validation score is optimistic; the test figures are "
                   "the ones to read.</p>")
        out.append(_table(["detector", "chosen threshold", "overlaps suppressed at IoU",
                           "validation images", "metric"], [
            [html.escape(name), _fig(f"stage1.thresholds.{name}.chosen", t["chosen"]),
             "no" if t.get("suppress_iou") is None else
             _fig(f"stage1.thresholds.{name}.suppress_iou", t["suppress_iou"]),
             _fig(f"stage1.thresholds.{name}.images", t["images"]), html.escape(t["metric"])]
            for name, t in thresholds.items()]))
        out += [f"<p class='warn'>&#9888; {html.escape(name)}: the best is the "
                f"{'lowest' if t['chosen'] == t['curve'][0]['threshold'] else 'highest'} "
                "candidate; a threshold beyond it may be better still.</p>"
                for name, t in thresholds.items() if t.get("at_edge")]
        out.append(_threshold_plot(thresholds))
    return "".join(out) + "</section>"


def _error_types(figures: dict) -> str:
    """Each detector's errors by type, each count a link to its images (from the gallery)."""
    detectors = ((figures.get("gallery") or {}).get("figures") or {}).get("detectors") or {}
    lines = []
    for name, block in detectors.items():
        key = f"gallery.figures.detectors.{name}.types"
        lines.append(f"<li>{html.escape(name)}: " + ", ".join(
            _linked(figures, f"detector:{name}:type:{kind}",
                    f"{_fig(f'{key}.{kind}', n)} {html.escape(kind.replace('_', ' '))}")
            for kind, n in block["types"].items()) + "</li>")
    return ("<p>The test images behind each error type (objects):</p><ul>" + "".join(lines)
            + "</ul>") if lines else ""


def _threshold_plot(thresholds: dict) -> str:
    """Validation stage-2 score against the detector's confidence threshold, chosen marked."""
    fig = Figure(figsize=(5.5, 3.2), layout="constrained")
    ax = fig.subplots()
    for (name, t), colour in zip(thresholds.items(), COLOURS, strict=False):
        curve = pd.DataFrame(t["curve"])
        ax.plot(curve.threshold, curve.score, "o-", color=colour, label=name, ms=3)
        chosen = curve[curve.threshold == t["chosen"]]
        if t.get("suppress_iou") is not None:  # the handed-over point is a suppressed one
            rows = pd.DataFrame(t["suppression"])
            chosen = rows[(rows.threshold == t["chosen"]) & (rows.iou == t["suppress_iou"])]
            ax.plot(rows.threshold, rows.score, "x", color=colour, ms=5,
                    label=f"{name}, overlaps suppressed")
        ax.plot(chosen.threshold, chosen.score, "*", color=colour, ms=12)
    ax.set_xlabel("confidence threshold")
    ax.set_ylabel(f"validation {next(iter(thresholds.values()))['metric']}")
    ax.legend(fontsize="small")
    return _png(fig)


def _agreement_section(figures: dict) -> str:
    """Validation and test side by side (`robustness.json` val_vs_test), disagreements
    flagged: a validation split that does not predict test makes its decisions wrong."""
    agreement = (figures.get("robustness") or {}).get("val_vs_test")
    if not agreement:
        return _absent(figures, "Validation vs test")
    out = ["<section><h2>Validation vs test</h2><p>Each figure on both splits with its 95% "
           "interval over that split's images, and test &minus; validation with an interval "
           "(the splits resampled independently); &#9888; where that interval excludes 0.</p>"]
    if agreement["flagged"]:
        out.append("<p class='warn'>&#9888; Disagree: "
                   + html.escape("; ".join(agreement["flagged"])) + "</p>")
    else:
        out.append("<p>No figure disagrees beyond its interval.</p>")
    rows = []
    for part in ("stage1", "stage2"):
        for detector, entries in agreement[part].items():
            groups = entries.items() if part == "stage1" else [
                (f"{v}: {f}", e) for v, figs in entries.items() for f, e in figs.items()]
            for name, e in groups:
                key = (f"robustness.val_vs_test.{part}.{detector}."
                       + (name if part == "stage1" else name.replace(": ", ".")))
                rows.append([html.escape(f"{detector}: {name}"),
                             *[_with_interval(key, e, f, f"{f}_ci_low", f"{f}_ci_high")
                               for f in ("val", "test", "difference")],
                             "<span class='warn'>&#9888;</span>" if e["disagree"] else ""])
    out.append(_table([f"figure ({agreement['metric']} for stage 2)", "validation", "test",
                       "test - validation", "disagree"], rows))
    return "".join(out) + "</section>"


def _robustness_section(figures: dict, run: Path) -> str:
    robust = figures.get("robustness")
    if robust is None:
        return _absent(figures, "Stage 2: gold vs predicted input")
    out = ["<section><h2>Stage 2: gold vs predicted input</h2>"]
    variants = robust["variants"]
    rows = []
    for name, entry in variants.items():
        for metric in HEADLINE_METRICS:
            if metric not in entry["figures"]:
                continue
            f = entry["figures"][metric]
            key = f"robustness.variants.{name}.figures.{metric}"
            rows.append([f"{html.escape(name)}: {metric}", _fig(f"{key}.gold", f["gold"]),
                         _fig(f"{key}.predicted", f["predicted"]), _fig(f"{key}.drop", f["drop"]),
                         _fig(f"{key}.ci_low", f["ci_low"]), _fig(f"{key}.ci_high", f["ci_high"]),
                         _fig(f"{key}.mdd", f["mdd"]) if "mdd" in f else "n/a"])
    out.append("<p>Perfect input = gold layouts; every caption is scored against all human "
               "captions of its image. BLEU-4, ROUGE-L and CIDEr-D are coco-caption's, on "
               f"{html.escape(robust.get('tokenization', 'unrecorded'))} tokens.</p>")
    out.append(_table(["variant: metric", "gold input", "predicted input", "drop",
                       "drop CI low", "drop CI high", "paired MDD"], rows))
    first = next(iter(variants), None)
    if first is not None and variants[first].get("resampled"):
        out.append("<p>Drop intervals resample "
                   + _resampled(f"robustness.variants.{first}.resampled",
                                variants[first]["resampled"]) + " (every variant alike).</p>")
    out.append(_adequacy(robust.get("adequacy") or {}))
    out.append(_versus_people(variants))
    out.append(_robustness_plot(variants))
    for name, entry in variants.items():
        out.append(f"<h3>Where the drop comes from ({html.escape(name)})</h3>")
        attribution = entry["attribution"]
        metrics = [k for k in (attribution[0] if attribution else {})
                   if k.startswith("drop_") and not k.endswith(("_ci_low", "_ci_high"))]
        key = f"robustness.variants.{name}.attribution"
        out.append(_table(["stage-1 errors in the image", "images",
                           *[f"{m} [95% CI]" for m in metrics], "note"], [
            [_linked(figures, f"bucket:{a['bucket']}", html.escape(a["bucket"]))
             if entry.get("detector") == workspace.DEPLOYED_DETECTOR else
             html.escape(a["bucket"]), _fig(f"{key}.{i}.images", a["images"]),
             *[f"{_fig(f'{key}.{i}.{m}', a[m])} [{_fig(f'{key}.{i}.{m}_ci_low', a[m + '_ci_low'])},"
               f" {_fig(f'{key}.{i}.{m}_ci_high', a[m + '_ci_high'])}]" for m in metrics],
             f"<span class='warn'>&#9888; {html.escape(a['warning'])}</span>"
             if a.get("warning") else ""]
            for i, a in enumerate(attribution)]))
    curves = robust.get("perturbation")
    if curves:
        out.append(f"<h3>Sensitivity: one error type injected into gold layouts "
                   f"({html.escape(curves['variant'])})</h3><p>x: "
                   f"{html.escape(curves.get('rate', 'injection rate'))}; each point averages "
                   f"{curves.get('seeds', 1)} draws per image, bands are 95% intervals over "
                   "images.</p>")
        out.append(_curves_plot(pd.DataFrame(curves["curves"]),
                                curves.get("rate", "injection rate")))
    first = next(iter(variants.values()), None)
    if first and first.get("worst"):
        out.append(_worst_captions(first["worst"], run))
        out.append("<p>" + _linked(figures, "stage2", "Every test image's captions from both "
                                   "inputs, largest drop first") + "</p>")
    return "".join(out) + "</section>"


def _adequacy(adequacy: dict) -> str:
    """Paired MDDs between variants: the differences this test set can resolve."""
    pairs = adequacy.get("pairs") or {}
    if not pairs:
        return ""
    metrics = [m for m in ("cider_d", "rouge_l", "content") if m in next(iter(pairs.values()))]
    return ("<p>Eval-set adequacy: the paired minimum detectable difference (MDD; "
            f"{html.escape(adequacy.get('rule', ''))}) of a drop is in the table above; between "
            "two variants on the same detector's output it is:</p>"
            + _table(["comparison", "images", *metrics], [
                [html.escape(pair), _fig(f"robustness.adequacy.pairs.{pair}.images", p["images"]),
                 *[_fig(f"robustness.adequacy.pairs.{pair}.{m}", p[m]) for m in metrics]]
                for pair, p in pairs.items()]))


def _versus_people(variants: dict) -> str:
    """The model against the human ceiling on equal terms
    (`quality.agreement.ceiling.equal_terms`)."""
    rows = []
    for name, entry in variants.items():
        versus = entry.get("versus_people")
        if not versus:
            continue
        for metric, m in versus["metrics"].items():
            key = f"robustness.variants.{name}.versus_people.metrics.{metric}"
            cells = [f"{html.escape(name)}: {metric}", _fig(f"{key}.people.score",
                                                             m["people"]["score"])]
            for model in ("gold input", "predicted input"):
                f = m["models"].get(model)
                cells += ["n/a"] * 4 if f is None else [
                    _fig(f"{key}.models.{model}.score", f["score"]),
                    _fig(f"{key}.models.{model}.minus_people", f["minus_people"]),
                    _fig(f"{key}.models.{model}.minus_people_ci_low", f["minus_people_ci_low"]),
                    _fig(f"{key}.models.{model}.minus_people_ci_high", f["minus_people_ci_high"])]
            rows.append(cells)
    if not rows:
        return ""
    first = next(v["versus_people"] for v in variants.values() if v.get("versus_people"))
    return ("<h3>Model and people on equal terms</h3><p>The human ceiling (each annotator's "
            "caption against the other annotators') and the model on the same "
            f"{first['n_images']} test images, every caption against the same k &minus; 1 "
            "references, CIDEr-D document frequencies shared; differences with paired "
            "intervals over images.</p>"
            + _table(["variant: metric", "people", "model (gold input)", "minus people",
                      "CI low", "CI high", "model (predicted input)", "minus people",
                      "CI low", "CI high"], rows))


def _robustness_plot(variants: dict) -> str:
    metrics = [m for m in ("cider_d", "rouge_l", "content")
               if any(m in v["figures"] for v in variants.values())]
    if not metrics:
        return ""
    fig = Figure(figsize=(4 * len(metrics), 3.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    for ax, metric in zip(axes, metrics, strict=True):
        names = [n for n, v in variants.items() if metric in v["figures"]]
        x = np.arange(len(names))
        gold = [variants[n]["figures"][metric]["gold"] for n in names]
        pred = [variants[n]["figures"][metric]["predicted"] for n in names]
        ax.bar(x - 0.2, gold, 0.4, label="gold input")
        ax.bar(x + 0.2, pred, 0.4, label="predicted input")
        people = [((variants[n].get("versus_people") or {}).get("metrics") or {})
                  .get(metric, {}).get("people", {}).get("score") for n in names]
        if people and people[0] is not None:
            ax.axhline(people[0], color="grey", ls="--", lw=1,
                       label="human ceiling (k - 1 refs)")
        ax.set_xticks(x, names, rotation=30, ha="right")
        ax.set_title(metric)
    axes[0].legend(fontsize="small")
    return _png(fig)


def _curves_plot(curves: pd.DataFrame, rate: str) -> str:
    metrics = [m for m in ("content", "cider_d") if m in curves]
    fig = Figure(figsize=(4.5 * len(metrics), 3.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    for ax, metric in zip(axes, metrics, strict=True):
        for error, group in curves.groupby("error"):
            line, = ax.plot(group.rate, group[metric], marker="o", label=error)
            if f"{metric}_ci_low" in group:
                ax.fill_between(group.rate, group[f"{metric}_ci_low"].astype(float),
                                group[f"{metric}_ci_high"].astype(float),
                                color=line.get_color(), alpha=0.15)
        ax.set_xlabel(rate)
        ax.set_ylabel(metric)
    axes[0].legend(fontsize="small")
    return _png(fig)


def _worst_captions(worst: list[dict], run: Path) -> str:
    folder = workspace.path(run, "split")
    if not folder.exists():
        return ("<h3>Worst captions from predicted input</h3><p class='missing'>Not drawn: "
                f"the run's split set is missing (<code>{html.escape(str(folder))}</code>).</p>")
    ts = store.load(folder, validate=False)
    paths = ts.images.set_index("image_id").path
    from annotate.tables.views import reference_boxes

    gold = reference_boxes(ts)
    parts = ["<h3>Worst captions from predicted input (gold layout drawn)</h3>"]
    for row in worst[:4]:
        image_id = row["image_id"]
        tag = ""
        if image_id in paths.index and Path(paths[image_id]).exists():
            boxes = gold[gold.image_id == image_id].assign(kind="gold")
            tag = _image_tag(_draw(paths[image_id], boxes, {"gold": "#2ca02c"}, "kind"),
                             f"image {image_id}")
        parts.append(f"<div>{tag}<p>gold input: <em>{html.escape(str(row['caption_gold']))}"
                     f"</em><br>predicted input: <em>"
                     f"{html.escape(str(row['caption_predicted']))}</em></p></div>")
    return "".join(parts)


def _interval(key: str, entry: dict, name: str) -> str:
    """`name` [its `name`_ci pair]: a figure and its interval as judgments.json writes them."""
    low, high = entry[f"{name}_ci"]
    return (f"{_fig(f'{key}.{name}', entry[name])} [{_fig(f'{key}.{name}_ci.0', low)}, "
            f"{_fig(f'{key}.{name}_ci.1', high)}]")


def _people_section(figures: dict) -> str:
    """People's judgments of the captions (`quality judgments`): win rates, Bradley–Terry
    scores, position bias, agreement among the judges, and each metric against them."""
    people = figures.get("judging")
    if people is None:
        return _absent(figures, "People")
    out = ["<section id='people'><h2>People</h2>"]
    simulated = people.get("simulated")
    if simulated:
        model = ("rating = 1 + 4 x quality + noise" if people.get("design") == "rating"
                 else "a preference for the better caption, with noise and no position bias")
        out.append("<p class='warn'>&#9888; Simulated judges (a known model: quality is "
                   f"{html.escape(simulated['settings']['quality'])}, {model}): the demo's "
                   "stand-in for people, with the truth beside each estimate. A real study: "
                   "<code>quality plan-judging</code>, <code>judge-push</code>, "
                   "<code>judge-pull</code>, <code>quality judgments</code>.</p>")
    if people.get("design") == "rating":
        out += _ratings(people, simulated)
    else:
        out += _pairwise(people, simulated)
    metrics = people["metrics"]["metrics"]
    unit = "caption" if people.get("design") == "rating" else "task"
    out.append("<h3>Which metric tracks the judges</h3><p>"
               + ("Per caption, its mean rating against the metric's score"
                  if unit == "caption" else "Per task, the judges' preference against the "
                  "metric's difference between the two captions")
               + " (Kendall tau-b and tau-c); per pair of systems, whether the metric orders "
               "them as the judges do.</p>")
    count = "captions" if unit == "caption" else "tasks"
    out.append(_table(["metric", count, "tau-b [95% CI]", "tau-c [95% CI]",
                       "system pairs ordered as the judges [95% CI]"], [
        [html.escape(name), _fig(f"judging.metrics.metrics.{name}.{count}", m[count]),
         _interval(f"judging.metrics.metrics.{name}", m, "tau_b"),
         _interval(f"judging.metrics.metrics.{name}", m, "tau_c"),
         _interval(f"judging.metrics.metrics.{name}", m, "system_agreement")]
        for name, m in metrics.items()]))
    out += [f"<p class='warn'>&#9888; {html.escape(w)}</p>" for w in people.get("warnings", [])]
    return "".join(out) + "</section>"


def _pairwise(people: dict, simulated: dict | None) -> list[str]:
    """A pairwise study: win rates, Bradley-Terry scores, position bias, judge agreement."""
    out = [f"<p>{_fig('judging.judgments', people['judgments'])} blind pairwise judgments "
           f"of {_fig('judging.tasks', people['tasks'])} tasks on "
           f"{_fig('judging.images', people['images'])} test images by "
           f"{_fig('judging.judges_count', people['judges_count'])} judges "
           f"({_fig('judging.ties', people['ties'])} ties, counted half); intervals "
           "resample " + _resampled("judging.resampled", people["resampled"]) + ".</p>"]
    truth = {(t["a"], t["b"]): t["win_rate"] for t in (simulated or {}).get("truth", [])}
    out.append(_table(["a over b", "judgments", "ties", "win rate", "95% CI low", "95% CI high",
                       *(["simulated truth"] if truth else [])], [
        [html.escape(f"{r['a']} over {r['b']}"), _fig(f"judging.win_rates.{i}.judgments",
                                                     r["judgments"]),
         _fig(f"judging.win_rates.{i}.ties", r["ties"]),
         _fig(f"judging.win_rates.{i}.win_rate", r["win_rate"]),
         _fig(f"judging.win_rates.{i}.ci_low", r["ci_low"]),
         _fig(f"judging.win_rates.{i}.ci_high", r["ci_high"]),
         *([_fmt(truth.get((r["a"], r["b"])))] if truth else [])]
        for i, r in enumerate(people["win_rates"])]))
    out.append("<p>Bradley&ndash;Terry scores (log strength, mean 0): " + ", ".join(
        f"{html.escape(r['system'])} {_fig(f'judging.bradley_terry.{i}.score', r['score'])} "
        f"[{_fig(f'judging.bradley_terry.{i}.ci_low', r['ci_low'])}, "
        f"{_fig(f'judging.bradley_terry.{i}.ci_high', r['ci_high'])}]"
        for i, r in enumerate(people["bradley_terry"])) + ".</p>")
    bias, judges = people["position_bias"], people["judges"]
    out.append("<p>Left caption chosen in "
               f"{_fig('judging.position_bias.left_share', bias['left_share'])} "
               f"[{_fig('judging.position_bias.ci_low', bias['ci_low'])}, "
               f"{_fig('judging.position_bias.ci_high', bias['ci_high'])}] of decided "
               "judgments" + (" <span class='warn'>&#9888; a position bias (the left/right "
                              "order is randomised, so win rates are not skewed by it)</span>"
                              if bias["biased"] else " (no position bias shown)")
               + f". Judges agree: {_judge_alpha(judges)}.</p>")
    return out


def _judge_alpha(judges: dict) -> str:
    return (f"alpha ({html.escape(judges['level'])}) "
            f"{_fig('judging.judges.alpha', judges['alpha'])} "
            f"[{_fig('judging.judges.ci_low', judges['ci_low'])}, "
            f"{_fig('judging.judges.ci_high', judges['ci_high'])}]"
            + (f" <span class='warn'>&#9888; {html.escape(judges['warning'])}</span>"
               if judges.get("warning") else ""))


def _ratings(people: dict, simulated: dict | None) -> list[str]:
    """A rating study: mean ratings, differences between systems, judges and leniency."""
    out = [f"<p>{_fig('judging.judgments', people['judgments'])} blind 1&ndash;5 ratings of "
           f"{_fig('judging.tasks', people['tasks'])} captions on "
           f"{_fig('judging.images', people['images'])} test images by "
           f"{_fig('judging.judges_count', people['judges_count'])} judges; intervals "
           "resample " + _resampled("judging.resampled", people["resampled"]) + ".</p>"]
    truth = (simulated or {}).get("truth") or {}
    means = {t["system"]: t["mean"] for t in truth.get("means", [])}
    out.append(_table(["system", "ratings", "mean rating", "95% CI low", "95% CI high",
                       *(["simulated truth"] if means else [])], [
        [html.escape(m["system"]), _fig(f"judging.means.{i}.ratings", m["ratings"]),
         _fig(f"judging.means.{i}.mean", m["mean"]),
         _fig(f"judging.means.{i}.ci_low", m["ci_low"]),
         _fig(f"judging.means.{i}.ci_high", m["ci_high"]),
         *([_fmt(means.get(m["system"]))] if means else [])]
        for i, m in enumerate(people["means"])]))
    differences = {(t["a"], t["b"]): t["difference"] for t in truth.get("differences", [])}
    out.append(_table(["a minus b (points)", "images", "difference", "95% CI low",
                       "95% CI high", *(["simulated truth"] if differences else [])], [
        [html.escape(f"{d['a']} minus {d['b']}"), _fig(f"judging.differences.{i}.images",
                                                      d["images"]),
         _fig(f"judging.differences.{i}.difference", d["difference"]),
         _fig(f"judging.differences.{i}.ci_low", d["ci_low"]),
         _fig(f"judging.differences.{i}.ci_high", d["ci_high"]),
         *([_fmt(differences.get((d["a"], d["b"])))] if differences else [])]
        for i, d in enumerate(people["differences"])]))
    judges = people["judges"]
    out.append(f"<p>Judges agree: {_judge_alpha(judges)}. Leniency (a judge's rating minus the "
               "others' of the same caption): " + ", ".join(
                   html.escape(j["judge"]) + " "
                   + _fig(f"judging.judges.judges.{i}.leniency", j["leniency"])
                   for i, j in enumerate(judges["judges"])) + ".</p>")
    return out


def _sanity_section(figures: dict) -> str:
    sanity = figures.get("sanity")
    if not sanity:
        return _absent(figures, "Sanity checks")
    out = ["<section><h2>Sanity checks</h2>"]
    rows = [[k.replace("_", " "), _fig(f"sanity.{k}", v)] for k, v in sanity.items()
            if isinstance(v, int | float) and not isinstance(v, bool)]
    overfit = sanity.get("overfit_tiny_batch")
    if overfit:
        rows.append(["stage 2 overfits 8 examples (final loss)",
                     _fig("sanity.overfit_tiny_batch.final_loss", overfit["final_loss"])])
        rows.append(["overfit check passed", _fig("sanity.overfit_tiny_batch.passed",
                                                  overfit["passed"])])
    out.append(_table(["check", "value"], rows))
    return "".join(out) + "</section>"


def _provenance_section(figures: dict) -> str:
    """Where the figures come from: data and source versions, settings, MLflow runs
    (`run.json`, written by `evaluate-pipeline`)."""
    record = figures.get("provenance")
    if not record:
        return _absent(figures, "Run record")
    rows = [["data version", html.escape(str(record.get("data_version")))],
            ["source version", html.escape(str(record.get("source_version")))]]
    rows += [[f"{html.escape(name)} data version", html.escape(str(version))]
             for name, version in (record.get("split_versions") or {}).items()]
    rows += [[f"setting: {html.escape(key)}", html.escape(str(value))]
             for key, value in (record.get("settings") or {}).items()]
    mlflow = figures.get("mlflow") or {}
    if mlflow:
        rows += [["MLflow tracking URI", html.escape(str(mlflow.get("tracking_uri")))],
                 ["MLflow run", html.escape(str(mlflow.get("parent_run")))]]
    return "<section><h2>Run record</h2>" + _table(["", "value"], rows) + "</section>"
