"""`gate`: regression-test a variant end to end — the reference and the candidate on a gate suite (shared runs
reused), compared concept by concept, with the suite's measured false-alarm rate and detectable effect beside
the verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from e2gan_bench.cli.app import ConceptDirs, MethodDirs, app, console
from e2gan_bench.cli.compare import finish
from e2gan_bench.cli.run import DeviceOpt, ExecutorOpt, JobsOpt, _specs
from e2gan_bench.errors import UserError


@app.command()
def gate(
    suite: Annotated[str, typer.Option(help="A suite with a `gate:` section (built-in: gate).")] = "gate",
    rank_search: Annotated[Optional[str], typer.Option(
        "--rank-search", help="The candidate: the suite's reference method with this rank search (a registered "
        "name or package.module:function).")] = None,
    candidate: Annotated[Optional[str], typer.Option(
        help="The candidate: a method name (built in, or from --methods-dir).")] = None,
    out: Annotated[Path, typer.Option(help="Results folder (resumable; shared runs are reused).")] = Path("runs"),
    concepts_dir: ConceptDirs = None,
    methods_dir: MethodDirs = None,
    executor: ExecutorOpt = None,
    jobs: JobsOpt = None,
    device: DeviceOpt = None,
    markdown: Annotated[Optional[Path], typer.Option(help="Write the verdict as markdown here.")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the comparison as JSON here.")] = None,
) -> None:
    """Run the gate suite's reference method and the candidate (finished runs are reused), then gate the candidate
    against the reference with the suite's tolerances and level; exit 1 when it regressed, 2 on bad input."""
    from e2gan_bench.resources import find_suite

    s, path = find_suite(suite)  # answered before torch is imported
    from e2gan_bench.cli.app import open_catalog
    from e2gan_bench.config import MethodEntry
    from e2gan_bench.harness.executors import make_executor
    from e2gan_bench.harness.runner import run_specs
    from e2gan_bench.harness.store import ResultsStore
    from e2gan_bench.report.compare.comparison import compare as run_compare
    from e2gan_bench.report.compare.gates import resolve_gates
    from e2gan_bench.report.compare.sides import Side
    from e2gan_bench.report.compare.verdict import calibration_text
    if (rank_search is None) == (candidate is None):
        raise UserError("give the candidate as --rank-search NAME or --candidate METHOD (one of them)",
                        field="--candidate")
    ref = s.gate.reference
    if ref is None:
        raise UserError("this suite has no gate: section naming its reference method", file=str(path),
                        field="gate.reference")
    catalog = open_catalog(concepts_dir, methods_dir)
    if rank_search is not None:
        from e2gan_bench.harness.spec import rank_search_name
        from e2gan_bench.methods.e2gan.rank_search import RANK_SEARCHES
        from e2gan_bench.registry import trust

        trust(rank_search)  # typed on the command line: the user's own choice of code
        RANK_SEARCHES.get(rank_search, field="--rank-search")
        cand = {"name": rank_search_name(ref, rank_search), "method": ref, "overrides": {"lora": {"search": rank_search}}}
    else:
        catalog.method(str(candidate), field="--candidate")
        cand = {"name": candidate}
    if cand["name"] == ref:
        raise UserError("the candidate is the reference itself", field="--candidate", value=cand["name"])
    entry = next(m for m in s.methods if m.name == ref)
    ex = make_executor(executor, jobs, None)
    _, specs = _specs((s, path), out, concepts_dir, methods_dir, None, device, check=True,
                      methods=(entry, MethodEntry(**cand)))
    store = ResultsStore(out)
    console.print(f"gate [bold]{s.name}[/bold]: {ref} vs {cand['name']} on {len(s.concepts)} concepts × "
                  f"{len(s.seeds)} seeds = {len(specs)} runs → {out}"
                  + (f" [{calibration_text(s.gate.calibration.model_dump())}]" if s.gate.calibration else ""))
    counts = run_specs(specs, store, out / "cache", console, executor=ex)
    console.print(counts.line())
    recs = {m: [rec.model_copy(update={"method": m}) for sp in specs if sp.method.name == m
                and (rec := store.get(sp.key)) is not None] for m in (ref, cand["name"])}
    rside = Side("REFERENCE", str(out), "results store", ref, s.name, recs[ref])
    cside = Side("CANDIDATE", str(out), "results store", cand["name"], s.name, recs[cand["name"]])
    result = run_compare(rside, cside, resolve_gates(list(s.gate.tolerances)), 0.95, s.gate.alpha,
                         s.gate.calibration.model_dump() if s.gate.calibration else None)
    finish(result, markdown, json_out, field="gate.tolerances")
