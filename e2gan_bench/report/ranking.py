"""Ranks with ties: a method's rank is 1 + the number of methods significantly better than it.

"Significantly better" is a paired comparison over the (concept, seed) units both methods ran: the mean of the
per-unit differences and its 95 % Student-t interval (:func:`~e2gan_bench.report.stats.t_interval`, the same
interval the leaderboard and the regression gate use) must lie entirely on the better side of zero. Pairing
removes the spread between concepts (a hard concept is hard for every method), so it separates methods that
unpaired intervals over (concept, seed) — which mostly measure how different the concepts are — would call
ties. Methods that no other method beats significantly share rank 1; with a single unit per method nothing is
significant and every method ties.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from e2gan_bench.report.stats import t_interval


def _units(df: pd.DataFrame, method: str, metric: str) -> pd.Series:
    g = df[(df["method"] == method) & df[metric].notna()]
    return g.set_index(["concept", "seed"])[metric].astype(float)


def significantly_better(df: pd.DataFrame, a: str, b: str, metric: str, higher: bool,
                         confidence: float = 0.95) -> bool:
    """Whether method ``a`` beats ``b`` on ``metric`` over their common (concept, seed) units."""
    ua, ub = _units(df, a, metric), _units(df, b, metric)
    common = ua.index.intersection(ub.index)
    if len(common) < 2:
        return False
    d = (ua.loc[common] - ub.loc[common]).to_numpy() * (1.0 if higher else -1.0)
    iv = t_interval(d, confidence)
    return iv.lo is not None and iv.lo > 0


def ranks(df: pd.DataFrame, metric: str, higher: bool, methods: list[str] | None = None) -> dict[str, int]:
    """Method -> rank with ties (1 is best) on ``metric``; reference rows (identity) are ranked too."""
    names = methods or [m for m in dict.fromkeys(df["method"]) if df.loc[df["method"] == m, metric].notna().any()]
    return {a: 1 + sum(significantly_better(df, b, a, metric, higher) for b in names if b != a) for a in names}


def unit_interval(df: pd.DataFrame, method: str, metric: str, confidence: float = 0.95) -> float | None:
    """Half-width of the 95 % interval of the method's mean over its (concept, seed) units."""
    v = _units(df, method, metric).to_numpy()
    v = v[np.isfinite(v)]
    return t_interval(v, confidence).half_width if len(v) else None
