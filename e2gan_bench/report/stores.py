"""Reading results stores for reports: where a store is, which suites it holds, its records (an unreadable store is
one line naming the file), and the newest record of each run. Leaderboards, compare, merge and claims all read
stores through these."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from e2gan_bench.errors import UserError
from e2gan_bench.harness.store import ResultsStore
from e2gan_bench.record import RunRecord

Pairs = list[tuple[str, RunRecord]]  # (method name in the suite, its record)


def locate_store(path: Path, field: str = "STORE") -> Path:
    """The results folder at ``path`` (a folder holding ``results.sqlite``, or that file): UserError otherwise."""
    if not path.exists():
        raise UserError("not found", field=field, value=str(path))
    if path.is_file() and path.name == "results.sqlite":
        return path.parent
    if not (path / "results.sqlite").is_file():
        raise UserError("not a results folder of `e2gan-bench run` (no results.sqlite)", field=field, value=str(path))
    return path


def store_suites(db: Path) -> list[str]:
    """The suites a store holds runs of (none when it cannot be read)."""
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            return [r[0] for r in con.execute("SELECT DISTINCT suite FROM suite_runs ORDER BY suite")]
    except sqlite3.Error:
        return []


def read_records(root: Path, suite: str | None = None) -> Pairs:
    """The store's records (of one suite, or all), read-only; an unreadable store is a one-line UserError."""
    store = ResultsStore(root, readonly=True)  # reports never write into what they read
    try:
        return store.records(suite)
    except (sqlite3.Error, ValueError) as exc:
        raise UserError(f"unreadable results store ({type(exc).__name__}: {exc})", file=str(store.db)) from None


def latest(pairs: Pairs) -> tuple[Pairs, int]:
    """The newest record per (method, concept, seed) (records come oldest first), and how many were dropped."""
    keep: dict[tuple[str, str, int], tuple[str, RunRecord]] = {}
    for m, r in pairs:
        keep[(m, r.concept, r.seed)] = (m, r)
    return list(keep.values()), len(pairs) - len(keep)
