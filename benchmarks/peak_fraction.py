"""Throughput against the limit: this CPU's dense matmul peak (fp32, bf16) and the fraction of it a training step
achieves, per model size.

    .venv/bin/python benchmarks/peak_fraction.py [--threads 2] [--steps 30] [--json F]

**Peak**: the best of several timed ``torch.mm`` of square matrices (sizes 512-2048) in fp32 and in bf16, at the
given thread count — what oneDNN/MKL reach on this CPU with perfect shapes (2·n³ FLOPs per product); bf16 uses
AMX or AVX-512-BF16 where the CPU has them, and is emulated (slow) where it does not.

**Training step**: the real trainer (:func:`e2gan_bench.training.trainer.train_gan`: E2GAN generator + PatchGAN
discriminator, batch 8, Adam, fp32) for ``--steps`` steps from scratch at each size; its FLOPs are counted by
``torch.utils.flop_counter`` on the first step (what ``train_flops`` records in every run) and its seconds are the
trainer's own clock (the optimisation loop, probes excluded). ``fraction`` = achieved FLOP/s ÷ the fp32 peak.

Small convolutions on 48-px images are far from matmul-shaped work: expect a low fraction there and a rising one
with size; the figure says how much a faster kernel or a larger batch could still buy. Measured in one process on
one machine: the ratios mean something, the absolute figures belong to the CPU named in the output.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from e2gan_bench.config import Budget  # noqa: E402
from e2gan_bench.metrics.provenance import environment  # noqa: E402
from e2gan_bench.models.generators import ARCHS  # noqa: E402
from e2gan_bench.training.trainer import TrainData, train_gan  # noqa: E402

SIZES = [(48, 16), (64, 32), (96, 32), (128, 64)]  # (resolution, ngf): quick's size first


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def matmul_peak(dtype: torch.dtype, repeats: int = 5) -> dict:
    """Best FLOP/s over square sizes and repeats (one warm-up product per size, untimed)."""
    best = {"flops_per_s": 0.0, "n": 0}
    for n in (512, 1024, 2048):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        torch.mm(a, b)
        inner = max(1, int(2e9 // (2 * n**3)))  # about 2 GFLOP per timed block, so short products are not noise
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(inner):
                torch.mm(a, b)
            rate = inner * 2 * n**3 / (time.perf_counter() - t0)
            if rate > best["flops_per_s"]:
                best = {"flops_per_s": rate, "n": n}
    return best


def step_rate(resolution: int, ngf: int, steps: int) -> dict:
    """FLOPs and seconds per training step of the E2GAN generator + PatchGAN at one size (random pairs: the cost
    of a step does not depend on the pixels)."""
    g = torch.Generator().manual_seed(0)
    n = 64
    src = torch.rand(n, 3, resolution, resolution, generator=g) * 2 - 1
    tgt = torch.rand(n, 3, resolution, resolution, generator=g) * 2 - 1
    G = ARCHS.get("e2gan")(ngf=ngf)
    tokens = torch.randn(1, 8, 384, generator=g)  # one prompt: 8 MiniLM-sized token embeddings
    data = TrainData(src, tgt, torch.zeros(n, dtype=torch.long), tokens, torch.ones(1, 8, dtype=torch.bool))
    budget = Budget(steps=steps, batch=8, lr=1e-3, schedule="constant", warmup=0)
    train_gan(ARCHS.get("e2gan")(ngf=ngf), data, budget.model_copy(update={"steps": 3}), seed=1, ndf=32)  # warm-up
    r = train_gan(G, data, budget, seed=0, ndf=32)
    per_step = r.flops / r.steps
    return {"resolution": resolution, "ngf": ngf, "steps": r.steps, "flops_per_step": per_step,
            "seconds_per_step": r.seconds / r.steps, "achieved_flops_per_s": per_step / (r.seconds / r.steps),
            "generator_params": sum(p.numel() for p in G.parameters())}


def run(threads: int, steps: int) -> dict:
    torch.set_num_threads(threads)
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    rows = [step_rate(res, ngf, steps) for res, ngf in SIZES]
    for row in rows:
        row["fraction_of_fp32_peak"] = row["achieved_flops_per_s"] / peaks["fp32"]["flops_per_s"]
    return {"cpu": cpu_name(), "threads": threads, "peaks": peaks, "rows": rows, "environment": environment()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    res = run(a.threads, a.steps)
    print(f"{res['cpu']}, {res['threads']} threads")
    for k, p in res["peaks"].items():
        print(f"  {k} matmul peak: {p['flops_per_s'] / 1e9:7.1f} GFLOP/s (n = {p['n']})")
    print(f"  bf16 / fp32 peak: {res['peaks']['bf16']['flops_per_s'] / res['peaks']['fp32']['flops_per_s']:.2f}×")
    for r in res["rows"]:
        print(f"  {r['resolution']:>3} px / ngf {r['ngf']:<3} {r['generator_params'] / 1e6:5.2f} M params  "
              f"{r['flops_per_step'] / 1e9:7.2f} GFLOP/step  {1000 * r['seconds_per_step']:7.1f} ms/step  "
              f"{r['achieved_flops_per_s'] / 1e9:6.1f} GFLOP/s = {100 * r['fraction_of_fp32_peak']:4.1f} % of fp32 peak")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
