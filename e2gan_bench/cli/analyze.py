"""`analyze layers`: the crucial-layer analysis."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from e2gan_bench.cli.app import ConceptDirs, MethodDirs, app, console, open_catalog

analyze_app = typer.Typer(no_args_is_help=True, help="Analyses that justify the method's design choices.")
app.add_typer(analyze_app, name="analyze")


@analyze_app.command("layers")
def layers(
    suite: Annotated[str, typer.Option(help="Suite whose base model, data and sizes to use.")] = "quick",
    out: Annotated[Path, typer.Option(help="Results folder (shared with `run`; finished runs are reused).")] = Path("runs"),
    dest: Annotated[Optional[Path], typer.Option(help="Report folder (default: OUT/reports/SUITE-layers).")] = None,
    concept: Annotated[Optional[list[str]], typer.Option(help="Concepts to use (default: the suite's).")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Fine-tuning steps per run (default: the methods').",
                                                 min=1, max=10_000_000)] = None,
    rank: Annotated[int, typer.Option(help="LoRA rank.", min=1, max=512)] = 4,
    concepts_dir: ConceptDirs = None,
    methods_dir: MethodDirs = None,
) -> None:
    """Fine-tune each layer group alone (LoRA, and full) and report quality gained per parameter and per second."""
    from e2gan_bench.harness.runner import run_specs
    from e2gan_bench.harness.spec import expand_suite
    from e2gan_bench.harness.store import ResultsStore
    from e2gan_bench.report.layers import layer_suite, write_layer_report
    from e2gan_bench.resources import find_suite

    s, path = find_suite(suite)
    ls = layer_suite(s, concept, steps, rank)
    specs = expand_suite(ls, open_catalog(concepts_dir, methods_dir), str(path), out / "cache")
    console.print(f"layer analysis on suite {s.name}: {len(ls.concepts)} concepts × {len(ls.methods)} variants")
    store = ResultsStore(out)
    run_specs(specs, store, out / "cache", console)
    pairs = [(sp.method.name, store.get(sp.key)) for sp in specs]
    pairs = [(m, r) for m, r in pairs if r is not None and r.status == "ok"]
    dest = dest or out / "reports" / ls.name
    table = write_layer_report(pairs, dest, f"Crucial-layer analysis — suite `{s.name}`",
                               {"concepts": ", ".join(ls.concepts), "rank": rank, "steps": steps or "method default",
                                "base": specs[0].base_key})
    console.print(table.to_string(index=False))
    console.print(f"report: {dest}/layers.md")
