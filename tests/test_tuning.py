"""`e2gan-bench tune`: the same number of quasi-random trials for every method, on concepts disjoint from every
reported suite, scored on the validation split; the chosen values written back into the method file. The real
pipeline at 16 px."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from conftest import cli, one_error_line, write_suite

from e2gan_bench.config import Method, TuneDim
from e2gan_bench.harness.tuning import draw_trials

TUNE_SUITE = """name: tuning-tiny
concepts: [alien-world, pop-posterize]
methods: [identity, tiny-a, tiny-b]
data: {resolution: 16, n_train: 8, n_test: 4, n_val: 4}
model: {e2gan: {ngf: 4}, discriminator: {ndf: 4}}
budget: {steps: 4, batch: 2}
curve: {points: 2, first: 2, max_images: 4}
eval: {kid_subsets: 2, kid_subset_size: 3, lpips: false, latency: false, samples_in_grid: 0}
"""

METHOD = """name: {name}
arch: e2gan
init: scratch
trainable: all
budget: {{steps: 4, batch: 2, lr: 0.002}}
tuning:
  budget.lr: {{low: 0.0001, high: 0.05, log: true}}
  budget.schedule: {{choices: [constant, cosine]}}
"""


def test_draws_are_reproducible_spread_and_start_from_the_current_settings():
    m = Method(name="m", budget={"lr": 0.002}, tuning={"budget.lr": TuneDim(low=1e-4, high=1e-1, log=True),
                                                       "budget.warmup": TuneDim(choices=(0, 10, 30))})
    a, b = draw_trials(m, 8), draw_trials(m, 8)
    assert a == b and len(a) == 8
    assert a[0].config == {"budget.lr": 0.002, "budget.warmup": 0}  # trial 0: the method as it is
    lrs = [t.config["budget.lr"] for t in a[1:]]
    assert all(1e-4 <= x <= 1e-1 for x in lrs) and min(lrs) < 1e-3 < 1e-2 < max(lrs)  # spread over the decades
    assert {t.config["budget.warmup"] for t in a[1:]} == {0, 10, 30}
    assert a[3].overrides() == {"budget": {"lr": a[3].config["budget.lr"], "warmup": a[3].config["budget.warmup"]}}
    with pytest.raises(ValueError):
        TuneDim(low=1.0, high=0.5)


@pytest.mark.slow  # a whole suite through the CLI: the slow tier (CI runs both)
def test_tune_runs_equal_trials_scores_on_validation_and_writes_the_method(tmp_path, capsys):
    mdir = tmp_path / "methods"
    mdir.mkdir()
    for n in ("tiny-a", "tiny-b"):
        (mdir / f"{n}.yaml").write_text(METHOD.format(name=n))
    suite = write_suite(tmp_path, TUNE_SUITE)
    dest = tmp_path / "rep"
    assert cli("tune", "--suite", suite, "--trials", "3", "--out", tmp_path / "out", "--dest", dest,
               "--methods-dir", mdir, "--write-methods", mdir) == 0
    rows = pd.read_csv(dest / "trials.csv")
    assert rows.groupby("method")["trial"].nunique().to_dict() == {"tiny-a": 3, "tiny-b": 3}  # equal budgets
    assert set(rows["concept"]) == {"alien-world", "pop-posterize"} and rows["val_psnr"].notna().all()
    md = (dest / "tuning.md").read_text()
    assert "## `tiny-a`: chosen trial" in md and "validation" in md
    # the chosen trial is the best mean validation PSNR over concepts, and its values are now in the method file
    for n in ("tiny-a", "tiny-b"):
        g = rows[rows.method == n].groupby("trial")["val_psnr"].mean()
        best = rows[(rows.method == n) & (rows.trial == g.idxmax())].iloc[0]
        written = yaml.safe_load((mdir / f"{n}.yaml").read_text())
        assert written["budget"]["lr"] == pytest.approx(best["cfg.budget.lr"])
        assert written["budget"]["schedule"] == best["cfg.budget.schedule"]
        assert written["tuning"]["budget.lr"]["log"] is True  # the rest of the file is kept
    assert "tuned by `e2gan-bench tune" in (mdir / "tiny-a.yaml").read_text()


def test_tuning_concepts_must_be_disjoint_from_reported_suites(tmp_path, capsys):
    suite = write_suite(tmp_path, TUNE_SUITE.replace("alien-world", "pencil-sketch"))
    capsys.readouterr()
    assert cli("tune", "--suite", suite, "--out", tmp_path / "out") == 2
    one_error_line(capsys, "disjoint", "pencil-sketch")
    assert not (tmp_path / "out").exists()
