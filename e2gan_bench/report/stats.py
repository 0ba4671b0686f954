"""Intervals, on scipy: one Student-t interval for every mean the reports show (leaderboard and gate), and the
paired bootstrap the gate shows beside it."""

from __future__ import annotations

import math
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
    n, mean = len(d), float(d.mean())
    if n < 2:
        return Interval(n, mean, None, None, None)
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        return Interval(n, mean, 0.0, mean, mean)
    lo, hi = stats.t.interval(confidence, n - 1, loc=mean, scale=sd / math.sqrt(n))
    return Interval(n, mean, sd, float(lo), float(hi))


def paired_bootstrap(candidate: np.ndarray, base: np.ndarray, confidence: float = 0.95,
                     resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> tuple[float, float] | None:
    """Percentile interval of mean(candidate - base), resampling the pairs (``scipy.stats.bootstrap``,
    ``paired=True``, fixed seed); None with fewer than 2 pairs, a point when every difference is the same."""
    c, b = np.asarray(candidate, dtype=float), np.asarray(base, dtype=float)
    d = c - b
    if len(d) < 2:
        return None
    if np.all(d == d[0]):
        return float(d[0]), float(d[0])
    res = stats.bootstrap((c, b), lambda x, y, axis: np.mean(x - y, axis=axis), paired=True, vectorized=True,
                          confidence_level=confidence, n_resamples=resamples, method="percentile",
                          rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


@dataclass(frozen=True)
class PairedStats:
    n: int
    mean: float
    sd: float | None
    ci_t: tuple[float, float] | None
    ci_boot: tuple[float, float] | None


def paired_stats(candidate: np.ndarray | list[float], base: np.ndarray | list[float], confidence: float = 0.95,
                 resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> PairedStats:
    """Mean of the paired differences ``candidate - base`` with its Student-t interval (:func:`t_interval`) and
    paired bootstrap interval (none when n = 1)."""
    c, b = np.asarray(candidate, dtype=float), np.asarray(base, dtype=float)
    t = t_interval(c - b, confidence)
    return PairedStats(t.n, t.mean, t.sd, t.bounds, paired_bootstrap(c, b, confidence, resamples, seed))
