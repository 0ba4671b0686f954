"""Small shared helpers: hashing of descriptions, files and code."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import signal
from pathlib import Path
from typing import Any

from e2gan_bench.errors import UserError


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


# ------------------------------------------------------------------------------------------ device

#: What ``--device`` and a suite's ``device:`` accept; ``auto`` is cuda when torch sees a GPU, else cpu.
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str, *, field: str = "--device", file: str | None = None, require: bool = True) -> str:
    """``auto`` | ``cpu`` | ``cuda`` -> the device type a run uses (``cpu`` or ``cuda``); ``cuda`` where torch sees
    no GPU is a one-line UserError (exit 2) unless ``require=False`` (keys and reports need no GPU)."""
    import torch  # heavy: imported when a command resolves its device, not when the CLI starts

    if name not in DEVICES:
        raise UserError("unknown device", file=file, field=field, value=name, allowed=", ".join(DEVICES))
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and require and (reason := cuda_unavailable_reason()) is not None:
        raise UserError(f"CUDA is not available here ({reason}); use --device cpu or auto", file=file, field=field,
                        value=name)
    return name


def cuda_unavailable_reason(template: str = "torch {torch}, built for CUDA {cuda}") -> str | None:
    """None when torch sees a CUDA GPU; otherwise why not: ``template`` with ``{torch}`` (torch's version) and
    ``{cuda}`` (the CUDA version torch was built for, ``none`` for a CPU-only build) filled in."""
    import torch  # heavy: imported only when asked

    if torch.cuda.is_available():
        return None
    return template.format(torch=torch.__version__, cuda=torch.version.cuda or "none")


def device_info(device: str) -> dict[str, Any]:
    """Provenance of a device: its type, and on a GPU its name, the CUDA version torch was built with and the
    driver's compute capability."""
    import torch

    if device != "cuda":
        return {"device": "cpu"}
    i = torch.cuda.current_device()
    return {"device": "cuda", "gpu": torch.cuda.get_device_name(i), "cuda": torch.version.cuda,
            "capability": ".".join(map(str, torch.cuda.get_device_capability(i)))}


# ------------------------------------------------------------------------------------------ crash tests

_fault_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    """A named moment where the crash tests stop the process. With ``E2GAN_BENCH_FAULT=NAME:N`` in the
    environment, the N-th time this process reaches point ``NAME`` it kills itself with SIGKILL — no cleanup, no
    ``finally`` blocks, exactly as a power cut or ``kill -9`` would; without it this does nothing.

    Points: ``train-step`` and ``base-step`` (a training step of a run / of the base model), ``artifact-commit``
    (a trained artifact complete, before its rename), ``evaluate`` (a run evaluated, before its folder is written),
    ``commit-rename`` (a run folder complete, before its rename), ``commit-swap`` (re-evaluation: the previous run
    folder moved away, the new one not yet in place), ``commit-db`` (renamed, before its database row).
    """
    spec = os.environ.get("E2GAN_BENCH_FAULT")
    if not spec:
        return
    want, _, n = spec.partition(":")
    if want != name:
        return
    _fault_hits[name] = _fault_hits.get(name, 0) + 1
    if _fault_hits[name] == int(n or 1):
        kill = getattr(signal, "SIGKILL", None)
        if kill is None:  # Windows: the closest to a kill -9
            os._exit(137)
        os.kill(os.getpid(), kill)
