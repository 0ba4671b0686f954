"""`compare`: the regression gate (exit 1 when the candidate is worse beyond tolerance)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from e2gan_bench.cache import atomic_write_text
from e2gan_bench.cli.app import app, console
from e2gan_bench.errors import UserError

_GATE_HELP = ("Tolerance for one metric, repeatable, overriding the defaults: METRIC:abs=X (metric units), "
              "METRIC:rel=Y (fraction of mean |reference|), METRIC:abs=X,rel=Y (the larger), METRIC:X (= abs), "
              "METRIC:off. The defaults and their reasons: `e2gan-bench metrics list`.")


def _write(path: Path, text: str, option: str) -> None:
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise UserError(f"cannot write ({exc.strerror or type(exc).__name__})", field=option, value=str(path)) from None


def _print(c) -> None:
    from e2gan_bench.report.compare.verdict import gate_rule_lines, headline, side_line, table_rows

    style = {"PASS": "bold green", "REGRESSED": "bold red"}.get(c.verdict, "bold yellow")
    console.print(f"[{style}]{escape(headline(c))}[/{style}]")
    for s in (c.reference, c.candidate):
        console.print(f"  {escape(side_line(s).replace('**', ''))}")
        for n in s.notes:
            console.print(f"  note ({s.role.lower()}): {escape(n)}")
    console.print(f"  matched runs (concept/seed): {len(c.matched)} — "
                  f"{escape(', '.join(f'{cc}/{s}' for cc, s in c.matched))}")
    header, rows = table_rows(c)
    t = Table()
    for h in header[:-1]:
        t.add_column(h, justify="left" if h in ("metric", "better", "gate (tolerance)", "verdict") else "right")
    colour = {"regressed": "red", "inconclusive": "yellow", "pass": "green", "not comparable": "yellow",
              "not measured": "yellow"}
    for r, row in zip(c.metrics, rows, strict=True):
        t.add_row(*[escape(x) for x in row[:-1]], style=colour.get(r.status))
    console.print(t)
    for r, row in zip(c.metrics, rows, strict=True):
        if row[-1]:
            console.print(f"  {escape(r.metric)}: {escape(row[-1])}")
    for m, e in c.errors.items():
        console.print(f"[yellow]cannot gate {escape(m)}: {escape(e)} (compare without it: --gate {escape(m)}:off)[/]")
    if c.unmatched:
        console.print(f"unmatched runs ({len(c.unmatched)}):")
        for u in c.unmatched:
            console.print(f"  {u.side}: {escape(u.concept)} seed {u.seed} — {escape(u.reason)}")
    console.print(escape(gate_rule_lines(c)[0].replace("**", "")), style="dim")


@app.command()
def compare(
    reference: Annotated[Path, typer.Argument(help="Results folder of `run` (results.sqlite) or exported runs.csv "
                                              "(file or folder) of `report`.", show_default=False)],
    candidate: Annotated[Path, typer.Argument(help="Same, for the candidate (may be the same folder as REFERENCE).",
                                              show_default=False)],
    suite: Annotated[Optional[str], typer.Option(help="Only this suite's runs in a results store "
                                                      "(default: every run in the store).")] = None,
    reference_method: Annotated[Optional[str], typer.Option(
        "--reference-method", "--base-method",
        help="Method label in REFERENCE (default: its only trained method; untrained reference methods such as "
             "identity are skipped; --base-method is its former name).")] = None,
    candidate_method: Annotated[Optional[str], typer.Option(
        help="Method label in CANDIDATE (default: its only trained method).")] = None,
    gate: Annotated[Optional[list[str]], typer.Option("--gate", help=_GATE_HELP, show_default=False)] = None,
    confidence: Annotated[float, typer.Option(help="Two-sided confidence level of the intervals.")] = 0.95,
    alpha: Annotated[Optional[float], typer.Option(
        help="Family-wise one-sided level of the gate's tests (Holm across gated metrics; default: the suite's "
             "gate.alpha, else 0.05).", show_default=False)] = None,
    markdown: Annotated[Optional[Path], typer.Option(help="Write the verdict as markdown here.")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the comparison as JSON here.")] = None,
) -> None:
    """Regression gate: compare CANDIDATE with REFERENCE, paired by (concept, seed), concepts as units; exit 1 when a
    gated metric regressed (significantly worse beyond tolerance), 2 on bad input or when a gated metric cannot be
    compared. A suite with a ``gate:`` section brings its tolerances, level and measured calibration."""
    from e2gan_bench.report.compare.comparison import compare as run_compare
    from e2gan_bench.report.compare.gates import resolve_gates, suite_gate
    from e2gan_bench.report.compare.sides import open_side

    suite_specs, suite_alpha, calibration = suite_gate(suite)
    gates = resolve_gates([*suite_specs, *(gate or [])])  # bad --gate fails before any reading
    r = open_side(reference, suite, reference_method, role="REFERENCE", option="--reference-method")
    c = open_side(candidate, suite, candidate_method, role="CANDIDATE", option="--candidate-method")
    result = run_compare(r, c, gates, confidence, alpha if alpha is not None else suite_alpha or 0.05, calibration)
    finish(result, markdown, json_out)


def finish(result, markdown: Path | None, json_out: Path | None, field: str = "--gate") -> None:
    """Print the verdict, write it (markdown, JSON) and exit: 1 when a gated metric regressed, 2 (one line) when a
    gated metric cannot be compared."""
    from e2gan_bench.report.compare.verdict import to_markdown

    _print(result)
    if markdown is not None:
        _write(markdown, to_markdown(result), "--markdown")
        console.print(f"verdict: {escape(str(markdown))}")
    if json_out is not None:
        _write(json_out, json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n", "--json")
    if result.errors:
        m, e = next(iter(result.errors.items()))
        raise UserError(f"cannot gate {m}: {e} (compare without it: --gate {m}:off)", field=field, value=m)
    if result.failed:
        raise typer.Exit(1)
