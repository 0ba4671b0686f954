"""Small shared helpers: hashing, atomic writes, JSON."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def content_key(*parts: Any, n: int = 16) -> str:
    """Hash of a JSON-serialisable description: the cache / run key."""
    return hashlib.sha256(canonical_json(parts).encode()).hexdigest()[:n]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


_PKG = Path(__file__).resolve().parent
_code_cache: dict[tuple[str, ...], str] = {}


def code_version(*parts: str) -> str:
    """Hash of the source of the named sub-packages / modules (e.g. ``"data"``, ``"models"``).

    Run and cache keys include it, so a change in the code a result depends on recomputes it,
    while a change elsewhere (reports, CLI) keeps every cached result.
    """
    if parts not in _code_cache:
        h = hashlib.sha256()
        for part in parts:
            p = _PKG / part
            files = sorted(p.rglob("*.py")) if p.is_dir() else [p.with_suffix(".py")]
            for f in files:
                h.update(f.relative_to(_PKG).as_posix().encode())
                h.update(f.read_bytes())
        _code_cache[parts] = h.hexdigest()[:12]
    return _code_cache[parts]
