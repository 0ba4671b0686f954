"""Leaderboard tables from run records: runs.csv (one row per run), leaderboard.csv / .md (one row per
method, averaged over concepts and seeds), with provenance; numbers from different metric backends
are never averaged together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from e2gan_bench.cache import atomic_write_text
from e2gan_bench.metrics import all_metrics, directions, format_number
from e2gan_bench.record import RunRecord
from e2gan_bench.report.sides import DETAIL_COLUMNS
from e2gan_bench.report.stats import t_interval

#: Metrics whose leaderboard mean gets a 95% interval over seeds (when there are several).
CI_METRICS = ("psnr", "kid")


def run_columns() -> list[str]:
    """runs.csv columns: identity, status, every registered metric and its secondary values, details, the reason of
    a failed run, key."""
    values = [c for m in all_metrics() for c in (m.name, *m.secondary)]
    return ["concept", "method", "seed", "status", *values, *DETAIL_COLUMNS, "error", "key"]


def _metric_names() -> list[str]:
    return [m.name for m in all_metrics()]


def runs_frame(pairs: list[tuple[str, RunRecord]]) -> pd.DataFrame:
    columns = run_columns()
    rows = []
    for method, r in pairs:  # failed runs too: their row says so, with the reason
        row: dict[str, Any] = {c: getattr(r, c, None) for c in columns}
        row["method"] = method
        row["reference"] = r.reference
        row.update({f"backend_{k}": v for k, v in r.backends.items()})
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=columns)
    return df.sort_values(["method", "concept", "seed"], kind="stable").reset_index(drop=True)


def _present(df: pd.DataFrame) -> list[str]:
    return [m for m in _metric_names() if m in df and df[m].notna().any()]


def mixed_backends(df: pd.DataFrame) -> dict[str, list[str]]:
    """Metrics whose values (where measured) come from more than one backend."""
    out = {}
    for m in _metric_names():
        col = f"backend_{m}"
        if col in df and m in df:
            vals = sorted({v for v in df.loc[df[m].notna(), col].dropna()})
            if len(vals) > 1:
                out[m] = vals
    return out


def leaderboard(df: pd.DataFrame, order: list[str] | None = None) -> pd.DataFrame:
    """Mean over concepts × seeds per method, with run counts and — with several seeds — a 95% CI
    half-width (:func:`~e2gan_bench.report.stats.t_interval`) over seeds of the concept-averaged PSNR and KID."""
    if df.empty:
        return pd.DataFrame()
    failed = df[df["status"] == "failed"] if "status" in df else df.iloc[:0]
    df = df.drop(failed.index)
    metrics = [m for m in _present(df) if m not in mixed_backends(df)]
    g = df.groupby("method", sort=False)
    lb = g[metrics].mean()
    lb.insert(0, "runs", g.size())
    lb.insert(1, "concepts", g["concept"].nunique())
    lb.insert(2, "seeds", g["seed"].nunique())
    for m in CI_METRICS:
        if m in metrics:
            per_seed = df.groupby(["method", "seed"], sort=False)[m].mean().dropna().groupby(level=0, sort=False)
            half = per_seed.apply(lambda v: t_interval(v.to_numpy(), 0.95).half_width)
            if half.notna().any():
                lb[f"{m}_ci95"] = half.astype(float)
    if not failed.empty:  # failed runs are counted (never averaged): a method whose runs all failed keeps its row
        n_failed = failed.groupby("method", sort=False).size()
        lb = lb.reindex([*lb.index, *[m for m in n_failed.index if m not in lb.index]])
        for c in ("runs", "concepts", "seeds"):
            lb[c] = lb[c].fillna(0).astype(int)
        lb.insert(1, "failed", n_failed.reindex(lb.index).fillna(0).astype(int))
    order = [m for m in (order or []) if m in lb.index] + [m for m in lb.index if m not in (order or [])]
    return lb.loc[order].reset_index()


def format_cell(col: str, v: Any) -> str:
    """A leaderboard cell: metrics in their own format, intervals with 4 decimals, the rest as is."""
    fmts = {m.name: m.fmt for m in all_metrics()}
    return format_number(fmts.get(col) or ("{:.4f}" if col.endswith("_ci95") else "{}"), v)


def markdown_table(lb: pd.DataFrame) -> str:
    cols = list(lb.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, row in lb.iterrows():
        lines.append("| " + " | ".join(format_cell(c, row[c]) for c in cols) + " |")
    return "\n".join(lines)


def provenance_lines(pairs: list[tuple[str, RunRecord]], df: pd.DataFrame) -> list[str]:
    lines = []
    backends: dict[str, set[str]] = {}
    for _, r in pairs:
        for k, v in r.backends.items():
            backends.setdefault(k, set()).add(v)
    for k in sorted(backends):
        vals = ", ".join(sorted(backends[k]))
        flag = " **(offline fallback — not comparable to published numbers)**" if (
            "random" in vals or "fallback" in vals or "hash-bow" in vals) else ""
        lines.append(f"- `{k}`: {vals}{flag}")
    envs = {(str(r.provenance.get("git")), str(r.provenance.get("versions", {}).get("torch"))) for _, r in pairs}
    for git, torch_v in sorted(envs):
        lines.append(f"- code `{git}`, torch {torch_v}")
    if pairs:
        p = pairs[-1][1].provenance
        vers = ", ".join(f"{k} {v}" for k, v in sorted(p.get("versions", {}).items()))
        lines.append(f"- versions: {vers}; python {p.get('python')}; {p.get('machine')}; "
                     f"torch threads {p.get('torch_threads')}")
    for m, vals in mixed_backends(df).items():
        lines.append(f"- **`{m}` left out of the leaderboard: runs used different backends ({', '.join(vals)})**")
    return lines


def write_reports(pairs: list[tuple[str, RunRecord]], dest: Path, *, title: str, order: list[str] | None = None,
                  base_meta: list[dict[str, Any]] | None = None, missing: int = 0) -> pd.DataFrame:
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    df = runs_frame(pairs)
    lb = leaderboard(df, order)
    atomic_write_text(dest / "runs.csv", df.to_csv(index=False))
    atomic_write_text(dest / "leaderboard.csv", lb.to_csv(index=False))
    md = [f"# {title}", ""]
    if missing:
        md += [f"> **Incomplete: {missing} run(s) of this suite are not in the store yet.**", ""]
    shown = [c for c in lb.columns if c in _metric_names()]
    md += ["Quality is measured on held-out test photographs, student output vs teacher output; ",
           f"cost is per concept (the base model's one-off cost is listed apart). {directions(shown)}", ""]
    md += [markdown_table(lb) if not lb.empty else "_no finished runs_", ""]
    failures = [(m, r) for m, r in pairs if r.status == "failed"]
    if failures:
        md += [f"## Failed runs ({len(failures)})", "",
               "Not averaged into the table; `e2gan-bench run` retries them.", ""]
        md += [f"- {r.concept} × {m} × seed {r.seed}: {r.error or 'no reason recorded'}" for m, r in failures]
        md.append("")
    if plot_tradeoffs(lb, dest, title) is not None:
        md += ["![quality vs cost](tradeoffs.png)", ""]
    if base_meta:
        md += ["## Base model (one-off cost, shared by every base-initialised method)", ""]
        for b in base_meta:
            md.append(f"- `{b['key']}`: concepts {', '.join(b['concepts'])}; {b['steps']} steps, "
                      f"{b['train_seconds']:.1f} s, {b['train_flops']:.3g} FLOPs, {b['params']:,} parameters")
        md.append("")
    md += ["## Provenance", "", *provenance_lines(pairs, df), ""]
    atomic_write_text(dest / "leaderboard.md", "\n".join(md))
    return lb


def plot_tradeoffs(lb: pd.DataFrame, dest: Path, title: str) -> Path | None:
    """Quality vs cost per method: test PSNR against stored bytes per concept and training seconds."""
    if lb.empty or "psnr" not in lb:
        return None
    # pyplot is imported here, after choosing the file-only Agg backend: doing that at import time would change
    # the backend of any program that merely imports this module
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for ax, col, label in ((axes[0], "stored_bytes", "stored bytes per concept (log)"),
                           (axes[1], "train_seconds", "training seconds per concept")):
        if col not in lb:
            ax.set_visible(False)
            continue
        for _, r in lb.iterrows():
            if pd.isna(r["psnr"]) or pd.isna(r[col]):  # a method whose runs all failed: nothing to place
                continue
            x = max(float(r[col] or 0), 1.0) if col == "stored_bytes" else float(r[col] or 0)
            ax.scatter(x, r["psnr"], s=40)
            ax.annotate(r["method"], (x, r["psnr"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
        if col == "stored_bytes":
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("test PSNR vs teacher (dB)")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    path = Path(dest) / "tradeoffs.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
