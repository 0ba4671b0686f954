"""`concepts`, `suites` and `methods`: the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from e2gan_bench.cli import ConceptDirs, MethodDirs, _catalog, app, concepts_app, console, methods_app, suites_app
from e2gan_bench.errors import UserError


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




rank_search_app = typer.Typer(no_args_is_help=True, help="Rank-search strategies (plugins).")
app.add_typer(rank_search_app, name="rank-search")


@rank_search_app.command("list")
def rank_search_list() -> None:
    """Registered rank searches (built-in, entry points of group e2gan_bench.rank_search)."""
    from e2gan_bench.training.rank_search import RANK_SEARCHES

    t = Table(title="rank searches")
    t.add_column("name")
    t.add_column("what it does")
    for n in RANK_SEARCHES.names():
        doc = (RANK_SEARCHES.get(n).__doc__ or "").strip().split("\n\n")[0]
        t.add_row(n, " ".join(doc.split()))
    console.print(t)
    console.print("Use a plugin from your own code with `--rank-search package.module:function` or the "
                  "`lora.search` field of a recipe.")
