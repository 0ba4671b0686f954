"""The Typer application, its sub-command groups, consoles and shared options (the subcommand modules add
their commands to these)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from e2gan_bench.errors import UserError
from e2gan_bench.resources import Catalog

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Benchmark efficient training of efficient GANs (E2GAN) for image-to-image translation.")
concepts_app = typer.Typer(no_args_is_help=True, help="The concept bank.")
suites_app = typer.Typer(no_args_is_help=True, help="Built-in suites.")
methods_app = typer.Typer(no_args_is_help=True, help="Methods (E2GAN and baselines).")
metrics_app = typer.Typer(no_args_is_help=True, help="Registered metrics (built-in and plugins).")
app.add_typer(concepts_app, name="concepts")
app.add_typer(suites_app, name="suites")
app.add_typer(methods_app, name="methods")
app.add_typer(metrics_app, name="metrics")

console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 400)

ConceptDirs = Annotated[Optional[list[Path]], typer.Option("--concepts-dir", help="Extra folder of concept YAMLs.")]
MethodDirs = Annotated[Optional[list[Path]], typer.Option(
    "--methods-dir", help="Extra folder of methods: method YAMLs in it or in its subfolders (a method is a folder).")]


def open_catalog(concept_dirs: list[Path] | None = None, method_dirs: list[Path] | None = None) -> Catalog:
    for d in (concept_dirs or []) + (method_dirs or []):
        if not d.is_dir():
            raise UserError("folder not found", field="--concepts-dir/--methods-dir", value=str(d))
    return Catalog(concept_dirs, method_dirs)
