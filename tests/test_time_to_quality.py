"""Validation curves, time-to-quality and ranks with ties: unit checks on hand-made records, and the real
pipeline at tiny size (curves stored, runs.csv columns, legend)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import cli, write_suite

from e2gan_bench.config import CurveSpec, TargetSpec
from e2gan_bench.record import RunRecord
from e2gan_bench.report.stats import pairwise, ranks_with_ties
from e2gan_bench.report.tables.leaderboard import format_cell, leaderboard, runs_frame
from e2gan_bench.report.tables.time_to_quality import add_time_to_quality, summarise, targets
from e2gan_bench.training.validation import checkpoint_steps


def _rec(method: str, concept: str, seed: int, curve: list[tuple[int, float]], psnr: float | None = None,
         status: str = "ok") -> tuple[str, RunRecord]:
    pts = [{"step": s, "seconds": s / 10, "flops": s * 1000, "psnr": q} for s, q in curve]
    r = RunRecord(key=f"{method}-{concept}-{seed}", concept=concept, method=method, seed=seed, status=status,
                  val_curve={"points": pts, "backends": {}, "n_images": 4},
                  psnr=psnr if psnr is not None else (curve[-1][1] if curve else None))
    return method, r


def test_checkpoints_are_log_spaced_and_end_at_the_budget():
    steps = checkpoint_steps(300, CurveSpec(points=8, first=10))
    assert steps[0] == 10 and steps[-1] == 300 and steps == sorted(set(steps))
    gaps = np.diff(steps)
    assert (gaps[1:] >= gaps[:-1]).all()  # widening: log spacing
    assert checkpoint_steps(5, CurveSpec(points=8, first=10)) == [5]
    assert checkpoint_steps(100, CurveSpec(points=0)) == []


def test_gap_target_steps_and_not_reached():
    pairs = [_rec("identity", "c", 0, [(0, 10.0)]),
             _rec("fast", "c", 0, [(0, 10.0), (10, 19.2), (100, 20.0)]),
             _rec("slow", "c", 0, [(0, 10.0), (10, 12.0), (100, 19.5)]),
             _rec("never", "c", 0, [(0, 10.0), (10, 11.0), (100, 13.0)])]
    tg = targets(pairs, TargetSpec(gap_fraction=0.9))
    assert tg[("c", 0)] == pytest.approx(10.0 + 0.9 * 10.0)  # 90 % of identity -> best final (20)
    df = add_time_to_quality(runs_frame(pairs), pairs, TargetSpec(gap_fraction=0.9))
    row = df.set_index("method")
    assert row.loc["fast", "steps_to_target"] == 10 and row.loc["fast", "seconds_to_target"] == pytest.approx(1.0)
    assert row.loc["slow", "steps_to_target"] == 100 and bool(row.loc["slow", "reached"])
    assert not bool(row.loc["never", "reached"]) and pd.isna(row.loc["never", "steps_to_target"])
    assert row.loc["never", "steps_spent"] == 100 and row.loc["slow", "checkpoint_before"] == 10
    s = summarise(df).set_index("method")
    assert np.isinf(s.loc["never", "median_seconds_to_target"])
    assert format_cell("median_seconds_to_target", s.loc["never", "median_seconds_to_target"]) == "not reached"
    assert s.loc["fast", "median_steps_to_target"] < s.loc["slow", "median_steps_to_target"]


def test_reference_target_and_failed_runs_have_no_time():
    pairs = [_rec("ref", "c", 0, [(0, 8.0), (50, 16.0)]), _rec("other", "c", 0, [(0, 8.0), (20, 15.6)]),
             _rec("broken", "c", 0, [], status="failed")]
    spec = TargetSpec(reference="ref", tolerance=0.5)
    assert targets(pairs, spec)[("c", 0)] == pytest.approx(15.5)
    df = add_time_to_quality(runs_frame(pairs), pairs, spec).set_index("method")
    assert df.loc["other", "steps_to_target"] == 20
    assert pd.isna(df.loc["broken", "reached"]) if "broken" in df.index else True


def test_ranks_tie_where_paired_differences_are_not_significant():
    rng = np.random.default_rng(0)
    pairs = []
    for i, concept in enumerate(["a", "b", "c", "d"]):
        for seed in (0, 1):
            base = 10.0 + 3 * i + rng.normal(0, 0.01)  # concepts differ a lot; methods differ consistently
            pairs += [_rec("best", concept, seed, [(0, base + 2.0)]), _rec("twin", concept, seed, [(0, base + 2.0
                                                                                                   + rng.normal(0, 0.05))]),
                      _rec("worst", concept, seed, [(0, base)])]
    df = runs_frame(pairs)
    rk = ranks_with_ties(pairwise(df, ["best", "twin", "worst"], "psnr", True), ["best", "twin", "worst"])
    assert rk["best"] == rk["twin"] == 1 and rk["worst"] == 3
    lb = leaderboard(df)
    assert lb.set_index("method").loc["worst", "rank_psnr"] == 3
    assert lb.set_index("method").loc["best", "psnr_ci95"] > 1.0  # unpaired interval: spread between concepts


CURVE_SUITE = """name: tiny-curve
concepts: [negative]
methods: [identity, {scratch: {budget: {steps: 12}}}]
data: {resolution: 16, n_train: 12, n_test: 4}
model: {e2gan: {ngf: 4}, pix2pix-resnet: {ngf: 4, n_blocks: 1}, discriminator: {ndf: 4}}
budget: {steps: 12, batch: 2}
curve: {points: 4, first: 2, max_images: 4}
eval: {kid_subsets: 2, kid_subset_size: 3, lpips: false, latency: false, samples_in_grid: 2}
"""


def test_suite_records_validation_curves_and_time_to_quality(tmp_path):
    assert cli("run", "--suite", write_suite(tmp_path, CURVE_SUITE), "--out", tmp_path / "out") == 0
    runs = pd.read_csv(tmp_path / "out" / "reports" / "tiny-curve" / "runs.csv").set_index("method")
    for c in ("steps_to_target", "seconds_to_target", "flops_to_target", "reached", "target"):
        assert c in runs.columns
    assert runs.loc["identity", "val_final"] == pytest.approx(runs.loc["identity", "val_final"])  # present
    curves = {len(c): c for c in map(pd.read_csv, (tmp_path / "out").rglob("val_curve.csv"))}
    assert sorted(curves) == [1, 5]  # identity: its starting point only; scratch: step 0 and 4 checkpoints
    assert bool(runs.loc["scratch", "reached"]) and runs.loc["scratch", "steps_to_target"] > 0
    c = curves[5]
    assert list(c["step"]) == [0, *checkpoint_steps(12, CurveSpec(points=4, first=2))]
    assert (np.diff(c["seconds"]) >= 0).all() and (np.diff(c["flops"]) > 0).all()
    assert set(c.columns) >= {"psnr", "ssim"} and "lpips" not in c.columns  # the suite turned LPIPS off
    md = (tmp_path / "out" / "reports" / "tiny-curve" / "leaderboard.md").read_text()
    assert "time to target: **relative** target per (concept, seed)" in md and "rank_psnr" in md
