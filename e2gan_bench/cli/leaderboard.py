"""`leaderboard`: one suite's runs merged from several results stores (e.g. made on different machines) into one
leaderboard, with where each run came from (report/merge/suite.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from e2gan_bench.cli.app import app, console
from e2gan_bench.cli.run import _print_leaderboard, _written


@app.command()
def leaderboard(
    stores: Annotated[list[Path], typer.Argument(
        help="Results folders written by `e2gan-bench run --out` (each holding results.sqlite), e.g. made on "
             "different machines; where two hold the same run, the first named is kept.",
        show_default=False, metavar="STORE")],
    dest: Annotated[Path, typer.Option(help="Folder for leaderboard.md / .csv and runs.csv (with --html: "
                                            "leaderboard.html / .json).", show_default=False)],
    suite: Annotated[Optional[str], typer.Option(
        help="The suite to merge: a built-in name or a suite YAML (its grid, method order and time-to-quality "
             "target); default: the one suite the stores hold.")] = None,
    html: Annotated[bool, typer.Option("--html", help="Also write leaderboard.html and leaderboard.json.")] = False,
) -> None:
    """Merge one suite's runs from several stores into one leaderboard (the reports of `e2gan-bench report`, plus
    the store, machine and commit of every run). Refuses — one line, nothing written — runs whose protocols
    (stored settings, training keys) or metric backends differ."""
    from e2gan_bench.report.merge.suite import ORIGIN_COLUMNS, merge_stores
    from e2gan_bench.report.tables.leaderboard import write_reports

    merged = merge_stores(stores, suite)  # every check before anything is written
    title = f"e2gan-bench leaderboard — suite `{merged.suite.name}`, merged from {len(merged.stores)} store(s)"
    info, sources = merged.run_info(), merged.sources()
    common = dict(title=title, order=merged.order, base_meta=merged.base_meta, missing=merged.missing,
                  target=merged.suite.target, run_info=info, sources=sources)
    lb = write_reports(merged.pairs, dest, **common)
    if html:
        from e2gan_bench.report.page.html_page import write_html_report

        write_html_report(merged.pairs, dest, run_dir=merged.run_dir, **common)
    _print_leaderboard(lb, f"suite {merged.suite.name}, {len(merged.runs)} runs from {len(merged.stores)} store(s)")
    for line in sources:
        console.print(escape(line.replace("**", "").replace("`", "")), highlight=False)
    console.print(_written(dest, html) + f" (runs.csv: {', '.join(ORIGIN_COLUMNS)} per run)")
