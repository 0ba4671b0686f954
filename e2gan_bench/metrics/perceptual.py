"""LPIPS through the ``lpips`` package.

The calibrated linear heads ship inside the package; the AlexNet backbone is torchvision's
ImageNet checkpoint, used only when it is already in the torch hub cache (never downloaded in a
run). Otherwise the backbone is seeded random init and the backend is labelled
``lpips-alex-random-backbone`` — a fallback, not comparable to published LPIPS.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import torch

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"


def alexnet_checkpoint() -> Path | None:
    p = Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE
    return p if p.is_file() else None


class LPIPSMetric:
    def __init__(self) -> None:
        import lpips

        real = alexnet_checkpoint() is not None
        with contextlib.redirect_stdout(io.StringIO()), torch.random.fork_rng(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.manual_seed(0)
            self.model = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=not real, verbose=False).eval()
        self.backend = "lpips-alex" if real else "lpips-alex-random-backbone"
        self.fallback = not real

    @torch.no_grad()
    def __call__(self, pred: np.ndarray, target: np.ndarray, batch: int = 32) -> float:
        vals = []
        for s in range(0, len(pred), batch):
            a = torch.from_numpy(pred[s : s + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1
            b = torch.from_numpy(target[s : s + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1
            vals.append(self.model(a, b).flatten())
        return float(torch.cat(vals).mean())


_lp: LPIPSMetric | None = None


def get_lpips() -> LPIPSMetric:
    global _lp
    if _lp is None:
        _lp = LPIPSMetric()
    return _lp
