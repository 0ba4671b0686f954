"""Tests over concepts: paired effects, pairwise comparisons corrected for multiplicity (Holm), ranks with ties,
and the Friedman rank summary.

Every test takes its units from :mod:`.units` (a concept's runs averaged over its seeds), so a method compared
on 8 concepts × 3 seeds has 8 units, not 24: seeds of a concept are correlated (0.85–0.98 for paired PSNR
differences in the first ``standard`` suite), and treating them as independent made intervals too narrow.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from e2gan_bench.report.stats.intervals import Interval, constant, hierarchical_bootstrap, t_interval
from e2gan_bench.report.stats.units import Units, concept_matrix, paired

#: Family-wise error rate of the pairwise rank tests (two-sided, Holm-corrected).
ALPHA = 0.05


@dataclass(frozen=True)
class Effect:
    """``a - b`` on one value, paired over common (concept, seed) runs and averaged within concepts."""

    a: str
    b: str
    col: str
    units: Units
    interval: Interval  # Student-t over the units
    bootstrap: tuple[float, float] | None  # hierarchical: concepts, then seeds
    p_value: float | None  # two-sided paired t-test over the units
    mean_a: float | None  # mean of a's concept means on the common runs
    mean_b: float | None

    @property
    def n(self) -> int:
        return self.units.n


def paired_effect(df: pd.DataFrame, a: str, b: str, col: str, confidence: float = 0.95) -> Effect:
    runs, u = paired(df, a, b, col)
    iv = t_interval(u.values.to_numpy(), confidence)
    p = None
    if u.n >= 2:
        d = u.values.to_numpy()
        p = (0.0 if d.mean() != 0 else 1.0) if constant(d) else float(stats.ttest_1samp(d, 0.0).pvalue)
    ma = float(runs["a"].groupby(level=0).mean().mean()) if len(runs) else None
    mb = float(runs["b"].groupby(level=0).mean().mean()) if len(runs) else None
    return Effect(a, b, col, u, iv, hierarchical_bootstrap(u.groups, confidence), p, ma, mb)


def holm(pvalues: dict[str, float | None]) -> dict[str, float | None]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone); None stays None and is not counted."""
    given = sorted(((p, k) for k, p in pvalues.items() if p is not None), key=lambda t: t[0])
    m, out, running = len(given), {k: None for k in pvalues}, 0.0
    for i, (p, k) in enumerate(given):
        running = max(running, min(1.0, (m - i) * p))
        out[k] = running
    return out


def pairwise(df: pd.DataFrame, methods: list[str], col: str, higher: bool, confidence: float = 0.95) -> pd.DataFrame:
    """Every pair of methods: the concept-level paired effect, its two-sided p-value and the Holm-adjusted one
    over all pairs; ``better`` names the significantly better method (adjusted p < 1 - confidence) or is empty."""
    rows = []
    for a, b in combinations(methods, 2):
        e = paired_effect(df, a, b, col, confidence)
        rows.append({"a": a, "b": b, "units": e.n, "level": e.units.level, "diff": e.interval.mean,
                     "lo": e.interval.lo, "hi": e.interval.hi, "p": e.p_value})
    table = pd.DataFrame(rows, columns=["a", "b", "units", "level", "diff", "lo", "hi", "p"])
    if table.empty:
        return table.assign(p_holm=[], better=[])
    adj = holm({str(i): p for i, p in zip(table.index, table["p"], strict=True)})
    table["p_holm"] = [adj[str(i)] for i in table.index]
    alpha = 1 - confidence
    sign = 1 if higher else -1

    def better(r: pd.Series) -> str:
        if r["p_holm"] is None or pd.isna(r["p_holm"]) or r["p_holm"] >= alpha or r["diff"] == 0:
            return ""
        return r["a"] if sign * r["diff"] > 0 else r["b"]

    table["better"] = table.apply(better, axis=1)
    return table


def ranks_with_ties(table: pd.DataFrame, methods: list[str]) -> dict[str, int]:
    """Rank = 1 + the number of methods significantly better (from :func:`pairwise`); equal ranks are ties."""
    beaten = {m: 0 for m in methods}
    for _, r in table.iterrows():
        if r["better"]:
            loser = r["b"] if r["better"] == r["a"] else r["a"]
            beaten[loser] += 1
    return {m: 1 + beaten[m] for m in methods}


@dataclass(frozen=True)
class Friedman:
    """Mean rank of each method over the concepts all of them ran (1 = best), and Friedman's test of "all methods
    rank alike" (None with fewer than 3 methods or 2 concepts)."""

    mean_ranks: dict[str, float]
    n_concepts: int
    statistic: float | None
    p_value: float | None


def friedman(df: pd.DataFrame, methods: list[str], col: str, higher: bool) -> Friedman:
    mat = concept_matrix(df, methods, col)
    if mat.empty:
        return Friedman({}, 0, None, None)
    ranked = (-mat if higher else mat).rank(axis=1, method="average")
    mean_ranks = {m: float(ranked[m].mean()) for m in mat.columns}
    stat = p = None
    if mat.shape[1] >= 3 and mat.shape[0] >= 2 and np.ptp(mat.to_numpy(), axis=1).any():
        res = stats.friedmanchisquare(*(mat[m].to_numpy() for m in mat.columns))
        stat, p = float(res.statistic), float(res.pvalue)
    return Friedman(mean_ranks, int(mat.shape[0]), stat, p)
