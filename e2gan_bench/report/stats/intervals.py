"""Intervals, on scipy: one Student-t interval for every mean the reports show (leaderboard, effects, gate,
claims), and a hierarchical bootstrap (concepts, then seeds within each concept) shown beside it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Interval:
    """A mean with its two-sided confidence interval (``lo``/``hi`` are None with fewer than 2 values)."""

    n: int
    mean: float
    sd: float | None
    lo: float | None
    hi: float | None

    @property
    def bounds(self) -> tuple[float, float] | None:
        return None if self.lo is None or self.hi is None else (self.lo, self.hi)

    @property
    def half_width(self) -> float | None:
        return None if self.bounds is None else (self.hi - self.lo) / 2


def t_interval(values: np.ndarray | list[float], confidence: float = 0.95) -> Interval:
    """Mean and Student-t interval (``scipy.stats.t.interval``, n - 1 degrees of freedom); a zero spread gives a
    point interval."""
    d = np.asarray(values, dtype=float)
    n = len(d)
    if n == 0:
        return Interval(0, math.nan, None, None, None)
    mean = float(d.mean())
    if n < 2:
        return Interval(n, mean, None, None, None)
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        return Interval(n, mean, 0.0, mean, mean)
    lo, hi = stats.t.interval(confidence, n - 1, loc=mean, scale=sd / math.sqrt(n))
    return Interval(n, mean, sd, float(lo), float(hi))


def constant(d: np.ndarray) -> bool:
    """Every value the same, up to rounding (a deterministic count; a t-test would divide by ~0)."""
    return len(d) > 0 and float(np.ptp(d)) <= 1e-12 * max(1.0, float(np.abs(d).max()))


def one_sided_p(values: np.ndarray | list[float], alternative: str = "greater") -> float | None:
    """p-value of the one-sample t-test that the mean is above (``greater``) or below (``less``) zero; a zero
    spread decides by the sign of the mean (p = 0 or 1); None with fewer than 2 values."""
    d = np.asarray(values, dtype=float)
    if len(d) < 2:
        return None
    if constant(d):
        m = float(d.mean())
        return 0.0 if (m > 0 if alternative == "greater" else m < 0) else 1.0
    return float(stats.ttest_1samp(d, 0.0, alternative=alternative).pvalue)


def hierarchical_bootstrap(groups: Mapping[str, np.ndarray | list[float]], confidence: float = 0.95,
                           resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
                           ) -> tuple[float, float] | None:
    """Percentile interval of the mean of group means, resampling groups (concepts) with replacement and then the
    values within each drawn group (its seeds) — the two-stage bootstrap for nested replicates. None with fewer than
    2 groups; a point when every value is the same."""
    arrays = [np.asarray(v, dtype=float) for v in groups.values() if len(v)]
    if len(arrays) < 2:
        return None
    flat = np.concatenate(arrays)
    if np.all(flat == flat[0]):
        return float(flat[0]), float(flat[0])
    rng = np.random.default_rng(seed)
    g = len(arrays)
    picks = rng.integers(0, g, size=(resamples, g))
    out = np.empty(resamples)
    for i in range(resamples):
        means = [a[rng.integers(0, len(a), len(a))].mean() for a in (arrays[j] for j in picks[i])]
        out[i] = float(np.mean(means))
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(out, [alpha, 1 - alpha])
    return float(lo), float(hi)
