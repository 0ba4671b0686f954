"""Time-to-quality: how soon each run reaches the suite's target quality on the validation split.

The target is set per (concept, seed) from the runs themselves (``target:`` in the suite, :class:`TargetSpec`):

* ``reference: METHOD`` — that method's final validation quality, minus ``tolerance`` on the worse side;
* otherwise — ``gap_fraction`` of the way from the ``floor`` method's validation quality (identity by default)
  to the best final validation quality of any method on that concept and seed.

A run reaches the target at the first validation checkpoint whose quality is at least as good; its steps,
train seconds and FLOPs at that checkpoint (rank-search cost included) are ``steps_to_target``,
``seconds_to_target`` and ``flops_to_target``. The checkpoints are log-spaced, so these are upper bounds at the
checkpoint grid's resolution — never interpolated. A run that never gets there has ``reached = False`` and no
time: it is "not reached", and ranks behind every run that reached it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from e2gan_bench.config import TargetSpec
from e2gan_bench.record import RunRecord
from e2gan_bench.training.targets import CURVE_METRICS as HIGHER
from e2gan_bench.training.targets import final_value, reaches, reference_target

COLUMNS = ("val_final", "target", "reached", "steps_to_target", "seconds_to_target", "flops_to_target")


def _points(r: RunRecord) -> list[dict[str, Any]]:
    return list((r.val_curve or {}).get("points") or [])


def final_quality(r: RunRecord, metric: str) -> float | None:
    return final_value(_points(r), metric)


def targets(pairs: list[tuple[str, RunRecord]], spec: TargetSpec) -> dict[tuple[str, int], float]:
    """(concept, seed) -> target value on ``spec.metric``."""
    higher = HIGHER[spec.metric]
    finals: dict[tuple[str, int], dict[str, float]] = {}
    for method, r in pairs:
        if r.status != "ok":
            continue
        q = final_quality(r, spec.metric)
        if q is not None:
            finals.setdefault((r.concept, r.seed), {})[method] = q
    out: dict[tuple[str, int], float] = {}
    for cs, by_method in finals.items():
        if spec.reference is not None:
            if spec.reference in by_method:
                out[cs] = reference_target(by_method[spec.reference], spec.tolerance, spec.metric)
            continue
        floor = by_method.get(spec.floor)
        trained = {m: v for m, v in by_method.items() if m != spec.floor}
        if floor is None or not trained:
            continue
        best = max(trained.values()) if higher else min(trained.values())
        if (best - floor) * (1 if higher else -1) <= 0:  # nothing beat the floor: no meaningful target
            continue
        out[cs] = floor + spec.gap_fraction * (best - floor)
    return out


def time_to_target(r: RunRecord, target: float | None, metric: str) -> dict[str, Any]:
    """The run's time-to-quality columns (:data:`COLUMNS`)."""
    row: dict[str, Any] = {"val_final": final_quality(r, metric), "target": target, "reached": None,
                           "steps_to_target": None, "seconds_to_target": None, "flops_to_target": None}
    if target is None or r.status != "ok" or not _points(r):
        return row
    row["reached"] = False
    for p in _points(r):
        v = p.get(metric)
        if v is not None and reaches(float(v), target, metric):
            row.update(reached=True, steps_to_target=int(p["step"]), seconds_to_target=float(p["seconds"]),
                       flops_to_target=float(p["flops"]))
            break
    return row


def add_time_to_quality(df: pd.DataFrame, pairs: list[tuple[str, RunRecord]], spec: TargetSpec) -> pd.DataFrame:
    """runs.csv rows (``df`` from :func:`~e2gan_bench.report.leaderboard.runs_frame`) with the time-to-quality
    columns added, matched by run key."""
    tg = targets(pairs, spec)
    by_key = {r.key: time_to_target(r, tg.get((r.concept, r.seed)), spec.metric) for _, r in pairs}
    df = df.copy()
    for c in COLUMNS:
        df[c] = [by_key.get(k, {}).get(c) for k in df["key"]] if not df.empty else pd.Series(dtype=float)
    return df


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Per method: runs that reached the target and the median steps / seconds / FLOPs to it, counting a run that
    did not reach it as infinitely slow (so a method that reached it in fewer than half its runs has an infinite
    median: "not reached")."""
    if df.empty or "reached" not in df or df["reached"].isna().all():
        return pd.DataFrame()
    rows = []
    for method, g in df[df["reached"].notna()].groupby("method", sort=False):
        reached = g["reached"].astype(bool)
        row: dict[str, Any] = {"method": method, "reached": f"{int(reached.sum())}/{len(g)}"}
        for c in ("steps_to_target", "seconds_to_target", "flops_to_target"):
            vals = np.where(reached, g[c].astype(float), np.inf)
            row[f"median_{c}"] = float(np.median(vals))
        rows.append(row)
    return pd.DataFrame(rows)
