"""Execute one method recipe on one concept: build the generator (scratch or base), choose what
trains (all weights, LoRA on crucial / all layers, nothing), search ranks, select data, train, and
save what the concept must store."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from e2gan_bench.config import MethodRecipe
from e2gan_bench.data.dataset import PairedDataset
from e2gan_bench.data.selection import select
from e2gan_bench.models.generators import ARCHS, Generator, count_params
from e2gan_bench.models.text import PromptEmbedding
from e2gan_bench.training.lora import TARGET_GROUPS, add_lora, lora_param_count, lora_targets, save_adapter
from e2gan_bench.training.rank_search import RANK_SEARCHES, RankSearchContext
from e2gan_bench.training.trainer import TrainData, TrainResult, to_tensor, train_gan


@dataclass
class MethodOutcome:
    G: Generator
    train: TrainResult
    stored_bytes: int
    artifacts: list[str]
    search_seconds: float = 0.0
    search_flops: int = 0
    n_train_used: int = 0
    details: dict[str, Any] = field(default_factory=dict)


def _train_data(ds: PairedDataset, idx: np.ndarray, emb: PromptEmbedding) -> TrainData:
    return TrainData(to_tensor(ds.src_train[idx]), to_tensor(ds.tgt_train[idx]), torch.zeros(len(idx), dtype=torch.long),
                     emb.tokens[None], emb.mask[None])


def run_method(recipe: MethodRecipe, ds: PairedDataset, emb: PromptEmbedding, seed: int, model_kwargs: dict[str, Any],
               ndf: int, out_dir: Path, base_state: dict[str, torch.Tensor] | None = None,
               on_step: Callable[[int], None] | None = None) -> MethodOutcome:
    torch.manual_seed(seed)
    G = ARCHS.get(recipe.arch, field="arch")(**model_kwargs)
    if recipe.init == "base":
        assert base_state is not None
        G.load_state_dict(base_state)
    idx, sel_info = select(recipe.data, ds.src_train, seed)
    data = _train_data(ds, idx, emb)
    details: dict[str, Any] = {"data": sel_info, "init": recipe.init, "arch": recipe.arch}
    search_seconds, search_flops = 0.0, 0

    if recipe.trainable in TARGET_GROUPS:
        for p in G.parameters():
            p.requires_grad_(False)
        targets = lora_targets(G, TARGET_GROUPS[recipe.trainable])
        groups = {g: [n for n in names if n in targets] for g, names in G.layer_groups().items()}
        trial_cost = {"seconds": 0.0, "flops": 0}

        def trial(pattern: dict[str, int], steps: int) -> float:
            Gt = add_lora(copy.deepcopy(G), pattern, recipe.lora.alpha)
            n_val = max(1, len(data) // 5)
            tr = TrainData(data.src[n_val:], data.tgt[n_val:], data.text_idx[n_val:], data.texts, data.masks)
            res = train_gan(Gt, tr, recipe.budget.model_copy(update={"steps": steps}), seed)
            trial_cost["seconds"] += res.seconds
            trial_cost["flops"] += res.flops
            with torch.no_grad():
                out = Gt(data.src[:n_val], data.texts[data.text_idx[:n_val]], data.masks[data.text_idx[:n_val]])
            return float(F.l1_loss(out, data.tgt[:n_val]))

        ctx = RankSearchContext(targets, groups, recipe.lora.rank, dict(recipe.lora.search_params), seed, trial,
                                lambda pat: lora_param_count(G, pat))
        t0 = time.perf_counter()
        pattern = RANK_SEARCHES.get(recipe.lora.search, field="lora.search")(ctx)
        search_seconds = time.perf_counter() - t0
        search_flops = trial_cost["flops"]
        G = add_lora(G, pattern, recipe.lora.alpha, recipe.lora.dropout)
        details.update(rank_search=recipe.lora.search, rank_pattern=pattern, search_log=ctx.log)
    elif recipe.trainable == "none":
        for p in G.parameters():
            p.requires_grad_(False)

    res = train_gan(G, data, recipe.budget, seed, ndf=ndf, on_step=on_step)
    out_dir.mkdir(parents=True, exist_ok=True)
    artifacts: list[str] = []
    stored = 0
    if recipe.trainable in TARGET_GROUPS:
        stored = save_adapter(G, out_dir / "adapter.safetensors")
        artifacts.append("adapter.safetensors")
    elif recipe.trainable == "all":
        save_file({k: v.detach().contiguous() for k, v in G.state_dict().items()}, str(out_dir / "generator.safetensors"))
        stored = (out_dir / "generator.safetensors").stat().st_size
        artifacts.append("generator.safetensors")
    details["total_params"] = count_params(G)
    return MethodOutcome(G, res, stored, artifacts, search_seconds, search_flops, len(idx), details)
