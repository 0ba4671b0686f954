"""Time to a target: how soon each run reaches a quality on the validation split.

The target (``target:`` in the suite, :class:`TargetSpec`):

* **fixed** (``file``; the built-in suites) — one value per (concept, metric) from a targets file
  (``targets/<name>.yaml``), made once by ``e2gan-bench targets make`` from a reference protocol that is not among
  the methods ranked. Every run's time to target depends on that run alone: adding or removing a method changes no
  other method's numbers.
* **relative** (older suites; labelled "relative" in every report) — set per (concept, seed) from the runs being
  ranked: ``reference: METHOD``'s final validation quality minus ``tolerance``, or ``gap_fraction`` of the way
  from the ``floor`` method's validation quality to the best final quality of any method.

A run reaches the target at the first validation checkpoint whose quality is at least as good; its steps, FLOPs
and train seconds there (rank-search cost included) are ``steps_to_target``, ``flops_to_target`` and
``seconds_to_target`` — steps and FLOPs first (deterministic), seconds second (wall clock). The checkpoints are
the curve's, so these are upper bounds at the checkpoint spacing (``checkpoint_before``: the checkpoint before it,
the resolution), never interpolated. A run that never gets there is **censored** at what it spent
(``steps_spent``, ``flops_spent``, ``seconds_spent``: its last checkpoint): ``reached = False``, and medians and
tests treat it as censored (:mod:`e2gan_bench.report.stats.censored`), never as a made-up time.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from e2gan_bench.config import TargetSpec
from e2gan_bench.record import RunRecord
from e2gan_bench.report.stats.censored import UNITS, method_median
from e2gan_bench.training.targets import CURVE_METRICS as HIGHER
from e2gan_bench.training.targets import final_value, fixed_values, reaches, reference_target

COLUMNS = ("val_final", "target", "reached", "checkpoint_before", *(f"{u}_to_target" for u in UNITS),
           *(f"{u}_spent" for u in UNITS))


def _points(r: RunRecord) -> list[dict[str, Any]]:
    return list((r.val_curve or {}).get("points") or [])


def final_quality(r: RunRecord, metric: str) -> float | None:
    return final_value(_points(r), metric)


def targets(pairs: list[tuple[str, RunRecord]], spec: TargetSpec) -> dict[tuple[str, int], float]:
    """(concept, seed) -> target value on ``spec.metric``."""
    if spec.fixed:
        values = fixed_values(spec)
        return {(r.concept, r.seed): values[r.concept] for _, r in pairs if r.concept in values}
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
    """The run's time-to-target columns (:data:`COLUMNS`)."""
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(val_final=final_quality(r, metric), target=target)
    pts = _points(r)
    if target is None or r.status != "ok" or not pts:
        return row
    last = pts[-1]
    row.update(reached=False, steps_spent=int(last["step"]), flops_spent=float(last.get("flops") or 0.0),
               seconds_spent=float(last.get("seconds") or 0.0))
    before = None
    for p in pts:
        v = p.get(metric)
        if v is not None and reaches(float(v), target, metric):
            row.update(reached=True, steps_to_target=int(p["step"]), seconds_to_target=float(p["seconds"]),
                       flops_to_target=float(p["flops"]), checkpoint_before=before)
            break
        before = int(p["step"])
    return row


def add_time_to_quality(df: pd.DataFrame, pairs: list[tuple[str, RunRecord]], spec: TargetSpec) -> pd.DataFrame:
    """runs.csv rows (``df`` from :func:`~e2gan_bench.report.tables.leaderboard.runs_frame`) with the time-to-target
    columns added, matched by run key."""
    tg = targets(pairs, spec)
    by_key = {r.key: time_to_target(r, tg.get((r.concept, r.seed)), spec.metric) for _, r in pairs}
    df = df.copy()
    for c in COLUMNS:
        df[c] = [by_key.get(k, {}).get(c) for k in df["key"]] if not df.empty else pd.Series(dtype=float)
    return df


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Per method: runs that reached the target, and the Kaplan–Meier median steps / FLOPs / seconds to it (runs
    that did not reach it censored at what they spent; ∞ — "not reached" — when fewer than half are known to)."""
    if df.empty or "reached" not in df or df["reached"].isna().all():
        return pd.DataFrame()
    rows = []
    for method, g in df[df["reached"].notna()].groupby("method", sort=False):
        reached = g["reached"].astype(bool)
        row: dict[str, Any] = {"method": method, "reached": f"{int(reached.sum())}/{len(g)}"}
        for u in UNITS:
            row[f"median_{u}_to_target"] = method_median(df, method, u)
        rows.append(row)
    return pd.DataFrame(rows)


def describe(spec: TargetSpec) -> str:
    """One sentence: what the target is (the leaderboard legend, the HTML page)."""
    if spec.fixed:
        return (f"fixed target per concept on validation {spec.metric}, from `targets/{spec.file}` (made once from a "
                "reference protocol outside the ranked methods: see that file); a method's time to it depends on "
                "its own runs only")
    how = (f"`{spec.reference}`'s final validation {spec.metric} {'−' if HIGHER[spec.metric] else '+'} "
           f"{spec.tolerance}" if spec.reference else
           f"{spec.gap_fraction:.0%} of the way from `{spec.floor}` to the best final validation {spec.metric} of "
           "the methods compared")
    return f"**relative** target per (concept, seed) = {how} — it moves when methods are added or removed"

