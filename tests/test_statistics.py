"""report/stats: the concept is the unit (a store whose seeds are strongly correlated within concepts), ranks only
where the concept-level paired test (Holm) supports them, Friedman, censored times to a target, fixed targets that
do not move when methods are added, and the gate's rule. No training: records are made by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from e2gan_bench.config import TargetSpec
from e2gan_bench.record import RunRecord
from e2gan_bench.report.stats import (
    friedman,
    km_median,
    paired_effect,
    paired_records,
    pairwise,
    ranks_with_ties,
    sooner,
    t_interval,
    units,
)
from e2gan_bench.report.stats.gate import REGRESSED, decide, paired_test
from e2gan_bench.report.tables.leaderboard import leaderboard, runs_frame
from e2gan_bench.report.tables.time_to_quality import add_time_to_quality, summarise

CONCEPTS = [f"c{i}" for i in range(6)]
SEEDS = (0, 1, 2)


def _rec(method: str, concept: str, seed: int, psnr: float, curve: list[tuple[int, float]] | None = None
         ) -> tuple[str, RunRecord]:
    pts = [{"step": s, "seconds": s / 10, "flops": s * 1000, "psnr": q} for s, q in (curve or [])]
    return method, RunRecord(key=f"{method}-{concept}-{seed}", concept=concept, method=method, seed=seed, psnr=psnr,
                             val_curve={"points": pts} if curve else None)


def correlated_store(seed: int = 0) -> list[tuple[str, RunRecord]]:
    """Three methods; a's advantage over b differs by concept (+1.2 … −0.4 dB, mean +0.4) and is nearly the same
    for the three seeds of a concept (seed noise 0.02 dB): per-run differences look very consistent, per-concept
    ones do not."""
    rng = np.random.default_rng(seed)
    effect = dict(zip(CONCEPTS, (1.2, 0.9, -0.4, 0.8, -0.3, 0.2), strict=True))
    pairs = []
    for c in CONCEPTS:
        level = 15 + 3 * rng.normal()
        for s in SEEDS:
            pairs += [_rec("a", c, s, level + effect[c] + rng.normal(0, 0.02)),
                      _rec("b", c, s, level + rng.normal(0, 0.02)),
                      _rec("c", c, s, level - 2.0 + rng.normal(0, 0.3))]
    return pairs


def test_intervals_and_ranks_come_from_concepts_not_runs():
    df = runs_frame(correlated_store())
    # per run, a - b looks significant (18 "units" with a tiny spread within concepts) …
    per_run = (df[df.method == "a"].set_index(["concept", "seed"])["psnr"]
               - df[df.method == "b"].set_index(["concept", "seed"])["psnr"])
    assert stats.ttest_1samp(per_run, 0.0).pvalue < 0.05
    # … per concept it is not: 6 units, the interval spans 0
    e = paired_effect(df, "a", "b", "psnr")
    assert e.n == 6 and e.units.n_seeds == 3 and e.interval.lo < 0 < e.interval.hi
    lb = leaderboard(df).set_index("method")
    assert lb.loc["a", "rank_psnr"] == lb.loc["b", "rank_psnr"] == 1  # a tie: no rank gap the data does not support
    assert lb.loc["c", "rank_psnr"] == 3
    assert lb.loc["a", "concepts"] == 6 and lb.loc["a", "seeds"] == 3
    # no leaderboard interval is narrower than the concept-level one (and it is wider than the per-run one)
    for m in "abc":
        concept_hw = t_interval(units(df, m, "psnr").values.to_numpy()).half_width
        run_hw = t_interval(df.loc[df.method == m, "psnr"].to_numpy()).half_width
        assert lb.loc[m, "psnr_ci95"] == pytest.approx(concept_hw) and lb.loc[m, "psnr_ci95"] > run_hw


def test_holm_keeps_a_rank_gap_only_where_the_adjusted_test_holds():
    df = runs_frame(correlated_store())
    table = pairwise(df, ["a", "b", "c"], "psnr", True).set_index(["a", "b"])
    assert table.loc[("a", "b"), "better"] == ""
    assert table.loc[("a", "c"), "better"] == "a" and table.loc[("b", "c"), "better"] == "b"
    for _, r in table.iterrows():  # adjusted p ≥ raw p, and significance only from the adjusted one
        assert r["p_holm"] >= r["p"] - 1e-15
        assert (r["better"] != "") == (r["p_holm"] < 0.05)
    assert ranks_with_ties(pairwise(df, ["a", "b", "c"], "psnr", True), ["a", "b", "c"]) == {"a": 1, "b": 1, "c": 3}


def test_friedman_mean_ranks_over_concepts():
    df = runs_frame(correlated_store())
    fr = friedman(df, ["a", "b", "c"], "psnr", True)
    assert fr.n_concepts == 6 and fr.mean_ranks["c"] == 3.0
    assert fr.mean_ranks["a"] == pytest.approx((1 + 1 + 2 + 1 + 2 + 1) / 6)
    mat = df.groupby(["concept", "method"])["psnr"].mean().unstack()
    ref = stats.friedmanchisquare(mat["a"], mat["b"], mat["c"])
    assert fr.statistic == pytest.approx(ref.statistic) and fr.p_value == pytest.approx(ref.pvalue)


def test_kaplan_meier_median_treats_not_reached_as_censored():
    # 4 of 6 reached (at 10, 20, 30, 40); 2 censored at 100: the median is 30 (S drops to 1/3 there)
    reached = np.array([True, True, True, True, False, False])
    times = np.array([10, 20, 30, 40, np.inf, np.inf])
    assert km_median(times, reached, np.full(6, 100.0)) == 30.0
    # censored early (at 5) they leave the risk set: the median is the plain median of the reached
    assert km_median(times, reached, np.full(6, 5.0)) == 20.0
    assert math.isinf(km_median(times, np.array([True, False, False, False, False, False]), np.full(6, 100.0)))
    assert km_median(np.array([1.0, 3.0]), np.array([True, True]), np.array([9.0, 9.0])) == 1.0


def _curves(method: str, reach_at: dict[str, int | None], budget: int = 100) -> list[tuple[str, RunRecord]]:
    out = []
    for c in CONCEPTS:
        for s in (0, 1):
            at = reach_at.get(c)
            curve = [(0, 10.0), (10, 11.0), (budget // 2, 12.0 if at != budget // 2 else 20.0),
                     (budget, 20.0 if at is not None else 12.0)]
            if at == 10:
                curve[1] = (10, 20.0)
            out.append(_rec(method, c, s, curve[-1][1], curve))
    return out


def test_fixed_target_does_not_move_when_a_method_is_added(tmp_path, monkeypatch):
    import e2gan_bench.report.tables.time_to_quality as ttq

    monkeypatch.setattr(ttq, "fixed_values", lambda spec: {c: 19.0 for c in CONCEPTS})
    fast = _curves("fast", {c: 10 for c in CONCEPTS})
    slow = _curves("slow", {c: 50 for c in CONCEPTS[:4]})
    better = [(m.replace("slow", "great"), r.model_copy(update={"method": "great", "key": "g" + r.key,
                                                               "val_curve": {"points": [
                                                                   {**p, "psnr": p["psnr"] + 30} for p in
                                                                   r.val_curve["points"]]}}))
              for m, r in slow]
    floor = [_rec("identity", c, s, 10.0, [(0, 10.0)]) for c in CONCEPTS for s in (0, 1)]
    fast, slow = floor + fast, slow
    spec = TargetSpec(file="any")
    two = add_time_to_quality(runs_frame(fast + slow), fast + slow, spec)
    three = add_time_to_quality(runs_frame(fast + slow + better), fast + slow + better, spec)
    cols = ["key", "target", "reached", "steps_to_target", "flops_to_target", "steps_spent"]
    a = two.sort_values("key")[cols].reset_index(drop=True)
    b = three[three.method != "great"].sort_values("key")[cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    # a relative target (best of the suite) does move: the great method raises it for everyone
    rel = TargetSpec(gap_fraction=0.9)
    r2 = add_time_to_quality(runs_frame(fast + slow), fast + slow, rel)
    r3 = add_time_to_quality(runs_frame(fast + slow + better), fast + slow + better, rel)
    assert not r2[r2.method == "fast"]["target"].equals(r3[r3.method == "fast"]["target"].reset_index(drop=True))
    assert leaderboard(two).attrs["friedman"].n_concepts == 6  # the rank summary survives the time-to-target join
    s = summarise(two).set_index("method")
    assert s.loc["fast", "median_steps_to_target"] == 10 and s.loc["slow", "median_steps_to_target"] == 50
    t = sooner(two, "fast", "slow", "steps")
    assert t.n_concepts == 6 and all(v == 1.0 for v in t.concept_scores.values())
    assert t.p_value == pytest.approx(2 / 64)  # all six concepts one way: the exact two-sided signed-rank p


def test_gate_rule_holm_and_deterministic_metrics():
    base = {(c, 0): 15.0 + i for i, c in enumerate(CONCEPTS)}
    drop = {k: v - 0.6 + 0.05 * i for i, (k, v) in enumerate(base.items())}  # every concept ~0.5 dB worse
    noise = {k: v + (0.3 if i % 2 else -0.3) for i, (k, v) in enumerate(base.items())}  # an equal candidate
    tests = {"psnr": paired_test(paired_records(base, drop), True, 0.95),
             "ssim": paired_test(paired_records(base, noise), True, 0.95),
             "stored_bytes": paired_test(paired_records({k: 100.0 for k in base}, {k: 130.0 for k in base}), False,
                                         0.95)}
    decide(tests, {"psnr": 0.2, "ssim": 0.2, "stored_bytes": 10.0})
    assert tests["psnr"].status == REGRESSED and tests["psnr"].p_holm == pytest.approx(2 * tests["psnr"].p_worse)
    assert tests["ssim"].status == "pass"
    assert tests["stored_bytes"].deterministic and tests["stored_bytes"].status == REGRESSED
    assert tests["stored_bytes"].p_holm == 0.0  # exact: not part of the Holm family
