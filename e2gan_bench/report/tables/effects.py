"""Effects between methods, from a suite's runs: is A better than B, does A reach the target sooner, how far
above doing nothing do the students get, and how quality grows with steps.

Statistics come from :mod:`e2gan_bench.report.stats`: quality is paired over the (concept, seed) runs both
methods have, averaged within concepts, and tested over concepts (mean difference, 95 % t interval, hierarchical
bootstrap beside it); time to target treats "not reached" as censored (Kaplan–Meier medians, a sign test stratified
by concept).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from e2gan_bench.record import RunRecord
from e2gan_bench.report.stats import paired_effect, sooner


def quality_effect(df: pd.DataFrame, a: str, b: str, metric: str, higher: bool) -> dict[str, Any]:
    """Mean of ``a - b`` on ``metric`` over concepts (paired runs averaged within each), its 95 % t interval, the
    two-sided p-value and a verdict."""
    e = paired_effect(df, a, b, metric)
    row: dict[str, Any] = {"a": a, "b": b, "metric": metric, "units": e.n, "level": e.units.level,
                           "concepts": e.units.n_concepts, "seeds": e.units.n_seeds, "runs": e.units.n_runs}
    if e.n == 0:
        return {**row, "verdict": "no common units"}
    iv = e.interval
    row.update(mean_a=e.mean_a, mean_b=e.mean_b, diff=iv.mean, lo=iv.lo, hi=iv.hi, p_value=e.p_value,
               boot_lo=(e.bootstrap or (None, None))[0], boot_hi=(e.bootstrap or (None, None))[1])
    sign = 1 if higher else -1
    if iv.lo is not None and sign * iv.lo > 0 and sign * iv.hi > 0:
        row["verdict"] = f"{a} better"
    elif iv.lo is not None and sign * iv.lo < 0 and sign * iv.hi < 0:
        row["verdict"] = f"{b} better"
    else:
        row["verdict"] = "no significant difference"
    return row


def speed_effect(df: pd.DataFrame, a: str, b: str, unit: str = "steps") -> dict[str, Any]:
    """Does ``a`` reach the target sooner than ``b`` (in ``unit``: steps, flops or seconds)? The censored sign test
    stratified by concept (:func:`~e2gan_bench.report.stats.sooner`), the Kaplan–Meier medians and their ratio."""
    t = sooner(df, a, b, unit)
    ra = df[(df["method"] == a) & df["reached"].notna()]["reached"].astype(bool) if "reached" in df else pd.Series()
    rb = df[(df["method"] == b) & df["reached"].notna()]["reached"].astype(bool) if "reached" in df else pd.Series()
    row: dict[str, Any] = {"a": a, "b": b, "unit": unit, "units": t.n_concepts, "runs": t.n_runs,
                           "a_reached": f"{int(ra.sum())}/{len(ra)}", "b_reached": f"{int(rb.sum())}/{len(rb)}",
                           "median_a": t.median_a, "median_b": t.median_b, "median_ratio": t.ratio,
                           "p_value": t.p_value}
    if t.n_runs == 0:
        return {**row, "verdict": "no common units"}
    if t.p_value is None:
        return {**row, "verdict": "one concept: no test"}
    score = float(np.mean(list(t.concept_scores.values())))
    if t.p_value < 0.05:
        row["verdict"] = f"{a if score > 0 else b} sooner (p={t.p_value:.3g})"
    else:
        row["verdict"] = f"no significant difference (p={t.p_value:.3g})"
    return row


def identity_gap(df: pd.DataFrame, floor: str = "identity") -> pd.DataFrame:
    """Per concept: the floor's test SSIM and PSNR, the best method by SSIM (mean over seeds) with its SSIM,
    PSNR and LPIPS, and the SSIM gap above the floor."""
    rows = []
    ok = df[df["status"] == "ok"] if "status" in df else df
    for concept, g in ok.groupby("concept", sort=False):
        means = g.groupby("method", sort=False)[["ssim", "psnr", *(["lpips"] if "lpips" in g else [])]].mean()
        if floor not in means.index or len(means) < 2:
            continue
        trained = means.drop(index=floor)
        best = trained["ssim"].idxmax()
        rows.append({"concept": concept, f"{floor}_ssim": means.loc[floor, "ssim"],
                     f"{floor}_psnr": means.loc[floor, "psnr"], "best_method": best,
                     "best_ssim": trained.loc[best, "ssim"], "best_psnr": trained.loc[best, "psnr"],
                     "best_lpips": trained.loc[best, "lpips"] if "lpips" in trained else None,
                     "ssim_gap": trained.loc[best, "ssim"] - means.loc[floor, "ssim"]})
    return pd.DataFrame(rows)


def quality_at_steps(pairs: list[tuple[str, RunRecord]], metric: str = "psnr") -> pd.DataFrame:
    """Mean validation ``metric`` per method (rows) at each checkpoint step (columns), over the runs that have
    a point at that step; step 0 is the starting point (a base model's zero-shot quality)."""
    rows: dict[tuple[str, int], list[float]] = {}
    for method, r in pairs:
        for p in (r.val_curve or {}).get("points") or []:
            if p.get(metric) is not None:
                rows.setdefault((method, int(p["step"])), []).append(float(p[metric]))
    if not rows:
        return pd.DataFrame()
    s = pd.Series({k: float(np.mean(v)) for k, v in rows.items()})
    table = s.unstack()
    order = list(dict.fromkeys(m for m, _ in pairs))
    return table.reindex([m for m in order if m in table.index])


def val_curve_means(pairs: list[tuple[str, RunRecord]], metric: str = "psnr") -> pd.DataFrame:
    """Validation curves averaged per method: one row per (method, checkpoint step) with the mean ``metric``
    (``value``), the mean train seconds and FLOPs at that step and the number of runs averaged (finished runs
    with a point at that step, over concepts and seeds)."""
    acc: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    for method, r in pairs:
        if r.status != "ok":
            continue
        for p in (r.val_curve or {}).get("points") or []:
            if p.get(metric) is not None:
                acc.setdefault((method, int(p["step"])), []).append(
                    (float(p[metric]), float(p.get("seconds") or 0.0), float(p.get("flops") or 0.0)))
    rows = [{"method": m, "step": s, "value": float(np.mean([v[0] for v in vals])),
             "seconds": float(np.mean([v[1] for v in vals])), "flops": float(np.mean([v[2] for v in vals])),
             "runs": len(vals)} for (m, s), vals in acc.items()]
    return pd.DataFrame(rows, columns=["method", "step", "value", "seconds", "flops", "runs"])
