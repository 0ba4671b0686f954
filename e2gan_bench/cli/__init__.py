"""``e2gan-bench``: one command with subcommands, one module per subcommand group.

Bad input (malformed file, unknown name, missing folder, corrupt checkpoint) prints one line naming
file, field and value, and exits 2. Ctrl-C stops cleanly (exit 130); re-running resumes.

The command modules import their implementation inside each command: the CLI starts (and ``--help`` answers)
without importing torch and the other heavy libraries.
"""

from __future__ import annotations

import os
import sys

import click

from e2gan_bench.cli import analyze, catalog, compare, doctor, latency, run  # noqa: F401  (they add commands)
from e2gan_bench.cli.app import app, err_console
from e2gan_bench.errors import UserError


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
