"""LPIPS through the ``lpips`` package.

The calibrated linear heads ship inside the package; the AlexNet backbone is torchvision's
ImageNet checkpoint, used when registered (``e2gan-bench weights add alexnet PATH``) or already in
the torch hub cache (never downloaded in a run). Otherwise the backbone is seeded random init and the backend is labelled
``lpips-alex-random-backbone`` — a fallback, not comparable to published LPIPS.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import lpips
import numpy as np
import torch
import torchvision

from e2gan_bench.features.weights import WeightRef, resolve_with_reason

RANDOM_BACKBONE = "lpips-alex-random-backbone"


def lpips_backend() -> tuple[str, WeightRef | None, str]:
    """(backend label, AlexNet weights or None, why not) — the resolution every LPIPS number uses: registered
    AlexNet, else the torch hub cache, else the seeded random backbone. Never downloads."""
    ref, why = resolve_with_reason("alexnet")
    return (f"lpips-alex@{ref.tag}" if ref is not None else RANDOM_BACKBONE), ref, why


class LPIPSMetric:
    def __init__(self) -> None:
        self.backend, ref, _ = lpips_backend()
        with contextlib.redirect_stdout(io.StringIO()), torch.random.fork_rng(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.manual_seed(0)
            self.model = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False).eval()
        if ref is not None:
            _load_alexnet(self.model.net, Path(ref.path))
        self.fallback = ref is None

    @torch.no_grad()
    def images(self, pred: np.ndarray, target: np.ndarray, batch: int = 32, device: str = "cpu") -> np.ndarray:
        """LPIPS of each uint8 N×H×W×3 pair, the network on ``device`` (cpu | cuda)."""
        self.model.to(device)
        vals = []
        for s in range(0, len(pred), batch):
            a = torch.from_numpy(pred[s : s + batch]).permute(0, 3, 1, 2).float().to(device) / 127.5 - 1
            b = torch.from_numpy(target[s : s + batch]).permute(0, 3, 1, 2).float().to(device) / 127.5 - 1
            vals.append(self.model(a, b).flatten())
        return torch.cat(vals).double().cpu().numpy()

    def __call__(self, pred: np.ndarray, target: np.ndarray, batch: int = 32, device: str = "cpu") -> float:
        """Mean LPIPS of uint8 N×H×W×3 pairs, the network on ``device`` (cpu | cuda)."""
        return float(self.images(pred, target, batch, device).mean())


def _load_alexnet(net: torch.nn.Module, path: Path) -> None:
    """Copy torchvision AlexNet ``features`` weights into lpips' sliced backbone (slices keep the
    original layer indices as module names)."""
    tv = torchvision.models.alexnet(weights=None)
    tv.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    for i in range(1, 6):
        for name, mod in getattr(net, f"slice{i}").named_children():
            mod.load_state_dict(tv.features[int(name)].state_dict())


_lp: LPIPSMetric | None = None


def get_lpips() -> LPIPSMetric:
    global _lp
    if _lp is None:
        _lp = LPIPSMetric()
    return _lp
