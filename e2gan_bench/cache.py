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
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import numpy as np

T = TypeVar("T")

log = logging.getLogger("e2gan_bench.cache")


# ------------------------------------------------------------------------------------------ atomic writes


def atomic_write(path: Path | str, write: Callable[[BinaryIO], None]) -> Path:
    """Write a file through ``write(binary file object)`` under a temporary name, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
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
    """A new empty dot-named folder beside ``path``, to be moved there with :func:`move_into_place`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))


def move_into_place(tmp: Path, path: Path | str) -> None:
    """Replace ``path`` (if any) by the folder ``tmp`` (from :func:`temp_dir_for`) in one rename."""
    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)


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


def remove_temporaries(folder: Path | str) -> None:
    """Delete the dot-named temporaries that an interrupted :func:`atomic_dir` / :func:`atomic_write` left."""
    folder = Path(folder)
    if folder.is_dir():
        for p in folder.glob(".*"):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


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
        if self.dir is not None:
            atomic_write_bytes(self.path(key), data)

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


def read_npz(names: tuple[str, ...]) -> Callable[[Path], dict[str, np.ndarray]]:
    """A reader of the named arrays of an ``.npz`` entry (missing names make the entry corrupt)."""

    def read(path: Path) -> dict[str, np.ndarray]:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in names}

    return read
