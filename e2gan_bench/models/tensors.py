"""Images as tensors and back, and running a generator on a batch of images (training and evaluation share it)."""

from __future__ import annotations

import numpy as np
import torch

from e2gan_bench.models.generators import Generator


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 N×H×W×3 -> float N×3×H×W in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """float N×3×H×W in [-1, 1] -> uint8 N×H×W×3."""
    return t.clamp(-1, 1).add(1).mul(127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def generate(G: Generator, src: np.ndarray, text: torch.Tensor, mask: torch.Tensor, batch: int = 32) -> np.ndarray:
    """Run the generator on uint8 images with one prompt, on the generator's device; returns uint8."""
    G.eval()
    device = next(G.parameters(), text).device  # where the generator lives (identity has no parameters)
    text, mask = text.to(device), mask.to(device)
    outs = []
    for s in range(0, len(src), batch):
        x = to_tensor(src[s : s + batch]).to(device)
        outs.append(to_uint8(G(x, text.expand(len(x), -1, -1), mask.expand(len(x), -1))))
    return np.concatenate(outs) if outs else src.copy()
