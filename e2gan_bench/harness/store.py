"""Results store: SQLite (WAL) index + a folder per run (config, record, artifacts, samples, curve).

A run folder is written under a temporary name and renamed into place, then the record is
inserted; an interrupted run leaves nothing behind, and a finished one is never recomputed.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path

from e2gan_bench.errors import UserError
from e2gan_bench.record import RunRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    concept TEXT NOT NULL,
    method TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,
    record TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS suite_runs (
    suite TEXT NOT NULL,
    key TEXT NOT NULL,
    method TEXT NOT NULL,
    PRIMARY KEY (suite, key, method)
);
"""


class ResultsStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.db = self.root / "results.sqlite"
        try:
            with closing(self._connect()) as con, con:
                con.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise UserError(f"not a results database ({exc})", file=str(self.db)) from None

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.db, timeout=60)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        return con

    def run_dir(self, key: str) -> Path:
        return self.root / "runs" / key

    def get(self, key: str) -> RunRecord | None:
        with closing(self._connect()) as con:
            row = con.execute("SELECT record FROM runs WHERE key = ?", (key,)).fetchone()
        return None if row is None else RunRecord.model_validate_json(row[0])

    def has(self, key: str) -> bool:
        with closing(self._connect()) as con:
            return con.execute("SELECT 1 FROM runs WHERE key = ? AND status = 'ok'", (key,)).fetchone() is not None

    def staging(self, key: str) -> Path:
        (self.root / "runs").mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=self.root / "runs", prefix=f".{key}."))

    def commit(self, record: RunRecord, staged: Path, suite: str) -> None:
        """Move the staged folder into place and index the record (atomic from the reader's view)."""
        (staged / "record.json").write_text(record.model_dump_json(indent=2))
        final = self.run_dir(record.key)
        if final.exists():
            shutil.rmtree(final)
        staged.rename(final)
        with closing(self._connect()) as con, con:
            con.execute(
                "INSERT OR REPLACE INTO runs(key, concept, method, seed, status, record, created) VALUES (?,?,?,?,?,?,?)",
                (record.key, record.concept, record.method, record.seed, record.status, record.model_dump_json(),
                 record.created),
            )
            con.execute("INSERT OR IGNORE INTO suite_runs(suite, key, method) VALUES (?,?,?)",
                        (suite, record.key, record.method))

    def link(self, suite: str, key: str, method: str) -> None:
        with closing(self._connect()) as con, con:
            con.execute("INSERT OR IGNORE INTO suite_runs(suite, key, method) VALUES (?,?,?)", (suite, key, method))

    def records(self, suite: str | None = None) -> list[tuple[str, RunRecord]]:
        """(method label, record) pairs, for one suite or all."""
        with closing(self._connect()) as con:
            if suite is None:
                rows = con.execute("SELECT method, record FROM runs ORDER BY created").fetchall()
            else:
                rows = con.execute(
                    "SELECT s.method, r.record FROM suite_runs s JOIN runs r ON r.key = s.key WHERE s.suite = ? "
                    "ORDER BY r.created", (suite,)).fetchall()
        return [(m, RunRecord.model_validate_json(r)) for m, r in rows]

    def clean_staging(self) -> None:
        runs = self.root / "runs"
        if runs.is_dir():
            for p in runs.glob(".*"):
                shutil.rmtree(p, ignore_errors=True)


def read_record(path: Path) -> RunRecord:
    try:
        return RunRecord.model_validate(json.loads(Path(path).read_text()))
    except (OSError, ValueError) as exc:
        raise UserError(f"unreadable run record ({type(exc).__name__})", file=str(path)) from None
