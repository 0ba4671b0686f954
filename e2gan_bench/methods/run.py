"""Execute one method on one concept: build the generator (scratch or base), select the data, let the method's
trainable set choose what trains (:mod:`.contract`: all weights, E2GAN's LoRA with its rank search, nothing, or
a plugin's), train, and save what the concept must store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from e2gan_bench.config import CurveSpec, Method
from e2gan_bench.data.dataset import PairedDataset
from e2gan_bench.errors import ConfigError
from e2gan_bench.methods.artifacts import save_weights
from e2gan_bench.methods.contract import PrepareContext, trainable
from e2gan_bench.models.generators import Generator, build_generator, count_params
from e2gan_bench.models.tensors import to_tensor
from e2gan_bench.models.text import PromptEmbedding
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
    G = build_generator(method.arch, model_kwargs, field="arch")
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
    prepared = trainable(method.trainable, field="trainable").prepare(G, PrepareContext(method, data, seed))
    G, search_seconds, search_flops = prepared.G, prepared.search_seconds, prepared.search_flops
    details.update(prepared.details)

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
    stored, artifacts = save_weights(method, G, out_dir)  # the trainable set's own files
    details["total_params"] = count_params(G)
    return MethodOutcome(G, res, stored, artifacts, search_seconds, search_flops, len(idx), details,
                         validator.summary() if validator is not None else None)
