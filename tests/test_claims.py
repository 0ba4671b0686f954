"""`e2gan-bench claims`: the paper's claims with verdicts computed from result stores. No training: run records
(with validation curves) are made by hand and committed to real results stores."""

from __future__ import annotations

import json
import math

import pytest
from conftest import cli, one_error_line

from e2gan_bench.config import TargetSpec
from e2gan_bench.harness.store import ResultsStore
from e2gan_bench.keys import content_key
from e2gan_bench.record import RunRecord
from e2gan_bench.report.claims import (
    CLAIMS,
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NO_DIFF,
    NOT_MEASURED,
    claims_table,
    to_json,
    to_markdown,
)

CONCEPTS = {"pencil-sketch": 120.0, "winter": 95.0, "gameboy": 150.0, "sepia": 80.0, "negative": 110.0,
            "thermal-camera": 130.0}  # concept -> a base FID (six: the concept is the unit)
SEEDS = (0, 1)
FEATURES = "resnet18-random-init@random-init:bd30fa36199dda54"
_CJ = {"pencil-sketch": 1.0, "winter": -1.0, "gameboy": 0.5, "sepia": -0.5, "negative": 0.2, "thermal-camera": -0.2}
JITTER = {(c, s): j + (0.3 if s == 0 else -0.3) for c, j in _CJ.items() for s in SEEDS}  # sums to 0 over units
RELATIVE = TargetSpec(gap_fraction=0.9)  # the tests' stores are judged against a relative target


def curve(sec_per_step: float, gain: float = 5.0) -> dict:
    steps = [0, 10, 40, 160, 640]
    return {"points": [{"step": s, "seconds": sec_per_step * s, "flops": 1e10 * sec_per_step * s,
                        "psnr": 10.0 + gain * (1 - math.exp(-s / 100))} for s in steps],
            "backends": {"psnr": "torchmetrics"}, "n_images": 4}


def rec(concept: str, method: str, seed: int, *, fid: float, secs: float = 30.0, flops: float = 3e12,
        params: int = 70_000, stored: int = 280_000, latency: float | None = 3.0, sec_per_step: float = 0.1,
        gain: float = 5.0, psnr: float = 15.0) -> RunRecord:
    vals = dict(fid=fid, kid=fid / 5000, psnr=psnr, train_seconds=secs, train_flops=flops, trainable_params=params,
                stored_bytes=stored)
    if latency is not None:
        vals["latency_ms"] = latency
    b = {"fid": FEATURES, "kid": FEATURES, "psnr": "torchmetrics"}
    return RunRecord(key=content_key(concept, method, seed, vals), concept=concept, method=method, seed=seed,
                     reference=method == "identity", backends=b,
                     val_curve=curve(sec_per_step, gain) if method != "identity" else
                     {"points": [{"step": 0, "seconds": 0.0, "flops": 0, "psnr": 10.0}], "n_images": 4}, **vals)


def write_store(root, records, suite: str = "quick"):
    store = ResultsStore(root)
    for r in records:
        store.commit(r, store.staging(r.key), suite)
    return root


def quick_runs(e2gan_fid, e2gan_secs_factor: float, **e2gan_over) -> list[RunRecord]:
    """identity, pix2pix and e2gan on every (concept, seed); ``e2gan_fid(base, concept, seed)`` sets e2gan's FID;
    e2gan's seconds (train and per step) are pix2pix's × ``e2gan_secs_factor``."""
    out = []
    for c, base in CONCEPTS.items():
        for s in SEEDS:
            out.append(rec(c, "identity", s, fid=base * 2, secs=0.0, flops=0.0, params=0, stored=0, latency=None))
            out.append(rec(c, "pix2pix", s, fid=base))
            over = dict(secs=30.0 * e2gan_secs_factor, sec_per_step=0.1 * e2gan_secs_factor, params=12_000,
                        stored=54_000, latency=2.0, flops=2.5e11)
            over.update(e2gan_over)
            out.append(rec(c, "e2gan", s, fid=e2gan_fid(base, c, s), **over))
    return out


def results(table: dict, claim_id: str) -> list[dict]:
    return next(c["results"] for c in table["claims"] if c["id"] == claim_id)


def one(table: dict, claim_id: str) -> dict:
    rs = results(table, claim_id)
    assert len(rs) == 1, rs
    return rs[0]


def decider(result: dict) -> dict:
    return next(n for n in result["checks"][0]["numbers"] if n["decides"])


# ------------------------------------------------------------------------------------------------ verdicts

def test_e2gan_better_and_ten_times_faster_holds(tmp_path):
    store = write_store(tmp_path / "s", quick_runs(lambda base, c, s: base - 10.0 + JITTER[(c, s)], 0.1))
    table = claims_table(target=RELATIVE, paths=[store])
    fid = one(table, "fid-vs-pix2pix")
    assert fid["verdict"] == HOLDS, fid
    assert fid["suite"] == "quick" and fid["store"] == str(store)
    d = decider(fid)
    assert d["metric"] == "fid" and d["units"] == 6 and d["diff"] == pytest.approx(-10.0)
    assert d["hi"] < 0
    time = one(table, "time-vs-pix2pix")
    assert time["verdict"] == HOLDS, time
    d = decider(time)
    assert d["metric"] == "seconds_to_target"  # quality-matched time decides; equal-steps time beside it
    assert d["ratio"] == pytest.approx(10.0) and d["reached"] == {"pix2pix": "12/12", "e2gan": "12/12"}
    assert d["p_value"] == pytest.approx(2 / 64)  # every concept's runs got there first: the exact sign test
    equal_steps = next(n for n in time["checks"][0]["numbers"] if n["metric"] == "train_seconds")
    assert equal_steps["ratio"] == pytest.approx(10.0) and "at equal steps" in equal_steps["text"]
    assert "10× vs paper 4.8×" in time["reason"]
    # the other cost claims, from the same runs
    assert decider(one(table, "flops-vs-pix2pix"))["ratio"] == pytest.approx(10.0)  # FLOPs to target
    assert one(table, "params-vs-pix2pix")["verdict"] == HOLDS
    lat = one(table, "latency-vs-pix2pix")  # one timing per architecture copied to every run: cannot decide
    assert lat["verdict"] == INCONCLUSIVE and "not a replicated measurement" in lat["reason"]
    assert decider(lat)["ratio"] == pytest.approx(2.0 / 3.0)
    assert fid["concepts"] == 6 and fid["seeds"] == 2
    # every row names its backends, the offline FID extractor flagged
    assert any("offline fallback" in v for v in fid["backends"]["fid"])


def test_tie_is_no_significant_difference(tmp_path):
    store = write_store(tmp_path / "s", quick_runs(lambda base, c, s: base + JITTER[(c, s)], 1.0))
    table = claims_table(target=RELATIVE, paths=[store])
    fid = one(table, "fid-vs-pix2pix")
    assert fid["verdict"] == NO_DIFF, fid
    d = decider(fid)
    assert d["lo"] < 0 < d["hi"]
    time = one(table, "time-vs-pix2pix")
    assert time["verdict"] == NO_DIFF, time
    assert decider(time)["ratio"] == pytest.approx(1.0)


def test_pix2pix_better_does_not_hold(tmp_path):
    store = write_store(tmp_path / "s", quick_runs(lambda base, c, s: base + 20.0 + JITTER[(c, s)], 3.0))
    table = claims_table(target=RELATIVE, paths=[store])
    assert one(table, "fid-vs-pix2pix")["verdict"] == FAILS
    assert one(table, "time-vs-pix2pix")["verdict"] == FAILS


def test_never_reaching_the_target_counts_as_infinitely_slow(tmp_path):
    runs = quick_runs(lambda base, c, s: base - 10.0 + JITTER[(c, s)], 1.0)
    runs = [r.model_copy(update={"val_curve": curve(0.1, gain=1.0)}) if r.method == "pix2pix" else r for r in runs]
    store = write_store(tmp_path / "s", runs)
    table = claims_table(target=RELATIVE, paths=[store])
    time = one(table, "time-vs-pix2pix")
    d = decider(time)
    assert d["reached"]["pix2pix"] == "0/12" and math.isinf(d["ratio"])
    assert time["verdict"] == HOLDS
    text = to_json(table)
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert '"ratio": "inf"' in text


def test_noisy_wall_clock_without_curves_is_inconclusive(tmp_path):
    """Without validation curves the equal-steps train_seconds decides; a median ratio > 1 whose per-unit ratios
    straddle 1 is not a reproduction."""
    secs = dict(zip(JITTER, (10.0, 60.0, 12.0, 50.0, 15.0, 28.0, 45.0, 20.0, 70.0, 14.0, 33.0, 25.0), strict=True))
    runs = [r.model_copy(update={"val_curve": None, **({"train_seconds": secs[(r.concept, r.seed)]}
                                                        if r.method == "e2gan" else {})})
            for r in quick_runs(lambda base, c, s: base - 10.0, 1.0)]
    time = one(claims_table(target=RELATIVE, paths=[write_store(tmp_path / "s", runs)]), "time-vs-pix2pix")
    d = decider(time)
    assert d["metric"] == "train_seconds" and d["ratio"] == pytest.approx(30.0 / 26.5)
    assert d["ci95"][0] < 1 < d["ci95"][1]
    assert time["verdict"] == INCONCLUSIVE, time


def _latency_file(path, e2gan_ms: float, pix2pix_ms: float):
    d = {"label": "desktop CPU proxy", "provenance": {"backend": "onnxruntime", "onnxruntime": "1.x"},
         "results": [{"arch": "e2gan", "resolution": 256, "threads": 1, "median_ms": e2gan_ms},
                     {"arch": "pix2pix-resnet", "resolution": 256, "threads": 1, "median_ms": pix2pix_ms}]}
    path.write_text(json.dumps(d))
    return path


def test_latency_at_paper_size_decides_from_replicated_files(tmp_path):
    store = write_store(tmp_path / "s", quick_runs(lambda base, c, s: base - 10.0 + JITTER[(c, s)], 0.1))
    files = [_latency_file(tmp_path / "a.json", 676.0, 1009.0), _latency_file(tmp_path / "b.json", 680.0, 1001.0)]
    rows = results(claims_table(target=RELATIVE, paths=[store], latency=files), "latency-vs-pix2pix")
    assert [r["suite"] for r in rows] == ["latency files", "quick"]
    assert rows[0]["verdict"] == HOLDS and "256 px" in rows[0]["reason"] and rows[0]["seeds"] == 2
    assert rows[1]["verdict"] == INCONCLUSIVE  # the suite's copied timing stays beside it
    one_file = results(claims_table(target=RELATIVE, paths=[store], latency=files[:1]), "latency-vs-pix2pix")
    assert one_file[0]["verdict"] == INCONCLUSIVE and "one replicate" in one_file[0]["reason"]


def test_absent_suites_are_not_measured(tmp_path):
    store = write_store(tmp_path / "s", quick_runs(lambda base, c, s: base - 10.0, 0.1))
    table = claims_table(target=RELATIVE, paths=[store])
    for cid in ("base-representative", "rank-search-order", "minimal-data"):
        r = one(table, cid)
        assert r["verdict"] == NOT_MEASURED and r["suite"] is None
    # quick without full-finetune: claim 8 is not measured either
    lora = one(table, "lora-vs-full-finetune")
    assert lora["verdict"] == NOT_MEASURED and "full-finetune" in lora["reason"]


def _ablation(methods: dict[str, float]) -> list[RunRecord]:
    return [rec(c, m, s, fid=base + off + JITTER[(c, s)]) for c, base in CONCEPTS.items() for s in SEEDS
            for m, off in methods.items()]


def test_rank_ordering_holds_and_breaks(tmp_path):
    good = write_store(tmp_path / "good", _ablation({"e2gan-searched": 0.0, "uniform-4x": 5.0, "random": 20.0,
                                                     "uniform-1x": 20.0}), suite="ablation-rank")
    r = one(claims_table(target=RELATIVE, paths=[good]), "rank-search-order")
    assert r["verdict"] == HOLDS, r
    assert [o["verdict"] for o in r["checks"]] == [HOLDS] * 4
    bad = write_store(tmp_path / "bad", _ablation({"e2gan-searched": 10.0, "uniform-4x": 5.0, "random": 20.0,
                                                   "uniform-1x": 30.0}), suite="ablation-rank")
    r = one(claims_table(target=RELATIVE, paths=[bad]), "rank-search-order")
    assert r["verdict"] == FAILS
    assert [o["verdict"] for o in r["checks"]] == [FAILS, HOLDS, HOLDS, FAILS]  # searched worse; random ≉ 1x


def test_base_ablation_needs_both_comparisons(tmp_path):
    store = write_store(tmp_path / "s", _ablation({"representative": 0.0, "random-6": 8.0, "single": 0.0}),
                        suite="ablation-base")
    r = one(claims_table(target=RELATIVE, paths=[store]), "base-representative")
    assert [o["verdict"] for o in r["checks"]] == [HOLDS, NO_DIFF]
    assert r["verdict"] == NO_DIFF


def test_lora_vs_full_finetune_within_tolerance(tmp_path):
    def runs(ft_offset: float) -> list[RunRecord]:
        return [rec(c, m, s, fid=base + (ft_offset if m == "e2gan" else 0.0) + JITTER[(c, s)] * (m == "e2gan"),
                    stored=54_000 if m == "e2gan" else 1_750_000) for c, base in CONCEPTS.items() for s in SEEDS
                for m in ("e2gan", "full-finetune")]
    close = one(claims_table(target=RELATIVE, paths=[write_store(tmp_path / "a", runs(2.0))]), "lora-vs-full-finetune")
    assert close["verdict"] == HOLDS, close  # +2 FID is within the 15 % gate
    assert close["checks"][1]["numbers"][0]["ratio"] == pytest.approx(1_750_000 / 54_000)
    worse = one(claims_table(target=RELATIVE, paths=[write_store(tmp_path / "b", runs(40.0))]), "lora-vs-full-finetune")
    assert worse["verdict"] == FAILS
    one_unit = [r for r in runs(2.0) if r.seed == 0 and r.concept == "winter"]
    few = one(claims_table(target=RELATIVE, paths=[write_store(tmp_path / "c", one_unit)]), "lora-vs-full-finetune")
    assert few["verdict"] == INCONCLUSIVE


def test_every_store_and_suite_gets_its_row(tmp_path):
    a = write_store(tmp_path / "a", quick_runs(lambda base, c, s: base - 10.0 + JITTER[(c, s)], 0.1))
    b = write_store(tmp_path / "b", quick_runs(lambda base, c, s: base + JITTER[(c, s)], 1.0), suite="standard")
    rows = results(claims_table(target=RELATIVE, paths=[a, b]), "fid-vs-pix2pix")
    assert [(r["store"], r["suite"], r["verdict"]) for r in rows] == [(str(a), "quick", HOLDS),
                                                                      (str(b), "standard", NO_DIFF)]


# ------------------------------------------------------------------------------------------------ CLI

def test_cli_writes_markdown_and_json(tmp_path, capsys):
    store = write_store(tmp_path / "s", quick_runs(lambda base, c, s: base - 10.0 + JITTER[(c, s)], 0.1))
    dest = tmp_path / "out"
    assert cli("claims", store, "--dest", dest) == 0
    data = json.loads((dest / "claims.json").read_text(),
                      parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    md = (dest / "claims.md").read_text()
    assert [c["id"] for c in data["claims"]] == [c.id for c in CLAIMS]
    for c in CLAIMS:
        assert f"`{c.id}`" in md
    assert data["stores"] == [{"path": str(store), "suites": ["quick"]}]
    assert md == to_markdown(data)  # the file is the table rendered, nothing typed by hand
    row = next(line for line in md.splitlines() if line.startswith("| `params-vs-pix2pix`"))
    assert "**holds**" in row and "`quick`" in row and "5.83×" in row
    assert "121" in row  # the paper's number beside ours
    assert "time-vs-pix2pix" in capsys.readouterr().out


def test_cli_missing_store_is_one_line(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert cli("claims", missing, "--dest", tmp_path / "out") == 2
    one_error_line(capsys, "nowhere", "not found")
    assert not (tmp_path / "out").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("claims", empty, "--dest", tmp_path / "out") == 2
    one_error_line(capsys, "empty", "results.sqlite")
