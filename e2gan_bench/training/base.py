"""The base generator: one E2GAN generator trained jointly on several concepts (text-conditioned),
cached by key; its cost is recorded once and reported apart from per-concept cost."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from e2gan_bench.data.dataset import build_dataset
from e2gan_bench.errors import CheckpointError
from e2gan_bench.models.generators import ARCHS, Generator
from e2gan_bench.models.text import CachedPromptEncoder
from e2gan_bench.training.trainer import TrainData, to_tensor, train_gan
from e2gan_bench.util import write_json


@dataclass
class BaseModel:
    key: str
    state: dict[str, torch.Tensor]
    meta: dict[str, Any]

    def build(self) -> Generator:
        G = ARCHS.get("e2gan")(**self.meta["model_kwargs"])
        G.load_state_dict(self.state)
        return G


def base_dir(cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / "base" / key


def load_or_train_base(plan: Any, cache_dir: Path, encoder: CachedPromptEncoder,
                       on_step: Callable[[int], None] | None = None) -> BaseModel:
    d = base_dir(cache_dir, plan.key)
    if (d / "meta.json").is_file():
        try:
            meta = json.loads((d / "meta.json").read_text())
            return BaseModel(plan.key, load_file(str(d / "generator.safetensors")), meta)
        except Exception as exc:  # noqa: BLE001
            raise CheckpointError(f"corrupt base-model checkpoint ({type(exc).__name__}); delete the folder to "
                                  "retrain it", file=str(d / "generator.safetensors")) from None
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
    G = ARCHS.get("e2gan")(**plan.model_kwargs)
    res = train_gan(G, data, plan.spec.budget, plan.spec.seed, ndf=plan.ndf, on_step=on_step)
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
    }
    state = {k: v.detach().contiguous() for k, v in G.state_dict().items()}
    d.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=d.parent, prefix=f".{plan.key}."))
    try:
        save_file(state, str(tmp / "generator.safetensors"))
        write_json(tmp / "meta.json", meta)
        if d.exists():
            shutil.rmtree(d)
        tmp.rename(d)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return BaseModel(plan.key, state, meta)
