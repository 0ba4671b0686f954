"""`e2gan-bench compare`: the regression gate. No training: run records are built directly and written into
real results stores (and exported runs.csv files)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import cli, one_error_line
from scipy import stats

from e2gan_bench.errors import UserError
from e2gan_bench.harness.store import ResultsStore
from e2gan_bench.keys import content_key
from e2gan_bench.metrics import all_metrics
from e2gan_bench.record import RunRecord
from e2gan_bench.report.compare.comparison import compare
from e2gan_bench.report.compare.gates import default_gates, parse_gate, resolve_gates
from e2gan_bench.report.compare.sides import load_side
from e2gan_bench.report.compare.verdict import to_markdown
from e2gan_bench.report.stats import hierarchical_bootstrap, holm, paired_records, t_interval
from e2gan_bench.report.tables.leaderboard import leaderboard, runs_frame, write_reports

CONCEPTS = ["pencil-sketch", "winter", "gameboy"]
FEATURES = "resnet18-random-init@random-init:bd30fa36199dda54"
REF_VALUES = {  # per concept: a realistic CPU-suite spread
    "pencil-sketch": dict(psnr=14.1, ssim=0.41, lpips=0.035, kid=0.0165, fid=120.0),
    "winter": dict(psnr=18.7, ssim=0.62, lpips=0.060, kid=0.0310, fid=95.0),
    "gameboy": dict(psnr=12.3, ssim=0.33, lpips=0.110, kid=0.0520, fid=150.0),
}


def rec(concept: str, method: str, seed: int = 0, *, reference: bool = False, status: str = "ok",
        backends: dict | None = None, **over) -> RunRecord:
    vals = dict(REF_VALUES.get(concept, REF_VALUES["winter"]))
    vals.update(train_seconds=20.0 + seed, train_flops=2.6e9, trainable_params=11072, stored_bytes=47328)
    vals.update(over)
    b = {"kid": FEATURES, "fid": FEATURES, "resize": "bilinear-224", "psnr": "torchmetrics",
         "ssim": "torchmetrics", "lpips": "lpips-alex"}
    b.update(backends or {})
    return RunRecord(key=content_key(concept, method, seed, vals, b, status), concept=concept, method=method,
                     seed=seed, reference=reference, status=status, backends=b,
                     error="boom" if status != "ok" else None, **vals)


def write_store(root, records, suite: str = "quick"):
    store = ResultsStore(root)
    for r in records:
        store.commit(r, store.staging(r.key), suite)
    return root


def identity(concept: str, seed: int = 0) -> RunRecord:
    return rec(concept, "identity", seed, reference=True, psnr=9.0, train_seconds=0.0, train_flops=0.0,
               trainable_params=0, stored_bytes=0)


def side(method: str, seeds=(0,), concepts=CONCEPTS, with_identity: bool = True, **per_metric_delta):
    """Runs of ``method``; ``per_metric_delta[m]`` is a constant or a callable (concept, seed) → delta."""
    out = []
    for s in seeds:
        for c in concepts:
            ref = dict(REF_VALUES[c], train_seconds=20.0 + s, stored_bytes=47328)
            over = {}
            for m, d in per_metric_delta.items():
                delta = d(c, s) if callable(d) else d
                over[m] = ref[m] + delta
            out.append(rec(c, method, s, **over))
            if with_identity:
                out.append(identity(c, s))
    return out


# ------------------------------------------------------------------------------------------------ stats

def test_concept_units_intervals_and_bootstrap_match_scipy():
    """Paired differences are averaged within concepts; the interval is Student-t over concepts (scipy), the
    hierarchical bootstrap is reproducible, and with one concept the seeds are the units."""
    rng = np.random.default_rng(3)
    ref, cand = {}, {}
    for i in range(6):
        for s in range(3):
            b = float(rng.normal(15.0, 2.0))
            ref[(f"c{i}", s)], cand[(f"c{i}", s)] = b, b + float(rng.normal(-0.4 + 0.1 * i, 0.3))
    u = paired_records(ref, cand)
    assert u.level == "concept" and u.n == 6 and u.n_seeds == 3 and u.n_runs == 18
    d = np.array([np.mean([cand[(f"c{i}", s)] - ref[(f"c{i}", s)] for s in range(3)]) for i in range(6)])
    assert u.values.to_numpy() == pytest.approx(d)
    iv = t_interval(u.values.to_numpy(), 0.95)
    assert iv.bounds == pytest.approx(stats.t.interval(0.95, 5, loc=d.mean(), scale=stats.sem(d)), rel=1e-12)
    boot = hierarchical_bootstrap(u.groups)
    assert boot == hierarchical_bootstrap(u.groups) and boot[0] < d.mean() < boot[1]
    one = paired_records({("c0", s): 0.0 for s in range(3)}, {("c0", s): float(s) for s in range(3)})
    assert one.level == "seed (one concept)" and one.n == 3 and list(one.values) == [0.0, 1.0, 2.0]
    assert t_interval([2.0, 2.0, 2.0]).bounds == (2.0, 2.0) and t_interval([1.0]).bounds is None


def test_holm_matches_its_definition():
    adj = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": None})
    assert adj == {"a": pytest.approx(0.03), "b": pytest.approx(0.06), "c": pytest.approx(0.06), "d": None}


def test_leaderboard_interval_is_the_gate_interval(tmp_path):
    """One interval function: the leaderboard's ±95% over seeds is half of the same Student-t interval."""
    seeds = (0, 1, 2)
    recs = side("e2gan", seeds=seeds, concepts=["winter"], with_identity=False,
                psnr=lambda c, s: {0: 0.0, 1: 0.7, 2: -0.2}[s])
    lb = leaderboard(runs_frame([(r.method, r) for r in recs]))
    per_seed = [REF_VALUES["winter"]["psnr"] + x for x in (0.0, 0.7, -0.2)]
    assert lb.loc[0, "psnr_ci95"] == pytest.approx(t_interval(per_seed, 0.95).half_width)
    lo, hi = stats.t.interval(0.95, 2, loc=np.mean(per_seed), scale=stats.sem(per_seed))
    assert lb.loc[0, "psnr_ci95"] == pytest.approx((hi - lo) / 2)


def test_compare_numbers_against_scipy():
    ref = side("e2gan", with_identity=False)
    cand = side("e2gan-x", with_identity=False, psnr=lambda c, s: {"pencil-sketch": -0.2, "winter": 0.1,
                                                                  "gameboy": -0.4}[c])
    c = compare(ref, cand)
    psnr = next(m for m in c.metrics if m.metric == "psnr")
    d = np.array([-0.2, 0.1, -0.4])
    assert psnr.n == 3 and psnr.diff == pytest.approx(d.mean())
    assert psnr.ci_t == pytest.approx(stats.t.interval(0.95, 2, loc=d.mean(), scale=stats.sem(d)))
    b = np.array([REF_VALUES[k]["psnr"] for k in CONCEPTS])
    assert psnr.diff_pct == pytest.approx(100 * d.mean() / np.abs(b).mean())
    assert psnr.status == "pass" and c.verdict == "PASS" and c.exit_code == 0


# ------------------------------------------------------------------------------------------------ gates

def test_parse_gate():
    g = parse_gate("psnr:abs=0.5")
    assert (g.metric, g.abs, g.rel, g.explicit) == ("psnr", 0.5, None, True)
    g = parse_gate("kid:abs=0.01,rel=0.2")
    assert (g.abs, g.rel) == (0.01, 0.2)
    assert g.tolerance(0.02) == pytest.approx(0.01) and g.tolerance(1.0) == pytest.approx(0.2)
    assert parse_gate("ssim:0.05").abs == 0.05
    assert parse_gate("train_seconds:off") is None
    gates = resolve_gates(["train_seconds:rel=0.5", "psnr:off", "kid:abs=0.001"])
    assert "psnr" not in gates and gates["train_seconds"].rel == 0.5 and gates["kid"].abs == 0.001
    assert set(resolve_gates()) == set(default_gates()) == {m.name for m in all_metrics() if m.gate.gated}
    for bad in ("psnr", "psnr:", "nope:abs=1", "psnr:abs=x", "psnr:foo=1", "psnr:abs=-1", "psnr:abs=nan"):
        with pytest.raises(UserError) as e:
            parse_gate(bad)
        assert "--gate" in e.value.line() and bad in e.value.line()


# ---------------------------------------------------------------------------------------- through the CLI

def test_bad_variant_fails(tmp_path, capsys):
    """A variant 3 dB worse on every concept is caught with only 3 pairs, even with some noise."""
    d = write_store(tmp_path / "runs", side("e2gan") + side("e2gan-bad", with_identity=False,
                    psnr=lambda c, s: -3.0 + {"pencil-sketch": 0.4, "winter": -0.3, "gameboy": 0.1}[c]))
    md, js = tmp_path / "verdict.md", tmp_path / "verdict.json"
    rc = cli("compare", d, d, "--reference-method", "e2gan", "--candidate-method", "e2gan-bad", "--markdown", md,
             "--json", js)
    assert rc == 1
    out = capsys.readouterr().out
    assert "REGRESSED" in out and "psnr" in out
    text = md.read_text()
    title = text.splitlines()[0]
    assert title.startswith("# compare: REGRESSED") and "psnr" in title and "e2gan-bad" in title
    row = next(line for line in text.splitlines() if line.startswith("| psnr |"))
    assert "✗" in row and "abs 0.5" in row
    data = json.loads(js.read_text())
    assert data["verdict"] == "REGRESSED" and data["exit_code"] == 1
    assert data["reference"]["role"] == "REFERENCE" and data["reference"]["method"] == "e2gan"
    psnr = next(m for m in data["metrics"] if m["metric"] == "psnr")
    assert psnr["status"] == "regressed" and psnr["diff"] == pytest.approx(-2.9333333)
    assert psnr["reference_mean"] == pytest.approx(psnr["candidate_mean"] - psnr["diff"])
    assert [m["metric"] for m in data["metrics"] if m["status"] == "regressed"] == ["psnr"]


def test_equal_results_pass(tmp_path, capsys):
    a = write_store(tmp_path / "a", side("e2gan", seeds=(0, 1)))
    b = write_store(tmp_path / "b", side("e2gan", seeds=(0, 1)))
    md = tmp_path / "v.md"
    assert cli("compare", a, b, "--markdown", md) == 0  # each side's only non-reference method is used
    text = md.read_text()
    assert text.startswith("# compare: PASS") and "matched runs (concept/seed): **6**" in text
    assert not [line for line in text.splitlines() if line.startswith("| ") and "✗" in line]
    assert "PASS" in capsys.readouterr().out


def test_noise_within_tolerance_passes(tmp_path):
    rng = np.random.default_rng(7)
    noise = {(c, s): rng.normal(0, 1) for c in CONCEPTS for s in (0, 1)}
    ref = side("e2gan", seeds=(0, 1))
    cand = side("e2gan-x", seeds=(0, 1), with_identity=False,
                psnr=lambda c, s: 0.25 * noise[c, s], ssim=lambda c, s: 0.008 * noise[c, s],
                kid=lambda c, s: 0.003 * noise[c, s], fid=lambda c, s: 6.0 * noise[c, s],
                lpips=lambda c, s: 0.002 * noise[c, s])
    d = write_store(tmp_path / "r", ref + cand)
    md = tmp_path / "v.md"
    assert cli("compare", d, d, "--reference-method", "e2gan", "--candidate-method", "e2gan-x", "--markdown", md) == 0
    assert md.read_text().startswith("# compare: PASS")
    # a consistent but small worsening (0.3 dB < 0.5 dB) passes too
    c = compare([r for r in ref if r.method == "e2gan"],
                side("e2gan-y", seeds=(0, 1), with_identity=False, psnr=-0.3))
    assert c.verdict == "PASS" and next(m for m in c.metrics if m.metric == "psnr").status == "pass"


def test_worse_but_within_noise_is_inconclusive_not_fail():
    ref = side("e2gan", with_identity=False)
    cand = side("e2gan-x", with_identity=False,
                psnr=lambda c, s: {"pencil-sketch": -2.5, "winter": 1.2, "gameboy": -0.6}[c])
    c = compare(ref, cand)
    psnr = next(m for m in c.metrics if m.metric == "psnr")
    assert psnr.worsening > 0.5 and psnr.status == "inconclusive"
    assert c.verdict == "PASS" and c.exit_code == 0
    assert "add concepts" in to_markdown(c)


def test_n1_uses_point_difference(tmp_path):
    ref = [rec("winter", "e2gan")]
    bad = compare(ref, [rec("winter", "e2gan-bad", psnr=REF_VALUES["winter"]["psnr"] - 3.0)])
    assert bad.verdict == "REGRESSED" and [m.metric for m in bad.failed] == ["psnr"]
    md = to_markdown(bad)
    assert "one unit: no interval" in md
    ok = compare(ref, [rec("winter", "e2gan-ok", psnr=REF_VALUES["winter"]["psnr"] - 0.2)])
    assert ok.verdict == "PASS"


def test_deterministic_cost_gate(tmp_path):
    """A larger artifact fails stored_bytes (zero variance → point interval); an explicit gate can loosen it."""
    d = write_store(tmp_path / "r", side("e2gan") + side("e2gan-big", with_identity=False, stored_bytes=20000))
    assert cli("compare", d, d, "--reference-method", "e2gan", "--candidate-method", "e2gan-big") == 1
    assert cli("compare", d, d, "--reference-method", "e2gan", "--candidate-method", "e2gan-big",
               "--gate", "stored_bytes:rel=0.5") == 0


def test_different_backends_not_comparable(tmp_path, capsys):
    ref = side("e2gan")
    cand = [r.model_copy(update={"method": "e2gan-x", "key": r.key + "x",
                                 "backends": {**r.backends, "kid": "inception@pt", "fid": "inception@pt"}})
            for r in side("e2gan-x", with_identity=False)]
    d = write_store(tmp_path / "r", ref + cand)
    args = ["compare", d, d, "--reference-method", "e2gan", "--candidate-method", "e2gan-x"]
    # kid and fid are gated by default: the gate is impossible → exit 2, one line
    capsys.readouterr()
    assert cli(*args) == 2
    one_error_line(capsys, "cannot gate kid", "backends differ", "--gate kid:off")
    md = tmp_path / "v.md"
    assert cli(*args, "--gate", "kid:off", "--gate", "fid:off", "--markdown", md) == 0
    text = md.read_text()
    assert "not comparable: backends differ" in text and FEATURES in text and "inception@pt" in text
    row = next(line for line in text.splitlines() if line.startswith("| kid |"))
    assert "n/c" in row
    # the pure API reports it as an error instead of a verdict
    c = compare(load_side(d, method="e2gan"), load_side(d, method="e2gan-x", role="CANDIDATE"))
    assert c.verdict == "CANNOT GATE" and set(c.errors) == {"kid", "fid"} and c.exit_code == 2


def test_unmatched_runs_reported(tmp_path):
    ref = side("e2gan")  # pencil-sketch, winter, gameboy
    cand = side("e2gan-x", concepts=["pencil-sketch", "winter"], with_identity=False)
    cand.append(rec("gameboy", "e2gan-x", status="failed"))
    cand.append(rec("sepia", "e2gan-x"))
    d = write_store(tmp_path / "r", ref + cand)
    md = tmp_path / "v.md"
    assert cli("compare", d, d, "--reference-method", "e2gan", "--candidate-method", "e2gan-x", "--markdown", md) == 0
    text = md.read_text()
    assert "matched runs (concept/seed): **2**" in text
    unmatched = text.split("## Unmatched runs")[1].split("##")[0]
    assert "CANDIDATE: `gameboy` seed 0 — run failed in CANDIDATE: boom" in unmatched
    assert "REFERENCE: `gameboy` seed 0 — run failed in CANDIDATE" in unmatched
    assert "CANDIDATE: `sepia` seed 0 — no run in REFERENCE" in unmatched


def test_runs_csv_input(tmp_path):
    ref = side("e2gan")
    write_reports([(r.method, r) for r in ref], tmp_path / "exported", title="t")
    cand_dir = write_store(tmp_path / "r", side("e2gan-bad", with_identity=False, psnr=-3.0))
    csv = tmp_path / "exported" / "runs.csv"
    # the csv file itself, and the folder holding it; --suite applies to the store side only
    assert cli("compare", csv, cand_dir, "--suite", "quick") == 1
    md = tmp_path / "v.md"
    assert cli("compare", tmp_path / "exported", tmp_path / "exported", "--markdown", md) == 0
    assert "(runs.csv)" in md.read_text()
    recs = load_side(csv)
    assert len(recs) == 3 and all(r.method == "e2gan" and r.backends["kid"] == FEATURES for r in recs)
    assert recs[0].stored_bytes == 47328 and isinstance(recs[0].stored_bytes, int)
    c = compare(recs, load_side(cand_dir, role="CANDIDATE"))
    assert c.verdict == "REGRESSED" and [m.metric for m in c.failed] == ["psnr"]
    assert not c.errors  # backends survive the export, so kid/fid stay comparable


def test_suite_filter_and_ambiguity(tmp_path, capsys):
    d = tmp_path / "r"
    write_store(d, side("e2gan"), suite="quick")
    # the same method, concepts and seeds again in another suite, with other numbers (other keys)
    write_store(d, side("e2gan", with_identity=False, psnr=-1.0, train_seconds=5.0), suite="other")
    write_store(d, side("e2gan-x", with_identity=False), suite="quick")
    capsys.readouterr()
    assert cli("compare", d, d, "--reference-method", "e2gan", "--candidate-method", "e2gan-x") == 2
    one_error_line(capsys, "more than one run", "--suite")
    assert cli("compare", d, d, "--suite", "quick", "--reference-method", "e2gan", "--candidate-method", "e2gan-x") == 0
    assert cli("compare", d, d, "--suite", "nope", "--reference-method", "e2gan") == 2
    one_error_line(capsys, "--suite", "nope", "quick", "other")


def test_bad_inputs_exit_2_with_one_line(tmp_path, capsys):
    d = write_store(tmp_path / "r", side("e2gan") + side("e2gan-x", with_identity=False))
    lone = write_store(tmp_path / "lone", side("e2gan", concepts=["winter"]))
    other = write_store(tmp_path / "other", side("e2gan", concepts=["gameboy"], seeds=(5,)))
    empty = tmp_path / "empty"
    empty.mkdir()
    garbage = tmp_path / "runs.csv"
    garbage.write_bytes(b"\x00\xff\xfe garbage \x00" * 50)
    nocols = tmp_path / "nocols.csv"
    nocols.write_text("a,b\n1,2\n")
    notdb = tmp_path / "notdb"
    notdb.mkdir()
    (notdb / "results.sqlite").write_text("this is not sqlite " * 100)
    capsys.readouterr()
    cases = [
        (["compare", tmp_path / "missing", d], ["REFERENCE", "missing", "not found"]),
        (["compare", lone, tmp_path / "missing2"], ["CANDIDATE", "missing2"]),
        (["compare", empty, lone], ["REFERENCE", "results.sqlite", str(empty)]),
        (["compare", garbage, lone], ["runs.csv", "unreadable"]),
        (["compare", nocols, lone], ["nocols.csv", "concept"]),
        (["compare", notdb, lone], ["results.sqlite"]),
        (["compare", d, lone], ["--reference-method", "e2gan-x", "e2gan"]),  # two trained methods: choose
        (["compare", d, d, "--base-method", "nope"], ["--reference-method", "nope", "e2gan-x"]),  # the old name
        (["compare", lone, d, "--candidate-method", "nope"], ["--candidate-method", "nope"]),
        (["compare", lone, lone, "--gate", "bogus:abs=1"], ["--gate", "bogus", "psnr"]),
        (["compare", lone, lone, "--gate", "psnr=0.5"], ["--gate", "psnr=0.5"]),
        (["compare", lone, lone, "--gate", "psnr:abs=lots"], ["--gate", "lots"]),
        (["compare", lone, lone, "--confidence", "1.5"], ["--confidence", "1.5"]),
        (["compare", lone, other], ["no runs match", "winter/0", "gameboy/5"]),
        (["compare", lone, lone, "--gate", "clip_score:abs=1"], ["clip_score", "neither side"]),
    ]
    for args, needles in cases:
        assert cli(*args) == 2, args
        one_error_line(capsys, *needles)
    assert not (empty / "results.sqlite").exists()  # reading never creates a store


def test_markdown_layout(tmp_path):
    c = compare(side("e2gan", with_identity=False), side("e2gan-x", with_identity=False, psnr=-0.1))
    md = to_markdown(c)
    for needle in ("# compare: PASS", "**reference**", "**candidate**",
                   "| metric | better | units | reference | candidate | Δ (cand − ref) |", "95% CI (t)",
                   "95% CI (bootstrap)", "## Unmatched runs", "## Gate rule", "`psnr` abs 0.5", "`kid` rel 25%",
                   "| train_seconds | not gated |"):
        assert needle in md, needle
    assert "| latency_ms |" not in md.split("## Gate rule")[0]  # measured on neither side: left out of the table
    row = next(line for line in md.splitlines() if line.startswith("| train_seconds |"))
    assert "not gated" in row
    assert all(math.isfinite(m.diff) for m in c.metrics if m.diff is not None)
