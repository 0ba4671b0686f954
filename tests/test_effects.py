"""Effects between methods (report/tables/effects.py) and the one-off vs per-concept cost table
(report/tables/amortise.py), on hand-made records whose answers are known."""

from __future__ import annotations

import math

import numpy as np

from e2gan_bench.config import TargetSpec
from e2gan_bench.record import RunRecord
from e2gan_bench.report.tables import amortise
from e2gan_bench.report.tables.effects import identity_gap, quality_at_steps, quality_effect, speed_effect
from e2gan_bench.report.tables.leaderboard import report_frames


def _rec(method: str, concept: str, seed: int, curve: list[tuple[int, float, float]], **metrics) -> tuple[str, RunRecord]:
    pts = [{"step": st, "seconds": sec, "flops": st * 10, "psnr": q} for st, sec, q in curve]
    return method, RunRecord(key=f"{method}-{concept}-{seed}", concept=concept, method=method, seed=seed,
                             val_curve={"points": pts}, provenance={"base": "B"} if method == "tuned" else {},
                             **metrics)


def _suite() -> list[tuple[str, RunRecord]]:
    pairs = []
    rng = np.random.default_rng(1)
    for i, c in enumerate("abcdef"):
        for seed in (0, 1):
            lvl = 10 + 2 * i
            pairs += [
                _rec("identity", c, seed, [(0, 0.0, lvl)], psnr=lvl, ssim=0.3, train_seconds=0.0),
                # tuned: reaches its final quality by step 10 (1 s); scratch only at step 100 (10 s)
                _rec("tuned", c, seed, [(0, 0.0, lvl + 3), (10, 1.0, lvl + 6), (100, 10.0, lvl + 6.1)],
                     psnr=lvl + 6 + rng.normal(0, 0.05), ssim=0.6, train_seconds=10.0),
                _rec("scratch", c, seed, [(0, 0.0, lvl), (10, 1.0, lvl + 1), (100, 10.0, lvl + 6)],
                     psnr=lvl + 5 + rng.normal(0, 0.05), ssim=0.5, train_seconds=10.0),
                _rec("twin", c, seed, [(0, 0.0, lvl), (10, 1.0, lvl + 1), (100, 10.0, lvl + 6)],
                     psnr=lvl + 5 + rng.normal(0, 0.05), ssim=0.5, train_seconds=10.0),
            ]
    return pairs


def test_quality_and_speed_effects_find_the_known_answers():
    pairs = _suite()
    df, lb = report_frames(pairs, target=TargetSpec(gap_fraction=0.9))
    q = quality_effect(df, "tuned", "scratch", "psnr", True)
    # the concept is the unit: 6 concepts (2 seeds averaged within each), not 12 runs
    assert q["units"] == 6 and q["runs"] == 12 and q["verdict"] == "tuned better" and 0.9 < q["diff"] < 1.1
    assert quality_effect(df, "scratch", "twin", "psnr", True)["verdict"] == "no significant difference"
    sp = speed_effect(df, "tuned", "scratch", "seconds")
    # tuned got there first on every run of every concept: the stratified sign test over 6 concepts
    assert sp["verdict"].startswith("tuned sooner") and sp["p_value"] < 0.05
    assert sp["median_ratio"] == 0.1 and sp["units"] == 6
    assert speed_effect(df, "scratch", "twin")["verdict"].startswith("no significant difference")
    gap = identity_gap(df).set_index("concept")
    assert (gap["best_method"] == "tuned").all() and np.allclose(gap["ssim_gap"], 0.3)
    qs = quality_at_steps(pairs)
    assert qs.loc["tuned", 10] > qs.loc["scratch", 10] and list(qs.columns) == [0, 10, 100]


def test_break_even_uses_seconds_to_target_and_says_never():
    pairs = _suite()
    df, lb = report_frames(pairs, target=TargetSpec(gap_fraction=0.9))
    base = [{"key": "B", "concepts": ["x"], "steps": 1, "train_seconds": 45.0, "train_flops": 1e9, "params": 1}]
    t = amortise.cost_table(pairs, lb, base).set_index("method")
    # tuned reaches the target in 1 s, scratch in 10 s: the 45 s base pays for itself after ceil(45 / 9) = 5
    assert t.loc["tuned", "break_even_by"] == "seconds to target" and t.loc["tuned", "break_even_concepts"] == 5
    assert t.loc["scratch", "base"] == "–"
    assert amortise._break_even(10.0, 12.0, 11.0) == math.inf  # per concept dearer than scratch: never
    md = "\n".join(amortise.markdown(t.reset_index()))
    assert "break_even_concepts" in md and "| tuned | B |" in md
