"""Re-read a committed runs.csv under the concept-level statistics (report/stats) and say what changed.

    python scripts/concept_level.py reports/standard/runs.csv --dest reports/standard/concept-level.md

For each method: its mean test PSNR with the 95 % interval over (concept, seed) runs — what the reports used to
show — beside the interval over concepts (seeds averaged within a concept); the ranks from uncorrected paired
tests over runs beside the Holm-corrected ranks over concepts; the Friedman mean ranks; and, for every pair, the
paired difference over runs and over concepts. Nothing is recomputed from images: the same numbers, other units.
"""

from __future__ import annotations

import argparse
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from e2gan_bench.report.stats import friedman, pairwise, ranks_with_ties, t_interval, units


def run_level_ranks(df: pd.DataFrame, methods: list[str], col: str) -> dict[str, int]:
    """The old rule: paired over (concept, seed) runs, a 95 % t interval entirely on one side, uncorrected."""
    better = {m: 0 for m in methods}
    for a, b in combinations(methods, 2):
        va = df[df.method == a].set_index(["concept", "seed"])[col]
        vb = df[df.method == b].set_index(["concept", "seed"])[col]
        common = va.index.intersection(vb.index)
        d = (va.loc[common] - vb.loc[common]).to_numpy()
        iv = t_interval(d)
        if iv.lo is not None and iv.lo > 0:
            better[b] += 1
        elif iv.hi is not None and iv.hi < 0:
            better[a] += 1
    return {m: 1 + k for m, k in better.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs_csv", type=Path)
    ap.add_argument("--dest", type=Path, required=True)
    ap.add_argument("--metric", default="psnr")
    a = ap.parse_args()
    df = pd.read_csv(a.runs_csv)
    df = df[df["status"] == "ok"] if "status" in df else df
    col = a.metric
    methods = [m for m in dict.fromkeys(df["method"]) if df.loc[df.method == m, col].notna().any()]
    old = run_level_ranks(df, methods, col)
    new = ranks_with_ties(pairwise(df, methods, col, True), methods)
    fr = friedman(df, methods, col, True)
    rows = []
    for m in methods:
        runs = df.loc[df.method == m, col].to_numpy(dtype=float)
        u = units(df, m, col)
        ri, ci = t_interval(runs), t_interval(u.values.to_numpy())
        rows.append({"method": m, "concepts": u.n_concepts, "seeds": u.n_seeds, "mean": ci.mean,
                     "± over runs (old)": ri.half_width, "± over concepts": ci.half_width,
                     "rank over runs, uncorrected (old)": old[m], "rank over concepts, Holm": new[m],
                     "Friedman mean rank": fr.mean_ranks.get(m)})
    table = pd.DataFrame(rows)
    pw = pairwise(df, methods, col, True)
    run_p = []
    for _, r in pw.iterrows():
        va = df[df.method == r["a"]].set_index(["concept", "seed"])[col]
        vb = df[df.method == r["b"]].set_index(["concept", "seed"])[col]
        common = va.index.intersection(vb.index)
        d = (va.loc[common] - vb.loc[common]).to_numpy()
        run_p.append(float(stats.ttest_1samp(d, 0.0).pvalue) if len(d) > 1 and np.ptp(d) > 0 else None)
    pw.insert(len(pw.columns) - 2, "p over runs (old)", run_p)
    md = [f"# `{a.runs_csv}` under concept-level statistics ({col})", "", __doc__.split("\n\n", 2)[2].strip(), "",
          table.to_markdown(index=False, floatfmt=".3g"), "",
          (f"Friedman over the {fr.n_concepts} concepts all methods ran: χ² = {fr.statistic:.2f}, "
           f"p = {fr.p_value:.3g}." if fr.p_value is not None else ""), "",
          "## Pairs (a − b)", "", pw.to_markdown(index=False, floatfmt=".3g"), ""]
    a.dest.parent.mkdir(parents=True, exist_ok=True)
    a.dest.write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
