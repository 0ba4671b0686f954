"""Methods: each one a unit — its preset (a method YAML), its card, and the plugin that says what it trains and how
its artifact is kept.

* :mod:`.contract` — the method contract (:class:`~.contract.Trainable`: ``prepare`` / ``save`` / ``load``) and its
  registry :data:`~.contract.TRAINABLES`;
* :mod:`.e2gan` — E2GAN's folder: its preset ``e2gan.yaml``, its card, its trainable sets (LoRA on the crucial
  layers or on all of them) and its rank search;
* :mod:`.weights` — the trainable sets the baselines use (``all``, ``none``); the baselines themselves are the
  top-level ``baselines/`` folder, one folder each with its card and preset;
* :mod:`.run` — one method on one concept (build, select data, prepare, train, save), :mod:`.artifacts` — what a
  run keeps and how evaluation gets its generator back.

A new method is one folder — a trainable-set plugin (or a built-in one) and a preset naming it — passed with
``--methods-dir``; ``tests/plugins/bitfit/`` is one, outside the package.
"""

# the built-in trainable sets register themselves on import
from e2gan_bench.methods import e2gan as _e2gan  # noqa: F401
from e2gan_bench.methods import weights as _weights  # noqa: F401
