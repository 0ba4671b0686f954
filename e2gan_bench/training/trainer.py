"""The GAN trainer shared by every method: conditional PatchGAN + L1 (pix2pix objective).

Training cost is measured here and only here: wall seconds of the optimisation loop (no data
building, no evaluation), FLOPs counted with ``torch.utils.flop_counter`` on one real step and
multiplied by the number of steps (the step is the same every time), and trainable parameters.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.flop_counter import FlopCounterMode

from e2gan_bench.config import Budget
from e2gan_bench.metrics.cost import step_peak_cuda_bytes, step_peak_tensor_bytes
from e2gan_bench.models.generators import Generator, PatchDiscriminator


class TrainingDiverged(RuntimeError):
    """A non-finite loss: the run ends as ``failed`` with this message as the reason; the suite goes on."""


@dataclass
class TrainData:
    """Tensors in [-1, 1]; ``text_idx`` picks each pair's prompt from ``texts``."""

    src: torch.Tensor  # N×3×H×W
    tgt: torch.Tensor
    text_idx: torch.Tensor  # N (long)
    texts: torch.Tensor  # C×L×D
    masks: torch.Tensor  # C×L (bool)

    def __len__(self) -> int:
        return int(self.src.shape[0])

    def to(self, device: str | torch.device) -> TrainData:
        """The same data on ``device`` (itself when already there)."""
        return TrainData(*(t.to(device) for t in (self.src, self.tgt, self.text_idx, self.texts, self.masks)))


@dataclass
class TrainResult:
    steps: int = 0
    seconds: float = 0.0
    flops: int = 0
    trainable_params: int = 0
    # peak tensor memory of one training step (G, D, both optimizers; metrics/cost.py), None if not measured
    peak_memory_bytes: int | None = None
    memory: dict[str, int] = field(default_factory=dict)  # that peak by kind: parameter, gradient, optstate, …
    device: str = "cpu"  # where it trained (the device of the data)
    curve: list[dict[str, float]] = field(default_factory=list)


def _gan_loss(mode: str, logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    if mode == "lsgan":
        return F.mse_loss(logits, target)
    return F.binary_cross_entropy_with_logits(logits, target)


def lr_factor(budget: Budget) -> Callable[[int], float]:
    """Learning-rate multiplier at each step: linear warm-up, then constant, cosine or linear decay to 0.

    Adam moves each weight by about ``lr`` per step, so short CPU budgets need large learning rates;
    the warm-up keeps the first steps (random discriminator, large gradients) stable and the decay lets
    the last ones settle.
    """
    steps, warm = max(1, budget.steps), budget.warmup

    def factor(step: int) -> float:
        w = min(1.0, (step + 1) / warm) if warm else 1.0
        p = min(1.0, step / steps)
        if budget.schedule == "cosine":
            return w * 0.5 * (1.0 + math.cos(math.pi * p))
        if budget.schedule == "linear":
            return w * (1.0 - p)
        return w

    return factor


def disc_layers_for(resolution: int) -> int:
    """PatchGAN depth: 3 (70×70 patches) at 256², shallower for tiny images."""
    return 1 if resolution <= 32 else 2 if resolution <= 96 else 3


def train_gan(
    G: Generator,
    data: TrainData,
    budget: Budget,
    seed: int,
    *,
    ndf: int = 32,
    log_every: int = 25,
    on_step: Callable[[int], None] | None = None,
    checkpoints: Sequence[int] = (),
    on_checkpoint: Callable[[int, float, int], bool | None] | None = None,
) -> TrainResult:
    """Train the generator's trainable parameters; returns cost and loss curve.

    After each step number in ``checkpoints`` (counted from 1), ``on_checkpoint(steps_done,
    train_seconds, train_flops)`` runs with the generator in eval mode; its time is off the training
    clock (validation is not training cost). When it returns True, training stops there (early stop):
    ``steps``, ``seconds`` and ``flops`` of the result count the steps trained.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in G.parameters() if p.requires_grad]
    result = TrainResult(trainable_params=sum(p.numel() for p in params))
    if budget.steps == 0 or not params:
        return result
    use_gan = budget.gan_mode != "none" and budget.gan_weight > 0
    device = data.src.device
    result.device = device.type
    D = PatchDiscriminator(ndf=ndf, n_layers=disc_layers_for(data.src.shape[-1])).to(device) if use_gan else None
    opt_g = torch.optim.Adam(params, lr=budget.lr, betas=(budget.beta1, budget.beta2))
    opt_d = (torch.optim.Adam(D.parameters(), lr=budget.lr_d or budget.lr, betas=(budget.beta1, budget.beta2))
             if D is not None else None)
    schedules = [LambdaLR(o, lr_factor(budget)) for o in (opt_g, opt_d) if o is not None]
    G.train()
    n = len(data)
    batch = min(budget.batch, n)
    wanted = sorted({int(c) for c in checkpoints if 0 < int(c) <= budget.steps})
    step_flops = 0
    paused = 0.0  # seconds spent in checkpoint callbacks and the memory probe: off the training clock
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=budget.precision == "bf16")
    probe_step = 1 if budget.steps >= 2 else None  # memory: the second step, once Adam's state exists
    logs: dict[str, float] = {}

    def one_step(src: torch.Tensor, tgt: torch.Tensor, text: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logs.clear()
        with autocast:
            fake = G(src, text, mask)
        if D is not None:
            opt_d.zero_grad(set_to_none=True)
            with autocast:
                d_loss = 0.5 * (_gan_loss(budget.gan_mode, D(src, tgt).float(), True)
                                + _gan_loss(budget.gan_mode, D(src, fake.detach()).float(), False))
            d_loss.backward()
            opt_d.step()
            logs["d_loss"] = d_loss.item()
        opt_g.zero_grad(set_to_none=True)
        l1 = F.l1_loss(fake.float(), tgt)
        g_loss = budget.l1_weight * l1
        if D is not None:
            for p in D.parameters():
                p.requires_grad_(False)
            with autocast:
                g_gan = _gan_loss(budget.gan_mode, D(src, fake).float(), True)
            for p in D.parameters():
                p.requires_grad_(True)
            g_loss = g_loss + budget.gan_weight * g_gan
            logs["g_gan"] = g_gan.item()
        if not torch.isfinite(g_loss.detach()):
            raise TrainingDiverged(f"non-finite generator loss ({float(g_loss):g}) at step {step}")
        g_loss.backward()
        opt_g.step()
        return l1

    t0 = time.perf_counter()
    done = budget.steps
    for step in range(budget.steps):
        idx = torch.randint(0, n, (batch,), generator=gen)
        args = (data.src[idx], data.tgt[idx], data.texts[data.text_idx[idx]], data.masks[data.text_idx[idx]])
        if step == 0:
            with FlopCounterMode(display=False) as counter:
                l1 = one_step(*args)
            step_flops = int(counter.get_total_flops())
        if step == probe_step:  # the probe's hooks slow this step: off the clock, counted at the mean step time
            t_probe = time.perf_counter()
            box: list[torch.Tensor] = []
            probe = step_peak_cuda_bytes if device.type == "cuda" else step_peak_tensor_bytes
            peaks = probe(lambda: box.append(one_step(*args)), [m for m in (G, D) if m is not None],
                          [o for o in (opt_g, opt_d) if o is not None])
            l1 = box[0]
            result.memory = peaks
            result.peak_memory_bytes = int(peaks["total"])
            paused += time.perf_counter() - t_probe
        elif step != 0:
            l1 = one_step(*args)
        for sched in schedules:
            sched.step()
        if step % log_every == 0 or step == budget.steps - 1:
            result.curve.append({"step": step, "l1": l1.item(), "seconds": time.perf_counter() - t0 - paused,
                                 "lr": schedules[0].get_last_lr()[0], **logs})
        if on_step is not None:
            on_step(step)
        if on_checkpoint is not None and wanted and step + 1 == wanted[0]:
            wanted.pop(0)
            t_pause = time.perf_counter()
            G.eval()
            stop = on_checkpoint(step + 1, t_pause - t0 - paused, step_flops * (step + 1))
            G.train()
            paused += time.perf_counter() - t_pause
            if stop:
                done = step + 1
                break
    result.steps = done
    result.flops = step_flops * done
    result.seconds = time.perf_counter() - t0 - paused
    if probe_step is not None and done > probe_step:  # the probed step is off the clock: counted at the mean
        result.seconds *= done / (done - 1)
    G.eval()
    return result


__all__ = ["TrainData", "TrainResult", "TrainingDiverged", "train_gan"]
