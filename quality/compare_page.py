"""The static page of a comparison: the paired differences plotted with their intervals, and
every figure of `compare.json` in tables (each tagged with its JSON path, as in the report)."""

from __future__ import annotations

import html

import numpy as np
from matplotlib.figure import Figure

from .report import STYLE, _fig, _png, _table


def render(result: dict) -> str:
    """The page for a `compare_runs` result."""
    runs = result["runs"]
    parts = ["<h1>twostage comparison</h1>",
             f"<p>A: <code>{html.escape(runs['a']['path'])}</code><br>"
             f"B: <code>{html.escape(runs['b']['path'])}</code></p>"]
    parts += [f"<p class='warn'>&#9888; {html.escape(note)}</p>" for note in result["notes"]]
    parts.append(f"<h2>{html.escape(result['verdict'].get('line') or result['verdict']['verdict'])}"
                 "</h2>")
    parts.append(f"<p>Differences are {html.escape(result['difference'])}; "
                 f"{html.escape(result['rule'])}; intervals resample the common test images, "
                 f"paired, {_fig('resampled.n_boot', result['resampled']['n_boot'])} times.</p>")
    rows = [[f"{html.escape(variant)}: {metric} ({given} input)", *_cells(
        f"stage2.{variant}.{given}.{metric}", figure)]
            for variant, inputs in result["stage2"].items()
            for given, figures in inputs.items()
            for metric, figure in figures.items() if isinstance(figure, dict)]
    rows += [[f"detector: {name}", *_cells(f"stage1.{name}", figure)]
             for name, figure in result["stage1"].items()
             if isinstance(figure, dict) and "verdict" in figure]
    parts.append(_plot(result))
    parts.append(_table(["figure", "A", "B", "B - A", "CI low", "CI high", "paired MDD",
                         "verdict"], rows))
    diff = result["settings_diff"]
    parts.append("<h2>Settings that differ</h2>" + (_table(["setting", "A", "B"], [
        [html.escape(k), html.escape(str(a)), html.escape(str(b))] for k, (a, b) in diff.items()])
        if diff else "<p>none</p>"))
    versions = [[html.escape(split), html.escape(str(runs["a"]["split_versions"].get(split))),
                 html.escape(str(runs["b"]["split_versions"].get(split)))]
                for split in sorted(set(runs["a"]["split_versions"])
                                    | set(runs["b"]["split_versions"]))]
    parts.append("<h2>Data versions</h2>" + _table(["split", "A", "B"], versions))
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>twostage comparison</title><style>{STYLE}</style></head><body>"
            + "".join(parts) + "</body></html>")


def _cells(key: str, figure: dict) -> list[str]:
    return [_fig(f"{key}.{k}", figure[k]) for k in ("a", "b", "difference", "ci_low",
                                                     "ci_high", "mdd")] + [
        html.escape(figure["verdict"])]


def _plot(result: dict) -> str:
    """One panel per stage-2 input: B - A per variant and metric with its interval."""
    panels = sorted({given for inputs in result["stage2"].values() for given in inputs})
    if not panels:
        return ""
    fig = Figure(figsize=(5 * len(panels), 0.6 + 0.35 * max(
        sum(len(f) - 1 for f in (i.get(p, {}) for i in result["stage2"].values()))
        for p in panels)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, given in zip(axes, panels, strict=True):
        labels, centre, low, high = [], [], [], []
        for variant, inputs in result["stage2"].items():
            for metric, f in inputs.get(given, {}).items():
                if isinstance(f, dict):
                    labels.append(f"{variant}: {metric}")
                    centre.append(f["difference"])
                    low.append(f["difference"] - f["ci_low"])
                    high.append(f["ci_high"] - f["difference"])
        y = np.arange(len(labels))
        ax.errorbar(centre, y, xerr=[low, high], fmt="o", capsize=3)
        ax.axvline(0, color="grey", lw=1)
        ax.set_yticks(y, labels)
        ax.set_title(f"B - A, {given} input")
    return _png(fig)
