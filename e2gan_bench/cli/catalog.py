"""`concepts`, `suites`, `methods`, `metrics` and `rank-search`: what there is to run and measure."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from e2gan_bench.cache import atomic_write
from e2gan_bench.cli.app import (
    ConceptDirs,
    MethodDirs,
    app,
    concepts_app,
    console,
    methods_app,
    metrics_app,
    open_catalog,
    suites_app,
)
from e2gan_bench.errors import UserError
from e2gan_bench.resources import find_suite, suite_names


@concepts_app.command("list")
def concepts_list(
    category: Annotated[Optional[str], typer.Option(help="Only this category.")] = None,
    concepts_dir: ConceptDirs = None,
) -> None:
    """The concept bank: name, category, prompt, teacher."""
    cat = open_catalog(concepts_dir)
    t = Table(title="concepts")
    for c in ("name", "category", "prompt", "teacher", "origin"):
        t.add_column(c)
    n = 0
    for name in cat.concept_names():
        c = cat.concept(name)
        if category and c.category != category:
            continue
        ops = c.teacher.params.get("ops")
        teacher = c.teacher.kind + (": " + " → ".join(o.get("op", "?") for o in ops) if ops else "")
        t.add_row(c.name, c.category, c.prompt, teacher, c.origin + (f" ({c.paper_name})" if c.paper_name else ""))
        n += 1
    console.print(t)
    console.print(f"{n} concepts")


@concepts_app.command("preview")
def concepts_preview(
    name: str,
    dest: Annotated[Path, typer.Option(help="PNG to write.")] = Path("preview.png"),
    n: Annotated[int, typer.Option(help="Pairs to show.", min=1, max=64)] = 6,
    resolution: Annotated[int, typer.Option(help="Crop size in pixels.", min=16, max=1024)] = 128,
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
    cat = open_catalog(concepts_dir)
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
    atomic_write(dest, lambda f: Image.fromarray(grid).save(f, format="PNG"))
    console.print(f"{dest}: {len(src)} pairs of '{c.name}' ({c.prompt}) at {s.resolution}px")


@concepts_app.command("show")
def concepts_show(name: str, concepts_dir: ConceptDirs = None) -> None:
    """The concept's file."""
    cat = open_catalog(concepts_dir)
    cat.concept(name, field="NAME")
    console.print(Path(cat.concept_file(name)).read_text())


@suites_app.command("list")
def suites_list() -> None:
    """Built-in suites."""
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
    _, path = find_suite(name)
    console.print(Path(path).read_text())


@methods_app.command("list")
def methods_list(methods_dir: MethodDirs = None) -> None:
    """Methods: E2GAN and the baselines (built-in method folders and ``--methods-dir`` folders), each with the folder
    that holds it (its preset and card)."""
    import e2gan_bench

    cat = open_catalog(None, methods_dir)
    t = Table(title="methods")
    for c in ("name", "folder", "arch", "init", "trainable", "data", "description"):
        t.add_column(c)
    root = Path(e2gan_bench.__file__).resolve().parent.parent
    for n in cat.method_names():
        m, folder = cat.method(n), cat.method_files[n].resolve().parent
        shown = folder.relative_to(root) if folder.is_relative_to(root) else folder
        t.add_row(m.name, str(shown), m.arch, m.init, m.trainable, m.data.selector, m.description)
    console.print(t)


@metrics_app.command("list")
def metrics_list(
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the README's metric table.")] = False,
) -> None:
    """Every registered metric: direction, stage, default gate and why (built-ins and entry-point plugins)."""
    from e2gan_bench.report.compare.gates import metric_table

    if markdown:
        typer.echo(metric_table())
        return
    from e2gan_bench.metrics import all_metrics

    t = Table(title="metrics")
    for c in ("name", "better", "stage", "default gate", "what"):
        t.add_column(c, overflow="fold")
    for m in all_metrics():
        t.add_row(m.name, "higher" if m.higher_is_better else "lower", m.stage, m.gate.describe(), m.what)
    console.print(t)
    console.print("Add one with a Metric subclass in the entry-point group e2gan_bench.metric (see the README).")




rank_search_app = typer.Typer(no_args_is_help=True, help="Rank-search strategies (plugins).")
app.add_typer(rank_search_app, name="rank-search")


@rank_search_app.command("list")
def rank_search_list() -> None:
    """Registered rank searches (built-in, entry points of group e2gan_bench.rank_search), with their parameters."""
    from e2gan_bench.methods.e2gan.rank_search import RANK_SEARCHES
    from e2gan_bench.plugins import params_model

    t = Table(title="rank searches")
    for c in ("name", "parameters (lora.search_params)", "what it does"):
        t.add_column(c)
    for n in RANK_SEARCHES.names():
        search = RANK_SEARCHES.get(n)
        doc = (search.__doc__ or "").strip().split("\n\n")[0]
        params = ", ".join(f"{k}={f.default!r}" for k, f in params_model(search).model_fields.items()) or "—"
        t.add_row(n, params, " ".join(doc.split()))
    console.print(t)
    console.print("Use a plugin from your own code with `--rank-search package.module:function` or the "
                  "`lora.search` field of a method.")
