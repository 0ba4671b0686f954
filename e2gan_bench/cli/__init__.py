"""``e2gan-bench``: one command with subcommands, one module per subcommand group.

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



# subcommand modules register themselves on ``app`` when imported
from e2gan_bench.cli import analyze as _analyze_cmds  # noqa: E402,F401
from e2gan_bench.cli import catalog as _catalog_cmds  # noqa: E402,F401
from e2gan_bench.cli import compare as _compare_cmds  # noqa: E402,F401
from e2gan_bench.cli import doctor as _doctor_cmds  # noqa: E402,F401
from e2gan_bench.cli import latency as _latency_cmds  # noqa: E402,F401
from e2gan_bench.cli import run as _run_cmds  # noqa: E402,F401


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
