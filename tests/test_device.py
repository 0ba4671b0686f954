"""--device and the suite's ``device:``: CPU keys unchanged, cuda refused clearly without a GPU, device and
precision in provenance, GPU keys and labels apart from CPU ones, and the GPU-vs-CPU comparison of
scripts/gpu_check.py (on two CPU stores here)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY_SUITE, assert_no_results, cli, one_error_line, write_suite

import e2gan_bench.data.dataset as dataset_mod
import e2gan_bench.harness.spec as spec_mod
import e2gan_bench.metrics.evaluate as evaluate_mod
import e2gan_bench.resources as resources_mod
from e2gan_bench.devices import resolve_device
from e2gan_bench.harness.spec import expand_suite
from e2gan_bench.harness.store import ResultsStore
from e2gan_bench.metrics.evaluate import plan_evaluation
from e2gan_bench.resources import Catalog, find_suite

CPU_ONLY = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without a GPU")

# The smoke suite's keys computed with the code from before `--device` existed (commit c93f5fd, `git archive`d,
# by a script like `_pinned_keys`), with every code fingerprint replaced by a constant (`code_version` pinned):
# what a key hashes besides the code must not change for a CPU run, so stores written before devices existed stay
# valid. (A change of the code a key covers recomputes by design — docs/architecture.md — so the real
# fingerprints are pinned out.) The recipes are those of that time too (tests/data/methods-before-tuning: the
# method files before `e2gan-bench tune` changed their learning rates and schedules, which recomputes by design).
RECIPES_BEFORE_TUNING = Path(__file__).parent / "data" / "methods-before-tuning"
SMOKE_KEYS_BEFORE_DEVICES = {
    "base": ["be7db1ad7c15def5"],
    "runs": {
        "sepia/identity/0": ["6decfc0943bce2d54384", "afcb460b67b3d71ca866"],
        "sepia/e2gan/0": ["d7fa7f9e583d3fcd5363", "f2d4bdc0a0265baa4b95"],
        "sepia/full-finetune/0": ["f3b481369589a4d37eaa", "ffea7266a7d704ce5a7a"],
        "sepia/scratch/0": ["53c74417adc393c9a498", "2a0035f6acb9d0717eb1"],
        "sepia/pix2pix/0": ["1df6471cebc4eb549a6c", "3fc316679bc84f4ac3ff"],
        "pencil-sketch/identity/0": ["bb70889decef9ca1b450", "7b640219d8da5441ae54"],
        "pencil-sketch/e2gan/0": ["373d98c6898e56f2bc2c", "0c7f4f764525bbdef199"],
        "pencil-sketch/full-finetune/0": ["ca2eea25dcda5b16c1c3", "1f3b0c008e297652ec59"],
        "pencil-sketch/scratch/0": ["37f032e0cb20f733c3ef", "62a97726a1bacc50cd30"],
        "pencil-sketch/pix2pix/0": ["1c0f63b968d5ef7d440b", "4e464f127cdad6094413"],
    },
    "eval": "574c72c86975d323",
}


def _pinned_keys(monkeypatch, tmp_path: Path, device: str | None) -> dict:
    # methods/ (the method folders) was split out of training/ after these keys were taken: its code is what
    # training/ held then, so the pinned fingerprint names the parts of that time
    pinned = lambda *parts, **kw: "code:" + ",".join(p for p in parts if p != "methods")  # noqa: E731
    monkeypatch.setattr(spec_mod, "code_version", pinned)
    monkeypatch.setattr(evaluate_mod, "code_version", pinned)
    monkeypatch.setattr(dataset_mod, "code_version", pinned)
    monkeypatch.setattr(resources_mod, "builtin_method_dirs", lambda: [RECIPES_BEFORE_TUNING])
    suite, path = find_suite("smoke")
    specs = expand_suite(suite, Catalog(), str(path), tmp_path / "cache", device=device)
    return {"base": sorted({s.base_key for s in specs if s.base_key}),
            "runs": {f"{s.concept.name}/{s.method.name}/{s.seed}": [s.train_key, s.key] for s in specs},
            "eval": plan_evaluation(suite.eval, device=device or "cpu").key}


def test_cpu_keys_are_those_from_before_devices(monkeypatch, tmp_path):
    for device in (None, "cpu"):  # the suite's default, --device cpu (and --device auto without a GPU: below)
        assert _pinned_keys(monkeypatch, tmp_path, device) == SMOKE_KEYS_BEFORE_DEVICES


def test_gpu_keys_and_labels_are_apart(monkeypatch, tmp_path):
    """Expanded for cuda (no GPU is needed to compute keys): every key differs from the CPU's, and every evaluation
    backend label names the device, so reports never average or compare CPU and GPU numbers as one."""
    gpu = _pinned_keys(monkeypatch, tmp_path, "cuda")
    cpu = SMOKE_KEYS_BEFORE_DEVICES
    assert set(gpu["base"]).isdisjoint(cpu["base"])
    for run, (train_key, key) in gpu["runs"].items():
        assert train_key != cpu["runs"][run][0] and key != cpu["runs"][run][1]
    assert gpu["eval"] != cpu["eval"]
    suite, _ = find_suite("smoke")
    cpu_plan, gpu_plan = plan_evaluation(suite.eval), plan_evaluation(suite.eval, device="cuda")
    assert gpu_plan.backends
    for name, b in gpu_plan.backends.items():
        if b.available:
            assert b.label == cpu_plan.backends[name].label + " [cuda]", b.label
        else:
            assert b.label == cpu_plan.backends[name].label  # "n/a: why" stays as it is


@CPU_ONLY
def test_auto_is_cpu_here_and_cuda_is_one_line(tmp_path, capsys):
    assert resolve_device("auto") == "cpu"
    assert expand_suite(*_suite_for("smoke"), tmp_path / "cache", device=resolve_device("auto"))[0].device == "cpu"
    suite = write_suite(tmp_path / "s")
    out = tmp_path / "out"
    capsys.readouterr()
    assert cli("run", "--suite", suite, "--out", out, "--device", "cuda") == 2
    one_error_line(capsys, "--device", "CUDA is not available")
    assert_no_results(out)
    assert cli("run", "--suite", suite, "--out", out, "--device", "tpu") == 2
    one_error_line(capsys, "--device", "'tpu'", "auto, cpu, cuda")
    # the suite's own field: validated with the file and field named; `device: cuda` refused like --device cuda
    bad = write_suite(tmp_path / "s", TINY_SUITE + "device: gpu\n", name="bad.yaml")
    assert cli("run", "--suite", bad, "--out", out) == 2
    one_error_line(capsys, "bad.yaml", "device")
    cuda = write_suite(tmp_path / "s", TINY_SUITE + "device: cuda\n", name="cuda.yaml")
    assert cli("run", "--suite", cuda, "--out", out) == 2
    one_error_line(capsys, "cuda.yaml", "CUDA", "--device cpu")
    assert_no_results(out)


def _suite_for(name: str):
    suite, path = find_suite(name)
    return suite, Catalog(), str(path)


def _gpu_check():
    path = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow  # a whole suite through the CLI: the slow tier (CI runs both)
def test_device_cpu_run_records_device_and_precision_and_gpu_check_compares(tmp_path, capsys):
    suite = write_suite(tmp_path / "s")
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli("run", "--suite", suite, "--out", a, "--device", "cpu") == 0
    assert cli("run", "--suite", suite, "--out", b, "--device", "cpu") == 0
    recs = dict(ResultsStore(a, readonly=True).records())
    assert {r.provenance["device"] for r in recs.values()} == {"cpu"}
    assert recs["scratch"].provenance["precision"] == "fp32"
    assert recs["scratch"].provenance["trained_on"] == "cpu"
    assert "gpu" not in recs["scratch"].provenance
    assert sorted(r.key for _, r in ResultsStore(b, readonly=True).records()) == sorted(r.key for r in recs.values())
    cfg = json.loads((a / "runs" / recs["scratch"].key / "config.json").read_text())
    assert cfg["device"] == "cpu"
    assert "- device: cpu" in (a / "reports" / "tiny" / "leaderboard.md").read_text()
    # a report needs no GPU: `report --device cuda` computes the GPU keys here (and finds none of them in a CPU store)
    assert cli("report", "--out", a, "--suite", suite, "--device", "cuda", "--dest", tmp_path / "r") == 0
    assert "no finished runs" in capsys.readouterr().out
    assert "Incomplete: 2 run(s)" in (tmp_path / "r" / "leaderboard.md").read_text()

    mod = _gpu_check()
    capsys.readouterr()
    assert mod.main(["--cpu-store", str(a), "--gpu-store", str(b), "--suite", "tiny"]) == 0  # the same runs agree
    printed = capsys.readouterr().out
    assert "psnr" in printed and "0 problem(s)" in printed
    table, problems = mod.compare_stores(a, b, "tiny")
    assert problems == [] and table["ok"].all() and {"psnr", "ssim", "kid", "train_flops"} <= set(table["metric"])
    # with --out, the GPU side must really have been evaluated on the GPU: a CPU store there is a problem
    _, problems = mod.compare_stores(a, b, "tiny", mod.EVAL_TOLERANCES, gpu_device="cuda")
    assert problems == [f"sepia × {m} × 0: evaluated on cpu, not cuda" for m in ("identity", "scratch")]

    # a store whose training differs (one step more) and lacks a run: beyond tolerance and one-sided, exit 1
    c = tmp_path / "c"
    longer = write_suite(tmp_path / "s", TINY_SUITE.replace("[identity, {scratch: {budget: {steps: 3}}}]",
                                                            "[{scratch: {budget: {steps: 4, precision: bf16}}}]"),
                         name="longer.yaml")
    assert cli("run", "--suite", longer, "--out", c, "--device", "cpu") == 0
    assert mod.main(["--cpu-store", str(a), "--gpu-store", str(c), "--suite", "tiny"]) == 1
    printed = capsys.readouterr().out
    assert "BEYOND TOLERANCE sepia × scratch × 0: train_flops" in printed
    assert ResultsStore(c, readonly=True).records()[0][1].provenance["precision"] == "bf16"
    _, problems = mod.compare_stores(a, c, "tiny")
    assert "sepia × identity × 0: only in the CPU store" in problems
    assert any(p.startswith("sepia × scratch × 0: train_flops") for p in problems)


def test_reports_never_mix_cpu_and_gpu_numbers(tmp_path):
    """A CPU record and a GPU record of one method: the leaderboard leaves out every metric whose backends differ
    (device-labelled on the GPU; a GPU training cost beside an unlabelled CPU one), and lists both devices."""
    from e2gan_bench.record import RunRecord
    from e2gan_bench.report.tables.leaderboard import mixed_backends, provenance_lines, runs_frame

    cpu = RunRecord(key="a", concept="sepia", method="m", seed=0, psnr=20.0, peak_memory_bytes=1e6,
                    backends={"psnr": "torchmetrics"}, provenance={"device": "cpu"})
    gpu = RunRecord(key="b", concept="sepia", method="m", seed=1, psnr=21.0, peak_memory_bytes=9e7,
                    backends={"psnr": "torchmetrics [cuda]", "peak_memory_bytes": "torch.cuda.max_memory_allocated "
                              "(peak allocated during the second step) [cuda]"},
                    provenance={"device": "cuda", "gpu": "NVIDIA H200", "cuda": "13.0"})
    pairs = [("m", cpu), ("m", gpu)]
    df = runs_frame(pairs)
    assert set(mixed_backends(df)) == {"psnr", "peak_memory_bytes"}
    assert mixed_backends(runs_frame([("m", cpu)])) == {}
    lines = "\n".join(provenance_lines(pairs, df))
    assert "- device: cpu, cuda (gpu NVIDIA H200, cuda 13.0) **(runs from different devices" in lines
    assert "`psnr` left out of the leaderboard" in lines
