"""Leaderboard tables from run records: runs.csv (one row per run), leaderboard.csv / .md (one row per
method, averaged over concepts and seeds), with provenance; numbers from different metric backends
are never averaged together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from e2gan_bench.cache import atomic_write_text
from e2gan_bench.config import TargetSpec
from e2gan_bench.metrics import all_metrics, cost_metrics, directions, format_number, headline_metrics, metric
from e2gan_bench.record import RunRecord
from e2gan_bench.report.compare.sides import DETAIL_COLUMNS
from e2gan_bench.report.page.plots import pareto_figure
from e2gan_bench.report.stats import comparable, friedman, pairwise, ranks_with_ties, t_interval, units
from e2gan_bench.report.tables import amortise
from e2gan_bench.report.tables.time_to_quality import add_time_to_quality, describe, summarise

#: The metric the leaderboard ranks by (rank with ties, report/ranking.py).
RANK_METRIC = "psnr"


def run_columns() -> list[str]:
    """runs.csv columns: identity, status, every registered metric and its secondary values, details, the reason of
    a failed run, key."""
    values = [c for m in all_metrics() for c in (m.name, *m.secondary)]
    return ["concept", "method", "seed", "status", *values, *DETAIL_COLUMNS, "error", "key"]


def _metric_names() -> list[str]:
    return [m.name for m in all_metrics()]


def runs_frame(pairs: list[tuple[str, RunRecord]],
               run_info: dict[str, dict[str, Any]] | None = None) -> pd.DataFrame:
    """One row per run; ``run_info`` adds columns per run key (``leaderboard``: the store, machine and commit each
    merged run came from)."""
    columns = run_columns()
    rows = []
    for method, r in pairs:  # failed runs too: their row says so, with the reason
        row: dict[str, Any] = {c: getattr(r, c, None) for c in columns}
        row["method"] = method
        row["reference"] = r.reference
        row.update({f"backend_{k}": v for k, v in r.backends.items()})
        row.update((run_info or {}).get(r.key, {}))
        stop = (r.details or {}).get("early_stop")
        if stop:  # an early-stopped suite: where the run stopped (empty: it trained its whole budget)
            row["stopped_at"] = stop.get("stopped_at")
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=columns)
    return df.sort_values(["method", "concept", "seed"], kind="stable").reset_index(drop=True)


def per_image_frame(pairs: list[tuple[str, RunRecord]]) -> pd.DataFrame:
    """``per_image.csv``: one row per (run, test image) — concept, method, seed, the image's index and hash, and
    each per-image metric (empty where the value was not finite: excluded from the run's mean)."""
    frames = []
    for method, r in pairs:
        if r.status != "ok" or not r.per_image:
            continue
        f = pd.DataFrame(r.per_image)
        f.insert(0, "seed", r.seed)
        f.insert(0, "method", method)
        f.insert(0, "concept", r.concept)
        frames.append(f)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _present(df: pd.DataFrame) -> list[str]:
    return [m for m in _metric_names() if m in df and df[m].notna().any()]


def mixed_backends(df: pd.DataFrame) -> dict[str, list[str]]:
    """Metrics whose values (where measured) come from more than one backend (report/stats/comparable.py)."""
    return comparable.mixed_backends(df, _metric_names())


def _concept_means(df: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Per method: the mean over concepts of each concept's mean over its seeds (every concept weighs the same)."""
    per_concept = df.groupby(["method", "concept"], sort=False)[metrics].mean()
    return per_concept.groupby(level=0, sort=False).mean()


def leaderboard(df: pd.DataFrame, order: list[str] | None = None) -> pd.DataFrame:
    """One row per method, **the concept as the unit** (report/stats): each metric is the mean over concepts of
    the concept's mean over seeds; for the main quality metrics, the half-width of the 95 % t interval over
    concepts; ``rank_psnr``, a rank with ties (1 + the methods significantly better on test PSNR in
    concept-level paired t-tests, Holm-corrected over all pairs); ``mean_rank_psnr``, the mean of each concept's
    rank (Friedman); and, when the runs have validation curves, time to the target (runs that reached it,
    Kaplan–Meier medians of steps, FLOPs and seconds, "not reached" counted as censored)."""
    if df.empty:
        return pd.DataFrame()
    failed = df[df["status"] == "failed"] if "status" in df else df.iloc[:0]
    df = df.drop(failed.index)
    metrics = [m for m in _present(df) if m not in mixed_backends(df)]
    g = df.groupby("method", sort=False)
    lb = _concept_means(df, metrics).reindex(list(g.groups))
    lb.insert(0, "runs", g.size())
    lb.insert(1, "concepts", g["concept"].nunique())
    lb.insert(2, "seeds", g["seed"].nunique())
    if RANK_METRIC in metrics:
        higher = metric(RANK_METRIC).higher_is_better
        names = list(lb.index)
        rk = ranks_with_ties(pairwise(df, names, RANK_METRIC, higher), names)
        fr = friedman(df, names, RANK_METRIC, higher)
        lb.insert(0, f"rank_{RANK_METRIC}", pd.Series(rk).reindex(lb.index))
        lb.insert(1, f"mean_rank_{RANK_METRIC}", pd.Series(fr.mean_ranks, dtype=float).reindex(lb.index))
        lb.attrs["friedman"] = fr
    for m in (h.name for h in headline_metrics()):  # their means get a 95 % interval over concepts
        if m in metrics:
            half = pd.Series({meth: t_interval(units(df, meth, m).values.to_numpy()).half_width
                              for meth in lb.index}, dtype=float)
            if half.notna().any():
                lb.insert(list(lb.columns).index(m) + 1, f"{m}_ci95", half)
    ttq = summarise(df)
    if not ttq.empty:
        attrs = dict(lb.attrs)  # a join does not keep them
        lb = lb.join(ttq.set_index("method"), how="left")
        lb.attrs.update(attrs)
    if not failed.empty:  # failed runs are counted (never averaged): a method whose runs all failed keeps its row
        n_failed = failed.groupby("method", sort=False).size()
        attrs = dict(lb.attrs)
        lb = lb.reindex([*lb.index, *[m for m in n_failed.index if m not in lb.index]])
        lb.attrs.update(attrs)
        for c in ("runs", "concepts", "seeds"):
            lb[c] = lb[c].fillna(0).astype(int)
        lb.insert(1, "failed", n_failed.reindex(lb.index).fillna(0).astype(int))
    order = [m for m in (order or []) if m in lb.index] + [m for m in lb.index if m not in (order or [])]
    out = lb.loc[order].reset_index(names="method")
    out.attrs.update(lb.attrs)
    return out


def format_cell(col: str, v: Any) -> str:
    """A leaderboard cell: metrics (and their intervals, ±) in their own format, time-to-quality medians ("not
    reached" when infinite), the rest as is."""
    fmts = {m.name: m.fmt for m in all_metrics()}
    if col.endswith("_ci95"):
        return "–" if v is None or pd.isna(v) else "±" + format_number(fmts.get(col[:-5], "{:.4f}"), v)
    if col.startswith("median_") and col.endswith("_to_target"):
        if v is not None and not pd.isna(v) and np.isinf(v):
            return "not reached"
        return format_number("{:.3g}" if "flops" in col else "{:.1f}" if "seconds" in col else "{:.0f}", v)
    return format_number(fmts.get(col) or "{}", v)


def terminal_columns() -> tuple[str, ...]:
    """Columns of the terminal's compact table (the markdown and CSV have every column): the headline quality
    metrics and the cost columns (as each metric declares), time to target, failures."""
    return ("method", f"rank_{RANK_METRIC}", "concepts", "seeds", *(m.name for m in headline_metrics()),
            *(m.name for m in cost_metrics()), "reached", "median_steps_to_target", "failed")


def display_rows(lb: pd.DataFrame, columns: tuple[str, ...] | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and formatted rows of the leaderboard, each metric with its interval in one cell ("15.39 ± 0.41");
    ``columns`` picks a subset (in its order)."""
    cols = [c for c in (columns or lb.columns) if c in lb.columns and not c.endswith("_ci95")]
    rows = []
    for _, row in lb.iterrows():
        cells = []
        for c in cols:
            cell = format_cell(c, row[c])
            ci = f"{c}_ci95"
            if ci in lb.columns and not pd.isna(row[ci]):
                cell += " " + format_cell(ci, row[ci]).replace("±", "± ")
            cells.append(cell)
        rows.append(cells)
    return cols, rows


def intro(lb: pd.DataFrame) -> str:
    """The sentence above the table: what is measured, and which direction is better for its metrics."""
    shown = [c for c in lb.columns if c in _metric_names()]
    return ("Quality is measured on held-out test photographs, student output vs teacher output; \n"
            f"cost is per concept (the base model's one-off cost is listed apart). {directions(shown)}")


def markdown_table(lb: pd.DataFrame) -> str:
    cols, rows = display_rows(lb)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
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
    devices = {_device(r.provenance) for _, r in pairs}
    if devices:
        lines.append(f"- device: {', '.join(sorted(devices))}" + (
            " **(runs from different devices: their numbers are labelled apart, never averaged together)**"
            if len(devices) > 1 else ""))
    for m, vals in mixed_backends(df).items():
        lines.append(f"- **`{m}` left out of the leaderboard: runs used different backends ({', '.join(vals)})**")
    return lines


def _device(prov: dict[str, Any]) -> str:
    """Where a record's numbers were computed: ``cpu``, or ``cuda (GPU name, CUDA version)``."""
    dev = str(prov.get("device", "cpu"))
    extra = ", ".join(f"{k} {prov[k]}" for k in ("gpu", "cuda") if prov.get(k))
    return dev + (f" ({extra})" if extra else "")


def report_frames(pairs: list[tuple[str, RunRecord]], order: list[str] | None = None,
                  target: TargetSpec | None = None,
                  run_info: dict[str, dict[str, Any]] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """runs.csv's frame (time-to-quality included) and the leaderboard computed from it."""
    df = add_time_to_quality(runs_frame(pairs, run_info), pairs, target or TargetSpec())
    return df, leaderboard(df, order)


def write_reports(pairs: list[tuple[str, RunRecord]], dest: Path, *, title: str, order: list[str] | None = None,
                  base_meta: list[dict[str, Any]] | None = None, missing: int = 0,
                  target: TargetSpec | None = None, run_info: dict[str, dict[str, Any]] | None = None,
                  sources: list[str] | None = None) -> pd.DataFrame:
    """runs.csv, leaderboard.csv and leaderboard.md in ``dest``. ``run_info`` (extra runs.csv columns per run key)
    and ``sources`` (markdown lines of a "Sources" section) are what ``e2gan-bench leaderboard`` adds for runs
    merged from several stores."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    df, lb = report_frames(pairs, order, target, run_info)
    atomic_write_text(dest / "runs.csv", df.to_csv(index=False))
    images = per_image_frame(pairs)
    if not images.empty:
        atomic_write_text(dest / "per_image.csv", images.to_csv(index=False))
    atomic_write_text(dest / "leaderboard.csv", lb.to_csv(index=False))
    md = [f"# {title}", ""]
    if missing:
        md += [f"> **Incomplete: {missing} run(s) of this suite are not in the store yet.**", ""]
    md += [intro(lb), ""]
    md += [markdown_table(lb) if not lb.empty else "_no finished runs_", ""]
    md += legend_lines(lb, target or TargetSpec())
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
        md += amortise.markdown(amortise.cost_table(pairs, lb, base_meta))
    if sources:
        md += ["## Sources", "", *sources, ""]
    md += ["## Provenance", "", *provenance_lines(pairs, df), ""]
    atomic_write_text(dest / "leaderboard.md", "\n".join(md))
    return lb


def legend_lines(lb: pd.DataFrame, target: TargetSpec) -> list[str]:
    """What the units, rank, interval and time-to-target columns mean, for the columns the table has."""
    out = []
    if "concepts" in lb:
        out.append("- **The concept is the unit**: each value is the mean over concepts of the concept's mean over its "
                   "seeds (each seed replicates the protocol: its own photographs split, base model and training "
                   "randomness); `concepts` and `seeds` say how many are behind each row.")
    if f"rank_{RANK_METRIC}" in lb:
        fr = lb.attrs.get("friedman")
        friedman_txt = ""
        if fr is not None and fr.p_value is not None:
            friedman_txt = (f" Friedman test over the {fr.n_concepts} concepts all methods ran: χ² = {fr.statistic:.2f}, "
                            f"p = {fr.p_value:.3g}.")
        out.append(f"- `rank_{RANK_METRIC}`: 1 + the number of methods significantly better on test {RANK_METRIC}: "
                   "paired over the (concept, seed) runs both ran, differences averaged within concepts, two-sided "
                   "t-test over concepts, Holm-corrected over all pairs (family-wise 5 %); equal ranks are ties. "
                   f"`mean_rank_{RANK_METRIC}`: each method's rank within each concept, averaged (1 = best)."
                   + friedman_txt)
    if any(c.endswith("_ci95") for c in lb.columns):
        out.append("- `±`: half-width of the 95 % t interval of the mean over concepts (seeds averaged within each "
                   "concept; with one concept, over its seeds); – with a single unit.")
    if "reached" in lb:
        out.append(f"- time to target: {describe(target)}; on the validation split (photographs in neither train nor "
                   "test); `reached` = runs that got there at a validation checkpoint; medians are Kaplan–Meier "
                   "medians with a run that never got there censored at what it spent (\"not reached\": fewer than "
                   "half are known to get there); steps and FLOPs first (deterministic), seconds second (wall "
                   "clock); the resolution is the checkpoint spacing (`checkpoint_before` in runs.csv); FLOPs and "
                   "seconds include the rank search.")
    return [*out, ""] if out else []


def plot_tradeoffs(lb: pd.DataFrame, dest: Path, title: str) -> Path | None:
    """Quality vs cost per method: test PSNR against stored bytes per concept and training seconds
    (``tradeoffs.png``; report/page/plots.py: log axes where the costs span decades, a legend, zero costs noted)."""
    plot = pareto_figure(lb, ["stored_bytes", "train_seconds"], Path(dest) / "tradeoffs.png", title)
    return None if plot is None else plot.path
