"""A trainable-set plugin outside the package: only the biases train (a "BitFit"-style baseline, Ben Zaken et al.,
ACL 2022), and a concept keeps only them. The whole method is this file plus a preset naming it
(``trainable: plugins.my_trainable:BiasOnly``); nothing in e2gan_bench knows about it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from e2gan_bench.config import Method
from e2gan_bench.models.generators import Generator
from e2gan_bench.training.trainables import PrepareContext, Prepared, Trainable

BIASES = "biases.safetensors"


class BiasOnly(Trainable):
    def prepare(self, G: Generator, ctx: PrepareContext) -> Prepared:
        for name, p in G.named_parameters():
            p.requires_grad_(name.endswith(".bias"))
        return Prepared(G, details={"bias_only": True})

    def save(self, G: Generator, method: Method, out_dir: Path) -> tuple[int, list[str]]:
        keep = {k: v.detach().contiguous() for k, v in G.state_dict().items() if k.endswith(".bias")}
        save_file(keep, str(out_dir / BIASES))
        return (out_dir / BIASES).stat().st_size, [BIASES]

    def load(self, G: Generator, method: Method, folder: Path, summary: dict[str, Any]) -> Generator:
        G.load_state_dict(load_file(str(folder / BIASES)), strict=False)
        return G
