"""`run`, `evaluate` and `report`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

from e2gan_bench.cli.after_run import AfterRun, MlflowOpt, MlflowUriOpt, SaveOutputsOpt
from e2gan_bench.cli.app import ConceptDirs, MethodDirs, app, console, open_catalog
from e2gan_bench.errors import UserError
from e2gan_bench.harness.executors import MAX_JOBS
from e2gan_bench.resources import find_suite

if TYPE_CHECKING:
    import pandas as pd

    from e2gan_bench.config import MethodEntry, Suite
    from e2gan_bench.harness.spec import RunSpec


def _print_leaderboard(lb: pd.DataFrame, title: str) -> None:
    from e2gan_bench.report.tables.leaderboard import display_rows, terminal_columns

    if lb.empty:
        console.print("no finished runs")
        return
    cols, rows = display_rows(lb, terminal_columns())
    t = Table(title=f"{title} (every column: leaderboard.md)")
    for c in cols:
        t.add_column(c.replace("median_seconds_to_target", "s to target").replace("_", " "),
                     justify="left" if c == "method" else "right")
    for r in rows:
        t.add_row(*r)
    console.print(t)


RankSearchOpt = Annotated[Optional[str], typer.Option(
    "--rank-search", help="Run every LoRA method with this rank search instead (a registered name or "
    "package.module:function); the method label gets the suffix -rs-NAME.")]


DeviceOpt = Annotated[Optional[str], typer.Option(
    "--device", help="Where training and evaluation run: auto (cuda when torch sees a GPU, else cpu), cpu or cuda. "
    "Default: the suite's `device:` (cpu when unset). CPU runs keep their keys; GPU runs get their own keys and "
    "device-labelled metric backends.")]


ExecutorOpt = Annotated[Optional[str], typer.Option(
    "--executor", help="Where runs are computed: local (this process, one at a time; the default), process "
    "(--jobs N worker processes on this machine) or ray (a Ray task per run; extra e2gan-bench[ray]). "
    "Default: local, or process when --jobs > 1.")]
JobsOpt = Annotated[Optional[int], typer.Option(
    "--jobs", help="Runs computed at once (process: worker processes, ray: concurrent tasks); each gets "
    "max(1, cores // N) torch threads. Default: the cores (torch threads) of this process.", min=1, max=MAX_JOBS)]
RayAddressOpt = Annotated[Optional[str], typer.Option(
    "--ray-address", help="With --executor ray: the Ray cluster to use (e.g. ray://head:10001 or auto); without "
    "it a local Ray instance is started for this command. OUT must be a folder every node sees at the same path.")]


DataRootOpt = Annotated[Optional[Path], typer.Option(
    "--data-root", help="Folder that the concepts' relative image folders are taken in (the paper suites: DIR/ffhq, "
    "DIR/scenery); default: the suite's paths.data_root.")]
TeacherWeightsOpt = Annotated[Optional[Path], typer.Option(
    "--teacher-weights", help="Local InstructPix2Pix folder for the suite's diffusers teachers; default: the suite's "
    "paths.teacher_weights, else `e2gan-bench weights add instruct-pix2pix DIR`, else the Hugging Face cache.")]


def _specs(found: tuple[Suite, Path], out: Path, concept_dirs: list[Path] | None, method_dirs: list[Path] | None,
           rank_search: str | None, device: str | None = None, data_root: Path | None = None,
           teacher_weights: Path | None = None, check: bool = False,
           need_device: bool = True, methods: tuple[MethodEntry, ...] | None = None) -> tuple[Suite, list[RunSpec]]:
    """The runs of the suite ``found`` (as :func:`e2gan_bench.resources.find_suite` loaded it: each command reads
    its suite file once; ``methods``: instead of the suite's own); ``check``: first stop (one line, exit 2) when an
    input it needs is missing — teacher weights, data, a GPU — before anything is computed or written."""
    from e2gan_bench.devices import resolve_device
    from e2gan_bench.harness.inputs import binder, check_memory, require_inputs, suite_paths
    from e2gan_bench.harness.spec import expand_suite, suite_with_rank_search

    # before anything is read: a bad --device (or, where runs are computed, cuda without a GPU) is one line; keys and
    # reports need no GPU (need_device=False)
    resolved = resolve_device(device, require=need_device) if device else None
    if rank_search:  # typed on the command line: the user's own choice of code (a file's needs the opt-in)
        from e2gan_bench.registry import trust

        trust(rank_search)
    catalog = open_catalog(concept_dirs, method_dirs)
    suite, path = suite_with_rank_search(found, rank_search, catalog)
    if methods is not None:
        suite = suite.model_copy(update={"methods": methods})
    paths = suite_paths(suite, data_root, teacher_weights)
    catalog = catalog.bound(binder(paths))
    if check:
        require_inputs(suite, catalog, str(path), paths, resolved)  # what is missing first: the most basic answer
        check_memory(suite, catalog, str(path))  # before anything is allocated
    if resolved is None:  # the suite's device, resolved once; where runs are computed it must be here too
        resolved = resolve_device(suite.device, field="device", file=str(path), require=need_device)
    return suite, expand_suite(suite, catalog, str(path), out / "cache", device=resolved)


def _suite_report(suite: Suite, specs: list[RunSpec], out: Path, dest: Path,
                  html: bool = False) -> tuple[pd.DataFrame, int]:
    from e2gan_bench.harness.store import ResultsStore
    from e2gan_bench.report.tables.amortise import read_base_meta
    from e2gan_bench.report.tables.leaderboard import write_reports

    store = ResultsStore(out, readonly=True)
    pairs, missing = [], 0
    for s in specs:
        rec = store.get(s.key)
        if rec is None:
            missing += 1
        else:
            pairs.append((s.method.name, rec))  # failed runs too: the reports show them with their reason
    title = f"e2gan-bench leaderboard — suite `{suite.name}`"
    order, base_meta = [m.name for m in suite.methods], read_base_meta((s.base_key, [out / "cache"]) for s in specs)
    lb = write_reports(pairs, dest, title=title, order=order, base_meta=base_meta, missing=missing,
                       target=suite.target)
    if html:
        from e2gan_bench.report.page.html_page import write_html_report

        write_html_report(pairs, dest, title=title, order=order, base_meta=base_meta, missing=missing,
                          target=suite.target, run_dir=store.run_dir)
    return lb, missing


def _written(dest: Path, html: bool) -> str:
    return f"reports: {dest}/leaderboard.md, leaderboard.csv, runs.csv" + (
        ", leaderboard.html, leaderboard.json" if html else "")


@app.command()
def run(
    suite: Annotated[str, typer.Option(help="Built-in suite name or path to a suite YAML.")] = "quick",
    out: Annotated[Path, typer.Option(help="Results folder (SQLite store, run folders, cache).")] = Path("runs"),
    dest: Annotated[Optional[Path], typer.Option(help="Where to write the reports (default: OUT/reports/SUITE).")] = None,
    concepts_dir: ConceptDirs = None,
    methods_dir: MethodDirs = None,
    fail_fast: Annotated[bool, typer.Option(help="Stop at the first failing run.")] = False,
    executor: ExecutorOpt = None,
    jobs: JobsOpt = None,
    ray_address: RayAddressOpt = None,
    rank_search: RankSearchOpt = None,
    device: DeviceOpt = None,
    data_root: DataRootOpt = None,
    teacher_weights: TeacherWeightsOpt = None,
    save_outputs: SaveOutputsOpt = None,
    mlflow: MlflowOpt = False,
    mlflow_uri: MlflowUriOpt = None,
) -> None:
    """Train and evaluate the suite's grid (concept × method × seed); finished runs are skipped, runs whose
    evaluation is out of date (new metric backends) are re-evaluated without retraining."""
    found = find_suite(suite)  # an unknown name or a malformed file is answered before torch is imported
    from e2gan_bench.harness.executors import make_executor
    from e2gan_bench.harness.runner import run_specs
    from e2gan_bench.harness.store import ResultsStore

    ex = make_executor(executor, jobs, ray_address)  # bad options, or Ray missing: one line before anything runs
    s, specs = _specs(found, out, concepts_dir, methods_dir, rank_search, device, data_root, teacher_weights,
                      check=True)
    after_run = AfterRun.open(out, save_outputs, mlflow, mlflow_uri)  # checked before anything runs
    console.print(f"suite [bold]{s.name}[/bold]: {len(s.concepts)} concepts × {len(s.methods)} methods × "
                  f"{len(s.seeds)} seeds = {len(specs)} runs → {out}" + (f" on {specs[0].device}" if specs else ""))
    counts = run_specs(specs, ResultsStore(out), out / "cache", console, fail_fast=fail_fast, executor=ex)
    console.print(counts.line())
    dest = dest or out / "reports" / s.name
    lb, _ = _suite_report(s, specs, out, dest, html=True)
    _print_leaderboard(lb, f"suite {s.name}")
    console.print(_written(dest, True))
    after_run(s, specs, out)  # --save-outputs, --mlflow: every run of the suite, computed or found stored
    if counts.failed:
        raise typer.Exit(1)


@app.command()
def evaluate(
    out: Annotated[Path, typer.Option(help="Results folder written by `run`.")] = Path("runs"),
    suite: Annotated[Optional[str], typer.Option(
        help="Evaluate this suite's runs under its current settings (and rewrite its reports); default: every "
             "run in the store, under the settings it was run with.")] = None,
    force: Annotated[bool, typer.Option(help="Evaluate again even where the stored evaluation is current.")] = False,
    dest: Annotated[Optional[Path], typer.Option(help="With --suite: report folder (default: OUT/reports/SUITE).")] = None,
    concepts_dir: ConceptDirs = None,
    methods_dir: MethodDirs = None,
    rank_search: RankSearchOpt = None,
    device: DeviceOpt = None,
    data_root: DataRootOpt = None,
    teacher_weights: TeacherWeightsOpt = None,
) -> None:
    """Re-score stored runs under the current metric backends, from their stored artifacts (the generator, or the
    LoRA adapter on its base model) — never retraining. Runs whose evaluation is current are skipped."""
    found = find_suite(suite) if suite else None  # answered before torch is imported
    from e2gan_bench.harness.runner import run_specs, stored_specs
    from e2gan_bench.harness.store import ResultsStore

    if not (out / "results.sqlite").is_file():
        raise UserError("no results store here (run `e2gan-bench run` first)", field="--out", value=str(out))
    store = ResultsStore(out)
    s, skipped = None, []
    if found:
        s, specs = _specs(found, out, concepts_dir, methods_dir, rank_search, device, data_root, teacher_weights)
    else:
        specs, skipped = stored_specs(store)
        from e2gan_bench.devices import resolve_device

        if device:  # each stored run is evaluated where it was run, unless --device says where
            from dataclasses import replace

            dev = resolve_device(device)
            specs = [replace(sp, device=dev) for sp in specs]
        else:  # each stored run is evaluated where it was run: that device must be here
            for dev in sorted({sp.device for sp in specs}):
                resolve_device(dev, field="device (of stored runs; --device chooses another)")
    console.print(f"evaluate {len(specs)} run(s) in {out}" + (f" (suite {s.name})" if s else ""))
    if skipped:
        console.print(f"{len(skipped)} run(s) written by an older version have no stored configuration and are left "
                      f"as they are (run their suite to recompute them), e.g. {skipped[0]}")
    counts = run_specs(specs, store, out / "cache", console, train=False, force=force)
    console.print(counts.line())
    if s is not None:
        dest = dest or out / "reports" / s.name
        lb, _ = _suite_report(s, specs, out, dest)
        _print_leaderboard(lb, f"suite {s.name}")
        console.print(f"reports: {dest}/leaderboard.md, leaderboard.csv, runs.csv")
    if counts.failed:
        raise typer.Exit(1)


@app.command()
def report(
    out: Annotated[Path, typer.Option(help="Results folder written by `run`.")] = Path("runs"),
    suite: Annotated[Optional[str], typer.Option(help="Report this suite's grid; default: every run in the store.")] = None,
    dest: Annotated[Path, typer.Option(help="Folder for leaderboard.md / .csv and runs.csv.")] = Path("reports"),
    concepts_dir: ConceptDirs = None,
    methods_dir: MethodDirs = None,
    rank_search: RankSearchOpt = None,
    device: DeviceOpt = None,
    data_root: DataRootOpt = None,
    teacher_weights: TeacherWeightsOpt = None,
    html: Annotated[bool, typer.Option(
        "--html", help="Also write leaderboard.html (one self-contained page: tables, image grids per concept, "
        "validation curves, quality-vs-cost plots, links to run folders) and leaderboard.json.")] = False,
) -> None:
    """Write leaderboard tables from a results folder."""
    found = find_suite(suite) if suite else None  # answered before torch is imported
    from e2gan_bench.harness.store import ResultsStore
    from e2gan_bench.report.tables.leaderboard import write_reports

    if not (out / "results.sqlite").is_file():
        raise UserError("no results store here (run `e2gan-bench run` first)", field="--out", value=str(out))
    if found:
        s, specs = _specs(found, out, concepts_dir, methods_dir, rank_search, device, data_root, teacher_weights,
                          need_device=False)
        lb, missing = _suite_report(s, specs, out, dest, html=html)
        title = f"suite {s.name}" + (f" ({missing} runs missing)" if missing else "")
    else:
        store = ResultsStore(out, readonly=True)
        pairs, page_title = store.records(), "e2gan-bench leaderboard — all runs"
        lb = write_reports(pairs, dest, title=page_title)
        if html:
            from e2gan_bench.report.page.html_page import write_html_report

            write_html_report(pairs, dest, title=page_title, run_dir=store.run_dir)
        title = "all runs"
    _print_leaderboard(lb, title)
    console.print(_written(dest, html))
