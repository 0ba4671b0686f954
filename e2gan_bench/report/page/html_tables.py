"""The leaderboard's two tables on ``leaderboard.html``.

* The **main table**, at the top of the page: what a reader needs at a glance, one row per method, its columns
  grouped under a two-level header (method, quality, cost per concept, time to target), each quality value with its
  95 % interval in the same cell, the best value per quality column in bold. It fits a 1200-px page.
* The **full leaderboard**, lower on the page: every column of ``leaderboard.md`` (``display_rows``), so nothing
  the main table leaves out is lost.

Cells are formatted by ``report.tables.leaderboard.format_cell``, as in ``leaderboard.md``.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from e2gan_bench.metrics import cost_metrics, format_number, headline_metrics, metric
from e2gan_bench.report.tables.leaderboard import RANK_METRIC, display_rows, format_cell

RANK, MEAN_RANK = f"rank_{RANK_METRIC}", f"mean_rank_{RANK_METRIC}"
#: Column key of the main table's "concepts × seeds" cell (not a leaderboard column: made from two of them).
UNITS = "concepts_x_seeds"
#: The group whose columns get the best value in bold (and ↑ / ↓ in their header).
QUALITY_GROUP = "Quality (test, vs teacher)"


def main_groups() -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """The main table: (group, ((column, header), …)); columns the leaderboard lacks are left out, and so is a group
    left empty. The quality and cost columns are the metrics that declare themselves ``headline`` and ``cost``, with
    their headers. Quality columns show their ``<metric>_ci95`` interval in the same cell. A header breaks where it
    has "\n" (and nowhere else): short headers keep every column at its content's width, so the table fits the page
    without wrapping a number."""
    return (
        ("Method", (("method", "method"), (RANK, "rank"), (MEAN_RANK, "mean\nrank"), (UNITS, "concepts\n× seeds"))),
        (QUALITY_GROUP, tuple((m.name, m.header(narrow=True)) for m in headline_metrics())),
        ("Cost per concept", tuple((m.name, m.header(narrow=True)) for m in cost_metrics())),
        ("Time to target", (("reached", "reached"), ("median_steps_to_target", "median\nsteps"),
                            ("median_flops_to_target", "median\nFLOPs"))),
    )


@dataclass
class MainTable:
    """The main table as data: ``groups`` (label, column keys), per method the cells as text (``rows``, intervals as
    "15.39 ± 0.41") and as HTML (``cells``), and per quality column the methods with the best value."""

    groups: list[tuple[str, list[str]]]
    headers: dict[str, str]
    rows: list[list[str]] = field(default_factory=list)
    cells: list[list[str]] = field(default_factory=list)
    best: dict[str, list[str]] = field(default_factory=dict)
    caption: str = ""

    @property
    def columns(self) -> list[str]:
        return [c for _, cols in self.groups for c in cols]

    def to_json(self) -> dict[str, Any]:
        return {"groups": [{"label": g, "columns": cols} for g, cols in self.groups], "columns": self.columns,
                "headers": [self.headers[c].replace("\n", " ") for c in self.columns], "rows": self.rows, "best": self.best,
                "caption": self.caption}


def _missing(v: Any) -> bool:
    return v is None or (not isinstance(v, str) and pd.isna(v))


def _higher(col: str) -> bool:
    return metric(col).higher_is_better


def _best(lb: pd.DataFrame, col: str) -> list[str]:
    vals = pd.to_numeric(lb[col], errors="coerce")
    vals = vals[vals.map(lambda v: math.isfinite(v))]
    if vals.empty:
        return []
    top = vals.max() if _higher(col) else vals.min()
    return [str(lb.at[i, "method"]) for i in vals.index if vals[i] == top]


def _units(row: pd.Series) -> tuple[str, str]:
    """The "concepts × seeds" cell (and the failed runs, where some failed) as text and HTML."""
    text = f"{format_cell('concepts', row.get('concepts'))} × {format_cell('seeds', row.get('seeds'))}"
    failed = row.get("failed")
    if _missing(failed) or not failed:
        return text, html.escape(text)
    note = f"{int(failed)} failed"
    return f"{text} · {note}", f"{html.escape(text)} <span class=bad>· {note}</span>"


def _cell(lb: pd.DataFrame, row: pd.Series, col: str) -> tuple[str, str]:
    """One main-table cell as text and as HTML (a quality value with its interval in a smaller span)."""
    if col == UNITS:
        return _units(row)
    v = row.get(col)
    if col == RANK:
        text = "–" if _missing(v) else str(int(v))
    elif col == MEAN_RANK:
        text = format_number("{:.2f}", None if _missing(v) else float(v))
    else:
        text = format_cell(col, v)
    ci = f"{col}_ci95"
    if ci in lb.columns and not _missing(row.get(ci)):
        half = format_cell(ci, row[ci]).replace("±", "± ")
        return f"{text} {half}", f"{html.escape(text)} <span class=ci>{html.escape(half)}</span>"
    return text, html.escape(text)


def main_table(lb: pd.DataFrame) -> MainTable:
    """The main table of leaderboard ``lb`` (``report.tables.leaderboard.leaderboard``'s frame)."""
    have = set(lb.columns) | ({UNITS} if {"concepts", "seeds"} <= set(lb.columns) else set())
    spec = main_groups()
    groups = [(g, [c for c, _ in cols if c in have]) for g, cols in spec]
    groups = [(g, cols) for g, cols in groups if cols]
    headers = {c: h for _, cols in spec for c, h in cols}
    t = MainTable(groups, headers, caption=caption(lb))
    quality = dict(groups).get(QUALITY_GROUP, [])
    t.best = {c: _best(lb, c) for c in quality}
    for _, row in lb.iterrows():
        pairs = [_cell(lb, row, c) for c in t.columns]
        t.rows.append([p[0] for p in pairs])
        t.cells.append([p[1] for p in pairs])
    return t


def caption(lb: pd.DataFrame) -> str:
    """The line under the main table (plain text): the unit, the interval, what the rank means, Friedman's p."""
    out = ["The concept is the unit (seeds averaged within each concept)"
           + ("; ± = 95 % interval over concepts." if any(c.endswith("_ci95") for c in lb.columns) else ".")]
    if RANK in lb:
        out.append(f"Rank: 1 + the methods significantly better on test {RANK_METRIC.upper()} (paired tests over "
                   "concepts, Holm-corrected); equal ranks are ties.")
    if MEAN_RANK in lb:
        fr = lb.attrs.get("friedman")
        p = f"; Friedman p = {fr.p_value:.3g}" if fr is not None and fr.p_value is not None else ""
        out.append(f"Mean rank over concepts (1 = best){p}.")
    return " ".join([*out, "Bold: best per quality column."])


def main_table_html(t: MainTable, *, full_anchor: str = "full-leaderboard") -> str:
    """The main table as HTML: a two-level header (groups, then columns), numbers right-aligned, the best value per
    quality column bold, the caption under it (with a link to the full leaderboard)."""
    quality = set(dict(t.groups).get(QUALITY_GROUP, []))
    starts = {cols[0] for _, cols in t.groups[1:]}  # a group's first column: a rule on its left

    def cls(c: str, *extra: str) -> str:
        names = [*extra, *(["g"] if c in starts else [])]
        return f" class='{' '.join(names)}'" if names else ""

    top = "".join(f"<th colspan={len(cols)}{cls(cols[0])}>{html.escape(g)}</th>" for g, cols in t.groups)
    second = []
    for c in t.columns:
        label = html.escape(t.headers[c])
        if c in quality:
            better = "higher" if _higher(c) else "lower"
            label = f"<span title='{better} is better'>{label} {'↑' if better == 'higher' else '↓'}</span>"
        label = label.replace("\n", "<br>")
        second.append(f"<th{cls(c)}>{label}</th>")
    body = []
    for row, cells in zip(t.rows, t.cells, strict=True):
        method = row[t.columns.index("method")] if "method" in t.columns else ""
        tds = []
        for c, cell in zip(t.columns, cells, strict=True):
            names = [] if c == "method" else ["num"]
            if method in t.best.get(c, []):
                names.append("best")
            tds.append(f"<td{cls(c, *names)}>{cell}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    cap = f"<caption>{html.escape(t.caption)} <a href='#{full_anchor}'>All columns and definitions</a>.</caption>"
    return (f"<table class=main id=main-leaderboard>{cap}<thead><tr>{top}</tr><tr>{''.join(second)}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def breakable(name: str) -> str:
    """A column name as HTML that may break after its underscores (``median_<wbr>seconds_<wbr>to_<wbr>target``)."""
    return html.escape(name).replace("_", "_<wbr>")


def full_table_html(lb: pd.DataFrame) -> str:
    """Every leaderboard column (``display_rows``: intervals in the metric's cell), in a box that scrolls sideways
    on its own when wider than the page; long column names may break after their underscores."""
    cols, rows = display_rows(lb)
    head = "".join(f"<th>{breakable(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td{' class=num' if i else ''}>{html.escape(v)}</td>" for i, v in enumerate(r))
                   + "</tr>" for r in rows)
    return (f"<div class=wide><table id=full-leaderboard-table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
            "</table></div>")
