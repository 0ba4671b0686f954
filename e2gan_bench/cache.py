"""One disk cache for everything recomputable, and the atomic writes every file of the project goes through.

Policy (see docs/architecture.md):

* **Writes are atomic.** A file is written under a temporary name in its destination folder, flushed, then
  renamed into place; a folder is built under a temporary name and renamed. A reader never sees half a file,
  and an interrupted write leaves only a dot-named temporary that the next run removes.
* **A cache entry that cannot be read is a miss.** Truncated, corrupt or of the wrong format: it is deleted,
  one warning names it, and the caller recomputes and rewrites it. A cache never fails a run.
* **Artifacts are not caches.** What other results depend on (a run's adapter or generator, the base model
  that adapters are deltas of) or what the user wrote (the weight registry) uses the same atomic writes, but
  an unreadable one is a one-line error (exit 2), never silently replaced.
* **Temporaries name their owner** (process id and host): :func:`remove_temporaries` removes only those of
  processes that are gone, so two processes can share one output folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import numpy as np

T = TypeVar("T")

log = logging.getLogger("e2gan_bench.cache")


def default_home() -> Path:
    """The per-user folder of e2gan-bench (weight registry, caches outside a results folder):
    ``$E2GAN_BENCH_HOME``, else ``$XDG_CACHE_HOME/e2gan-bench``, else ``~/.cache/e2gan-bench``."""
    if os.environ.get("E2GAN_BENCH_HOME"):
        return Path(os.environ["E2GAN_BENCH_HOME"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "e2gan-bench"


# ------------------------------------------------------------------------------------------ owners


def host_id() -> str:
    """A short, file-name-safe id of this machine."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def owner_tag() -> str:
    """``<pid>-<host id>``: which process on which machine made a temporary (or holds a lease)."""
    return f"{os.getpid()}-{host_id()}"


def pid_alive(pid: int, since: float | None = None) -> bool:
    """Whether process ``pid`` of this machine is running — and, given ``since`` (a time it was known to run),
    started no later than that (a pid reused by a newer process is not the same owner)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return since is None or proc.create_time() <= since + 1.0
    except psutil.AccessDenied:  # another user's process: it runs, and cannot be told apart
        return True
    except (psutil.NoSuchProcess, ValueError):
        return False


_TAGGED = re.compile(r"\.(\d+)-([0-9a-f]{8})\.[^.]+(\.tmp)?$")

#: A temporary of another machine (whose processes cannot be checked) is left alone for this long.
FOREIGN_TEMPORARY_SECONDS = 7 * 24 * 3600


def owner_gone(p: Path, legacy: bool = True) -> bool:
    """Whether the process that made temporary ``p`` is gone. Untagged dot-names are temporaries of an older version
    (gone) with ``legacy``, else not temporaries at all (a user's ``.gitignore``: never removed)."""
    m = _TAGGED.search(p.name)
    if m is None:
        return legacy
    try:
        made = p.lstat().st_mtime
    except OSError:
        return False  # already gone
    if m.group(2) != host_id():
        return time.time() - made > FOREIGN_TEMPORARY_SECONDS
    pid = int(m.group(1))
    if pid == os.getpid():
        return False
    return not pid_alive(pid, since=made)


# ------------------------------------------------------------------------------------------ atomic writes


def atomic_write(path: Path | str, write: Callable[[BinaryIO], None]) -> Path:
    """Write a file through ``write(binary file object)`` under a temporary name, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{owner_tag()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # disk full, read-only, …: name the file being written, not its temporary
        Path(tmp).unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: Path | str, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_text(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"


def write_json(path: Path | str, obj: Any) -> Path:
    return atomic_write_text(path, json_text(obj))


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def temp_dir_for(path: Path | str) -> Path:
    """A new empty dot-named folder beside ``path`` (named after its owner), to be moved there with
    :func:`move_into_place`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.{owner_tag()}."))


def move_into_place(tmp: Path, path: Path | str, between: Callable[[], None] | None = None) -> None:
    """Replace ``path`` (if any) by the folder ``tmp`` (from :func:`temp_dir_for`).

    An existing ``path`` is first renamed to a temporary and deleted afterwards, so at every moment ``path`` is
    either the old folder whole, absent, or the new folder whole — never half deleted. A process killed while it is
    absent leaves the old folder under a temporary name beside it (``.<name>.<owner>.…``): whoever owns the folder's
    meaning puts it back (:meth:`e2gan_bench.harness.store.ResultsStore.clean_staging`). ``between`` runs in that
    moment (the crash tests stop the process there)."""
    path = Path(path)
    old = None
    if path.exists():
        old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.{owner_tag()}."))
        os.replace(path, old)  # a rename onto the empty folder just made
        if between is not None:
            between()
    tmp.rename(path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_dir(path: Path | str) -> Iterator[Path]:
    """Build a folder under a temporary (dot-prefixed) name; when the block succeeds it replaces ``path`` in one
    rename. On error or interruption the temporary folder is removed and ``path`` is left as it was."""
    tmp = temp_dir_for(path)
    try:
        yield tmp
        move_into_place(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def remove_temporaries(folder: Path | str, *, recursive: bool = False, legacy: bool = True) -> list[Path]:
    """Delete the dot-named temporaries that interrupted :func:`atomic_dir` / :func:`atomic_write` calls left in
    ``folder`` (and its sub-folders with ``recursive``) — only those whose owner process is gone, never another
    running process's. ``legacy``: any dot-name counts (folders that hold nothing else: ``runs/``,
    ``artifacts/``); otherwise only owner-tagged names. Returns what was removed."""
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            if not owner_gone(p, legacy):
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
        elif recursive and p.is_dir() and not p.is_symlink():
            removed += remove_temporaries(p, recursive=True, legacy=legacy)
    return removed


# ------------------------------------------------------------------------------------------------ cache


class DiskCache:
    """Entries ``root/<namespace>/<key><suffix>``; ``root=None`` disables the cache (every lookup misses).

    ``get`` returns ``None`` on a miss; an unreadable entry is deleted, logged once and reported as a miss.
    """

    def __init__(self, root: Path | str | None, namespace: str, suffix: str) -> None:
        self.dir = None if root is None else Path(root) / namespace
        self.suffix = suffix

    def path(self, key: str) -> Path:
        if self.dir is None:
            raise ValueError("this cache is disabled (no folder)")
        return self.dir / f"{key}{self.suffix}"

    def get(self, key: str, read: Callable[[Path], T]) -> T | None:
        if self.dir is None:
            return None
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            return read(p)
        except Exception as exc:  # any failure to read is a corrupt entry: one policy for every cache
            log.warning("cache entry %s is unreadable (%s: %s); deleted, recomputing", p, type(exc).__name__,
                        str(exc).splitlines()[0] if str(exc) else "")
            p.unlink(missing_ok=True)
            return None

    def put(self, key: str, data: bytes) -> None:
        """Store an entry; a failed write (disk full, read-only folder) is a warning, never an error."""
        if self.dir is None:
            return
        try:
            atomic_write_bytes(self.path(key), data)
        except OSError as exc:
            log.warning("cannot write cache entry %s (%s); going on without it", self.path(key),
                        exc.strerror or type(exc).__name__)

    def get_or_compute(self, key: str, compute: Callable[[], T], read: Callable[[Path], T],
                       dump: Callable[[T], bytes]) -> T:
        hit = self.get(key, read)
        if hit is not None:
            return hit
        value = compute()
        self.put(key, dump(value))
        return value


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_npz(names: tuple[str, ...], shapes: dict[str, tuple[int, ...]] | None = None,
             dtype: Any = None, optional: tuple[str, ...] = ()) -> Callable[[Path], dict[str, np.ndarray]]:
    """A reader of the named arrays of an ``.npz`` entry. Missing names — and, when given, arrays of another
    shape or dtype than expected — make the entry corrupt. ``optional`` names are read as they are when present
    (e.g. an entry's provenance, which older entries lack), unchecked."""

    def read(path: Path) -> dict[str, np.ndarray]:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in names}
            extra = {k: z[k] for k in optional if k in z.files}
        for k, a in out.items():
            want = (shapes or {}).get(k)
            if want is not None and a.shape != tuple(want):
                raise ValueError(f"array '{k}' has shape {a.shape}, expected {tuple(want)}")
            if dtype is not None and a.dtype != np.dtype(dtype):
                raise ValueError(f"array '{k}' has dtype {a.dtype}, expected {np.dtype(dtype)}")
        return {**out, **extra}

    return read
