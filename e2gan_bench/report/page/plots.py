"""The report's figures: quality against cost (Pareto plots) and validation curves.

One look for every figure: each method keeps its colour and marker across figures and is named in a legend
below the axes (text labels next to points collide when methods cost about the same); an axis is logarithmic
when its values span more than :data:`LOG_DECADES` decades; a point that cannot sit on a log axis (a zero cost:
identity stores and trains nothing) is left out and named in the axis caption instead of squashing the axis.

pyplot is imported inside the functions, after choosing the file-only Agg backend: doing that at import time would
change the backend of any program that merely imports this module.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from e2gan_bench.cache import atomic_write_bytes

#: An axis whose positive values span more than this many decades is drawn logarithmic.
LOG_DECADES = 1.5
#: Pareto plots: cost column -> axis label.
COSTS = {"stored_bytes": "stored bytes per concept", "train_seconds": "training seconds per concept",
         "latency_ms": "latency per image (ms)"}
MARKERS = "osD^vP*Xh<>p"


@dataclass
class Plot:
    """A figure written to ``path``, with what a reader should know about it (points left out, axes)."""

    path: Path
    caption: str


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())


def styles(methods: list[str]) -> dict[str, dict[str, Any]]:
    """Colour and marker per method, in the given order (the same method looks the same in every figure)."""
    plt = _pyplot()
    colors = plt.get_cmap("tab10").colors
    return {m: {"color": colors[i % len(colors)], "marker": MARKERS[i % len(MARKERS)]}
            for i, m in enumerate(methods)}


def _order(methods: list[str] | None, present: Any) -> list[str]:
    """``methods``, then any method present but not listed."""
    return list(dict.fromkeys([*(methods or []), *present]))


def use_log(values: list[float]) -> bool:
    """Whether positive ``values`` span more than :data:`LOG_DECADES` decades."""
    pos = [v for v in values if v > 0 and math.isfinite(v)]
    return len(pos) >= 2 and math.log10(max(pos) / min(pos)) > LOG_DECADES


def _finite(v: Any) -> bool:
    return v is not None and not pd.isna(v) and math.isfinite(float(v))


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both sides (lower cost, higher quality), by cost."""
    front, best = [], -math.inf
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


def _pareto_axis(ax: Any, lb: pd.DataFrame, col: str, look: dict[str, dict[str, Any]]) -> str:
    """Test PSNR (with its 95 % interval) against ``col`` per method, and the Pareto front; returns the note on
    what was left out."""
    pts, zero = [], []
    for _, r in lb.iterrows():
        if not (_finite(r.get("psnr")) and _finite(r.get(col))):
            continue  # a method whose runs all failed, or a cost it has no value for
        x, y = float(r[col]), float(r["psnr"])
        (zero if x <= 0 else pts).append((r["method"], x, y, r.get("psnr_ci95")))
    log = use_log([p[1] for p in pts])
    for method, x, y, ci in pts:
        ax.errorbar(x, y, yerr=float(ci) if _finite(ci) else None, linestyle="none", markersize=7, capsize=3,
                    label=method, **look[method])
    front = pareto_front([(x, y) for _, x, y, _ in pts])
    if len(front) > 1:
        xs, ys = zip(*front, strict=True)
        ax.step(xs, ys, where="post", color="0.55", linestyle="--", linewidth=1, zorder=0, label="Pareto front")
    if log:
        ax.set_xscale("log")
    elif col == "stored_bytes":
        from matplotlib.ticker import EngFormatter

        ax.xaxis.set_major_formatter(EngFormatter(unit="B"))
    ax.set_ylabel("test PSNR vs teacher (dB)")
    ax.grid(alpha=0.3, which="both" if log else "major")
    note = ""
    if zero:
        note = "zero cost, not plotted: " + ", ".join(f"{m} ({y:.2f} dB)" for m, _, y, _ in zero)
    ax.set_xlabel(COSTS.get(col, col) + (" (log)" if log else "") + (f"\n{note}" if note else ""))
    return note


def _legend(fig: Any, axes: list[Any]) -> None:
    handles: dict[str, Any] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=min(len(handles), 4),
                   fontsize=8, frameon=False)


def pareto_figure(lb: pd.DataFrame, cols: list[str], path: Path, title: str = "",
                  methods: list[str] | None = None) -> Plot | None:
    """One panel per cost column in ``cols`` (those the leaderboard has), a shared legend; ``None`` when there is
    nothing to plot. ``methods`` fixes each method's colour and marker (default: the leaderboard's order)."""
    cols = [c for c in cols if c in lb and "psnr" in lb and lb[c].notna().any()]
    if lb.empty or not cols:
        return None
    plt = _pyplot()
    look = styles(_order(methods, lb["method"]))
    fig, axes = plt.subplots(1, len(cols), figsize=(5.2 * len(cols), 4.4), layout="constrained", squeeze=False)
    notes = [_pareto_axis(ax, lb, c, look) for ax, c in zip(axes[0], cols, strict=True)]
    _legend(fig, list(axes[0]))
    if title:
        fig.suptitle(title)
    _save(plt, fig, path)
    caption = "Test PSNR (mean over concepts and seeds, bars: 95 % interval) against " + ", ".join(
        COSTS.get(c, c) for c in cols) + "; dashed: the Pareto front."
    note = "; ".join(dict.fromkeys(n for n in notes if n))
    return Plot(path, caption + (f" {note[0].upper()}{note[1:]}." if note else ""))


def plot_pareto(lb: pd.DataFrame, folder: Path, methods: list[str] | None = None) -> list[Plot]:
    """``pareto_<cost>.png`` in ``folder`` for each cost of :data:`COSTS` the leaderboard has."""
    out = []
    for col in COSTS:
        p = pareto_figure(lb, [col], Path(folder) / f"pareto_{col}.png", methods=methods)
        if p is not None:
            out.append(p)
    return out


def plot_val_curves(means: pd.DataFrame, folder: Path, metric: str = "psnr",
                    methods: list[str] | None = None) -> list[Plot]:
    """Mean validation ``metric`` per method against train seconds and against FLOPs (one line per method), from
    :func:`~e2gan_bench.report.tables.effects.val_curve_means`; ``val_<metric>_<x>.png`` in ``folder``."""
    if means.empty:
        return []
    plt = _pyplot()
    look = styles(_order(methods, means["method"]))
    out = []
    for x, label in (("seconds", "train seconds (rank search included)"), ("flops", "training FLOPs")):
        log = x == "flops" or use_log(list(means[x]))
        fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
        dropped = 0
        for method, g in means.groupby("method", sort=False):
            g = g.sort_values("step")
            # step 0 sits at the rank search's cost (near zero): no training yet, not a point on a log axis
            keep = (g["step"] > 0) & (g[x] > 0) if log else np.ones(len(g), dtype=bool)
            dropped += int((~keep).sum())
            if not keep.any():
                continue  # only a starting point (a method that trains nothing): no line to draw
            ax.plot(g.loc[keep, x], g.loc[keep, "value"], label=method, linewidth=1.5, markersize=5,
                    **look[method])
        if log:
            ax.set_xscale("log")
        ax.set_xlabel(label + (" (log)" if log else ""))
        ax.set_ylabel(f"validation {metric.upper()}")
        ax.grid(alpha=0.3, which="both" if log else "major")
        _legend(fig, [ax])
        path = Path(folder) / f"val_{metric}_{x}.png"
        _save(plt, fig, path)
        caption = (f"Validation {metric.upper()} against {label}: at each checkpoint step, the mean over the "
                   f"method's (concept, seed) runs of the quality and of the {x}.")
        if dropped:
            caption += " The starting point (step 0, before any training step) is not on the log axis."
        out.append(Plot(path, caption))
    return out
