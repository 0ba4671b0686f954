"""Rank search as plugins: a strategy gets a context and returns a per-layer rank pattern.

A strategy is a function ``(ctx: RankSearchContext) -> dict[str, int]`` registered with
``@RANK_SEARCHES.register("name", params=ItsParams)``, given as ``package.module:function``, or exposed
through the entry-point group ``e2gan_bench.rank_search``. Its parameters (a method's
``lora.search_params``) are validated against its ``Params`` model (:mod:`e2gan_bench.plugins`) and handed
over as ``ctx.params``. The context offers

* ``ctx.trial(pattern, steps) -> float``: a short LoRA fine-tune with that pattern, returning the
  held-out L1 (lower is better);
* ``ctx.gradients(n_batches) -> {layer: grad}``: loss gradients of each target layer's weight;
* ``ctx.param_count(pattern)``, ``ctx.uniform(rank)``, ``ctx.budget(scale)``, ``ctx.groups``
  (layer group -> layers).

Every trial's and gradient pass's time and FLOPs count in the method's training cost.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from pydantic import Field

from e2gan_bench.errors import ConfigError
from e2gan_bench.plugins import Params
from e2gan_bench.registry import Registry

RANK_CHOICES = (1, 2, 4, 8, 16, 32, 64)


@dataclass
class RankSearchContext:
    targets: list[str]  # LoRA target module names, in model order
    groups: dict[str, list[str]]  # layer group -> target names (groups without targets are empty)
    rank: int  # the method's base rank (the "1×" allocation)
    params: Any  # the search's validated Params (from the method's lora.search_params)
    seed: int
    trial: Callable[[dict[str, int], int], float]
    param_count: Callable[[dict[str, int]], int]
    gradients: Callable[[int], dict[str, torch.Tensor]] | None = None
    log: list[dict[str, Any]] = field(default_factory=list)
    full_rank: dict[str, int] = field(default_factory=dict)  # layer -> rank of its full weight (no gain beyond)

    def uniform(self, rank: int) -> dict[str, int]:
        return {t: int(rank) for t in self.targets}

    def budget(self, scale: float) -> int:
        """Parameter budget: ``scale`` × the uniform allocation at the base rank."""
        return int(self.param_count(self.uniform(self.rank)) * float(scale))


RankSearch = Callable[[RankSearchContext], dict[str, int]]
RANK_SEARCHES: Registry[RankSearch] = Registry("rank_search")

#: The largest rank a search may give a layer (as for a method's ``lora.rank``).
MAX_RANK = 512


def check_pattern(pattern: Any, ctx: RankSearchContext, name: str) -> dict[str, int]:
    """A rank search's output, checked: a non-empty ``{target layer: integer rank in 1..MAX_RANK}``. Anything
    else is a one-line error naming the search (``lora.search``), raised before the adapter is built."""

    def bad(msg: str) -> ConfigError:
        return ConfigError(f"rank search returned {msg}", field="lora.search", value=name)

    if not isinstance(pattern, Mapping):
        raise bad(f"a {type(pattern).__name__}, not a mapping {{layer: rank}}")
    if not pattern:
        raise bad("no layers")
    known = set(ctx.targets)
    out: dict[str, int] = {}
    for layer, rank in pattern.items():
        if layer not in known:
            shown = ", ".join(ctx.targets[:6]) + (", …" if len(ctx.targets) > 6 else "")
            raise bad(f"an unknown layer {layer!r} (the LoRA targets are {shown})")
        if isinstance(rank, (bool, np.bool_)) or not isinstance(rank, (int, np.integer)):
            raise bad(f"a rank that is not an integer for layer {layer!r}: {rank!r}")
        if not 1 <= int(rank) <= MAX_RANK:
            raise bad(f"rank {int(rank)} for layer {layer!r} (ranks must be 1..{MAX_RANK})")
        out[str(layer)] = int(rank)
    return out


class ScaleParams(Params):
    scale: float = Field(2.0, gt=0, le=64)  # parameter budget: scale × the uniform allocation at the base rank


class UniformParams(Params):
    scale: float = Field(1.0, gt=0, le=64)


class E2GANParams(ScaleParams):
    trial_steps: int = Field(40, ge=1, le=100_000)
    probe: int = Field(4, ge=1, le=1000)


class GradSpectrumParams(ScaleParams):
    batches: int = Field(4, ge=1, le=10_000)
    energy: float = Field(0.9, gt=0, le=1)


@RANK_SEARCHES.register("fixed")
def fixed(ctx: RankSearchContext) -> dict[str, int]:
    """The method's rank on every target layer (no search, no trial cost)."""
    return ctx.uniform(ctx.rank)


@RANK_SEARCHES.register("uniform", params=UniformParams)
def uniform(ctx: RankSearchContext) -> dict[str, int]:
    """``scale`` × the base rank on every layer (the paper's 1×/2×/4× rows)."""
    return ctx.uniform(max(1, int(round(ctx.rank * ctx.params.scale))))


def _fill_budget(ctx: RankSearchContext, weights: dict[str, float], budget: int, floor: int = 1) -> dict[str, int]:
    """Greedy: start every layer at ``floor``; repeatedly double the rank of the layer with the highest
    weight per added parameter (weights decay as a layer grows) while the budget allows. No layer goes
    beyond its full rank (the last step stops there: a 3-output conv gets at most rank 3)."""
    cap = {t: min(RANK_CHOICES[-1], ctx.full_rank.get(t, RANK_CHOICES[-1])) for t in ctx.targets}
    pattern = {t: max(1, min(floor, cap[t])) for t in ctx.targets}
    while True:
        best, best_gain = None, 0.0
        for t in ctx.targets:
            nxt = min(pattern[t] * 2, cap[t])
            if nxt <= pattern[t]:
                continue
            trial = dict(pattern, **{t: nxt})
            cost = ctx.param_count(trial) - ctx.param_count(pattern)
            if ctx.param_count(trial) > budget or cost <= 0:
                continue
            gain = weights.get(t, 0.0) / pattern[t] / cost
            if gain > best_gain:
                best, best_gain = t, gain
        if best is None:
            return pattern
        pattern[best] = min(pattern[best] * 2, cap[best])


@RANK_SEARCHES.register("random", params=ScaleParams)
def random_allocation(ctx: RankSearchContext) -> dict[str, int]:
    """Random per-layer ranks with (about) the parameter count of ``scale`` × uniform (default 2×)."""
    budget = ctx.budget(ctx.params.scale)
    rng = np.random.default_rng(ctx.seed + 7919)
    pattern = {t: 1 for t in ctx.targets}
    for _ in range(400):
        t = ctx.targets[rng.integers(len(ctx.targets))]
        bigger = [c for c in RANK_CHOICES if c > pattern[t]]
        if not bigger:
            continue
        trial = dict(pattern, **{t: int(rng.choice(bigger[:2]))})
        if ctx.param_count(trial) <= budget:
            pattern = trial
    return pattern


@RANK_SEARCHES.register("e2gan", params=E2GANParams)
def e2gan_search(ctx: RankSearchContext) -> dict[str, int]:
    """The project's reading of E2GAN's search (the paper leaves the rule open): probe each crucial
    layer group by a short trial in which only that group gets ``probe`` × the base rank (others 1×),
    measure how much the held-out L1 drops against the all-1× trial, then spend the parameter budget
    (``scale`` × uniform, default 2× — the paper's searched LoRA sits between its 1× and 4×) on the
    groups in proportion to their measured gain per parameter. Cost: (groups + 1) trials of
    ``trial_steps`` (default 40) steps.
    """
    steps, probe = ctx.params.trial_steps, ctx.params.probe
    base = ctx.uniform(ctx.rank)
    ref = ctx.trial(base, steps)
    ctx.log.append({"pattern": "uniform", "score": ref})
    weights: dict[str, float] = {}
    for g, layers in ctx.groups.items():
        if not layers:
            continue
        pat = dict(base, **{t: ctx.rank * probe for t in layers})
        score = ctx.trial(pat, steps)
        gain = max(ref - score, 0.0)
        ctx.log.append({"group": g, "score": score, "gain": gain})
        for t in layers:
            weights[t] = gain + 1e-6
    return _fill_budget(ctx, weights, ctx.budget(ctx.params.scale), floor=ctx.rank)


@RANK_SEARCHES.register("grad-spectrum", params=GradSpectrumParams)
def grad_spectrum(ctx: RankSearchContext) -> dict[str, int]:
    """Our variant, not in the paper: allocate ranks from the spectrum of each layer's loss gradient
    at the starting point — at no trial cost (a few backward passes). A layer whose weight gradient
    (reshaped out × in·k·k) needs many singular directions to hold ``energy`` (default 0.9) of its
    squared norm, and whose gradient is large, gets more rank. Budget: ``scale`` × uniform (default 2×).
    """
    if ctx.gradients is None:
        raise RuntimeError("grad-spectrum needs gradient access")
    grads = ctx.gradients(ctx.params.batches)
    energy = ctx.params.energy
    weights: dict[str, float] = {}
    for t, g in grads.items():
        m = g.reshape(g.shape[0], -1).double()
        sv = torch.linalg.svdvals(m)
        frac = torch.cumsum(sv**2, 0) / (sv**2).sum().clamp_min(1e-30)
        eff_rank = int((frac < energy).sum().item()) + 1
        weights[t] = float(m.norm()) * eff_rank
        ctx.log.append({"layer": t, "grad_norm": float(m.norm()), "effective_rank": eff_rank})
    total = sum(weights.values()) or 1.0
    weights = {t: w / total for t, w in weights.items()}
    return _fill_budget(ctx, weights, ctx.budget(ctx.params.scale), floor=max(1, ctx.rank // 2))
