"""A LoRA training step against a full fine-tuning step of the same generator, on this machine.

    .venv/bin/python benchmarks/lora_step.py [--steps 100] [--rounds 3] [--json benchmarks/results/lora_step-epyc.json]

The real trainer (``train_gan``: the E2GAN generator + PatchGAN, batch 8, Adam, fp32, 2 threads) at the suites'
size (48 px, ngf 16) and one larger (64 px, ngf 32), three trainable sets of one randomly initialised generator:

* ``full``: every weight trains (full fine-tuning; the trainable set ``all``);
* ``lora-peft``: rank-4 LoRA on the crucial layers in peft's own layers, ``W x + s·B(A x)``;
* ``lora-fused``: the same adapters computing ``(W + s·B A) x`` in one operator (what the methods use,
  :mod:`e2gan_bench.models.lora`).

The settings run in turns (``--rounds`` rounds, each setting once per round, after untimed warm-up steps), so that
drift of the host's load lands on all of them; the figure is the median of the rounds' seconds per step. Speed does
not depend on the weights' values, so the generator is random. Only ratios within one run mean anything.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from e2gan_bench.config import Budget  # noqa: E402
from e2gan_bench.metrics.provenance import cpu_model, environment  # noqa: E402
from e2gan_bench.models.generators import ARCHS, CRUCIAL_GROUPS  # noqa: E402
from e2gan_bench.models.lora import add_lora, lora_targets  # noqa: E402
from e2gan_bench.training.trainer import TrainData, train_gan  # noqa: E402

SIZES = [(48, 16), (64, 32)]
SETTINGS = ("full", "lora-peft", "lora-fused")


def _generator(ngf: int, setting: str) -> torch.nn.Module:
    torch.manual_seed(0)
    G = ARCHS.get("e2gan")(ngf=ngf)
    if setting == "full":
        return G
    for p in G.parameters():
        p.requires_grad_(False)
    pattern = dict.fromkeys(lora_targets(G, CRUCIAL_GROUPS), 4)
    return add_lora(G, pattern, alpha=8, fused=setting == "lora-fused")


def _data(resolution: int, n: int = 64) -> TrainData:
    g = torch.Generator().manual_seed(0)
    src = torch.rand(n, 3, resolution, resolution, generator=g) * 2 - 1
    return TrainData(src, src.flip(1), torch.zeros(n, dtype=torch.long), torch.randn(1, 8, 384, generator=g),
                     torch.ones(1, 8, dtype=torch.bool))


def run(steps: int, rounds: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    budget = Budget(steps=steps, batch=8, lr=2e-3, schedule="linear", warmup=0)
    rows = []
    for resolution, ngf in SIZES:
        data = _data(resolution)
        models = {s: _generator(ngf, s) for s in SETTINGS}
        for G in models.values():  # untimed: oneDNN kernel selection, allocator growth
            train_gan(copy.deepcopy(G), data, budget.model_copy(update={"steps": 5}), seed=1)
        times: dict[str, list[float]] = {s: [] for s in SETTINGS}
        params: dict[str, int] = {}
        for _ in range(rounds):
            for s in SETTINGS:
                r = train_gan(copy.deepcopy(models[s]), data, budget, seed=0)
                times[s].append(r.seconds / steps)
                params[s] = r.trainable_params
        full = statistics.median(times["full"])
        for s in SETTINGS:
            med = statistics.median(times[s])
            rows.append({"resolution": resolution, "ngf": ngf, "setting": s, "steps": steps, "rounds": rounds,
                         "ms_per_step": round(med * 1e3, 2), "per_round_ms": [round(t * 1e3, 2) for t in times[s]],
                         "trainable_params": params[s], "vs_full": round(med / full, 3)})
            print(json.dumps(rows[-1]), flush=True)
    return {"rows": rows, "threads": threads, "cpu": cpu_model(), "environment": environment()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    out = run(a.steps, a.rounds, a.threads)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
