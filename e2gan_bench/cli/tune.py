"""`tune`: the same number of quasi-random trials for every method, on concepts no reported suite uses."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from e2gan_bench.cli.app import ConceptDirs, MethodDirs, app, console
from e2gan_bench.cli.run import ExecutorOpt, JobsOpt, _specs
from e2gan_bench.errors import UserError


@app.command()
def tune(
    suite: Annotated[str, typer.Option(help="The tuning suite: its concepts must be disjoint from every suite that "
                                            "reports results.")] = "tuning",
    trials: Annotated[int, typer.Option(help="Trials per method (the same for every method): its current settings "
                                             "and trials − 1 quasi-random draws.", min=1, max=64)] = 5,
    out: Annotated[Path, typer.Option(help="Results folder (resumable).")] = Path("runs"),
    dest: Annotated[Path, typer.Option(help="Folder for tuning.md and trials.csv.")] = Path("reports/tuning"),
    write_methods: Annotated[Optional[Path], typer.Option(
        help="Write each method's chosen values into its YAML file in this folder or below (e.g. baselines/).")] = None,
    concepts_dir: ConceptDirs = None,
    methods_dir: MethodDirs = None,
    executor: ExecutorOpt = None,
    jobs: JobsOpt = None,
) -> None:
    """Run every trial of every method with a search space on the tuning suite, score each by its final validation
    PSNR averaged over the tuning concepts, and report (and optionally write) each method's best configuration."""
    from e2gan_bench.resources import find_suite

    s, path = find_suite(suite)  # answered before torch is imported
    from e2gan_bench.cli.app import open_catalog
    from e2gan_bench.harness.executors import make_executor
    from e2gan_bench.harness.runner import run_specs
    from e2gan_bench.harness.store import ResultsStore
    from e2gan_bench.harness.tuning import check_disjoint, tuning_methods
    from e2gan_bench.report.tables.tuning import chosen, markdown, scores, trial_rows, write_method_file

    check_disjoint(s, str(path))
    catalog = open_catalog(concepts_dir, methods_dir)
    entries, drawn = tuning_methods(s, catalog, trials, str(path))
    if write_methods is not None and not write_methods.is_dir():
        raise UserError("not a folder", field="--write-methods", value=str(write_methods))
    ex = make_executor(executor, jobs, None)
    _, specs = _specs((s, path), out, concepts_dir, methods_dir, None, check=True, methods=tuple(entries))
    console.print(f"tune [bold]{s.name}[/bold]: {len({t.method for t in drawn})} methods × {trials} trials × "
                  f"{len(s.concepts)} concepts × {len(s.seeds)} seeds = {len(specs)} runs → {out}")
    store = ResultsStore(out)
    counts = run_specs(specs, store, out / "cache", console, executor=ex)
    console.print(counts.line())
    records: dict[str, list] = {}
    for sp in specs:
        rec = store.get(sp.key)
        if rec is not None:
            records.setdefault(sp.method.name, []).append(rec)
    rows = trial_rows(drawn, records)
    sc = scores(rows)
    best = chosen(drawn, sc)
    commit = next((r.provenance.get("git") for rs in records.values() for r in rs), None)
    prov = f"Runs at commit `{commit}`; store `{out}`."
    dest.mkdir(parents=True, exist_ok=True)
    from e2gan_bench.cache import atomic_write_text

    atomic_write_text(dest / "trials.csv", rows.to_csv(index=False))
    atomic_write_text(dest / "tuning.md", markdown(rows, sc, best, suite=s.name, n=trials, provenance=prov))
    files: dict[str, Path] = {}  # every method's file found before any is written (a method is a folder)
    for method, t in best.items():
        if write_methods is None or not t.config:
            continue
        name = catalog.method(method).name
        found = sorted(write_methods.rglob(f"{name}.yaml"))
        if not found:
            raise UserError("method file not found", field="--write-methods",
                            value=str(write_methods / "**" / f"{name}.yaml"))
        files[method] = found[0]
    for method, t in best.items():
        console.print(f"{method}: trial {t.index} — " + ", ".join(f"{k} = {v}" for k, v in t.config.items()))
        if method in files:
            write_method_file(files[method], t.config, f"tuned by `e2gan-bench tune --suite {s.name} --trials {trials}` "
                                                       f"(reports/tuning, trial {t.index}, commit {commit})")
    console.print(f"tuning: {dest / 'tuning.md'}, {dest / 'trials.csv'}")
    if counts.failed:
        raise typer.Exit(1)
