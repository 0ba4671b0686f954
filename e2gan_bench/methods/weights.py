"""The baselines' trainable sets (their presets and cards: the top-level ``baselines/`` folder).

* ``all`` — every weight trains (full fine-tuning from the base model, training from scratch, pix2pix); with the
  method's ``groups``, only those layer groups;
* ``none`` — nothing trains and nothing is kept (the identity reference).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from e2gan_bench.config import Method
from e2gan_bench.methods.contract import TRAINABLES, PrepareContext, Prepared, Trainable
from e2gan_bench.models.generators import Generator

GENERATOR, GROUPS = "generator.safetensors", "groups.safetensors"


@TRAINABLES.register("all")
class AllWeights(Trainable):
    """Every weight trains (full fine-tuning from the base model, or training from scratch); with the method's
    ``groups``, only those layer groups. Kept: every weight, or — a partial fine-tune of the shared base — the
    trained groups alone."""

    def prepare(self, G: Generator, ctx: PrepareContext) -> Prepared:
        if ctx.method.groups is not None:
            for name, p in G.named_parameters():
                p.requires_grad_(name.split(".")[0] in ctx.method.groups)
        return Prepared(G)

    @staticmethod
    def _file(method: Method) -> str:
        return GENERATOR if method.groups is None or method.init != "base" else GROUPS

    def save(self, G: Generator, method: Method, out_dir: Path) -> tuple[int, list[str]]:
        fname = self._file(method)
        keep = {k: v.detach().contiguous() for k, v in G.state_dict().items()
                if fname == GENERATOR or k.split(".")[0] in (method.groups or ())}
        save_file(keep, str(out_dir / fname))
        return (out_dir / fname).stat().st_size, [fname]

    def load(self, G: Generator, method: Method, folder: Path, summary: dict[str, Any]) -> Generator:
        files = summary.get("artifacts", [])
        if GENERATOR in files:
            G.load_state_dict(load_file(str(folder / GENERATOR)))
        elif GROUPS in files:
            G.load_state_dict(load_file(str(folder / GROUPS)), strict=False)
        return G


@TRAINABLES.register("none")
class Nothing(Trainable):
    """Nothing trains and nothing is kept: the generator is what initialisation made (the identity reference)."""

    trains = False

    def prepare(self, G: Generator, ctx: PrepareContext) -> Prepared:
        for p in G.parameters():
            p.requires_grad_(False)
        return Prepared(G)

    def save(self, G: Generator, method: Method, out_dir: Path) -> tuple[int, list[str]]:
        return 0, []

    def load(self, G: Generator, method: Method, folder: Path, summary: dict[str, Any]) -> Generator:
        return G
