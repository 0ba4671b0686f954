"""Execute one method on one concept: build the generator (scratch or base), choose what
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
from torch.utils.flop_counter import FlopCounterMode

from e2gan_bench.config import CurveSpec, Method
from e2gan_bench.data.dataset import PairedDataset
from e2gan_bench.errors import ConfigError
from e2gan_bench.models.generators import ARCHS, Generator, count_params
from e2gan_bench.models.lora import TARGET_GROUPS, add_lora, full_ranks, lora_param_count, lora_targets
from e2gan_bench.models.tensors import to_tensor
from e2gan_bench.models.text import PromptEmbedding
from e2gan_bench.plugins import parse_params
from e2gan_bench.training.artifacts import save_weights
from e2gan_bench.training.rank_search import RANK_SEARCHES, RankSearchContext, check_pattern
from e2gan_bench.training.selection import select
from e2gan_bench.training.trainer import TrainData, TrainResult, train_gan
from e2gan_bench.training.validation import Validator, checkpoint_steps


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
    val_curve: dict[str, Any] | None = None  # Validator.summary(): points, backends, n_images


def _train_data(ds: PairedDataset, idx: np.ndarray, emb: PromptEmbedding) -> TrainData:
    return TrainData(to_tensor(ds.src_train[idx]), to_tensor(ds.tgt_train[idx]), torch.zeros(len(idx), dtype=torch.long),
                     emb.tokens[None], emb.mask[None])


def run_method(method: Method, ds: PairedDataset, emb: PromptEmbedding, seed: int, model_kwargs: dict[str, Any],
               ndf: int, out_dir: Path, base_state: dict[str, torch.Tensor] | None = None,
               on_step: Callable[[int], None] | None = None, curve: CurveSpec | None = None,
               device: str = "cpu", stop_at: tuple[str, float] | None = None) -> MethodOutcome:
    """Build, search, train and save one method on one concept. With ``curve`` (and validation pairs in
    ``ds``), the generator is scored on the validation split before training and at log-spaced steps; with
    ``stop_at`` (metric, target) training stops at the first of those steps that reaches the target. The training
    randomness (initialisation, data subset, batch order) uses ``seed + budget.seed_offset``; the data split and the
    base model (made before this) use the run's seed alone."""
    seed = seed + method.budget.seed_offset
    torch.manual_seed(seed)
    G = ARCHS.get(method.arch, field="arch")(**model_kwargs)
    if method.init == "base":
        assert base_state is not None
        G.load_state_dict(base_state)
    G = G.to(device)  # initialised on the CPU: the same weights on every device
    idx, sel_info = select(method.data, ds.src_train, seed)
    data = _train_data(ds, idx, emb).to(device)
    details: dict[str, Any] = {"data": sel_info, "init": method.init, "arch": method.arch}
    unknown = sorted(set(method.groups or ()) - set(G.layer_groups()))
    if unknown:
        raise ConfigError("unknown layer group", field="groups", value=unknown[0], allowed=", ".join(G.layer_groups()))
    search_seconds, search_flops = 0.0, 0

    if method.trainable in TARGET_GROUPS:
        for p in G.parameters():
            p.requires_grad_(False)
        wanted = method.groups if method.groups is not None else TARGET_GROUPS[method.trainable]
        targets = lora_targets(G, wanted)
        groups = {g: [n for n in names if n in targets] for g, names in G.layer_groups().items()}
        trial_cost = {"seconds": 0.0, "flops": 0}
        n_val = max(1, len(data) // 5)

        def trial(pattern: dict[str, int], steps: int) -> float:
            """Short LoRA fine-tune (L1 only, no discriminator) on 4/5 of the data; L1 on the held-out 1/5."""
            Gt = add_lora(copy.deepcopy(G), pattern, method.lora.alpha)
            tr = TrainData(data.src[n_val:], data.tgt[n_val:], data.text_idx[n_val:], data.texts, data.masks)
            res = train_gan(Gt, tr, method.budget.model_copy(update={"steps": steps, "gan_mode": "none"}), seed)
            trial_cost["seconds"] += res.seconds
            trial_cost["flops"] += res.flops
            with torch.no_grad():
                out = Gt(data.src[:n_val], data.texts[data.text_idx[:n_val]], data.masks[data.text_idx[:n_val]])
            return float(F.l1_loss(out, data.tgt[:n_val]))

        def gradients(n_batches: int) -> dict[str, torch.Tensor]:
            """Summed L1-loss gradients of each target layer's weight over ``n_batches`` batches (no update)."""
            Gg = copy.deepcopy(G)
            mods = dict(Gg.named_modules())
            for t in targets:
                mods[t].weight.requires_grad_(True)
            gen = torch.Generator().manual_seed(seed + 1)
            with FlopCounterMode(display=False) as counter:
                for _ in range(n_batches):
                    i = torch.randint(0, len(data), (min(method.budget.batch, len(data)),), generator=gen)
                    out = Gg(data.src[i], data.texts[data.text_idx[i]], data.masks[data.text_idx[i]])
                    F.l1_loss(out, data.tgt[i]).backward()
            trial_cost["flops"] += int(counter.get_total_flops())
            return {t: mods[t].weight.grad.detach().clone() for t in targets}

        search = RANK_SEARCHES.get(method.lora.search, field="lora.search")
        params = parse_params(search, method.lora.search_params, field="lora.search_params")
        ctx = RankSearchContext(targets, groups, method.lora.rank, params, seed, trial,
                                lambda pat: lora_param_count(G, pat), gradients, full_rank=full_ranks(G, targets))
        t0 = time.perf_counter()
        pattern = check_pattern(search(ctx), ctx, method.lora.search)
        search_seconds = time.perf_counter() - t0
        search_flops = trial_cost["flops"]
        G = add_lora(G, pattern, method.lora.alpha, method.lora.dropout)
        details.update(rank_search=method.lora.search, rank_pattern=pattern, search_log=ctx.log)
    elif method.trainable == "none":
        for p in G.parameters():
            p.requires_grad_(False)
    elif method.groups is not None:  # full fine-tuning of some layer groups only
        for name, p in G.named_parameters():
            p.requires_grad_(name.split(".")[0] in method.groups)

    validator = Validator.for_data(ds.src_val, ds.tgt_val, emb, curve, device) if curve is not None else None
    checkpoints: list[int] = []
    budget = method.budget
    if stop_at is not None and validator is None:
        raise ConfigError("early stop needs a validation curve (curve.points > 0 and validation pairs)",
                          field="target.early_stop")
    if validator is not None:
        validator.offset_seconds, validator.offset_flops = search_seconds, search_flops
        validator.stop_at = stop_at
        if validator(G, 0, 0.0, 0):  # the starting point (a base model's zero-shot quality) reaches the target
            budget = budget.model_copy(update={"steps": 0})
        checkpoints = checkpoint_steps(budget.steps, validator.spec) if any(
            p.requires_grad for p in G.parameters()) else []
    res = train_gan(G, data, budget, seed, ndf=ndf, on_step=on_step, checkpoints=checkpoints,
                    on_checkpoint=(lambda step, secs, flops: validator(G, step, secs, flops)) if checkpoints else None)
    if stop_at is not None:
        details["early_stop"] = {"metric": stop_at[0], "target": float(stop_at[1]), "budget": method.budget.steps,
                                 "stopped_at": res.steps if res.steps < method.budget.steps else None}
    G = G.cpu()  # what is stored, and what the outcome holds, lives on the CPU
    stored, artifacts = save_weights(method, G, out_dir)
    details["total_params"] = count_params(G)
    return MethodOutcome(G, res, stored, artifacts, search_seconds, search_flops, len(idx), details,
                         validator.summary() if validator is not None else None)
