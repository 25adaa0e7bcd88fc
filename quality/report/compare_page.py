"""The static page of a comparison: the paired differences plotted with their intervals, and
every figure of `compare.json` in tables (each tagged with its JSON path, as in the report)."""

from __future__ import annotations

import html

import numpy as np
from matplotlib.figure import Figure

from quality.report.page import STYLE, _fig, _png, _table


def render(result: dict) -> str:
    """The page for a `compare_runs` result."""
    runs = result["runs"]
    parts = ["<h1>twostage comparison</h1>", "<p>" + "<br>".join(
        f"{side.upper()} ({len(runs[side])} trained replicate"
        f"{'s' if len(runs[side]) > 1 else ''}): "
        + ", ".join(f"<code>{html.escape(r['path'])}</code> (seed {html.escape(str(r['seed']))})"
                    for r in runs[side]) for side in ("a", "b")) + "</p>"]
    parts += [f"<p class='warn'>&#9888; {html.escape(note)}</p>" for note in result["notes"]]
    parts.append(f"<h2>{html.escape(result['verdict'].get('line') or result['verdict']['verdict'])}"
                 "</h2>")
    resampled = result["resampled"]
    parts.append(f"<p>Differences are {html.escape(result['difference'])}; "
                 f"{html.escape(result['rule'])}; intervals resample "
                 f"{html.escape(resampled['unit'])}s (images paired across the arms, "
                 f"{_fig('resampled.n_boot', resampled['n_boot'])} image resamples); training "
                 f"variance {html.escape(resampled['training_variance'])}.</p>")
    rows = [[f"{html.escape(variant)}: {metric} ({given} input)", *_cells(
        f"stage2.{variant}.{given}.{metric}", figure)]
            for variant, inputs in result["stage2"].items()
            for given, figures in inputs.items()
            for metric, figure in figures.items() if isinstance(figure, dict)]
    rows += [[f"detector: {name}", *_cells(f"stage1.{name}", figure)]
             for name, figure in result["stage1"].items()
             if isinstance(figure, dict) and "verdict" in figure]
    parts.append(_people(result.get("people")))
    parts.append(_plot(result))
    parts.append(_table(["figure", "A", "B", "B - A", "CI low", "CI high", "MDD",
                         "training share of the variance", "verdict",
                         "a rerun makes the same call (if the difference is as measured)"],
                        rows))
    if result["stage1"].get("hand_over_note"):
        parts.append(f"<p class='note'>Detector: "
                     f"{html.escape(result['stage1']['hand_over_note'])}.</p>")
    diff = result["settings_diff"]
    parts.append("<h2>Settings that differ</h2>" + (_table(["setting", "A", "B"], [
        [html.escape(k), html.escape(str(a)), html.escape(str(b))] for k, (a, b) in diff.items()])
        if diff else "<p>none</p>"))
    first = {side: runs[side][0]["split_versions"] for side in ("a", "b")}
    versions = [[html.escape(split), html.escape(str(first["a"].get(split))),
                 html.escape(str(first["b"].get(split)))]
                for split in sorted(set(first["a"]) | set(first["b"]))]
    parts.append("<h2>Data versions</h2>" + _table(["split", "A", "B"], versions))
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>twostage comparison</title><style>{STYLE}</style></head><body>"
            + "".join(parts) + "</body></html>")


def _cells(key: str, figure: dict) -> list[str]:
    share = (figure.get("variance") or {}).get("training_share")
    return [_fig(f"{key}.{k}", figure[k]) for k in ("a", "b", "difference", "ci_low",
                                                     "ci_high", "mdd")] + [
        _fig(f"{key}.variance.training_share", share) if share is not None else "not measured",
        html.escape(figure["verdict"]), _rerun_cell(key, figure)]


def _rerun_cell(key: str, figure: dict) -> str:
    """How likely a rerun makes the figure's call again, or a dash where no call is made."""
    if figure.get("rerun_same_call") is None:
        return "—"
    return _fig(f"{key}.rerun_same_call", figure["rerun_same_call"])


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


def _people(people: dict | None) -> str:
    """The judgment study that decides the comparison: B's win rate over A per variant."""
    if not people:
        return ""
    who = "simulated judges" if people["simulated"] else "people"
    rows = [[html.escape(variant), *[_fig(f"people.figures.{variant}.{k}", f[k]) for k in (
        "judgments", "images", "replicates_a", "replicates_b", "ties", "win_rate", "ci_low",
        "ci_high")], html.escape(f["resampled"]), html.escape(f["verdict"]),
        _rerun_cell(f"people.figures.{variant}", f)]
        for variant, f in people["figures"].items()]
    return (f"<h2>Judged by {who}</h2><p>Study <code>{html.escape(people['study'])}</code> "
            f"({html.escape(str(people['layouts']))} layouts); {html.escape(people['rule'])}."
            "</p>" + _table(["variant", "judgments", "images", "A replicates", "B replicates",
                             "ties", "B's win rate", "CI low", "CI high", "resampled",
                             "verdict", "a rerun makes the same call (if the win rate is as "
                             "measured)"], rows))
