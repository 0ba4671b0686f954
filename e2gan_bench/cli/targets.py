"""`targets make | list | show`: fixed time-to-target values from a reference protocol (MLPerf-style)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from e2gan_bench.cli.app import ConceptDirs, MethodDirs, app, console
from e2gan_bench.cli.run import DeviceOpt, ExecutorOpt, JobsOpt
from e2gan_bench.errors import UserError

targets_app = typer.Typer(no_args_is_help=True, help="Fixed time-to-target values (targets/*.yaml) and the "
                          "reference protocol that makes them.")
app.add_typer(targets_app, name="targets")


@targets_app.command("make")
def make(
    suite: Annotated[str, typer.Option(help="The reference protocol: a suite holding the floor (identity) and one "
                                            "reference method that no ranked suite uses (e.g. targets-cpu-48).")],
    dest: Annotated[Path, typer.Option(help="The targets file to write (e.g. targets/cpu-48.yaml); its name is the "
                                           "file name.")],
    out: Annotated[Path, typer.Option(help="Results folder for the reference runs (resumable).")] = Path("runs"),
    method: Annotated[Optional[str], typer.Option(help="The reference method (default: the suite's only trained "
                                                       "method).")] = None,
    concepts_dir: ConceptDirs = None,
    methods_dir: MethodDirs = None,
    executor: ExecutorOpt = None,
    jobs: JobsOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Run the reference protocol (finished runs are reused), then write per concept and metric
    target = floor + fraction × (reference − floor), fraction and floor from the suite's ``target:``."""
    from e2gan_bench.resources import find_suite

    found = find_suite(suite)  # answered before torch is imported
    from e2gan_bench.cache import atomic_write_text
    from e2gan_bench.cli.run import _specs
    from e2gan_bench.config import NAME_PATTERN
    from e2gan_bench.harness.executors import make_executor
    from e2gan_bench.harness.runner import run_specs
    from e2gan_bench.harness.store import ResultsStore
    from e2gan_bench.report.tables.reference_targets import made_stamp, make_targets, to_yaml

    name = dest.stem
    if dest.suffix not in (".yaml", ".yml") or not re.match(NAME_PATTERN, name):
        raise UserError("a targets file is NAME.yaml (lower case letters, digits, - and _)", field="--dest",
                        value=str(dest))
    ex = make_executor(executor, jobs, None)
    s, specs = _specs(found, out, concepts_dir, methods_dir, None, device, check=True)
    names = [m.name for m in s.methods]
    floor = s.target.floor
    if floor not in names:
        raise UserError("the reference protocol needs its floor method", field="target.floor", value=floor,
                        allowed=", ".join(names))
    trained = [sp.method.name for sp in specs if not sp.method.reference and sp.method.name != floor]
    trained = list(dict.fromkeys(trained))
    if method is None:
        if len(trained) != 1:
            raise UserError("choose the reference method", field="--method", allowed=", ".join(trained))
        method = trained[0]
    elif method not in trained:
        raise UserError("not a trained method of this suite", field="--method", value=method,
                        allowed=", ".join(trained))
    store = ResultsStore(out)
    counts = run_specs(specs, store, out / "cache", console, executor=ex)
    console.print(counts.line())
    pairs = [(sp.method.name, rec) for sp in specs if (rec := store.get(sp.key)) is not None]
    prov = next((r.provenance for m, r in pairs if m == method), {})
    tf = make_targets(pairs, name=name, suite=s.name, method=method, floor=floor, seeds=list(s.seeds),
                      fraction=s.target.gap_fraction, resolution=specs[0].data.resolution,
                      curve_images=s.curve.max_images, description=s.description,
                      made=made_stamp(f"e2gan-bench targets make --suite {suite} --dest {dest}", prov))
    atomic_write_text(dest, to_yaml(tf))
    _table(tf)
    console.print(f"targets: {dest}")
    if counts.failed:
        raise typer.Exit(1)


def _table(tf) -> None:
    t = Table(title=f"targets {tf.name}", caption=tf.protocol.rule)
    for c in ("concept", "metric", "floor", "reference", "target"):
        t.add_column(c, justify="left" if c in ("concept", "metric") else "right")
    for concept, vals in tf.values.items():
        for metric, v in vals.items():
            t.add_row(concept, metric, f"{tf.floor.get(concept, {}).get(metric, float('nan')):.4g}",
                      f"{tf.reference.get(concept, {}).get(metric, float('nan')):.4g}", f"{v:.4g}")
    console.print(t)


@targets_app.command("list")
def list_targets() -> None:
    """The built-in targets files."""
    from e2gan_bench.resources import find_targets, target_names

    for n in target_names():
        tf, _ = find_targets(n)
        console.print(f"{n}: {len(tf.values)} concepts, {tf.resolution} px — {tf.protocol.rule}")


@targets_app.command("show")
def show(name: Annotated[str, typer.Argument(help="A built-in targets name or a path to a targets file.")]) -> None:
    """One targets file: its values, floor and reference per concept and metric, and how it was made."""
    from e2gan_bench.resources import find_targets

    tf, path = find_targets(name, field="NAME")
    _table(tf)
    console.print(f"{path}: made {', '.join(f'{k} {v}' for k, v in tf.made.items())}")
