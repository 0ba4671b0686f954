"""``e2gan-bench``: one command with subcommands.

Bad input (malformed file, unknown name, missing folder, corrupt checkpoint) prints one line naming
file, field and value, and exits 2. Ctrl-C stops cleanly (exit 130); re-running resumes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import click
import typer
from rich.console import Console
from rich.table import Table

from e2gan_bench.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Benchmark efficient training of efficient GANs (E2GAN) for image-to-image translation.")
concepts_app = typer.Typer(no_args_is_help=True, help="The concept bank.")
suites_app = typer.Typer(no_args_is_help=True, help="Built-in suites.")
methods_app = typer.Typer(no_args_is_help=True, help="Method recipes (E2GAN and baselines).")
app.add_typer(concepts_app, name="concepts")
app.add_typer(suites_app, name="suites")
app.add_typer(methods_app, name="methods")

console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 400)

ConceptDirs = Annotated[Optional[list[Path]], typer.Option("--concepts-dir", help="Extra folder of concept YAMLs.")]
MethodDirs = Annotated[Optional[list[Path]], typer.Option("--methods-dir", help="Extra folder of method recipes.")]


def _catalog(concept_dirs: list[Path] | None = None, method_dirs: list[Path] | None = None):
    from e2gan_bench.resources import Catalog

    for d in (concept_dirs or []) + (method_dirs or []):
        if not d.is_dir():
            raise UserError("folder not found", field="--concepts-dir/--methods-dir", value=str(d))
    return Catalog(concept_dirs, method_dirs)


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


def _suite_report(suite_name: str, out: Path, dest: Path, concept_dirs, method_dirs):
    from e2gan_bench.harness.spec import expand_suite
    from e2gan_bench.harness.store import ResultsStore
    from e2gan_bench.report.leaderboard import write_reports
    from e2gan_bench.resources import find_suite

    suite, path = find_suite(suite_name)
    specs = expand_suite(suite, _catalog(concept_dirs, method_dirs), str(path))
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
    dest: Annotated[Optional[Path], typer.Option(help="Where to write the reports [default: OUT/reports/SUITE].")] = None,
    concepts_dir: ConceptDirs = None,
    methods_dir: MethodDirs = None,
    fail_fast: Annotated[bool, typer.Option(help="Stop at the first failing run.")] = False,
) -> None:
    """Train and evaluate the suite's grid (concept × method × seed); finished runs are skipped."""
    from e2gan_bench.harness.runner import run_specs
    from e2gan_bench.harness.spec import expand_suite
    from e2gan_bench.harness.store import ResultsStore
    from e2gan_bench.resources import find_suite

    s, path = find_suite(suite)
    specs = expand_suite(s, _catalog(concepts_dir, methods_dir), str(path))
    store = ResultsStore(out)
    console.print(f"suite [bold]{s.name}[/bold]: {len(s.concepts)} concepts × {len(s.methods)} methods × "
                  f"{len(s.seeds)} seeds = {len(specs)} runs → {out}")
    counts = run_specs(specs, store, out / "cache", console, fail_fast=fail_fast)
    console.print(f"{counts['done']} run(s) computed, {counts['cached']} already in the store, "
                  f"{counts['failed']} failed")
    dest = dest or out / "reports" / s.name
    lb, missing, _ = _suite_report(suite, out, dest, concepts_dir, methods_dir)
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
) -> None:
    """Write leaderboard tables from a results folder."""
    from e2gan_bench.harness.store import ResultsStore
    from e2gan_bench.report.leaderboard import write_reports

    if not (out / "results.sqlite").is_file():
        raise UserError("no results store here (run `e2gan-bench run` first)", field="--out", value=str(out))
    if suite:
        lb, missing, s = _suite_report(suite, out, dest, concepts_dir, methods_dir)
        title = f"suite {s.name}" + (f" ({missing} runs missing)" if missing else "")
    else:
        lb = write_reports(ResultsStore(out).records(), dest, title="e2gan-bench leaderboard — all runs")
        title = "all runs"
    _print_leaderboard(lb, title)
    console.print(f"reports: {dest}/leaderboard.md, leaderboard.csv, runs.csv")


@concepts_app.command("list")
def concepts_list(
    category: Annotated[Optional[str], typer.Option(help="Only this category.")] = None,
    concepts_dir: ConceptDirs = None,
) -> None:
    """The concept bank: name, category, prompt, teacher."""
    cat = _catalog(concepts_dir)
    t = Table(title="concepts")
    for c in ("name", "category", "prompt", "teacher"):
        t.add_column(c)
    n = 0
    for name in cat.concept_names():
        c = cat.concept(name)
        if category and c.category != category:
            continue
        ops = c.teacher.params.get("ops")
        teacher = c.teacher.kind + (": " + " → ".join(o.get("op", "?") for o in ops) if ops else "")
        t.add_row(c.name, c.category, c.prompt, teacher)
        n += 1
    console.print(t)
    console.print(f"{n} concepts")


@concepts_app.command("preview")
def concepts_preview(
    name: str,
    dest: Annotated[Path, typer.Option(help="PNG to write.")] = Path("preview.png"),
    n: Annotated[int, typer.Option(help="Pairs to show.")] = 6,
    resolution: Annotated[int, typer.Option(help="Crop size in pixels.")] = 128,
    split: Annotated[str, typer.Option(help="train or test crops.")] = "test",
    concepts_dir: ConceptDirs = None,
) -> None:
    """A grid of source (top row) / teacher output (bottom row) pairs."""
    import numpy as np
    from PIL import Image

    from e2gan_bench.data.dataset import DataSettings
    from e2gan_bench.data.sources import build_source, make_crops
    from e2gan_bench.data.teachers import build_teacher

    if split not in ("train", "test"):
        raise UserError("unknown split", field="--split", value=split, allowed="train, test")
    cat = _catalog(concepts_dir)
    c = cat.concept(name, field="NAME")
    f = cat.concept_file(name)
    teacher = build_teacher(c.teacher.kind, c.teacher.params, file=f)
    s = DataSettings(resolution, n, n)
    if teacher.provides_pairs:
        a_tr, b_tr, a_te, b_te = teacher.pairs(resolution, c.split_seed)
        src, tgt = (a_te, b_te) if split == "test" else (a_tr, b_tr)
        src, tgt = src[:n], tgt[:n]
    else:
        crops = make_crops(build_source(c.source.kind, c.source.params, c.split_seed, file=f), resolution, n, n,
                           c.split_seed)
        src = crops.test if split == "test" else crops.train
        tgt = teacher.edit(src, c.prompt, seed=c.split_seed)
    grid = np.concatenate([np.concatenate(list(src), 1), np.concatenate(list(tgt), 1)], 0)
    dest.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(dest)
    console.print(f"{dest}: {len(src)} pairs of '{c.name}' ({c.prompt}) at {s.resolution}px")


@concepts_app.command("show")
def concepts_show(name: str, concepts_dir: ConceptDirs = None) -> None:
    """The concept's file."""
    cat = _catalog(concepts_dir)
    cat.concept(name, field="NAME")
    console.print(Path(cat.concept_file(name)).read_text())


@suites_app.command("list")
def suites_list() -> None:
    """Built-in suites."""
    from e2gan_bench.resources import find_suite, suite_names

    t = Table(title="suites")
    for c in ("name", "concepts", "methods", "seeds", "description"):
        t.add_column(c)
    for n in suite_names():
        s, _ = find_suite(n)
        t.add_row(s.name, str(len(s.concepts)), ", ".join(m.name for m in s.methods), str(len(s.seeds)),
                  s.description)
    console.print(t)


@suites_app.command("show")
def suites_show(name: str) -> None:
    """A suite's file."""
    from e2gan_bench.resources import find_suite

    _, path = find_suite(name)
    console.print(Path(path).read_text())


@methods_app.command("list")
def methods_list(methods_dir: MethodDirs = None) -> None:
    """Method recipes."""
    cat = _catalog(None, methods_dir)
    t = Table(title="methods")
    for c in ("name", "arch", "init", "trainable", "data", "description"):
        t.add_column(c)
    for n in cat.recipe_names():
        r = cat.recipe(n)
        t.add_row(r.name, r.arch, r.init, r.trainable, r.data.selector, r.description)
    console.print(t)


def main(argv: list[str] | None = None) -> int:
    """Entry point: maps user errors to one line and exit code 2."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    interrupted = ("e2gan-bench: interrupted — finished runs are saved; run the same command again to resume")
    try:
        rc = app(args=argv, standalone_mode=False)  # returns the exit code of typer.Exit / Ctrl-C (130)
        if isinstance(rc, int) and rc:
            if rc == 130:
                err_console.print(interrupted, markup=False)
            return rc
    except UserError as exc:
        err_console.print(f"e2gan-bench: error: {exc.line()}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        err_console.print(interrupted, markup=False)
        return 130
    except click.exceptions.ClickException as exc:
        exc.show()
        return exc.exit_code
    return 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
