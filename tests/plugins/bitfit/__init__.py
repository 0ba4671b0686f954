"""A method outside the package, in one folder: only the biases train (a "BitFit"-style baseline, Ben Zaken et al.,
ACL 2022), and a concept keeps only them. The folder holds this trainable-set plugin, the preset naming it
(``bitfit.yaml``: ``trainable: plugins.bitfit:BiasOnly``) and its card (``README.md``); nothing in e2gan_bench
knows about it. ``--methods-dir tests/plugins/bitfit`` adds it (with the folder's parent on the import path and
``E2GAN_BENCH_ALLOW_CODE=1``: a method file that names code is code)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from e2gan_bench.config import Method
from e2gan_bench.methods.contract import PrepareContext, Prepared, Trainable
from e2gan_bench.models.generators import Generator

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
