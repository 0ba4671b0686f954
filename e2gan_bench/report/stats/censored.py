"""Time to a target with "not reached" as censored data.

A run that never reached the target within its budget tells us only that its time is *beyond* what it spent:
a right-censored observation at its last validation checkpoint. So medians are Kaplan–Meier medians
(``scipy.stats.ecdf`` on ``scipy.stats.CensoredData``), never a large constant, and two methods are compared with
a sign test stratified by concept: for each (concept, seed) both ran, +1 when ``a`` got there first, −1 when
``b`` did, 0 when it cannot be told (neither got there, or one got there only after the other's budget ended);
the scores are averaged within each concept and the concept scores tested with the Wilcoxon signed-rank test.

The runs frame carries, per run and per unit of time (``steps``, ``flops``, ``seconds``): ``<unit>_to_target``
(the first checkpoint at the target; empty when not reached), ``<unit>_spent`` (its last checkpoint) and
``reached``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

UNITS = ("steps", "flops", "seconds")


def km_median(times: np.ndarray, reached: np.ndarray, spent: np.ndarray) -> float:
    """Kaplan–Meier median time to target: ``times`` where ``reached``, censored at ``spent`` otherwise; ∞ when
    fewer than half the runs are known to have got there; NaN with no runs."""
    reached = np.asarray(reached, dtype=bool)
    t, c = np.asarray(times, dtype=float)[reached], np.asarray(spent, dtype=float)[~reached]
    if len(t) + len(c) == 0:
        return math.nan
    if len(t) == 0:
        return math.inf
    if len(c) == 0:
        return float(np.quantile(t, 0.5, method="inverted_cdf"))
    sf = stats.ecdf(stats.CensoredData(uncensored=t, right=c)).sf
    below = sf.quantiles[sf.probabilities <= 0.5]
    return float(below[0]) if len(below) else math.inf


def method_median(df: pd.DataFrame, method: str, unit: str) -> float:
    g = df[(df["method"] == method) & df["reached"].notna()]
    if g.empty:
        return math.nan
    reached = g["reached"].astype(bool).to_numpy()
    return km_median(g[f"{unit}_to_target"].astype(float).fillna(np.inf).to_numpy(), reached,
                     g[f"{unit}_spent"].astype(float).to_numpy())


def _score(ta: float, ra: bool, ca: float, tb: float, rb: bool, cb: float) -> int:
    """+1: a reached first; −1: b did; 0: cannot be told."""
    if ra and rb:
        return int(np.sign(tb - ta))
    if ra and not rb:
        return 1 if ta <= cb else 0
    if rb and not ra:
        return -1 if tb <= ca else 0
    return 0


@dataclass(frozen=True)
class SoonerTest:
    a: str
    b: str
    unit: str
    n_runs: int
    n_concepts: int
    concept_scores: dict[str, float]  # mean score per concept: +1 a always first … −1 b always first
    p_value: float | None  # two-sided Wilcoxon signed-rank over the concept scores
    median_a: float
    median_b: float

    @property
    def ratio(self) -> float | None:
        """Kaplan–Meier median of ``a`` over that of ``b`` (None when either is unknown)."""
        if not (math.isfinite(self.median_a) and math.isfinite(self.median_b)) or self.median_b == 0:
            return None
        return self.median_a / self.median_b


def sooner(df: pd.DataFrame, a: str, b: str, unit: str = "steps") -> SoonerTest:
    """Does ``a`` reach the target sooner than ``b``? (see the module's docstring)."""
    cols = ["reached", f"{unit}_to_target", f"{unit}_spent"]

    def side(m: str) -> pd.DataFrame:
        g = df[(df["method"] == m) & df["reached"].notna()]
        g = g.set_index(["concept", "seed"])[cols]
        return g[~g.index.duplicated(keep="last")]

    sa, sb = side(a), side(b)
    common = sa.index.intersection(sb.index)
    scores: dict[str, list[int]] = {}
    for k in common:
        ra, rb = sa.loc[k], sb.loc[k]
        s = _score(float(ra.iloc[1]) if bool(ra.iloc[0]) else math.inf, bool(ra.iloc[0]), float(ra.iloc[2]),
                   float(rb.iloc[1]) if bool(rb.iloc[0]) else math.inf, bool(rb.iloc[0]), float(rb.iloc[2]))
        scores.setdefault(str(k[0]), []).append(s)
    concept_scores = {c: float(np.mean(v)) for c, v in scores.items()}
    vals = np.array(list(concept_scores.values()))
    p = None
    if len(vals) >= 2:
        p = 1.0 if not np.any(vals) else float(stats.wilcoxon(vals, zero_method="zsplit").pvalue)
    return SoonerTest(a, b, unit, len(common), len(concept_scores), concept_scores, p,
                      method_median(df, a, unit), method_median(df, b, unit))
