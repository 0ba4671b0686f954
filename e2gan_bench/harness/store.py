"""Results store: SQLite (WAL) index of run records, a folder per run, and a folder per trained artifact.

* ``OUT/artifacts/<training key>/``: what training left (weights a concept must keep, ``training.json`` with the
  training measurements, ``config.json``, ``curve.csv``) — shared by every run that evaluates the same training.
* ``OUT/runs/<run key>/``: one evaluation of it (``record.json``, ``config.json``, ``samples.png``), or the
  configuration and reason of a run that failed.

Commit order — nothing that looks complete is ever half-written:

* an artifact folder is built under a temporary name and renamed into place (:func:`e2gan_bench.cache.atomic_dir`):
  the rename is its commit;
* a run folder is built the same way and renamed into place, then its record is inserted into the database:
  **the database row is the run's commit point**. A run folder without a row (a process stopped between the two)
  is garbage, removed by the next :meth:`ResultsStore.clean_staging`; a row always has its whole folder — except
  while a re-evaluation swaps a folder that has a row (old renamed away, new not yet in place): a process killed
  then leaves the row's folder beside it under a temporary name, and the next :meth:`ResultsStore.clean_staging`
  (every command that opens the store to compute) renames it back before anything else.

Several processes may share one store: each run, training and base model is **leased** (table ``leases``: owner
process and host, heartbeat) before it is computed, so two ``run`` commands on one folder split the work and never
compute the same thing twice. A lease of a process that is gone (same host: its pid no longer runs; another host:
no heartbeat for :data:`STALE_SECONDS`) is taken over. Temporaries name their owner, and cleaning removes only
those of processes that are gone. (Stores written before leases were so named hold a ``claims`` table instead: leases
are transient, so it is simply left unused.)
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from safetensors import safe_open

from e2gan_bench.cache import (
    atomic_dir,
    atomic_write_text,
    host_id,
    move_into_place,
    owner_gone,
    owner_tag,
    pid_alive,
    remove_temporaries,
    temp_dir_for,
)
from e2gan_bench.errors import CheckpointError, UserError
from e2gan_bench.faults import fault_point
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
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    started REAL NOT NULL,
    heartbeat REAL NOT NULL
);
"""

TRAINING = "training.json"

#: A lease of another machine without a heartbeat for this long is taken over.
STALE_SECONDS = 600.0
#: How often a process refreshes the heartbeat of the leases it holds.
HEARTBEAT_SECONDS = 20.0
#: How long to wait between two looks at a lease another process holds.
POLL_SECONDS = 1.0


def _process_started() -> float:
    import psutil

    return psutil.Process().create_time()


class ResultsStore:
    """``readonly=True`` opens an existing store without writing anything (no schema, no journal files, no
    folders): what ``compare`` and ``report`` use, so a read-only store can be compared."""

    def __init__(self, root: Path, *, readonly: bool = False) -> None:
        self.root = Path(root)
        self.db = self.root / "results.sqlite"
        self.readonly = readonly
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._beat: tuple[threading.Thread, threading.Event] | None = None
        if readonly:
            if not self.db.is_file():
                raise UserError("no results store here (run `e2gan-bench run` first)", file=str(self.db))
            try:
                with closing(self._connect()) as con:
                    con.execute("SELECT 1 FROM runs LIMIT 1").fetchall()
            except sqlite3.DatabaseError as exc:
                raise UserError(f"not a results database ({exc})", file=str(self.db)) from None
            return
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            with closing(self._connect()) as con, con:
                con.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise UserError(f"not a results database ({exc})", file=str(self.db)) from None

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            return self._connect_readonly()
        con = sqlite3.connect(self.db, timeout=60)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        return con

    def _connect_readonly(self) -> sqlite3.Connection:
        """A connection that creates no file. A WAL database whose log is gone (no writer since it was last closed)
        is read as an immutable file — opened read-only, SQLite would create its ``-wal`` and ``-shm`` files;
        with a log present (a writer may be at work) the log is read through a read-only connection."""
        wal = self.db.with_name(self.db.name + "-wal")
        try:
            with open(self.db, "rb") as f:
                header = f.read(20)
        except OSError as exc:
            raise UserError(f"cannot read the results database ({exc.strerror})", file=str(self.db)) from None
        is_wal = len(header) == 20 and header[18] == 2  # file format: 2 = write-ahead log
        if is_wal and not wal.exists():
            return sqlite3.connect(f"file:{self.db}?mode=ro&immutable=1", uri=True, timeout=60)
        try:
            con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=60)
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return con
        except sqlite3.OperationalError:  # a log we may not read through (a read-only folder): the file as it is
            return sqlite3.connect(f"file:{self.db}?mode=ro&immutable=1", uri=True, timeout=60)

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
            fault_point("artifact-commit")

    def training(self, train_key: str) -> dict[str, Any]:
        """The training measurements stored with an artifact (CheckpointError when missing or unreadable)."""
        path = self.artifact_dir(train_key) / TRAINING
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"missing or unreadable training record ({type(exc).__name__}); run the suite "
                                  "again to retrain it", file=str(path)) from None

    def check_artifact(self, train_key: str) -> None:
        """A stored artifact's training record and weights files are readable (their headers): a damaged artifact
        is a one-line error before anything is computed, not after other runs were re-evaluated."""
        summary = self.training(train_key)
        for name in summary.get("artifacts", []):
            path = self.artifact_dir(train_key) / name
            try:
                with safe_open(str(path), framework="pt") as f:
                    f.keys()
            except Exception as exc:  # missing, truncated, not safetensors
                first = " ".join(str(exc).split())[:120]
                raise CheckpointError(f"unreadable run artifact ({type(exc).__name__}: {first}); delete the folder "
                                      "to train it again", file=str(path)) from None

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

    def keys(self) -> set[str]:
        with closing(self._connect()) as con:
            return {r[0] for r in con.execute("SELECT key FROM runs")}

    def staging(self, key: str) -> Path:
        """A temporary run folder; :meth:`commit` moves it into place."""
        return temp_dir_for(self.run_dir(key))

    def commit(self, record: RunRecord, staged: Path, suite: str) -> None:
        """Move the staged folder into place, then index the record — the row is the commit point (see the module
        docstring). A record with the same key (an earlier evaluation, or a failure) is replaced."""
        atomic_write_text(staged / "record.json", record.model_dump_json(indent=2))
        fault_point("commit-rename")
        move_into_place(staged, self.run_dir(record.key), between=lambda: fault_point("commit-swap"))
        fault_point("commit-db")
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

    def clean_staging(self) -> list[Path]:
        """Remove what interrupted processes left: their temporaries (never those of a process still running), and
        run folders without a database row (a process stopped between the rename and the insert) that no running
        process holds a lease on. Returns what was removed. First, a run folder moved away by a re-evaluation that was
        killed before the new one took its place is put back (:meth:`_restore_moved_away`)."""
        self._restore_moved_away()
        self._drop_dead_leases()
        removed = remove_temporaries(self.root / "runs") + remove_temporaries(self.root / "artifacts")
        removed += remove_temporaries(self.root, recursive=True, legacy=False)
        runs = self.root / "runs"
        if runs.is_dir():
            keys = self.keys()
            for d in runs.iterdir():
                if d.name.startswith(".") or d.name in keys or not d.is_dir():
                    continue
                if self.holder(f"run:{d.name}") is None:
                    shutil.rmtree(d, ignore_errors=True)
                    removed.append(d)
        return removed

    def _drop_dead_leases(self) -> int:
        """Delete the leases of processes that are gone (a killed process cannot release its own; a later command
        that never needs the same name would otherwise leave the row forever). Returns how many."""
        with closing(self._connect()) as con:
            rows = con.execute("SELECT name, owner, pid, host, started, heartbeat FROM leases").fetchall()
        dead = [(name, owner) for name, owner, *rest in rows if not self._owner_alive(*rest)]
        if dead:
            with closing(self._connect()) as con, con:
                con.executemany("DELETE FROM leases WHERE name = ? AND owner = ?", dead)
        return len(dead)

    def _restore_moved_away(self) -> list[Path]:
        """Rows whose run folder is absent because a process replacing it (re-evaluation) was killed between its two
        renames (:func:`e2gan_bench.cache.move_into_place`): the previous folder waits beside it under a temporary
        name, its ``record.json`` the row's own record; rename it back. The new folder, never committed, is left to
        the temporaries' cleanup. Returns the folders restored."""
        runs = self.root / "runs"
        if not runs.is_dir():
            return []
        restored = []
        absent = [k for k in self.keys() if not (runs / k).exists()]  # usually none: no record is read then
        for key in absent:
            want = self.get(key)
            if want is None:
                continue
            for tmp in sorted(runs.glob(f".{key}.*")):
                if not tmp.is_dir() or not owner_gone(tmp):
                    continue
                try:
                    rec = RunRecord.model_validate_json((tmp / "record.json").read_text())
                except (OSError, ValueError):
                    continue
                if rec.key == want.key and rec.created == want.created and rec.eval_key == want.eval_key:
                    tmp.rename(runs / key)
                    restored.append(runs / key)
                    break
        return restored

    # ------------------------------------------------------------------------------------------ leases

    def _owner_alive(self, pid: int, host: str, started: float, heartbeat: float) -> bool:
        if host != host_id():
            return time.time() - heartbeat < STALE_SECONDS
        return pid_alive(pid, since=started)

    def holder(self, name: str) -> str | None:
        """The live owner (``pid-host``) of lease ``name``, or ``None`` when it is free (or held by a process that
        is gone)."""
        with closing(self._connect()) as con:
            row = con.execute("SELECT owner, pid, host, started, heartbeat FROM leases WHERE name = ?",
                              (name,)).fetchone()
        if row is None or not self._owner_alive(*row[1:]):
            return None
        return row[0]

    def try_lease(self, name: str) -> bool:
        """Take lease ``name`` for this process unless a live process holds it (a dead owner's lease is taken over)."""
        me = owner_tag()
        now = time.time()
        with closing(self._connect()) as con:
            con.isolation_level = None
            con.execute("BEGIN IMMEDIATE")
            try:
                row = con.execute("SELECT owner, pid, host, started, heartbeat FROM leases WHERE name = ?",
                                  (name,)).fetchone()
                if row is not None and row[0] != me and self._owner_alive(*row[1:]):
                    con.execute("ROLLBACK")
                    return False
                con.execute("INSERT OR REPLACE INTO leases(name, owner, pid, host, started, heartbeat) "
                            "VALUES (?,?,?,?,?,?)", (name, me, os.getpid(), host_id(), _process_started(), now))
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
        with self._lock:
            self._held.add(name)
        self._start_heartbeat()
        return True

    def held_elsewhere(self, name: str) -> bool:
        """Whether a live process other than this one holds lease ``name``."""
        with closing(self._connect()) as con:
            row = con.execute("SELECT owner, pid, host, started, heartbeat FROM leases WHERE name = ?",
                              (name,)).fetchone()
        return row is not None and row[0] != owner_tag() and self._owner_alive(*row[1:])

    def release(self, name: str) -> None:
        with self._lock:
            self._held.discard(name)
            if not self._held and self._beat is not None:  # nothing held: the heartbeat stops
                self._beat[1].set()
                self._beat = None
        with closing(self._connect()) as con, con:
            con.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner_tag()))

    @contextmanager
    def lease(self, name: str) -> Iterator[None]:
        """Hold lease ``name`` for the block, waiting while another live process holds it."""
        while not self.try_lease(name):
            time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            self.release(name)

    def _start_heartbeat(self) -> None:
        with self._lock:
            if self._beat is not None:
                return
            stop = threading.Event()
            thread = threading.Thread(target=self._heartbeat, args=(stop,), name="e2gan-bench-leases", daemon=True)
            self._beat = (thread, stop)
        thread.start()

    def _heartbeat(self, stop: threading.Event) -> None:
        """Refresh the heartbeat of the leases this process holds (what tells other hosts it is alive)."""
        while not stop.wait(HEARTBEAT_SECONDS):
            with self._lock:
                held = sorted(self._held)
            if not held:
                continue
            try:
                with closing(self._connect()) as con, con:
                    con.executemany("UPDATE leases SET heartbeat = ? WHERE name = ? AND owner = ?",
                                    [(time.time(), n, owner_tag()) for n in held])
            except sqlite3.Error:  # a busy database: the next beat will do
                continue
