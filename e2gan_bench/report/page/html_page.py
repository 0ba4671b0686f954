"""``leaderboard.html``: the leaderboard as one self-contained page, and ``leaderboard.json`` with what its tables
show.

The page leads with the main leaderboard table (report/page/html_tables.py: per method its rank, quality with 95 %
intervals, cost per concept and time to target, under a two-level header that fits the page), then the failed runs,
a method × concept table of test PSNR and SSIM, per concept an image grid (source, teacher, each method's student on
the same test images), the validation curves, the Pareto plots, the full leaderboard (every column of
``leaderboard.md``) with its legend, the base model, every run with a link to its folder, and the provenance.
Pictures are embedded as ``data:`` URIs (the page needs nothing beside it); the same figures are also written as PNG
files beside it (``plots/``, ``grids/``). Links point only at files and run folders that exist, by paths relative to
the page.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from e2gan_bench.cache import atomic_write_text
from e2gan_bench.config import TargetSpec
from e2gan_bench.metrics import all_metrics
from e2gan_bench.metrics import metric as metric_def
from e2gan_bench.record import RunRecord
from e2gan_bench.report.page.grids import ConceptGrid, concept_grids, png_bytes, write_grids
from e2gan_bench.report.page.html_tables import breakable, full_table_html, main_table, main_table_html
from e2gan_bench.report.page.plots import Plot, plot_pareto, plot_val_curves
from e2gan_bench.report.tables import amortise
from e2gan_bench.report.tables.effects import val_curve_means
from e2gan_bench.report.tables.leaderboard import (
    display_rows,
    format_cell,
    intro,
    legend_lines,
    provenance_lines,
    report_frames,
)


def per_concept_metrics() -> dict[str, str]:
    """The per-concept tables (the metrics that declare ``by_concept``): metric -> caption."""
    return {m.name: f"test {m.header()} vs teacher" for m in all_metrics() if m.by_concept}


def run_columns() -> tuple[str, ...]:
    """Columns of the runs table (those present)."""
    return ("concept", "method", "seed", "status", *per_concept_metrics(), "train_seconds", "reached",
            "seconds_to_target")


CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; }
th { background: #f3f3f3; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.best { font-weight: bold; }
table.grid td, table.grid th { border: none; padding: 1px 6px 1px 0; vertical-align: middle; }
table.grid img { image-rendering: pixelated; display: block; }
figure { display: inline-block; margin: 0 1em 1em 0; vertical-align: top; max-width: 100%; }
figure img { max-width: 100%; }
figcaption, .note { font-size: 12px; color: #555; max-width: 640px; }
.warn { background: #fff4d6; border-left: 4px solid #e0a800; padding: .4em .8em; }
nav a { margin-right: 1em; }
code { background: #f3f3f3; padding: 0 3px; }
table.main th { text-align: center; vertical-align: bottom; white-space: nowrap; }
table.main { font-size: 12.5px; }
table.main td, table.main th { padding: 3px 5px; }
table.main .g { border-left: 2px solid #888; }
table.main caption { caption-side: bottom; text-align: left; font-size: 12px; color: #555; padding-top: .3em; }
span.ci { color: #666; font-size: 11px; font-weight: normal; }
span.bad { color: #b00020; }
div.wide { max-width: 100%; overflow-x: auto; }
div.wide td:first-child, div.wide th:first-child { position: sticky; left: 0; background: #fff; }
div.wide th:first-child { background: #f3f3f3; }
"""


def _inline(text: str) -> str:
    """Escaped text with the report's markdown inline marks (``**bold**``, `` `code` ``) as HTML."""
    s = html.escape(text)
    s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", s)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _rel(target: Path, dest: Path) -> str:
    """``target`` as a URL relative to the page's folder."""
    return quote(Path(os.path.relpath(Path(target).resolve(), Path(dest).resolve())).as_posix())


def _table(header: list[str], rows: list[list[str]], numeric: set[int] | None = None, cls: str = "") -> str:
    """An HTML table from escaped header names and cells that are already HTML."""
    numeric = numeric or set()
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(c if c.startswith("<td") else f"<td{' class=num' if i in numeric else ''}>{c}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table{f' class={cls}' if cls else ''}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _clean(v: Any) -> Any:
    """A JSON-safe value: NaN and infinities -> None, numpy scalars -> Python."""
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if v is None or (not isinstance(v, (str, bool, int, float)) and pd.isna(v)):
        return None
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def per_concept(df: pd.DataFrame, metric: str, methods: list[str]) -> pd.DataFrame:
    """Mean ``metric`` over seeds per method (rows, in ``methods`` order) and concept (columns), finished runs."""
    ok = df[df["status"] == "ok"] if "status" in df else df
    if ok.empty or metric not in ok or ok[metric].isna().all():
        return pd.DataFrame()
    t = ok.groupby(["method", "concept"], sort=False)[metric].mean().unstack()
    rows = [m for m in methods if m in t.index] + [m for m in t.index if m not in methods]
    return t.reindex(index=rows, columns=list(dict.fromkeys(ok["concept"])))


def _per_concept_html(t: pd.DataFrame, metric: str) -> str:
    higher = metric_def(metric).higher_is_better  # an unknown metric is an error, never "higher is better"
    best = t.max() if higher else t.min()
    rows = []
    for method, r in t.iterrows():
        cells = [html.escape(str(method))]
        for c in t.columns:
            cls = "num best" if pd.notna(r[c]) and r[c] == best[c] else "num"
            cells.append(f"<td class='{cls}'>{html.escape(format_cell(metric, r[c]))}</td>")
        rows.append(cells)
    return _table(["method", *map(html.escape, map(str, t.columns))], rows)


def _run_cell(col: str, v: Any) -> str:
    if col == "reached":  # True / False, or None where the run has no target (no validation curve)
        return "–" if v is None or pd.isna(v) else "yes" if bool(v) else "no"
    return format_cell(col, v)


def _grid_html(g: ConceptGrid, png: Path | None, link: Callable[[str | None], str | None], dest: Path) -> str:
    w = g.rows[0].image.shape[1]
    scale = 2 if w * 2 <= 1100 else 1
    rows = []
    for row in g.rows:
        href = link(row.key)
        label = html.escape(row.label)
        label = f"<a href='{href}'>{label}</a>" if href else label
        h, w = row.image.shape[:2]
        img = (f"<img src='{_data_uri(png_bytes(row.image))}' width={w * scale} height={h * scale} "
               f"alt='{html.escape(g.concept)}: {html.escape(row.label)}'>")
        rows.append(f"<tr><th>{label}</th><td>{img}</td></tr>")
    out = [f"<h3 id='grid-{html.escape(re.sub(r'[^A-Za-z0-9_-]', '_', g.concept))}'>{html.escape(g.concept)} "
           f"<span class=note>(seed {g.seed})</span></h3>", "<table class=grid>" + "".join(rows) + "</table>"]
    notes = []
    if png is not None:
        notes.append(f"<a href='{_rel(png, dest)}'>PNG</a>")
    if g.skipped:
        notes.append("not shown (samples of other test images): " + html.escape(", ".join(g.skipped)))
    return "\n".join(out + ([f"<p class=note>{'; '.join(notes)}</p>"] if notes else []))


def _figures(plots: list[Plot]) -> str:
    return "\n".join(f"<figure><img src='{_data_uri(p.path.read_bytes())}' alt='{html.escape(p.path.stem)}'>"
                     f"<figcaption>{html.escape(p.caption)}</figcaption></figure>" for p in plots)


def write_html_report(pairs: list[tuple[str, RunRecord]], dest: Path, *, title: str, order: list[str] | None = None,
                      base_meta: list[dict[str, Any]] | None = None, missing: int = 0,
                      target: TargetSpec | None = None, run_dir: Callable[[str], Path] | None = None,
                      run_info: dict[str, dict[str, Any]] | None = None, sources: list[str] | None = None) -> Path:
    """Write ``leaderboard.html`` and ``leaderboard.json`` (and the figures, under ``plots/`` and ``grids/``) into
    ``dest``; ``run_dir`` maps a run key to its folder (grids and links need it). ``run_info`` (columns per run key
    for the runs table) and ``sources`` (markdown lines of a "Sources" section): runs merged from several stores
    (``e2gan-bench leaderboard``). Returns the page's path."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    target = target or TargetSpec()
    df, lb = report_frames(pairs, order, target, run_info)
    info_cols = list(dict.fromkeys(c for v in (run_info or {}).values() for c in v))
    run_num_cols = [c for c in run_columns() if c in df]  # the merge's columns (store, machine, …) are text
    run_cols = run_num_cols + [c for c in info_cols if c in df]
    methods = list(lb["method"]) if not lb.empty else list(dict.fromkeys(m for m, _ in pairs))

    def link(key: str | None) -> str | None:
        if key is None or run_dir is None or not run_dir(key).is_dir():
            return None
        return _rel(run_dir(key), dest) + "/"

    by_method = sorted(pairs, key=lambda p: methods.index(p[0]) if p[0] in methods else len(methods))
    grids = concept_grids(by_method, run_dir) if run_dir is not None else []
    grid_files = write_grids(grids, dest)
    pareto = plot_pareto(lb, dest / "plots", methods)
    curves = plot_val_curves(val_curve_means(pairs), dest / "plots", methods=methods)
    captions = per_concept_metrics()
    tables = {m: per_concept(df, m, methods) for m in captions}
    failures = [(m, r) for m, r in pairs if r.status == "failed"]
    prov = provenance_lines(pairs, df)
    run_rows = [] if df.empty else [
        {**{c: row.get(c) for c in run_cols}, "error": row.get("error"),
         "key": row["key"], "folder": link(row["key"])} for _, row in df.iterrows()]

    body = [f"<h1>{_inline(title)}</h1>"]
    if missing:
        body.append(f"<p class=warn><strong>Incomplete: {missing} run(s) of this suite are not in the store yet."
                    "</strong></p>")
    sections = [("leaderboard", "Leaderboard"), ("failed", "Failed runs"), ("per-concept", "Per concept"),
                ("grids", "Image grids"), ("curves", "Validation curves"), ("pareto", "Quality vs cost"),
                ("full-leaderboard", "Full leaderboard"), ("runs", "Runs"), ("sources", "Sources"),
                ("provenance", "Provenance")]
    body.append("<nav>" + "".join(f"<a href='#{a}'>{t}</a>" for a, t in sections
                                  if (a != "failed" or failures) and (a != "sources" or sources)) + "</nav>")
    body += ["<h2 id=leaderboard>Leaderboard</h2>", f"<p>{_inline(intro(lb))}</p>"]
    main = main_table(lb) if not lb.empty else None
    body.append(main_table_html(main) if main else "<p><em>no finished runs</em></p>")
    if failures:
        body += [f"<h2 id=failed>Failed runs ({len(failures)})</h2>",
                 "<p>Not averaged into the table; <code>e2gan-bench run</code> retries them.</p><ul>"]
        for m, r in failures:
            href, name = link(r.key), html.escape(f"{r.concept} × {m} × seed {r.seed}")
            name = f"<a href='{href}'>{name}</a>" if href else name
            body.append(f"<li>{name}: {html.escape(r.error or 'no reason recorded')}</li>")
        body.append("</ul>")
    body.append("<h2 id=per-concept>Per concept (mean over seeds; bold: best)</h2>")
    for m, caption in captions.items():
        if not tables[m].empty:
            body += [f"<h3>{html.escape(caption)}</h3>", _per_concept_html(tables[m], m)]
    if all(t.empty for t in tables.values()):
        body.append("<p class=note>No finished runs.</p>")
    body.append("<h2 id=grids>Image grids</h2>")
    body.append("<p class=note>Rows: the source photographs, the teacher's edits, then each method's student on the "
                "same held-out test photographs, at the smallest seed; a method's name links to its run folder.</p>")
    body += [_grid_html(g, p, link, dest) for g, p in zip(grids, grid_files, strict=True)] or [
        "<p class=note>No sample pictures found (no finished run folder with samples.png).</p>"]
    body.append("<h2 id=curves>Validation curves</h2>")
    body.append(_figures(curves) if curves else "<p class=note>No validation curves in these runs (runs without a "
                "validation split); each artifact's curve.csv holds its loss curve.</p>")
    body.append("<h2 id=pareto>Quality vs cost</h2>")
    body.append(_figures(pareto) if pareto else "<p class=note>Nothing to plot (no finished runs with costs).</p>")
    body.append("<h2 id=full-leaderboard>Full leaderboard</h2>")
    legend = legend_lines(lb, target)
    body.append("<p class=note>Every column of <code>leaderboard.md</code> and <code>leaderboard.csv</code>: each "
                "metric with its interval, training seconds, parameters, latency, time-to-target medians.</p>"
                if not lb.empty else "<p><em>no finished runs</em></p>")
    if not lb.empty:
        body.append(full_table_html(lb))
    if legend:
        body.append("<ul class=note>" + "".join(f"<li>{_inline(x[2:])}</li>" for x in legend if x) + "</ul>")
    if base_meta:
        body.append("<h2>Base model (one-off cost, shared by every base-initialised method)</h2><ul>")
        body += [f"<li><code>{html.escape(b['key'])}</code>: concepts {html.escape(', '.join(b['concepts']))}; "
                 f"{b['steps']} steps, {b['train_seconds']:.1f} s, {b['train_flops']:.3g} FLOPs, "
                 f"{b['params']:,} parameters</li>" for b in base_meta]
        body.append("</ul>")
        cost = amortise.cost_table(pairs, lb, base_meta)
        if not cost.empty:
            head, data = amortise.formatted(cost)
            body.append(f"<h3>One-off vs per-concept cost</h3><p>{html.escape(amortise.explanation())}</p>")
            body.append("<div class=wide><table><tr>" + "".join(f"<th>{breakable(h)}</th>" for h in head) + "</tr>"
                        + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                                  for r in data) + "</table></div>")
    body.append(f"<h2 id=runs>Runs ({len(run_rows)})</h2>")
    if run_rows:
        rows = [[html.escape(_run_cell(c, r[c])) for c in run_cols]
                + [f"<a href='{r['folder']}'>{html.escape(r['key'])}</a>" if r["folder"] else html.escape(r["key"])]
                for r in run_rows]
        body.append("<details><summary>every run (concept × method × seed) with its folder</summary>"
                    + _table([*run_cols, "run folder"], rows, numeric={2, *range(4, len(run_num_cols))}) + "</details>")
    if sources:
        body.append("<h2 id=sources>Sources</h2><ul>" + "".join(f"<li>{_inline(x.removeprefix('- '))}</li>"
                                                                for x in sources if x.strip()) + "</ul>")
    body += ["<h2 id=provenance>Provenance</h2>", "<ul>" + "".join(f"<li>{_inline(x[2:])}</li>" for x in prov)
             + "</ul>"]
    page = ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            f"<meta name=viewport content='width=device-width, initial-scale=1'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    path = dest / "leaderboard.html"
    atomic_write_text(path, page)

    cols, rows = display_rows(lb) if not lb.empty else ([], [])
    data = {"title": title, "missing": missing, "intro": intro(lb), "legend": [x for x in legend if x],
            "leaderboard": lb.to_dict("records") if not lb.empty else [],
            "leaderboard_display": {"columns": cols, "rows": rows},
            "leaderboard_main": main.to_json() if main else None,
            "per_concept": {m: {"methods": list(t.index), "concepts": list(t.columns),
                                "values": {meth: dict(r) for meth, r in t.iterrows()}}
                            for m, t in tables.items() if not t.empty},
            "failed": [{"concept": r.concept, "method": m, "seed": r.seed, "error": r.error, "key": r.key}
                       for m, r in failures],
            "runs": run_rows, "base_models": base_meta or [], "provenance": prov,
            **({"sources": sources} if sources else {}),
            "plots": [p.path.relative_to(dest).as_posix() for p in [*curves, *pareto]],
            "grids": [p.relative_to(dest).as_posix() for p in grid_files]}
    atomic_write_text(dest / "leaderboard.json", json.dumps(_clean(data), indent=2, allow_nan=False))
    return path
