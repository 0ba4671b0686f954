"""The `gate` suite's error rates, measured: A/A false alarms from independent replicates, a power curve from
injected regressions, and detection of real degraded variants.

    e2gan-bench run --suite gate-calibration --out runs/gate      # ~75 min on 2 CPU cores
    python scripts/gate_validation.py --out runs/gate --dest reports/gate-validation

Every comparison below is the product's own rule (``report.compare.comparison.compare`` with the gate suite's
tolerances and level, concepts as units, Holm across the gated metrics with noise) — nothing is re-implemented here.

* **A/A (false alarms)**: the gate's reference ``e2gan`` trained with 10 independent training seeds
  (``seed_offset`` 0–9: the same photographs and base model; a new initialisation, data subset and batch order).
  Each ordered pair of distinct replicates (i as the reference, j as the candidate: 90 comparisons from 45 pairs) is
  gated; an alarm is exit 1. The rate is the fraction of pairs that alarm in either direction, with a Wilson
  interval over the 45 pairs — the pairs share replicates, so the interval is approximate; the 5 disjoint pairs
  (0–1, 2–3, …) are fully independent and reported apart.
* **Power curve (injected regressions)**: the same A/A comparisons with the candidate's test PSNR lowered by δ dB in
  every run (0.1 … 2 dB), so the noise is real and the regression is known; detection rate against δ, and the
  minimum detectable effect (MDE) at 80 % power. The candidate's other metrics keep their A/A values: this is the
  power of the gate to catch a PSNR regression.
* **Real variants**: 160 and 90 of the 300 steps and LoRA rank 2 instead of 4, each with training seeds 0–2,
  each gated against the reference replicate of the same training seed (as a user's gate run pairs them): their
  measured PSNR effect and how often the gate caught them.
* **Cold time**: what a user's gate run costs cold on this machine — the base model and the reference's and a
  candidate's runs — from the stored training and evaluation seconds.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from e2gan_bench.config import load_suite  # noqa: E402
from e2gan_bench.harness.store import ResultsStore  # noqa: E402
from e2gan_bench.record import RunRecord  # noqa: E402
from e2gan_bench.report.compare.comparison import compare  # noqa: E402
from e2gan_bench.report.compare.gates import resolve_gates  # noqa: E402
from e2gan_bench.resources import builtin_dir  # noqa: E402

REFERENCE = "e2gan"
VARIANTS = ("steps-160", "steps-90", "rank-2")
SHIFTS = (0.0, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0, 1.5, 2.0)


def arms(store: ResultsStore, suite: str) -> dict[str, list[RunRecord]]:
    """method label -> its finished records (one per concept)."""
    by: dict[str, list[RunRecord]] = {}
    for method, r in store.records(suite):
        if r.status == "ok":
            by.setdefault(method, []).append(r.model_copy(update={"method": method}))
    return by


def reference_arms(by: dict[str, list[RunRecord]]) -> dict[int, list[RunRecord]]:
    out = {0: by[REFERENCE]} if REFERENCE in by else {}
    out.update({int(m.rsplit("-o", 1)[1]): rs for m, rs in by.items() if m.startswith(f"{REFERENCE}-o")})
    return dict(sorted(out.items()))


def shifted(recs: list[RunRecord], delta: float, method: str) -> list[RunRecord]:
    return [r.model_copy(update={"psnr": float(r.psnr) - delta, "method": method}) for r in recs]


def gate(reference: list[RunRecord], cand: list[RunRecord], gates, alpha: float):
    ref = [r.model_copy(update={"method": "reference"}) for r in reference]
    c = [r.model_copy(update={"method": "candidate"}) for r in cand]
    return compare(ref, c, gates, 0.95, alpha)


def wilson(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    return float(ci.low), float(ci.high)


def cold_seconds(store: ResultsStore, recs: list[RunRecord]) -> dict[str, float]:
    """Training and evaluation seconds of these runs, and the base model's (validation curves, data building and
    start-up are not in the records: the measured cold run says the whole)."""
    train = sum(float(r.value("train_seconds") or 0.0) for r in recs)
    ev = sum(float(r.eval_seconds or 0.0) for r in recs)
    base = 0.0
    keys = {r.provenance.get("base") for r in recs if r.provenance.get("base")}
    for k in keys:
        meta = store.root / "cache" / "base" / str(k) / "meta.json"
        if meta.is_file():
            base += float(json.loads(meta.read_text()).get("train_seconds") or 0.0)
    return {"train": train, "eval": ev, "base": base}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/gate"))
    ap.add_argument("--suite", default="gate-calibration")
    ap.add_argument("--gate-suite", default="gate")
    ap.add_argument("--dest", type=Path, default=Path("reports/gate-validation"))
    a = ap.parse_args()
    gs = load_suite(builtin_dir("suites") / f"{a.gate_suite}.yaml")
    gates, alpha = resolve_gates(list(gs.gate.tolerances)), gs.gate.alpha
    store = ResultsStore(a.out, readonly=True)
    by = arms(store, a.suite)
    ref = reference_arms(by)
    a.dest.mkdir(parents=True, exist_ok=True)

    # ---- A/A
    aa_rows = []
    for i, j in itertools.permutations(ref, 2):
        res = gate(ref[i], ref[j], gates, alpha)
        psnr = next(m for m in res.metrics if m.metric == "psnr")
        aa_rows.append({"reference": i, "candidate": j, "exit": res.exit_code, "alarm": res.exit_code == 1,
                        "failed_on": ", ".join(m.metric for m in res.failed) or "–", "psnr_diff": psnr.diff,
                        "psnr_p": psnr.p_worse, "units": psnr.n})
    aa = pd.DataFrame(aa_rows)
    pairs = {}
    for r in aa_rows:
        key = tuple(sorted((r["reference"], r["candidate"])))
        pairs[key] = pairs.get(key, False) or r["alarm"]
    n_ord, k_ord = len(aa), int(aa["alarm"].sum()) if len(aa) else 0
    n_pairs, k_pairs = len(pairs), sum(pairs.values())
    lo, hi = wilson(k_pairs, n_pairs)
    disjoint = {k: v for k, v in pairs.items() if k[1] == k[0] + 1 and k[0] % 2 == 0}
    aa.to_csv(a.dest / "aa.csv", index=False)

    # noise: per concept, the spread of test PSNR over the reference replicates
    mat = pd.DataFrame({i: {r.concept: r.psnr for r in rs} for i, rs in ref.items()})
    run_sd = mat.std(axis=1, ddof=1)

    # ---- power curve: injected PSNR regressions on the A/A comparisons
    power_rows = []
    for delta in SHIFTS:
        hits = [gate(ref[i], shifted(ref[j], delta, "c"), gates, alpha).exit_code == 1
                for i, j in itertools.permutations(ref, 2)]
        k = int(sum(hits))
        plo, phi = wilson(k, len(hits))
        power_rows.append({"injected_psnr_drop_db": delta, "comparisons": len(hits), "detected": k,
                           "rate": k / len(hits) if hits else math.nan, "ci95_lo": plo, "ci95_hi": phi})
    power = pd.DataFrame(power_rows)
    power.to_csv(a.dest / "power.csv", index=False)
    above = power[(power["rate"] >= 0.8) & (power["injected_psnr_drop_db"] > 0)]
    mde = float(above["injected_psnr_drop_db"].min()) if not above.empty else None

    # ---- real variants, each against the reference replicate with its own training seed
    det_rows = []
    for v in VARIANTS:
        for m, rs in sorted(by.items()):
            if not m.startswith(f"{v}-o"):
                continue
            k = int(m.rsplit("-o", 1)[1])
            if k not in ref:
                continue
            res = gate(ref[k], rs, gates, alpha)
            psnr = next(x for x in res.metrics if x.metric == "psnr")
            det_rows.append({"variant": v, "training_seed": k, "caught": res.exit_code == 1,
                             "failed_on": ", ".join(x.metric for x in res.failed) or "–", "psnr_diff": psnr.diff,
                             "psnr_ci95": f"[{psnr.ci_t[0]:.2f}, {psnr.ci_t[1]:.2f}]" if psnr.ci_t else "–",
                             "psnr_p_holm": psnr.p_holm})
    det = pd.DataFrame(det_rows)
    det.to_csv(a.dest / "detection.csv", index=False)
    summary = (det.groupby("variant", sort=False).agg(replicates=("caught", "size"), caught=("caught", "sum"),
                                                       mean_psnr_diff=("psnr_diff", "mean"))
               if not det.empty else pd.DataFrame())

    # ---- cold cost of a gate run: base + reference + one candidate (the reference's own numbers, twice)
    cost = cold_seconds(store, ref.get(0, []))
    per_method = cost["train"] + cost["eval"]
    cold = cost["base"] + 2 * per_method

    plot(power, det, a.dest / "power.png", mde)
    prov = next(iter(ref.get(0, [])), None)
    md = ["# The gate suite's error rates", "", __doc__.split("\n\n", 2)[2].strip(), "",
          f"Gate suite `{gs.name}`: {len(gs.concepts)} concepts × {len(gs.seeds)} seed(s); tolerances "
          f"{', '.join(gs.gate.tolerances) or 'the metrics defaults'} over the metrics' defaults; alpha {alpha:g}. "
          f"Store `{a.out}`, suite `{a.suite}`"
          + (f"; code `{prov.provenance.get('git')}`, {prov.provenance.get('cpu') or prov.provenance.get('machine')}"
             if prov else "") + ".", "",
          "## A/A false alarms", "",
          f"- {len(ref)} independent replicates of `{REFERENCE}` (training seeds {', '.join(map(str, ref))}).",
          f"- **{k_ord} alarms in {n_ord} ordered comparisons**; {k_pairs} of {n_pairs} replicate pairs alarmed in "
          f"either direction: rate {k_pairs / n_pairs if n_pairs else math.nan:.3f}, 95 % Wilson interval "
          f"[{lo:.3f}, {hi:.3f}] (target ≤ 0.05; the test's own level is {alpha:g}, one-sided, Holm across metrics).",
          f"- The {len(disjoint)} disjoint pairs (fully independent comparisons): {sum(disjoint.values())} alarmed.",
          "- Test-PSNR spread over the replicates, per concept (sd, dB): "
          + ", ".join(f"{c} {v:.2f}" for c, v in run_sd.items()) + f"; mean {run_sd.mean():.2f}.", "",
          "Every comparison: `aa.csv`.", "",
          "## Power: injected PSNR regressions", "",
          power.to_markdown(index=False, floatfmt=".3g"), "",
          f"**Minimum detectable PSNR drop at 80 % power: {mde if mde is not None else 'above 2'} dB** "
          "(the smallest injected drop detected in ≥ 80 % of the comparisons).", "",
          "![power curve](power.png)", "",
          "## Real degraded variants", "",
          det.to_markdown(index=False, floatfmt=".3g") if not det.empty else "_not run_", "",
          summary.to_markdown(floatfmt=".3g") if not summary.empty else "", "",
          "## Cost of a cold gate run (this machine)", "",
          f"- base model {cost['base']:.0f} s; the reference's {len(ref.get(0, []))} runs: training {cost['train']:.0f} s, "
          f"evaluation {cost['eval']:.0f} s (validation curves, data building and start-up are not recorded per run).",
          f"- Base + reference + a candidate costing the same: **{cold / 60:.1f} min** of training and evaluation; the "
          "measured wall time of a cold `e2gan-bench gate` is in reports/gate-validation/README.md.", ""]
    (a.dest / "gate_validation.md").write_text("\n".join(md))
    cal = {"false_alarm_rate": round(k_pairs / n_pairs, 4) if n_pairs else None,
           "false_alarm_comparisons": n_pairs, "mde_psnr_db": mde, "cold_seconds": round(cold, 1),
           "measured": f"reports/gate-validation at {prov.provenance.get('git') if prov else '?'}"}
    (a.dest / "calibration.txt").write_text("gate.calibration for suites/gate.yaml:\n" +
                                             "\n".join(f"  {k}: {v}" for k, v in cal.items()) + "\n")
    print("\n".join(md))
    print(cal)


def plot(power: pd.DataFrame, det: pd.DataFrame, path: Path, mde: float | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    x = power["injected_psnr_drop_db"]
    ax.plot(x, power["rate"], "o-", label="injected drop (A/A noise)")
    ax.fill_between(x, power["ci95_lo"], power["ci95_hi"], alpha=0.2)
    if not det.empty:
        g = det.groupby("variant", sort=False).agg(d=("psnr_diff", "mean"), r=("caught", "mean"))
        ax.scatter(-g["d"], g["r"], marker="s", color="C3", zorder=3, label="real variants (3 training seeds)")
        for v, row in g.iterrows():
            ax.annotate(v, (-row["d"], row["r"]), textcoords="offset points", xytext=(4, -10), fontsize=8)
    ax.axhline(0.8, color="grey", lw=0.8, ls="--")
    if mde is not None:
        ax.axvline(mde, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("PSNR drop (dB)")
    ax.set_ylabel("detection rate")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title("gate suite: detection vs regression size")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
