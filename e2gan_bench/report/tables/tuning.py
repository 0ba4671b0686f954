"""Tuning results (``e2gan-bench tune``): every trial's score, the chosen configuration per method, and the method
files updated with it.

A trial's score is its runs' final **validation** PSNR (photographs in neither train nor test) averaged over the
tuning concepts — the concept is the unit here too; a trial with a failed run (a diverged training) scores −∞.
The chosen configuration is the best-scoring trial of each method; ties keep the earlier trial (the current
settings come first).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from e2gan_bench.cache import atomic_write_text
from e2gan_bench.harness.tuning import Trial
from e2gan_bench.record import RunRecord
from e2gan_bench.training.targets import final_value


def trial_rows(trials: list[Trial], records: dict[str, list[RunRecord]], metric: str = "psnr") -> pd.DataFrame:
    """One row per (trial, concept): method, trial, concept, configuration, the final validation value."""
    rows = []
    for t in trials:
        for r in records.get(t.label, []):
            v = final_value((r.val_curve or {}).get("points") or [], metric) if r.status == "ok" else None
            rows.append({"method": t.method, "trial": t.index, "label": t.label, "concept": r.concept,
                         "seed": r.seed, **{f"cfg.{k}": v2 for k, v2 in t.config.items()},
                         f"val_{metric}": v, "status": r.status})
    return pd.DataFrame(rows)


def scores(rows: pd.DataFrame, metric: str = "psnr") -> pd.DataFrame:
    """Per trial: the mean over concepts of the final validation value (−∞ when a run failed)."""
    col = f"val_{metric}"

    def score(g: pd.DataFrame) -> float:
        if (g["status"] != "ok").any() or g[col].isna().any():
            return -math.inf
        return float(g.groupby("concept")[col].mean().mean())

    out = rows.groupby(["method", "trial", "label"], sort=False).apply(score, include_groups=False)
    return out.rename("score").reset_index()


def chosen(trials: list[Trial], sc: pd.DataFrame) -> dict[str, Trial]:
    """method -> its best trial (the earliest among equals)."""
    out: dict[str, Trial] = {}
    for method, g in sc.groupby("method", sort=False):
        best = g.sort_values(["score", "trial"], ascending=[False, True], kind="stable").iloc[0]
        out[str(method)] = next(t for t in trials if t.method == method and t.index == int(best["trial"]))
    return out


def write_method_file(path: Path, config: dict[str, Any], note: str) -> None:
    """Set the tuned values (dotted settings) in a method YAML, keeping its other fields and their order."""
    data = yaml.safe_load(path.read_text()) or {}
    for dotted, v in config.items():
        node = data
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    atomic_write_text(path, f"# {note}\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110))


def markdown(rows: pd.DataFrame, sc: pd.DataFrame, best: dict[str, Trial], *, suite: str, n: int,
             provenance: str) -> str:
    md = ["# Tuning", "", __doc__.split("\n\n", 1)[1].strip(), "",
          f"Suite `{suite}` ({rows['concept'].nunique()} tuning concepts: {', '.join(sorted(rows['concept'].unique()))}); "
          f"{n} trials per method (trial 0 = the method's settings before tuning, then scrambled-Sobol draws from its "
          f"declared space, seed 0). {provenance}", ""]
    for method, g in sc.groupby("method", sort=False):
        cfg = rows[rows["method"] == method].drop_duplicates("trial").set_index("trial")
        cfg_cols = [c for c in cfg.columns if c.startswith("cfg.")]
        t = g.set_index("trial").join(cfg[cfg_cols]).reset_index().sort_values("score", ascending=False)
        t.columns = [c.removeprefix("cfg.") for c in t.columns]
        b = best[str(method)]
        md += [f"## `{method}`: chosen trial {b.index} — " + ", ".join(f"{k} = {v}" for k, v in b.config.items()), "",
               t.drop(columns=["method", "label"]).to_markdown(index=False, floatfmt=".4g"), ""]
    return "\n".join(md)
