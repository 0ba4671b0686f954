"""The scaling study: each tuned method's steps and FLOPs to a fixed target at three model sizes, and where (if
anywhere) LoRA on the crucial layers overtakes full fine-tuning and pix2pix from scratch.

    python scripts/scaling_report.py --size 48=runs/std:standard:cpu-48 --size 96=runs/scale:scaling-96:gpu-96 \\
        --size 128=runs/scale:scaling-128:gpu-128 --dest reports/scaling

Each ``--size LABEL=STORE:SUITE:TARGETS`` names a store, the suite whose runs to read (restricted to the scaling
concepts) and the targets file. Time to target is censored where not reached (report/stats): Kaplan–Meier medians
of steps and FLOPs per method; per concept, the FLOPs ratio of two methods (both reached), with a geometric-mean
interval over concepts; and the censored sign test stratified by concept.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from e2gan_bench.config import TargetSpec  # noqa: E402
from e2gan_bench.harness.store import ResultsStore  # noqa: E402
from e2gan_bench.report.stats import method_median, sooner, t_interval  # noqa: E402
from e2gan_bench.report.tables.leaderboard import runs_frame  # noqa: E402
from e2gan_bench.report.tables.time_to_quality import add_time_to_quality  # noqa: E402

CONCEPTS = ("pencil-sketch", "gameboy", "oil-painting", "thermal-camera")
METHODS = ("e2gan", "e2gan-all-data", "full-finetune", "scratch", "pix2pix")  # e2gan-all-data: 48 px only
PAIRS = (("e2gan", "full-finetune"), ("e2gan", "pix2pix"), ("e2gan-all-data", "full-finetune"), ("e2gan", "scratch"))


def load(label: str, spec: str) -> pd.DataFrame:
    store, suite, targets = spec.split(":")
    pairs = [(m, r) for m, r in ResultsStore(Path(store), readonly=True).records(suite)
             if r.status == "ok" and r.concept in CONCEPTS and m in (*METHODS, "identity")]
    df = add_time_to_quality(runs_frame(pairs), pairs, TargetSpec(file=targets))
    df["size"] = label
    params = {m: r.total_params for m, r in pairs}
    df["generator_params"] = df["method"].map(params)
    devices = sorted({str(r.provenance.get("device", "cpu")) for _, r in pairs})
    df["device"] = ", ".join(devices)
    df["commit"] = ", ".join(sorted({str(r.provenance.get("git")) for _, r in pairs}))
    return df


def ratio_over_concepts(df: pd.DataFrame, a: str, b: str, unit: str = "flops") -> dict:
    """Per concept: geometric mean over seeds of a/b FLOPs to target where both reached; t interval over concepts."""
    col = f"{unit}_to_target"
    logs = {}
    for c, g in df.groupby("concept"):
        x = g[g.method == a].set_index("seed")
        y = g[g.method == b].set_index("seed")
        common = x.index.intersection(y.index)
        ok = [s for s in common if bool(x.loc[s, "reached"]) and bool(y.loc[s, "reached"])]
        if ok:
            logs[c] = float(np.mean([math.log(x.loc[s, col] / y.loc[s, col]) for s in ok]))
    iv = t_interval(list(logs.values()))
    t = sooner(df, a, b, unit)
    return {"a": a, "b": b, "concepts_both_reached": len(logs),
            "geo_mean_ratio": math.exp(iv.mean) if logs else None,
            "ci95": f"[{math.exp(iv.lo):.3g}, {math.exp(iv.hi):.3g}]" if iv.lo is not None else "–",
            "km_median_ratio": t.ratio, "sooner_p": t.p_value, "concept_scores": t.concept_scores}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", action="append", required=True, help="LABEL=STORE:SUITE:TARGETS")
    ap.add_argument("--dest", type=Path, default=Path("reports/scaling"))
    a = ap.parse_args()
    frames = [load(*s.split("=", 1)) for s in a.size]
    df = pd.concat(frames, ignore_index=True)
    a.dest.mkdir(parents=True, exist_ok=True)
    df.to_csv(a.dest / "runs.csv", index=False)
    rows, ratios = [], []
    for size, g in df.groupby("size", sort=False):
        for m in METHODS:
            gm = g[(g.method == m) & g["reached"].notna()]
            if gm.empty:
                continue
            rows.append({"size": size, "method": m, "params": int(gm["generator_params"].iloc[0]),
                         "device": gm["device"].iloc[0], "concepts": gm["concept"].nunique(),
                         "runs": len(gm), "reached": f"{int(gm['reached'].astype(bool).sum())}/{len(gm)}",
                         "median_steps": method_median(g, m, "steps"), "median_flops": method_median(g, m, "flops"),
                         "flops_per_step": float((gm["flops_spent"] / gm["steps_spent"]).median()),
                         "test_psnr": float(gm.groupby("concept")["psnr"].mean().mean())})
        for x, y in PAIRS:
            if {x, y} <= set(g.method):
                ratios.append({"size": size, **ratio_over_concepts(g, x, y)})
    summary, rt = pd.DataFrame(rows), pd.DataFrame(ratios)
    structure = structural(df)
    structure.to_csv(a.dest / "structural.csv", index=False)
    summary.to_csv(a.dest / "summary.csv", index=False)
    rt.drop(columns=["concept_scores"]).to_csv(a.dest / "ratios.csv", index=False)
    plot(summary, a.dest / "cost_to_target.png")
    md = ["# Scaling study: cost to a fixed target against model size", "", __doc__.split("\n\n", 2)[2].strip(), "",
          "Sources: " + "; ".join(f"`{s}`" for s in a.size) + ". Devices and commits per size: "
          + "; ".join(f"{s}: {f['device'].iloc[0]} at {f['commit'].iloc[0]}" for s, f in df.groupby("size", sort=False))
          + ".", "", "## Per size and method", "",
          summary.to_markdown(index=False, floatfmt=".3g"), "",
          "`median_*`: Kaplan–Meier medians over (concept, seed) runs, \"inf\" = not reached by half of them.", "",
          "![cost to target against size](cost_to_target.png)", "",
          "## Ratios (a / b, FLOPs to target)", "",
          rt.drop(columns=["concept_scores"]).to_markdown(index=False, floatfmt=".3g"), "",
          "`geo_mean_ratio`: per concept the geometric mean over seeds of a/b where both reached, then over "
          "concepts, with a 95 % t interval; `km_median_ratio`: the ratio of the Kaplan–Meier medians; `sooner_p`: "
          "the censored sign test stratified by concept (positive scores: a got there first).", "",
          "## Structural edits: does the best student beat doing nothing by a clear margin?", "",
          "Test SSIM of identity (the input itself) and of the best method per concept and size (means over seeds); "
          "`clear` = the best is at least 0.15 above identity (the issue's bar for an edit whose structure shows).", "",
          structure.to_markdown(index=False, floatfmt=".3g"), ""]
    (a.dest / "scaling.md").write_text("\n".join(md))
    print("\n".join(md))


def structural(df: pd.DataFrame) -> pd.DataFrame:
    """Per concept and size: identity's test SSIM and PSNR, the best method by SSIM, its SSIM and PSNR, the gap."""
    rows = []
    for (size, concept), g in df.groupby(["size", "concept"], sort=False):
        means = g.groupby("method")[["ssim", "psnr"]].mean()
        if "identity" not in means.index or len(means) < 2:
            continue
        trained = means.drop(index="identity")
        best = trained["ssim"].idxmax()
        gap = float(trained.loc[best, "ssim"] - means.loc["identity", "ssim"])
        rows.append({"concept": concept, "size": size, "identity_ssim": means.loc["identity", "ssim"],
                     "best": best, "best_ssim": trained.loc[best, "ssim"], "ssim_gap": gap,
                     "identity_psnr": means.loc["identity", "psnr"], "best_psnr": trained.loc[best, "psnr"],
                     "clear": gap >= 0.15})
    return pd.DataFrame(rows)


def plot(summary: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    sizes = list(dict.fromkeys(summary["size"]))
    methods = list(dict.fromkeys(summary["method"]))
    for ax, col, label in ((axes[0], "median_flops", "median FLOPs to target"),
                           (axes[1], "median_steps", "median steps to target")):
        top = np.nanmax([v for v in summary[col] if np.isfinite(v)] or [1.0]) * 3
        ax.axhline(top, color="0.8", lw=0.8)
        ax.text(0.01, 0.985, "hollow, on the line: median not reached (fewer than half got there)", fontsize=7,
                color="0.4", transform=ax.transAxes, va="top")
        for k, (m, g) in enumerate(summary.groupby("method", sort=False)):
            color = f"C{k}"
            x = np.array([sizes.index(s) for s in g["size"]]) + (k - (len(methods) - 1) / 2) * 0.04
            v = g[col].to_numpy(dtype=float)
            ok = np.isfinite(v)
            # a line joins only medians that exist; a censored median is a hollow marker on the ceiling, unjoined
            for i in range(len(v) - 1):
                if ok[i] and ok[i + 1]:
                    ax.plot(x[i:i + 2], v[i:i + 2], "-", color=color)
            ax.plot(x[ok], v[ok], "o", color=color, label=m)
            ax.plot(x[~ok], np.full((~ok).sum(), top), "o", mfc="none", color=color)
            for xi, vi, r in zip(x, v, g["reached"], strict=True):
                ax.annotate(str(r), (xi, vi if np.isfinite(vi) else top), fontsize=6, color=color,
                            xytext=(3, (4 + 7 * (k % 3)) if np.isfinite(vi) else -9 - 7 * (k % 3)),
                            textcoords="offset points")
        ax.set_xticks(range(len(sizes)), [f"{s} px" for s in sizes])
        ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.set_xlabel("model size (resolution; ngf 16 / 32 / 64)")
    axes[0].legend(fontsize=8)
    fig.suptitle("cost to the fixed target per method and size (Kaplan–Meier medians; labels: runs that reached)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
