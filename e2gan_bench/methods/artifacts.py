"""What a trained method leaves behind, and how evaluation gets the generator back from it.

A run's artifact folder (``OUT/artifacts/<training key>/``, written atomically by the harness) holds

* the weights a concept must keep — what ``stored_bytes`` counts: ``adapter.safetensors`` (LoRA adapters only),
  ``generator.safetensors`` (every weight) or ``groups.safetensors`` (the fine-tuned groups of a partial
  fine-tune from the base model); nothing for a method that trains nothing;
* ``training.json``: the training measurements and details (:func:`training_summary`).

:func:`load_generator` rebuilds the evaluated generator from those files — the LoRA adapter is loaded onto the
base model's weights — so evaluation never needs the training process that produced them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from e2gan_bench.config import Method
from e2gan_bench.errors import CheckpointError
from e2gan_bench.methods.contract import trainable
from e2gan_bench.metrics.cost import CUDA_PEAK_LABEL
from e2gan_bench.models.generators import Generator, build_generator

TRAINING = "training.json"


def save_weights(method: Method, G: Generator, out_dir: Path) -> tuple[int, list[str]]:
    """Write what this concept must keep (the method's trainable set decides what); returns (bytes on disk, file
    names)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return trainable(method.trainable, field="trainable").save(G, method, out_dir)


def training_summary(outcome: Any) -> dict[str, Any]:
    """The measurements of one training (a :class:`~e2gan_bench.methods.run.MethodOutcome`), as stored in
    ``training.json``. Training-stage metrics (``train_seconds``, …) are computed from these numbers."""
    res = outcome.train
    return {
        "steps": res.steps,
        "seconds": res.seconds,
        "flops": int(res.flops),
        "search_seconds": outcome.search_seconds,
        "search_flops": int(outcome.search_flops),
        "trainable_params": res.trainable_params,
        "total_params": outcome.details.get("total_params"),
        "peak_memory_bytes": res.peak_memory_bytes,
        "memory": res.memory,
        "stored_bytes": outcome.stored_bytes,
        "n_train_used": outcome.n_train_used,
        "artifacts": list(outcome.artifacts),
        "details": outcome.details,
        "curve": res.curve,
        "val_curve": outcome.val_curve,
        "device": res.device,
        **({"backends": {"peak_memory_bytes": CUDA_PEAK_LABEL}} if res.device == "cuda" else {}),
    }


def load_generator(method: Method, model_kwargs: dict[str, Any], seed: int, folder: Path, summary: dict[str, Any],
                   base_state: dict[str, torch.Tensor] | None) -> Generator:
    """The trained generator of a run, from its artifact folder (and the base model's weights for base-initialised
    methods), in eval mode. Raises CheckpointError when a file is missing or unreadable."""
    torch.manual_seed(seed + method.budget.seed_offset)  # an untrained scratch generator is its seeded initialisation
    G = build_generator(method.arch, model_kwargs, field="arch")
    if method.init == "base":
        if base_state is None:
            raise CheckpointError("the base model this run was trained from is not stored; run its suite again to "
                                  "rebuild it", file=str(folder))
        G.load_state_dict(base_state)
    files = summary.get("artifacts", [])
    try:
        G = trainable(method.trainable, field="trainable").load(G, method, folder, summary)
    except Exception as exc:  # noqa: BLE001 - any unreadable artifact
        name = next((f for f in files if f.endswith(".safetensors")), TRAINING)
        raise CheckpointError(f"unreadable run artifact ({type(exc).__name__}: {str(exc)[:120]})",
                              file=str(folder / name)) from None
    return G.eval()
