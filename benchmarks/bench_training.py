"""pytest-benchmark: a few training steps of each method of the quick suite, through the real method code path.

One round is ``methods.run.run_method`` — the function ``run`` calls for every (concept, method, seed):
build the generator (from the base weights for E2GAN and full fine-tuning), select the data (k-means half for
E2GAN), inject LoRA on the crucial layers (E2GAN), train with ``training.trainer.train_gan`` (generator +
PatchGAN, batch 8, 48 px) and save what the concept keeps — with the budget cut to ``STEPS`` steps and no
validation curve (validation is off the training clock). A round therefore includes the trainer's per-call
instrumentation (FLOPs counted on the first step, the memory probe on the second); ``extra_info`` carries the
trainer's own clock per step (``train_seconds_per_step``: the optimisation loop only, probe excluded), FLOPs per
step, trainable parameters and peak step memory.

The base weights are a seeded random initialisation of the base architecture, not a trained base model (training
it takes minutes): the step costs the same, the losses mean nothing.

Run with ``tox -e bench`` (README "Benchmarks").
"""

from __future__ import annotations

import itertools

import pytest
import torch
from conftest import Quick, machine_info

from e2gan_bench.methods.run import MethodOutcome, run_method
from e2gan_bench.models.generators import ARCHS

STEPS = 4
METHODS = ("e2gan", "full-finetune", "scratch", "pix2pix")


@pytest.mark.parametrize("name", METHODS)
def test_train_steps(benchmark, quick: Quick, name: str, tmp_path) -> None:
    spec = quick.spec(name)
    method = spec.method.model_copy(update={"budget": spec.method.budget.model_copy(update={"steps": STEPS})})
    base_state = None
    if method.init == "base":
        torch.manual_seed(0)
        base_state = ARCHS.get("e2gan")(**spec.base.model_kwargs).state_dict()
    rounds = itertools.count()
    outcomes: list[MethodOutcome] = []

    def setup() -> tuple[tuple, dict]:
        out_dir = tmp_path / f"round-{next(rounds)}"
        return (method, quick.pairs, quick.prompt, spec.seed, spec.model_kwargs, spec.ndf, out_dir), {
            "base_state": base_state}

    def one_round(*args, **kwargs) -> None:
        outcomes.append(run_method(*args, **kwargs))

    benchmark.group = f"train-{STEPS}-steps-{quick.pairs.resolution}px-batch{method.budget.batch}"
    benchmark.pedantic(one_round, setup=setup, rounds=3, warmup_rounds=1, iterations=1)
    res = outcomes[-1].train
    assert res.steps == STEPS and res.trainable_params > 0
    benchmark.extra_info.update(
        method=name, arch=method.arch, init=method.init, trainable=method.trainable, steps=STEPS,
        batch=method.budget.batch, model=spec.model_kwargs, ndf=spec.ndf,
        train_seconds_per_step=res.seconds / res.steps, flops_per_step=res.flops // res.steps,
        trainable_params=res.trainable_params, peak_memory_bytes=res.peak_memory_bytes,
        stored_bytes=outcomes[-1].stored_bytes, **machine_info())
