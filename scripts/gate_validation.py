"""The regression gate's error rates, measured: A/A false alarms and detection of degraded variants.

    e2gan-bench run --suite standard --out runs/std
    e2gan-bench run --suite gate-degraded --out runs/std
    python scripts/gate_validation.py --out runs/std --dest reports/gate-validation
    (``--standard-out DIR``: the standard suite's runs, the A/A part, from another store)

* **A/A (false alarms)**: for each method of the standard suite, the same recipe on both sides of
  ``compare``, the two sides drawn from *different seeds* of each concept (the seed of the candidate's run is
  relabelled to its base's, so the gate pairs them by concept) — only training noise differs. Many random
  seed assignments are gated with the default gates; the false-alarm rate is the fraction that exit 1. The
  assignments reuse the same runs, so they are resamples, not independent experiments: the rate is an
  estimate of the gate's behaviour on this noise, with a Wilson interval over the distinct comparisons.
* **Detection**: each degraded variant of ``gate-degraded`` (seed 0) against ``e2gan`` (seed 0), the gate as
  ``compare`` runs it; caught = exit 1.
"""

from __future__ import annotations

import argparse
import os
import random
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from e2gan_bench.harness.store import ResultsStore  # noqa: E402
from e2gan_bench.record import RunRecord  # noqa: E402
from e2gan_bench.report.compare import compare  # noqa: E402
from e2gan_bench.report.verdict import to_markdown  # noqa: E402

DEGRADED = ["rank1-everywhere", "transformer-only", "quarter-steps"]


def _records(store: ResultsStore, suite: str) -> dict[str, list[RunRecord]]:
    by: dict[str, list[RunRecord]] = {}
    for method, r in store.records(suite):
        if r.status == "ok":  # one training may serve several suites under other labels: use this suite's
            by.setdefault(method, []).append(r.model_copy(update={"method": method}))
    return by


def aa_rates(runs: list[RunRecord], draws: int, rng: random.Random) -> dict[str, object]:
    """Gate ``draws`` random different-seed assignments of one method's runs against each other."""
    by_concept: dict[str, dict[int, RunRecord]] = {}
    for r in runs:
        by_concept.setdefault(r.concept, {})[r.seed] = r
    concepts = sorted(c for c, s in by_concept.items() if len(s) >= 2)
    seen, alarms, metrics_failed = set(), 0, {}
    for _ in range(draws):
        base, cand, sig = [], [], []
        for c in concepts:
            sa, sb = rng.sample(sorted(by_concept[c]), 2)
            sig.append((c, sa, sb))
            base.append(by_concept[c][sa])
            cand.append(by_concept[c][sb].model_copy(update={"seed": sa}))
        seen.add(tuple(sig))
        res = compare(base, cand)
        if res.exit_code == 1:
            alarms += 1
            for m in res.failed:
                metrics_failed[m.metric] = metrics_failed.get(m.metric, 0) + 1
    n = len(seen)
    rate = alarms / draws
    lo, hi = stats.binomtest(round(rate * n), n).proportion_ci(0.95, method="wilson") if n else (None, None)
    return {"concepts": len(concepts), "draws": draws, "distinct": n, "false_alarms": alarms, "rate": rate,
            "ci95": f"[{lo:.3f}, {hi:.3f}]" if n else "–",
            "failed_on": ", ".join(f"{k} ×{v}" for k, v in sorted(metrics_failed.items())) or "–"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/std"))
    ap.add_argument("--standard-out", type=Path, default=None, help="store of the standard suite (default: --out)")
    ap.add_argument("--dest", type=Path, default=Path("reports/gate-validation"))
    ap.add_argument("--draws", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    store = ResultsStore(a.out, readonly=True)
    a.dest.mkdir(parents=True, exist_ok=True)
    rng = random.Random(a.seed)
    std_store = ResultsStore(a.standard_out, readonly=True) if a.standard_out else store
    std = _records(std_store, "standard")
    aa = [{"method": m, **aa_rates(runs, a.draws, rng)} for m, runs in std.items() if m != "identity"]
    deg = _records(store, "gate-degraded")
    det = []
    for variant in DEGRADED:
        if variant not in deg or "e2gan" not in deg:
            continue
        res = compare(deg["e2gan"], deg[variant])
        det.append({"variant": variant, "runs": len(res.matched), "exit": res.exit_code, "caught": res.exit_code == 1,
                    "failed_on": ", ".join(m.metric for m in res.failed) or "–",
                    "psnr_diff": next((m.diff for m in res.metrics if m.metric == "psnr"), None)})
        (a.dest / f"compare-{variant}.md").write_text(to_markdown(res))
    aa_df, det_df = pd.DataFrame(aa), pd.DataFrame(det)
    aa_df.to_csv(a.dest / "aa.csv", index=False)
    det_df.to_csv(a.dest / "detection.csv", index=False)
    total = aa_df["false_alarms"].sum() / aa_df["draws"].sum() if not aa_df.empty else float("nan")
    md = ["# Regression-gate validation", "", __doc__.split("\n\n", 2)[2].strip(), "",
          f"Store `{a.out}`" + (f" (standard suite: `{a.standard_out}`)" if a.standard_out else "")
          + f"; default gates; {a.draws} draws per method, seed {a.seed}.", "",
          "## A/A false alarms (same recipe, different seeds)", "", aa_df.to_markdown(index=False), "",
          f"Overall: {aa_df['false_alarms'].sum()} alarms in {aa_df['draws'].sum()} gated comparisons "
          f"(rate {total:.3f}; target ≤ 0.05).", "",
          "## Detection of degraded variants (vs e2gan, seed 0)", "",
          det_df.to_markdown(index=False) if not det_df.empty else "_not run_", "",
          f"Caught {int(det_df['caught'].sum()) if not det_df.empty else 0} of {len(det_df)} (target ≥ 2 of 3). "
          "Each comparison's full table: `compare-<variant>.md`.", ""]
    (a.dest / "gate_validation.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
