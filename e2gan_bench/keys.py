"""Content keys: hashing of descriptions, files and code — what cache and run keys are built from."""

from __future__ import annotations

import ast
import hashlib
import json
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


_DOC_OWNERS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def code_fingerprint(source: str) -> str:
    """Hash of what a module's source *does*: its syntax tree without docstrings.

    Comments and formatting never reach the tree, and the docstrings of the module, its classes and its
    functions are dropped, so editing any of them leaves the fingerprint — and every key built on it — unchanged.
    Source that does not parse is hashed as text.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return hashlib.sha256(source.encode()).hexdigest()
    for node in ast.walk(tree):
        if isinstance(node, _DOC_OWNERS) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                node.body = node.body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


_PKG = Path(__file__).resolve().parent
_code_cache: dict[tuple[Path, tuple[str, ...]], str] = {}


def code_version(*parts: str, root: Path = _PKG) -> str:
    """Fingerprint of the code of the named sub-packages / modules (e.g. ``"data"``, ``"training/base"``).

    Keys include it, so a change in the code a result depends on recomputes it, while a change elsewhere
    (reports, CLI) — or a change of docstrings, comments or formatting anywhere (:func:`code_fingerprint`) —
    keeps every stored result.
    """
    ck = (root, parts)
    if ck not in _code_cache:
        h = hashlib.sha256()
        for part in parts:
            p = root / part
            files = sorted(p.rglob("*.py")) if p.is_dir() else [p.with_suffix(".py")]
            for f in files:
                h.update(f.relative_to(root).as_posix().encode())
                h.update(code_fingerprint(f.read_text(encoding="utf-8")).encode())
        _code_cache[ck] = h.hexdigest()[:12]
    return _code_cache[ck]
