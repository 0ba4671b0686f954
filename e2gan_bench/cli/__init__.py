"""``e2gan-bench``: one command with subcommands, one module per subcommand group.

Bad input (malformed file, unknown name, missing folder, corrupt checkpoint) prints one line naming
file, field and value, and exits 2. Ctrl-C stops cleanly (exit 130); re-running resumes.

The command modules import their implementation inside each command: the CLI starts (and ``--help`` answers)
without importing torch and the other heavy libraries.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import warnings
from types import ModuleType

import click
import typer

from e2gan_bench.cli import (  # noqa: F401  (they add commands)
    analyze,
    catalog,
    claims,
    compare,
    doctor,
    gate,
    latency,
    leaderboard,
    run,
    targets,
    tune,
)
from e2gan_bench.cli.app import app, console, err_console
from e2gan_bench.errors import UserError


def _click_modules() -> tuple[ModuleType, ...]:
    """click's exception module and the copy Typer vendors (``typer._click``, Typer ≥ 0.22): Typer raises its own
    copies of click's classes, which ``except click.ClickException`` does not catch."""
    mods: list[ModuleType] = [click.exceptions]
    try:
        from typer._click import exceptions as vendored
    except ImportError:  # a Typer that uses click itself
        return tuple(mods)
    return (*mods, vendored)


_CLICK = _click_modules()
_NO_ARGS = tuple(getattr(m, "NoArgsIsHelpError", ()) or m.UsageError for m in _CLICK)
_CLICK_ERRORS = tuple(m.ClickException for m in _CLICK)
_EXITS = (typer.Exit, *(m.Exit for m in _CLICK if hasattr(m, "Exit")))
_ABORTS = (typer.Abort, KeyboardInterrupt, *(m.Abort for m in _CLICK if hasattr(m, "Abort")))


def _error(line: str) -> int:
    err_console.print(f"e2gan-bench: error: {line}", markup=False, highlight=False, soft_wrap=True)
    return 2


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _given(exc: Exception, argv: list[str]) -> str | None:
    """The value the user gave for the option a click error is about (click's messages do not always say)."""
    param = getattr(exc, "param", None)
    for opt in getattr(param, "opts", None) or ():
        for i, a in enumerate(argv):
            if a == opt and i + 1 < len(argv):
                return argv[i + 1]
            if a.startswith(opt + "="):
                return a[len(opt) + 1:]
    return None


def _click_line(exc: Exception, argv: list[str]) -> str:
    """A click usage error as one line: the command, the problem (and the value given), where to look."""
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else "e2gan-bench"
    given = _given(exc, argv)
    value = f" (value {given!r})" if given is not None else ""
    return f"{where}: {_one_line(exc.format_message())}{value} (see `{where} --help`)"


def _os_line(exc: OSError) -> str:
    """A failed file operation (disk full, permission denied, a folder that vanished) as one line naming the file."""
    names = [str(n) for n in (exc.filename, getattr(exc, "filename2", None)) if n]
    what = exc.strerror or _one_line(str(exc)) or type(exc).__name__
    return f"{' -> '.join(names)}: {what}" if names else what


def main(argv: list[str] | None = None) -> int:
    """Entry point: maps user errors to one line and exit code 2. Libraries' warnings are not printed (stderr is for
    our own one-line messages) unless asked for with ``python -W`` / ``PYTHONWARNINGS``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    with warnings.catch_warnings():
        if not sys.warnoptions:
            warnings.simplefilter("ignore")
        return _main(list(sys.argv[1:] if argv is None else argv))


def _main(argv: list[str]) -> int:
    interrupted = ("e2gan-bench: interrupted — finished runs are saved; run the same command again to resume")
    try:
        # returns the exit code of typer.Exit / Ctrl-C (130)
        rc = app(args=argv, standalone_mode=False, prog_name="e2gan-bench")
        if isinstance(rc, int) and rc:
            if rc == 130:
                err_console.print(interrupted, markup=False)
            return rc
    except UserError as exc:
        return _error(exc.line())
    except _EXITS as exc:
        return exc.exit_code
    except _ABORTS:
        err_console.print(interrupted, markup=False)
        return 130
    except _NO_ARGS as exc:  # a bare group (`e2gan-bench`, `e2gan-bench concepts`): its help
        if getattr(exc, "ctx", None) is not None and type(exc).__name__ == "NoArgsIsHelpError":
            console.print(exc.ctx.get_help(), markup=False, highlight=False)
            return 0
        return _error(_click_line(exc, argv))
    except _CLICK_ERRORS as exc:  # a mistyped option, a missing argument, a bad value
        return _error(_click_line(exc, argv))
    except OSError as exc:
        return _error(_os_line(exc))
    except sqlite3.Error as exc:  # e.g. a results database locked by another process for too long
        return _error(f"results database: {_one_line(str(exc))} ({type(exc).__name__})")
    return 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
