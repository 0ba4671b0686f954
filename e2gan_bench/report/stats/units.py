"""The unit of replication, and pairing.

A suite runs concepts × methods × seeds. Seeds of one concept replicate the whole protocol (their own split of
photographs, their own base model and training randomness: ``harness/spec.py``), but they still share the
concept: a concept that is hard is hard for every seed. So seeds are averaged within a concept and **the concept
is the unit**: every interval, test and rank is over concepts. With a single concept, its seeds are the units and
the conclusion is about that one concept only (:attr:`Units.level` says which).

Pairing: two methods are compared on the (concept, seed) runs both have (same data, same base, same seed); the
per-run differences are averaged within each concept, and those concept means are the paired units.

Every function takes a runs frame (``runs.csv``: columns ``concept``, ``method``, ``seed`` and one per value) and
looks at finished runs with a finite value only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Unit levels: inference over concepts (the default), or over the seeds of a single concept.
CONCEPT, SEED = "concept", "seed (one concept)"


@dataclass(frozen=True)
class Units:
    """Values per unit (a concept's mean over its seeds), and how many concepts and seeds were behind them."""

    values: pd.Series  # indexed by concept (or by seed when there is one concept)
    level: str  # CONCEPT or SEED
    n_concepts: int
    n_seeds: int  # distinct seeds
    n_runs: int
    groups: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # per-run values of each unit

    @property
    def n(self) -> int:
        return len(self.values)


def _finished(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"] == "ok"] if "status" in df else df


def run_values(df: pd.DataFrame, method: str, col: str) -> pd.Series:
    """One value per (concept, seed) run of ``method`` (finite values of ``col`` only)."""
    g = _finished(df)
    if col not in g:
        return pd.Series(dtype=float)
    g = g[(g["method"] == method) & g[col].notna()]
    s = g.set_index(["concept", "seed"])[col].astype(float)
    s = s[np.isfinite(s.to_numpy())]
    return s[~s.index.duplicated(keep="last")]


def _as_units(runs: pd.Series) -> Units:
    """Runs indexed by (concept, seed) → units: concept means, or the seeds of a single concept."""
    concepts = runs.index.get_level_values(0)
    n_concepts, n_seeds = concepts.nunique(), runs.index.get_level_values(1).nunique()
    if n_concepts >= 2 or len(runs) == 0:
        values = runs.groupby(level=0, sort=False).mean()
        level = CONCEPT
        groups = {str(c): runs.xs(c, level=0).to_numpy() for c in values.index}
    else:
        values = runs.droplevel(0)
        level = SEED
        groups = {str(s): np.array([v]) for s, v in values.items()}
    return Units(values, level, n_concepts, n_seeds, len(runs), groups)


def units(df: pd.DataFrame, method: str, col: str) -> Units:
    """``method``'s values of ``col`` as units (concept means over seeds)."""
    return _as_units(run_values(df, method, col))


def paired(df: pd.DataFrame, a: str, b: str, col: str) -> tuple[pd.DataFrame, Units]:
    """The (concept, seed) runs both methods have (columns ``a`` and ``b``), and the paired units of ``a - b``:
    per-run differences averaged within each concept."""
    va, vb = run_values(df, a, col), run_values(df, b, col)
    common = va.index.intersection(vb.index)
    runs = pd.DataFrame({"a": va.loc[common], "b": vb.loc[common]})
    return runs, _as_units(runs["a"] - runs["b"])


def paired_records(base: dict[tuple[str, int], float], candidate: dict[tuple[str, int], float]) -> Units:
    """Paired units of ``candidate - base`` from two mappings (concept, seed) -> value (the gate's sides)."""
    common = sorted(set(base) & set(candidate))
    idx = pd.MultiIndex.from_tuples(common, names=["concept", "seed"]) if common else \
        pd.MultiIndex.from_arrays([[], []], names=["concept", "seed"])
    return _as_units(pd.Series([candidate[k] - base[k] for k in common], index=idx, dtype=float))


def concept_matrix(df: pd.DataFrame, methods: list[str], col: str) -> pd.DataFrame:
    """Concepts × methods: each method's mean over the concept's seeds, on the concepts every method ran."""
    cols = {m: run_values(df, m, col).groupby(level=0).mean() for m in methods}
    return pd.DataFrame(cols).dropna()


def counts(df: pd.DataFrame, method: str) -> tuple[int, int]:
    """(concepts, seeds) a method has finished runs on."""
    g = _finished(df)
    g = g[g["method"] == method]
    return int(g["concept"].nunique()), int(g["seed"].nunique())
