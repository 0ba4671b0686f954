"""`run` and `report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from e2gan_bench.cli import ConceptDirs, MethodDirs, _catalog, app, console
from e2gan_bench.errors import UserError


def _print_leaderboard(lb, title: str) -> None:
    from e2gan_bench.report.leaderboard import _fmt

    if lb.empty:
        console.print("no finished runs")
        return
    t = Table(title=title)
    for c in lb.columns:
        t.add_column(c, justify="left" if c == "method" else "right")
    for _, row in lb.iterrows():
        t.add_row(*[_fmt(c, row[c]) for c in lb.columns])
    console.print(t)


RankSearchOpt = Annotated[Optional[str], typer.Option(
    "--rank-search", help="Run every LoRA method with this rank search instead (a registered name or "
    "package.module:function); the method label gets the suffix -rs-NAME.")]


def load_suite(name_or_path: str, rank_search: str | None, catalog):
    """The suite, with ``--rank-search`` applied to every LoRA method (renamed ``<method>-rs-<search>``)."""
    import re

    from e2gan_bench.config import MethodEntry, deep_merge
    from e2gan_bench.resources import find_suite
    from e2gan_bench.training.rank_search import RANK_SEARCHES

    s, path = find_suite(name_or_path)
    if not rank_search:
        return s, path
    RANK_SEARCHES.get(rank_search, field="--rank-search")
    slug = re.sub(r"[^a-z0-9]+", "-", rank_search.split(":")[-1].lower()).strip("-")[:24] or "custom"
    methods = []
    for i, m in enumerate(s.methods):
        r = catalog.recipe(m.recipe_name, file=str(path), field=f"methods[{i}]")
        trainable = m.overrides.get("trainable", r.trainable)
        if trainable.startswith("lora"):
            m = MethodEntry(name=f"{m.name}-rs-{slug}", recipe=m.recipe_name,
                            overrides=deep_merge(m.overrides, {"lora": {"search": rank_search}}))
        methods.append(m)
    return s.model_copy(update={"methods": tuple(methods)}), path


def _suite_report(suite_name: str, out: Path, dest: Path, concept_dirs, method_dirs, rank_search: str | None = None):
    from e2gan_bench.harness.spec import expand_suite
    from e2gan_bench.harness.store import ResultsStore
    from e2gan_bench.report.leaderboard import write_reports

    catalog = _catalog(concept_dirs, method_dirs)
    suite, path = load_suite(suite_name, rank_search, catalog)
    specs = expand_suite(suite, catalog, str(path), out / "cache")
    store = ResultsStore(out)
    pairs, missing = [], 0
    for s in specs:
        rec = store.get(s.key)
        if rec is None or rec.status != "ok":
            missing += 1
        else:
            pairs.append((s.method, rec))
    bases = _base_meta(out / "cache", specs)
    lb = write_reports(pairs, dest, title=f"e2gan-bench leaderboard — suite `{suite.name}`",
                       order=[m.name for m in suite.methods], base_meta=bases, missing=missing)
    return lb, missing, suite


def _base_meta(cache: Path, specs) -> list[dict]:
    import json

    seen, out = set(), []
    for s in specs:
        if s.base is not None and s.base.key not in seen:
            seen.add(s.base.key)
            f = cache / "base" / s.base.key / "meta.json"
            if f.is_file():
                out.append(json.loads(f.read_text()))
    return out


@app.command()
def run(
    suite: Annotated[str, typer.Option(help="Built-in suite name or path to a suite YAML.")] = "quick",
    out: Annotated[Path, typer.Option(help="Results folder (SQLite store, run folders, cache).")] = Path("runs"),
    dest: Annotated[Optional[Path], typer.Option(help="Where to write the reports (default: OUT/reports/SUITE).")] = None,
    concepts_dir: ConceptDirs = None,
    methods_dir: MethodDirs = None,
    fail_fast: Annotated[bool, typer.Option(help="Stop at the first failing run.")] = False,
    rank_search: RankSearchOpt = None,
) -> None:
    """Train and evaluate the suite's grid (concept × method × seed); finished runs are skipped."""
    from e2gan_bench.harness.runner import run_specs
    from e2gan_bench.harness.spec import expand_suite
    from e2gan_bench.harness.store import ResultsStore

    catalog = _catalog(concepts_dir, methods_dir)
    s, path = load_suite(suite, rank_search, catalog)
    specs = expand_suite(s, catalog, str(path), out / "cache")
    store = ResultsStore(out)
    console.print(f"suite [bold]{s.name}[/bold]: {len(s.concepts)} concepts × {len(s.methods)} methods × "
                  f"{len(s.seeds)} seeds = {len(specs)} runs → {out}")
    counts = run_specs(specs, store, out / "cache", console, fail_fast=fail_fast)
    console.print(f"{counts['done']} run(s) computed, {counts['cached']} already in the store, "
                  f"{counts['failed']} failed")
    dest = dest or out / "reports" / s.name
    lb, missing, _ = _suite_report(suite, out, dest, concepts_dir, methods_dir, rank_search)
    _print_leaderboard(lb, f"suite {s.name}")
    console.print(f"reports: {dest}/leaderboard.md, leaderboard.csv, runs.csv")
    if counts["failed"]:
        raise typer.Exit(1)


@app.command()
def report(
    out: Annotated[Path, typer.Option(help="Results folder written by `run`.")] = Path("runs"),
    suite: Annotated[Optional[str], typer.Option(help="Report this suite's grid; default: every run in the store.")] = None,
    dest: Annotated[Path, typer.Option(help="Folder for leaderboard.md / .csv and runs.csv.")] = Path("reports"),
    concepts_dir: ConceptDirs = None,
    methods_dir: MethodDirs = None,
    rank_search: RankSearchOpt = None,
) -> None:
    """Write leaderboard tables from a results folder."""
    from e2gan_bench.harness.store import ResultsStore
    from e2gan_bench.report.leaderboard import write_reports

    if not (out / "results.sqlite").is_file():
        raise UserError("no results store here (run `e2gan-bench run` first)", field="--out", value=str(out))
    if suite:
        lb, missing, s = _suite_report(suite, out, dest, concepts_dir, methods_dir, rank_search)
        title = f"suite {s.name}" + (f" ({missing} runs missing)" if missing else "")
    else:
        lb = write_reports(ResultsStore(out).records(), dest, title="e2gan-bench leaderboard — all runs")
        title = "all runs"
    _print_leaderboard(lb, title)
    console.print(f"reports: {dest}/leaderboard.md, leaderboard.csv, runs.csv")


