"""HTML tables the report shares with the gallery's index, kept apart from the page's plots
so that importing them does not load matplotlib (the gallery, and so every `quality` command,
imports this)."""

from __future__ import annotations

import html


def confusion_table(matrix: dict, detector: str, links: dict[str, str], base: str) -> str:
    """A detector's confusion matrix (gold rows + spurious, predicted columns + missed) as a
    table whose cells link to the gallery's page of that cell (`links`: gallery.json's, pages
    relative to `base`). The gallery's index draws it too."""
    counts = matrix["counts"]
    peak = max((max(row) for row in counts), default=0) or 1
    rows = []
    for name, row in zip(matrix["rows"], counts, strict=True):
        cells = []
        for column, n in zip(matrix["columns"], row, strict=True):
            page = links.get(f"detector:{detector}:cell:{name}|{column}")
            shade = f" style='background:rgba(31,119,180,{0.08 + 0.6 * n / peak:.2f})'" if n else ""
            text = (f"<a href='{html.escape(base + page)}' data-cell='{html.escape(name)}|"
                    f"{html.escape(column)}'>{n}</a>" if n and page else str(n))
            cells.append(f"<td{shade}>{text}</td>")
        rows.append(f"<tr><th>{html.escape(name)}</th>{''.join(cells)}</tr>")
    head = "".join(f"<th>{html.escape(c)}</th>" for c in matrix["columns"])
    return (f"<table class='matrix'><tr><th>gold \\ predicted</th>{head}</tr>"
            f"{''.join(rows)}</table>")
