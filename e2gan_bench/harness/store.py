"""Results store: SQLite (WAL) index of run records, a folder per run, and a folder per trained artifact.

* ``OUT/artifacts/<training key>/``: what training left (weights a concept must keep, ``training.json`` with the
  training measurements, ``config.json``, ``curve.csv``) — shared by every run that evaluates the same training.
* ``OUT/runs/<run key>/``: one evaluation of it (``record.json``, ``config.json``, ``samples.png``).

Both folders are written under a temporary name and renamed into place (:func:`e2gan_bench.cache.atomic_dir`),
then the record is indexed: an interrupted run leaves nothing behind, and a finished one is never recomputed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from e2gan_bench.cache import atomic_dir, move_into_place, remove_temporaries, temp_dir_for
from e2gan_bench.errors import CheckpointError, UserError
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

TRAINING = "training.json"


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

    # ------------------------------------------------------------------------------------------ artifacts

    def artifact_dir(self, train_key: str) -> Path:
        return self.root / "artifacts" / train_key

    def has_artifacts(self, train_key: str) -> bool:
        return (self.artifact_dir(train_key) / TRAINING).is_file()

    @contextmanager
    def new_artifacts(self, train_key: str) -> Iterator[Path]:
        """A folder to train into; it becomes ``artifacts/<train_key>`` when the block succeeds."""
        with atomic_dir(self.artifact_dir(train_key)) as tmp:
            yield tmp

    def training(self, train_key: str) -> dict[str, Any]:
        """The training measurements stored with an artifact (CheckpointError when missing or unreadable)."""
        path = self.artifact_dir(train_key) / TRAINING
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"missing or unreadable training record ({type(exc).__name__}); run the suite "
                                  "again to retrain it", file=str(path)) from None

    # ------------------------------------------------------------------------------------------ records

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
        """A temporary run folder; :meth:`commit` moves it into place."""
        return temp_dir_for(self.run_dir(key))

    def commit(self, record: RunRecord, staged: Path, suite: str) -> None:
        """Move the staged folder into place and index the record (atomic from the reader's view); a record with
        the same key (an earlier evaluation) is replaced."""
        (staged / "record.json").write_text(record.model_dump_json(indent=2))
        move_into_place(staged, self.run_dir(record.key))
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
        """Remove what interrupted runs left (dot-named temporaries)."""
        remove_temporaries(self.root / "runs")
        remove_temporaries(self.root / "artifacts")
