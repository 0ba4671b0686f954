"""The base model's one-off cost beside each method's per-concept cost, and when the base pays for itself.

E2GAN trains its base once and then every new concept cheaply. Per method: the base it starts from (if any)
and that base's one-off seconds and FLOPs; the mean per-concept training seconds and FLOPs; the median
seconds to the time-to-quality target; and — against a reference trained from scratch — after how many
concepts ``base + n × per-concept`` becomes cheaper than ``n × scratch`` (by seconds to the target, the
quality-matched cost, when both reached it; else by training seconds at equal steps), or "never".
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from e2gan_bench.record import RunRecord


def read_base_meta(wanted: Iterable[tuple[str | None, Sequence[Path]]]) -> list[dict[str, Any]]:
    """The stored description (``<cache>/base/<key>/meta.json``) of each distinct base key in ``wanted`` — (base key,
    the cache folders to look in, in order) pairs — in first-seen order, from the first cache that has the file.
    Runs without a base (``None``) and bases with no stored file are left out; a file there that cannot be read or
    parsed raises. Reads the JSON only (training/base.py imports torch)."""
    out, seen = [], set()
    for key, caches in wanted:
        if not key or key in seen:
            continue
        seen.add(key)
        for cache in caches:
            f = cache / "base" / key / "meta.json"
            if f.is_file():
                out.append(json.loads(f.read_text()))
                break
    return out


def _break_even(base_cost: float, per_concept: float, scratch: float) -> float | None:
    """Smallest n with base + n × per_concept <= n × scratch (inf: never); None without numbers."""
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (base_cost, per_concept, scratch)):
        return None
    if base_cost <= 0:
        return 1.0
    saving = scratch - per_concept
    return math.inf if saving <= 0 else float(math.ceil(base_cost / saving))


def cost_table(pairs: list[tuple[str, RunRecord]], lb: pd.DataFrame, base_meta: list[dict[str, Any]] | None,
               scratch: str = "scratch") -> pd.DataFrame:
    """One row per method of the leaderboard ``lb`` (indexed by method)."""
    lb = lb.set_index("method") if "method" in lb.columns else lb
    bases = {b["key"]: b for b in base_meta or []}
    base_of: dict[str, str] = {}
    for method, r in pairs:
        key = (r.provenance or {}).get("base")
        if key:
            base_of[method] = key
    ttq = "median_seconds_to_target"
    ref_secs = lb.loc[scratch, "train_seconds"] if scratch in lb.index and "train_seconds" in lb else None
    ref_ttq = lb.loc[scratch, ttq] if scratch in lb.index and ttq in lb else None
    rows = []
    for method, row in lb.iterrows():
        b = bases.get(base_of.get(method, ""))
        per_s = row.get("train_seconds")
        per_t = row.get(ttq) if ttq in lb else None
        out: dict[str, Any] = {"method": method, "base": b["key"] if b else "–",
                               "base_seconds": b["train_seconds"] if b else 0.0,
                               "base_flops": b["train_flops"] if b else 0.0,
                               "per_concept_seconds": per_s, "per_concept_flops": row.get("train_flops"),
                               "median_seconds_to_target": per_t}
        if b and method != scratch:
            use_ttq = per_t is not None and ref_ttq is not None and math.isfinite(per_t or math.inf) \
                and math.isfinite(ref_ttq or math.inf)
            out["break_even_by"] = "seconds to target" if use_ttq else "train seconds"
            out["break_even_concepts"] = _break_even(b["train_seconds"], per_t if use_ttq else per_s,
                                                     ref_ttq if use_ttq else ref_secs)
        rows.append(out)
    return pd.DataFrame(rows)


def _cell(c: str, v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if c == "break_even_concepts":
        return "never" if math.isinf(v) else f"{v:.0f}"
    if isinstance(v, float):
        return "not reached" if math.isinf(v) else (f"{v:.3g}" if "flops" in c else f"{v:.1f}")
    return str(v)


def formatted(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Header and display cells of :func:`cost_table` (shared by the markdown and the HTML page)."""
    cols = list(table.columns)
    return cols, [[_cell(c, r[c]) for c in cols] for _, r in table.iterrows()]


def explanation(scratch: str = "scratch") -> str:
    return (f"The base model's cost is paid once; `break_even_concepts`: after how many concepts the base plus "
            f"each concept's cost is below training every concept with `{scratch}` (by median seconds to the "
            "time-to-quality target where both reach it, else by training seconds at equal steps).")


def markdown(table: pd.DataFrame, scratch: str = "scratch") -> list[str]:
    if table.empty:
        return []
    cols, rows = formatted(table)
    out = ["## One-off vs per-concept cost", "", explanation(scratch), "",
           "| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return [*out, ""]
