"""Rank search as plugins: a strategy gets a context and returns a per-layer rank pattern.

A strategy is a function ``(ctx: RankSearchContext) -> dict[str, int]`` registered with
``@RANK_SEARCHES.register("name")``, given as ``package.module:function``, or exposed through the
entry-point group ``e2gan_bench.rank_search``. ``ctx.trial(pattern, steps)`` runs a short LoRA
fine-tune with that pattern and returns a validation score (lower is better); the time and FLOPs
of every trial are added to the method's training cost by the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from e2gan_bench.registry import Registry


@dataclass
class RankSearchContext:
    targets: list[str]  # LoRA target module names, in model order
    groups: dict[str, list[str]]  # layer group -> target names
    rank: int  # the recipe's base rank (the "1×" allocation)
    params: dict[str, Any]  # the recipe's search_params
    seed: int
    trial: Callable[[dict[str, int], int], float]
    param_count: Callable[[dict[str, int]], int]
    log: list[dict[str, Any]] = field(default_factory=list)

    def uniform(self, rank: int) -> dict[str, int]:
        return {t: int(rank) for t in self.targets}


RankSearch = Callable[[RankSearchContext], dict[str, int]]
RANK_SEARCHES: Registry[RankSearch] = Registry("rank_search")


@RANK_SEARCHES.register("fixed")
def fixed(ctx: RankSearchContext) -> dict[str, int]:
    """The recipe's rank on every target layer (no search, no trial cost)."""
    return ctx.uniform(ctx.rank)


@RANK_SEARCHES.register("uniform")
def uniform(ctx: RankSearchContext) -> dict[str, int]:
    """``scale`` × the base rank on every layer (the paper's 1×/2×/4× rows)."""
    return ctx.uniform(max(1, int(round(ctx.rank * float(ctx.params.get("scale", 1))))))


@RANK_SEARCHES.register("random")
def random_allocation(ctx: RankSearchContext) -> dict[str, int]:
    """Random per-layer ranks whose parameter count matches ``scale`` × the uniform allocation."""
    budget = ctx.param_count(ctx.uniform(max(1, int(round(ctx.rank * float(ctx.params.get("scale", 2)))))))
    rng = np.random.default_rng(ctx.seed + 7919)
    choices = [1, 2, 4, 8, 16]
    pattern = {t: 1 for t in ctx.targets}
    order = list(ctx.targets)
    for _ in range(200):
        t = order[rng.integers(len(order))]
        bigger = [c for c in choices if c > pattern[t]]
        if not bigger:
            continue
        trial = dict(pattern, **{t: int(rng.choice(bigger))})
        if ctx.param_count(trial) <= budget:
            pattern = trial
    return pattern
