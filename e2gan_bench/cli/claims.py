"""`claims`: the paper's quantitative claims with verdicts computed from result stores (claims.md, claims.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from e2gan_bench.cache import atomic_write_text
from e2gan_bench.cli.app import app, console
from e2gan_bench.errors import UserError

_STYLE = {"holds": "green", "does not hold": "red", "not measured here": "dim"}


@app.command()
def claims(
    stores: Annotated[list[Path], typer.Argument(help="Results folders of `run` (each holding results.sqlite); "
                                                       "every suite in them is read.", show_default=False,
                                                       metavar="STORE")],
    dest: Annotated[Path, typer.Option(help="Folder for claims.md and claims.json.")] = Path("reports/claims"),
    latency: Annotated[Optional[list[Path]], typer.Option(
        "--latency", help="A paper-size latency file of `e2gan-bench latency --json` (repeatable; each file one "
        "replicate): decides the latency claim.")] = None,
) -> None:
    """The paper's claims (FID vs pix2pix, training time, FLOPs, parameters, latency, base model, rank search,
    LoRA vs full fine-tuning, minimal data), each with the paper's number, ours and a verdict: holds, does not hold
    or not measured here."""
    from e2gan_bench.report.claims import claims_table, to_json, to_markdown

    table = claims_table(stores, latency=latency)  # a missing or unreadable store fails before anything is written
    try:
        dest.mkdir(parents=True, exist_ok=True)
        atomic_write_text(dest / "claims.md", to_markdown(table))
        atomic_write_text(dest / "claims.json", to_json(table))
    except OSError as exc:
        raise UserError(f"cannot write ({exc.strerror or type(exc).__name__})", field="--dest", value=str(dest)) from None
    t = Table()
    for h in ("claim", "ours", "verdict", "suite"):
        t.add_column(h)
    for c in table["claims"]:
        for r in c["results"]:
            style = _STYLE.get(r["verdict"], "yellow")
            t.add_row(escape(c["id"]), escape(r["headline"] or "–"), f"[{style}]{escape(r['verdict'])}[/{style}]",
                      escape(r["suite"] or "–"))
    console.print(t)
    console.print(f"claims: {escape(str(dest / 'claims.md'))}, {escape(str(dest / 'claims.json'))}")
