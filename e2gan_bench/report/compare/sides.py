"""The two sides of a comparison: a results store (``results.sqlite``) or an exported ``runs.csv`` (a file, or a
folder holding one), and the method chosen on each side."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from e2gan_bench.errors import UserError
from e2gan_bench.metrics import all_metrics
from e2gan_bench.record import RunRecord
from e2gan_bench.report.stores import read_records, store_suites

#: Record fields that are not metrics but travel in runs.csv.
DETAIL_COLUMNS = ("search_seconds", "n_train_used", "eval_seconds", "n_test")


@dataclass
class Side:
    """One side of the comparison: where it came from and the chosen method's runs (any status)."""

    role: str  # "REFERENCE" / "CANDIDATE"
    path: str
    kind: str  # "results store" / "runs.csv" / "records"
    method: str
    suite: str | None = None
    records: list[RunRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _read_store(root: Path, suite: str | None, role: str) -> list[tuple[str, RunRecord]]:
    pairs = read_records(root, suite)
    if suite is not None and not pairs:
        suites = store_suites(root / "results.sqlite")
        raise UserError(f"{role}: no runs of this suite in {root}", field="--suite", value=suite,
                        allowed=", ".join(suites) or "the store has no suite links")
    return pairs


def _cell(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, str) and not v.strip():
        return None
    return v


def _as_bool(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return bool(v) if v is not None else False


def read_runs_csv(path: Path) -> list[tuple[str, RunRecord]]:
    """(method, RunRecord) pairs from a runs.csv written by ``e2gan-bench report``."""
    try:
        df = pd.read_csv(path, dtype={"concept": str, "method": str, "key": str})
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise UserError(f"unreadable runs.csv ({type(exc).__name__})", file=str(path)) from None
    for col in ("concept", "method", "seed"):
        if col not in df.columns:
            raise UserError(f"not a runs.csv written by `e2gan-bench report` (no column '{col}')", file=str(path))
    metrics = all_metrics()
    out = []
    for i, row in enumerate(df.to_dict("records")):
        concept, method, seed = _cell(row.get("concept")), _cell(row.get("method")), _cell(row.get("seed"))
        data: dict[str, Any] = {"concept": concept, "method": method, "seed": seed}
        for m in metrics:
            for c in (m.name, *m.secondary):
                if (v := _cell(row.get(c))) is not None:
                    data[c] = int(v) if m.integer and c == m.name and float(v).is_integer() else v
        for c in DETAIL_COLUMNS:
            if (v := _cell(row.get(c))) is not None:
                data[c] = v  # pydantic turns 1234.0 into the int fields' 1234
        data["backends"] = {k[len("backend_"):]: str(b) for k in row if k.startswith("backend_")
                            if (b := _cell(row.get(k))) is not None}
        data["reference"] = _as_bool(_cell(row.get("reference")))
        status = _cell(row.get("status"))
        if status is not None:
            data["status"] = status
        if (error := _cell(row.get("error"))) is not None:
            data["error"] = str(error)
        data["key"] = _cell(row.get("key")) or f"csv:{concept}:{method}:{seed}"
        try:
            rec = RunRecord.model_validate(data)
        except ValueError as exc:
            first = str(exc).splitlines()[1:2] or [type(exc).__name__]
            raise UserError(f"bad row {i + 2}: {first[0].strip()}", file=str(path)) from None
        out.append((str(method), rec))
    return out


def _locate(path: Path, role: str) -> tuple[str, Path]:
    if not path.exists():
        raise UserError("not found", field=role, value=str(path))
    if path.is_dir():
        if (path / "results.sqlite").is_file():
            return "results store", path
        if (path / "runs.csv").is_file():
            return "runs.csv", path / "runs.csv"
        raise UserError("no results store (results.sqlite) or exported runs.csv in this folder", field=role,
                        value=str(path))
    if path.name == "results.sqlite":
        return "results store", path.parent
    if path.suffix.lower() == ".csv":
        return "runs.csv", path
    raise UserError("not a results folder or a runs.csv file", field=role, value=str(path))


def _pick_method(pairs: list[tuple[str, RunRecord]], method: str | None, role: str, option: str,
                 where: str) -> str:
    methods = list(dict.fromkeys(m for m, _ in pairs))
    if not methods:
        raise UserError(f"{role}: no runs in {where}", field=role, value=where)
    if method is not None:
        if method not in methods:
            raise UserError(f"{role}: unknown method (not in {where})", field=option, value=method,
                            allowed=", ".join(methods))
        return method
    trained = [m for m in methods if any(not r.reference for mm, r in pairs if mm == m)]
    if len(trained) == 1:
        return trained[0]
    if len(methods) == 1:
        return methods[0]
    raise UserError(f"{role} ({where}) holds {len(trained) or len(methods)} methods; choose one", field=option,
                    allowed=", ".join(trained or methods))


def open_side(path: Path | str, suite: str | None = None, method: str | None = None, *, role: str = "REFERENCE",
              option: str = "--reference-method") -> Side:
    """Read one side (results folder, runs.csv or a folder holding one) and pick its method."""
    path = Path(path)
    kind, where = _locate(path, role)
    notes = []
    if kind == "results store":
        pairs = _read_store(where, suite, role)
    else:
        pairs = read_runs_csv(where)
        if suite is not None:
            notes.append("--suite does not apply to an exported runs.csv; all its rows of the method are used")
    chosen = _pick_method(pairs, method, role, option, str(path))
    records = [r.model_copy(update={"method": chosen}) for m, r in pairs if m == chosen]
    return Side(role, str(path), kind, chosen, suite if kind == "results store" else None, records, notes)


def load_side(path: Path | str, suite: str | None = None, method: str | None = None, *, role: str = "REFERENCE",
              option: str = "--reference-method") -> list[RunRecord]:
    """The chosen method's run records (any status) of one side; see :func:`open_side`."""
    return open_side(path, suite, method, role=role, option=option).records


def as_side(x: Side | list[RunRecord], role: str) -> Side:
    if isinstance(x, Side):
        return x
    methods = list(dict.fromkeys(r.method for r in x))
    if len(methods) > 1:
        raise UserError(f"{role}: records of more than one method; pass one method's runs", field=role,
                        value=", ".join(methods))
    return Side(role, "-", "records", methods[0] if methods else "-", None, list(x))
