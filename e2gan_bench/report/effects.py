"""Effects between methods, from a suite's runs: is A better than B, does A reach the target sooner, how far
above doing nothing do the students get, and how quality grows with steps.

Every comparison is paired over the (concept, seed) units both methods ran, so the spread between concepts
cancels. Quality uses the mean difference and its 95 % Student-t interval (the leaderboard's and the gate's
interval); time-to-quality uses the Wilcoxon signed-rank test on log seconds, in which a run that never
reached the target counts as slower than any that did (ranks need no invented time for it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from e2gan_bench.record import RunRecord
from e2gan_bench.report.stats import t_interval


def _paired(df: pd.DataFrame, a: str, b: str, col: str) -> tuple[pd.Series, pd.Series]:
    ua = df[df["method"] == a].set_index(["concept", "seed"])[col]
    ub = df[df["method"] == b].set_index(["concept", "seed"])[col]
    common = ua.index.intersection(ub.index)
    return ua.loc[common].astype(float), ub.loc[common].astype(float)


def quality_effect(df: pd.DataFrame, a: str, b: str, metric: str, higher: bool) -> dict[str, Any]:
    """Mean of ``a - b`` on ``metric`` over common units, its 95 % t interval and a verdict."""
    va, vb = _paired(df, a, b, metric)
    ok = va.notna() & vb.notna()
    d = (va[ok] - vb[ok]).to_numpy()
    row: dict[str, Any] = {"a": a, "b": b, "metric": metric, "units": len(d)}
    if len(d) == 0:
        return {**row, "verdict": "no common units"}
    iv = t_interval(d)
    row.update(mean_a=float(va[ok].mean()), mean_b=float(vb[ok].mean()), diff=iv.mean, lo=iv.lo, hi=iv.hi)
    sign = 1 if higher else -1
    if iv.lo is not None and sign * iv.lo > 0 and sign * iv.hi > 0:
        row["verdict"] = f"{a} better"
    elif iv.lo is not None and sign * iv.lo < 0 and sign * iv.hi < 0:
        row["verdict"] = f"{b} better"
    else:
        row["verdict"] = "no significant difference"
    return row


def speed_effect(df: pd.DataFrame, a: str, b: str) -> dict[str, Any]:
    """Does ``a`` reach the time-to-quality target sooner than ``b``? One-sided Wilcoxon signed-rank test on
    log seconds over common units (not reached = slower than every run that reached it), the median ratio of
    seconds where both reached it, and the counts."""
    sa, sb = _paired(df, a, b, "seconds_to_target")
    ra, rb = _paired(df, a, b, "reached")
    row: dict[str, Any] = {"a": a, "b": b, "units": len(sa),
                           "a_reached": int(ra.fillna(False).astype(bool).sum()),
                           "b_reached": int(rb.fillna(False).astype(bool).sum())}
    if len(sa) == 0:
        return {**row, "verdict": "no common units"}
    reached_a, reached_b = ra.fillna(False).astype(bool), rb.fillna(False).astype(bool)
    both = reached_a & reached_b
    row["median_ratio_both_reached"] = float(np.median(sa[both] / sb[both])) if both.any() else None
    la, lb = np.log(sa.where(reached_a)), np.log(sb.where(reached_b))
    finite = pd.concat([la, lb]).dropna()
    slow = (finite.max() if len(finite) else 0.0) + 10.0  # "not reached": slower than any run that reached it
    d = (la.fillna(slow) - lb.fillna(slow)).to_numpy()
    if np.all(d == 0):
        row.update(p_value=1.0, verdict="no difference")
        return row
    p = float(stats.wilcoxon(d, alternative="less", zero_method="zsplit").pvalue)
    row["p_value"] = p
    row["verdict"] = f"{a} sooner (p={p:.3g})" if p < 0.05 else f"not significantly sooner (p={p:.3g})"
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
