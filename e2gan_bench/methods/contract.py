"""The method contract: what a method trains, and how its weights are kept — one plugin per kind, named by a
method's ``trainable:``.

A trainable set is a :class:`Trainable` subclass registered in :data:`TRAINABLES` (entry-point group
``e2gan_bench.trainable``, or ``package.module:attr`` in a method file). Three hooks say everything the rest of the
code needs about it, so :func:`e2gan_bench.methods.run.run_method` and
:func:`e2gan_bench.methods.artifacts.load_generator` hold no branch on the kind:

* :meth:`Trainable.prepare` — given the initialised generator (scratch or base weights) and the training pairs,
  choose what trains: freeze, inject adapters, search their ranks (its cost counted apart from training);
* :meth:`Trainable.save` — write what a concept must keep (``stored_bytes`` counts it);
* :meth:`Trainable.load` — put those files back onto a freshly initialised generator for evaluation.

Built in: ``all`` and ``none`` (:mod:`e2gan_bench.methods.weights`: the baselines' trainable sets — every weight,
or nothing) and E2GAN's ``lora-crucial`` / ``lora-all`` (:mod:`e2gan_bench.methods.e2gan`: LoRA on the crucial
layers or on all of them, ranks from the method's rank search). ``tests/plugins/bitfit/`` is a complete method
folder outside the package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from e2gan_bench import plugins
from e2gan_bench.config import Method
from e2gan_bench.models.generators import Generator
from e2gan_bench.registry import Registry
from e2gan_bench.training.trainer import TrainData


@dataclass
class Prepared:
    """A generator ready to train (its trainable parameters chosen), and what choosing them cost."""

    G: Generator
    search_seconds: float = 0.0
    search_flops: int = 0
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class PrepareContext:
    method: Method
    data: TrainData  # the training pairs, on the training device
    seed: int  # the run's training seed (seed + budget.seed_offset)


class Trainable:
    """Base of every trainable-set plugin (see the module docstring)."""

    Params: ClassVar[type[plugins.Params]] = plugins.Params
    #: trains LoRA adapters: ``--rank-search`` applies to methods of this kind
    lora: ClassVar[bool] = False
    #: trains anything at all (``none`` does not: its runs cost nothing and have no curve)
    trains: ClassVar[bool] = True

    def prepare(self, G: Generator, ctx: PrepareContext) -> Prepared:
        raise NotImplementedError

    def save(self, G: Generator, method: Method, out_dir: Path) -> tuple[int, list[str]]:
        """Write what this concept must keep into ``out_dir``; returns (bytes on disk, file names)."""
        raise NotImplementedError

    def load(self, G: Generator, method: Method, folder: Path, summary: dict[str, Any]) -> Generator:
        """The trained generator: ``G`` (freshly initialised, base weights loaded for base methods) with the
        stored files of ``folder`` put back; ``summary`` is the run's ``training.json``."""
        raise NotImplementedError


TRAINABLES: Registry[type[Trainable]] = Registry("trainable")


def trainable(name: str, *, file: str | None = None, field: str | None = None) -> Trainable:
    """The trainable set a method names (unknown names: one line with the close names)."""
    return TRAINABLES.get(name, file=file, field=field)()
