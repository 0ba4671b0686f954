"""Leaderboard tables from run records: runs.csv (one row per run), leaderboard.csv / .md (one row per
method, averaged over concepts and seeds), with provenance; numbers from different metric backends
are never averaged together."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from e2gan_bench.record import METRICS, RunRecord
from e2gan_bench.util import atomic_write_text

RUN_COLUMNS = ["concept", "method", "seed", *METRICS, "kid_std", "search_seconds", "n_train_used", "eval_seconds",
               "key"]


def runs_frame(pairs: list[tuple[str, RunRecord]]) -> pd.DataFrame:
    rows = []
    for method, r in pairs:
        if r.status != "ok":
            continue
        row: dict[str, Any] = {c: getattr(r, c, None) for c in RUN_COLUMNS}
        row["method"] = method
        row["reference"] = r.reference
        for m in METRICS:
            row[f"backend_{m}"] = r.backends.get(m)
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=RUN_COLUMNS)
    return df.sort_values(["method", "concept", "seed"], kind="stable").reset_index(drop=True)


def _present(df: pd.DataFrame) -> list[str]:
    return [m for m in METRICS if m in df and df[m].notna().any()]


def mixed_backends(df: pd.DataFrame) -> dict[str, list[str]]:
    out = {}
    for m in METRICS:
        col = f"backend_{m}"
        if col in df:
            vals = sorted({v for v in df[col].dropna()})
            if len(vals) > 1:
                out[m] = vals
    return out


def leaderboard(df: pd.DataFrame, order: list[str] | None = None) -> pd.DataFrame:
    """Mean over concepts × seeds per method, with run counts and — with several seeds — a 95% CI
    half-width (Student t) over seeds of the concept-averaged PSNR and KID."""
    if df.empty:
        return pd.DataFrame()
    metrics = [m for m in _present(df) if m not in mixed_backends(df)]
    g = df.groupby("method", sort=False)
    lb = g[metrics].mean()
    lb.insert(0, "runs", g.size())
    lb.insert(1, "concepts", g["concept"].nunique())
    from scipy.stats import t as student_t

    lb.insert(2, "seeds", g["seed"].nunique())
    for m in ("psnr", "kid"):
        if m in metrics:
            per_seed = df.groupby(["method", "seed"], sort=False)[m].mean().groupby(level=0, sort=False)
            n, sd = per_seed.count(), per_seed.std(ddof=1)
            half = sd / n.pow(0.5) * n.map(lambda k: student_t.ppf(0.975, k - 1) if k > 1 else float("nan"))
            if (n > 1).any():
                lb[f"{m}_ci95"] = half.where(n > 1)
    order = [m for m in (order or []) if m in lb.index] + [m for m in lb.index if m not in (order or [])]
    return lb.loc[order].reset_index()


def _fmt(col: str, v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    spec = METRICS.get(col, {}).get("fmt") or ("{:.4f}" if col.endswith("_ci95") else "{}")
    try:
        return spec.format(v)
    except (ValueError, TypeError):
        return str(v)


def markdown_table(lb: pd.DataFrame) -> str:
    cols = list(lb.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, row in lb.iterrows():
        lines.append("| " + " | ".join(_fmt(c, row[c]) for c in cols) + " |")
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
    md += ["Quality is measured on held-out test photographs, student output vs teacher output; ",
           "cost is per concept (the base model's one-off cost is listed apart). Lower is better for kid, fid, lpips, "
           "train_seconds, train_flops, trainable_params, stored_bytes; higher for psnr, ssim.", ""]
    md += [markdown_table(lb) if not lb.empty else "_no finished runs_", ""]
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
