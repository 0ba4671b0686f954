"""The base generator: one E2GAN generator trained jointly on several concepts (text-conditioned), stored by
key; its cost is recorded once and reported apart from per-concept cost.

Which concepts it learns is chosen by a base-selector plugin: a function ``select(ctx) -> [concept names]``
registered in :data:`BASE_SELECTORS` (entry-point group ``e2gan_bench.base_selector``), whose ``ctx`` is a
:class:`BaseSelectionContext` with the validated ``Params``.

The checkpoint is an artifact, not a cache (:mod:`e2gan_bench.cache`): every LoRA adapter and partial
fine-tune trained from it is a delta on exactly these weights, so an unreadable checkpoint is an error, never
silently retrained.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import Field, field_validator
from safetensors.torch import load_file, save_file

from e2gan_bench.cache import atomic_dir, write_json
from e2gan_bench.config import BaseSpec, Concept
from e2gan_bench.data.dataset import DataSettings, build_dataset
from e2gan_bench.data.sources import BuiltinPhotos, make_crops
from e2gan_bench.data.teachers import build_teacher
from e2gan_bench.errors import CheckpointError
from e2gan_bench.features.thumb import thumb_features
from e2gan_bench.models.generators import Generator, build_generator
from e2gan_bench.models.tensors import to_tensor
from e2gan_bench.models.text import CachedPromptEncoder
from e2gan_bench.plugins import Params, parse_params
from e2gan_bench.registry import Registry
from e2gan_bench.training.selection import nearest_to_centroids, random_subset
from e2gan_bench.training.trainer import TrainData, train_gan


@dataclass(frozen=True)
class BasePlan:
    """What base generator to train: the spec, the chosen concepts, their data, model sizes and its key."""

    spec: BaseSpec
    concepts: tuple[Concept, ...]
    data: tuple[DataSettings, ...]
    data_keys: tuple[str, ...]
    model_kwargs: dict[str, Any]
    ndf: int
    key: str
    device: str = "cpu"  # where it trains (cpu | cuda)


@dataclass
class BaseCheckpoint:
    """A trained base generator: its key, weights and metadata (concepts, cost, loss curve)."""

    key: str
    state: dict[str, torch.Tensor]
    meta: dict[str, Any]

    def build(self) -> Generator:
        G = build_generator("e2gan", self.meta["model_kwargs"])
        G.load_state_dict(self.state)
        return G


def base_dir(cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / "base" / key


def load_base(cache_dir: Path, key: str) -> BaseCheckpoint | None:
    """The stored base generator, ``None`` when it was never trained. Raises CheckpointError when unreadable."""
    d = base_dir(cache_dir, key)
    if not (d / "meta.json").is_file():
        return None
    try:
        meta = json.loads((d / "meta.json").read_text())
        return BaseCheckpoint(key, load_file(str(d / "generator.safetensors")), meta)
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint
        raise CheckpointError(f"corrupt base-model checkpoint ({type(exc).__name__}); delete the folder to "
                              "retrain it (adapters trained from it must then be retrained too)",
                              file=str(d / "generator.safetensors")) from None


def load_or_train_base(plan: BasePlan, cache_dir: Path, encoder: CachedPromptEncoder,
                       on_step: Callable[[int], None] | None = None) -> BaseCheckpoint:
    found = load_base(cache_dir, plan.key)
    if found is not None:
        return found
    src, tgt, idx, texts, masks = [], [], [], [], []
    for i, (c, s) in enumerate(zip(plan.concepts, plan.data, strict=True)):
        ds = build_dataset(c, s, cache_dir)
        src.append(ds.src_train)
        tgt.append(ds.tgt_train)
        idx.append(np.full(len(ds.src_train), i))
        e = encoder.encode(c.prompt)
        texts.append(e.tokens)
        masks.append(e.mask)
    data = TrainData(to_tensor(np.concatenate(src)), to_tensor(np.concatenate(tgt)),
                     torch.from_numpy(np.concatenate(idx)).long(), torch.stack(texts), torch.stack(masks))
    torch.manual_seed(plan.spec.seed)
    G = build_generator("e2gan", plan.model_kwargs).to(plan.device)
    res = train_gan(G, data.to(plan.device), plan.spec.budget, plan.spec.seed, ndf=plan.ndf, on_step=on_step)
    meta = {
        "key": plan.key,
        "concepts": [c.name for c in plan.concepts],
        "selector": plan.spec.selector,
        "model_kwargs": plan.model_kwargs,
        "steps": res.steps,
        "train_seconds": res.seconds,
        "train_flops": res.flops,
        "params": res.trainable_params,
        "n_pairs": len(data),
        "curve": res.curve,
        **({"device": plan.device} if plan.device != "cpu" else {}),
    }
    state = {k: v.detach().cpu().contiguous() for k, v in G.state_dict().items()}
    with atomic_dir(base_dir(cache_dir, plan.key)) as tmp:
        save_file(state, str(tmp / "generator.safetensors"))
        write_json(tmp / "meta.json", meta)
    return BaseCheckpoint(plan.key, state, meta)


# ----------------------------------------------------------------------------- choosing the base concepts


def concept_embedding(concept: Concept, encoder: CachedPromptEncoder, with_effect: bool = True) -> np.ndarray:
    """A concept's position for clustering: its prompt's sentence embedding (mean-pooled tokens, unit
    norm), plus — ``with_effect`` — what its teacher does to images: the change in cheap image
    features over a fixed probe set of 8 built-in photo crops (unit norm)."""
    e = encoder.encode(concept.prompt)
    sent = (e.tokens[e.mask].mean(0)).numpy().astype(np.float64)
    sent /= np.linalg.norm(sent) + 1e-12
    if not with_effect:
        return sent
    teacher = build_teacher(concept.teacher.kind, concept.teacher.params)
    if teacher.provides_pairs:
        return np.concatenate([sent, np.zeros(256)])
    probe = _probe_crops()
    eff = (thumb_features(teacher.edit(probe, concept.prompt, seed=0)) - thumb_features(probe)).mean(0)
    eff = np.resize(eff, 256)
    eff /= np.linalg.norm(eff) + 1e-12
    return np.concatenate([sent, eff])


_PROBE: list[np.ndarray] = []


def _probe_crops() -> np.ndarray:
    if not _PROBE:
        src = BuiltinPhotos(BuiltinPhotos.Params(test_photos=("chelsea", "coffee")), split_seed=0)
        _PROBE.append(make_crops(src, 32, 8, 1, seed=123).train)
    return _PROBE[0]


@dataclass(frozen=True)
class BaseSelectionContext:
    pool: list[Concept]  # the candidate concepts
    encoder: CachedPromptEncoder
    seed: int
    params: Any  # the selector's validated Params

    def embeddings(self) -> np.ndarray:
        """One :func:`concept_embedding` row per pool concept."""
        return np.stack([concept_embedding(c, self.encoder) for c in self.pool])


BaseSelector = Callable[[BaseSelectionContext], list[str]]
BASE_SELECTORS: Registry[BaseSelector] = Registry("base_selector")


class ListParams(Params):
    concepts: tuple[str, ...] = Field((), validate_default=True)

    @field_validator("concepts")
    @classmethod
    def _named(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("a suite with a base-initialised method needs base.concepts (or base.selector: "
                             "representative | random | single)")
        return v


class CountParams(Params):
    count: int = Field(4, ge=1, le=1000)


class SingleParams(Params):
    concepts: tuple[str, ...] = ()  # the first is used; none: the pool's most central concept


@BASE_SELECTORS.register("list", params=ListParams)
def base_list(ctx: BaseSelectionContext) -> list[str]:
    """The concepts named in ``base.concepts``."""
    return list(ctx.params.concepts)


@BASE_SELECTORS.register("representative", params=CountParams)
def base_representative(ctx: BaseSelectionContext) -> list[str]:
    """k-means (k = count) over concept embeddings (prompt + teacher effect); the concept nearest each
    centroid — the project's reading of the paper's "representative concepts"."""
    return sorted(ctx.pool[i].name for i in nearest_to_centroids(ctx.embeddings(), min(ctx.params.count,
                                                                                         len(ctx.pool)), ctx.seed))


@BASE_SELECTORS.register("random", params=CountParams)
def base_random(ctx: BaseSelectionContext) -> list[str]:
    """``count`` concepts drawn at random from the pool (the paper's "20 random" ablation)."""
    return sorted(ctx.pool[i].name for i in random_subset(len(ctx.pool), ctx.params.count, ctx.seed))


@BASE_SELECTORS.register("single", params=SingleParams)
def base_single(ctx: BaseSelectionContext) -> list[str]:
    """One concept (the first of ``concepts`` if given, else the pool's most central one)."""
    if ctx.params.concepts:
        return [ctx.params.concepts[0]]
    X = ctx.embeddings()
    return [ctx.pool[int(np.argmin(np.linalg.norm(X - X.mean(0), axis=1)))].name]


def select_base_concepts(spec: BaseSpec, pool: list[Concept], encoder: CachedPromptEncoder, *,
                         file: str | None = None) -> list[str]:
    """Run the spec's base selector. ``base.concepts`` and ``base.count`` are offered to selectors whose
    Params have those fields; ``base.params`` holds a selector's own parameters."""
    fn = BASE_SELECTORS.get(spec.selector, file=file, field="base.selector")
    params = parse_params(fn, spec.params, file=file, field="base.params",
                          offered={"concepts": spec.concepts, "count": spec.count}, offered_field="base")
    return fn(BaseSelectionContext(pool, encoder, spec.seed, params))
