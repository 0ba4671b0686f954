"""Validation curves: quality on the validation split at log-spaced checkpoints during training.

Every trained run scores the concept's validation crops (photographs in neither the training nor the test
split) after ``first``, …, ``steps`` steps — log-spaced, so short and long budgets both get a readable curve —
and once before training (step 0: the starting point, e.g. the base model). The scoring is off the training
clock (:func:`e2gan_bench.training.trainer.train_gan` pauses it) and cheap: PSNR, SSIM and (optionally) LPIPS
on at most ``max_images`` images, with the same definitions as the test metrics. Each point records the
steps, train seconds and FLOPs spent so far (rank-search cost included), so reports can say how soon a method
reaches a quality: time-to-quality, the efficiency E2GAN claims.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from e2gan_bench.config import CurveSpec
from e2gan_bench.metrics.perceptual import get_lpips
from e2gan_bench.metrics.quality import psnr, ssim
from e2gan_bench.models.generators import Generator
from e2gan_bench.models.tensors import generate
from e2gan_bench.models.text import PromptEmbedding
from e2gan_bench.training.targets import reaches


def checkpoint_steps(steps: int, spec: CurveSpec) -> list[int]:
    """``spec.points`` step counts, log-spaced from ``spec.first`` to ``steps`` (always including ``steps``)."""
    if steps <= 0 or spec.points <= 0:
        return []
    first = min(spec.first, steps)
    raw = np.geomspace(first, steps, num=spec.points) if spec.points > 1 else np.array([steps])
    return sorted({int(round(v)) for v in raw} | {steps})


@dataclass
class Validator:
    """Scores a generator on the validation pairs; collects the curve."""

    src: np.ndarray
    tgt: np.ndarray
    emb: PromptEmbedding
    spec: CurveSpec
    offset_seconds: float = 0.0  # cost spent before training (rank search): counted in every point
    offset_flops: int = 0
    curve: list[dict[str, Any]] = field(default_factory=list)
    backends: dict[str, str] = field(default_factory=dict)
    device: str = "cpu"  # where LPIPS runs (the generator runs where it lives)
    stop_at: tuple[str, float] | None = None  # early stop: (metric, target); a point that reaches it ends training

    @classmethod
    def for_data(cls, src: np.ndarray, tgt: np.ndarray, emb: PromptEmbedding, spec: CurveSpec,
                 device: str = "cpu") -> Validator | None:
        if spec.points <= 0 or len(src) == 0:
            return None
        n = min(len(src), spec.max_images)
        return cls(src[:n], tgt[:n], emb, spec, device=device)

    @torch.no_grad()
    def score(self, G: Generator) -> dict[str, float]:
        out = generate(G, self.src, self.emb.tokens[None], self.emb.mask[None])
        vals = {"psnr": psnr(out, self.tgt), "ssim": ssim(out, self.tgt)}
        if self.spec.lpips:
            lp = get_lpips()
            vals["lpips"] = lp(out, self.tgt, device=self.device)
            self.backends["lpips"] = lp.backend
        self.backends.setdefault("psnr", "torchmetrics")
        self.backends.setdefault("ssim", "torchmetrics")
        return vals

    def __call__(self, G: Generator, step: int, seconds: float, flops: int) -> bool:
        """Score one checkpoint; True when it reaches the early-stop target (training stops there)."""
        was_training = G.training
        G.eval()
        vals = self.score(G)
        G.train(was_training)
        self.curve.append({"step": int(step), "seconds": self.offset_seconds + float(seconds),
                           "flops": int(self.offset_flops + flops), **vals})
        if self.stop_at is None:
            return False
        metric, target = self.stop_at
        v = vals.get(metric)
        return v is not None and reaches(v, target, metric)

    def summary(self) -> dict[str, Any]:
        return {"points": self.curve, "backends": dict(self.backends), "n_images": int(len(self.src))}
