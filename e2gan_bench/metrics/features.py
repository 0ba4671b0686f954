"""Image feature extractors for FID / KID.

* ``inception-clean``: clean-fid's Inception-v3 (``mode="clean"`` resize to 299) — used only when its
  weights are present locally (clean-fid's own cache or ``E2GAN_BENCH_INCEPTION``); never downloaded.
* ``resnet18-random-init`` (offline fallback): torchvision ResNet-18 with seeded random weights,
  PIL-bicubic resize to 224. Random conv features still separate distributions, but the numbers are
  **not comparable** to published FIDs; every record labels them with the weights hash.

Features of a fixed image set (the teacher outputs of a test split) are cached on disk by content.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from e2gan_bench.registry import Registry


@dataclass(frozen=True)
class ExtractorInfo:
    name: str
    weights: str  # "sha256:…" for real weights, "random-init:<hash>" for the fallback
    resize: str
    fallback: bool


class FeatureExtractor:
    info: ExtractorInfo

    def __call__(self, images: np.ndarray) -> np.ndarray:  # uint8 N×H×W×3 -> float64 N×D
        raise NotImplementedError


EXTRACTORS: Registry[Callable[[], FeatureExtractor]] = Registry("feature_extractor")


def _state_hash(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


FALLBACK_SCALE = 0.15


class ResNet18RandomInit(FeatureExtractor):
    def __init__(self, batch: int = 32) -> None:
        import torchvision

        g = torch.random.fork_rng()
        with g:
            torch.manual_seed(0)
            model = torchvision.models.resnet18(weights=None)
        model.fc = torch.nn.Identity()
        self.model = model.eval()
        self.batch = batch
        self.info = ExtractorInfo("resnet18-random-init", f"random-init:{_state_hash(self.model)}",
                                  "PIL-bicubic-224", fallback=True)
        self.mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        self.std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        out = []
        for s in range(0, len(images), self.batch):
            x = np.stack([np.asarray(Image.fromarray(im).resize((224, 224), Image.Resampling.BICUBIC), np.float32)
                          for im in images[s : s + self.batch]])
            t = torch.from_numpy(x).permute(0, 3, 1, 2) / 255.0
            out.append(self.model((t - self.mean) / self.std).double().numpy())
        # fixed scale (not data-dependent): brings the mean activation on photos near Inception pool3's
        # (~0.3), so KID's cubic kernel sits in its usual range
        return np.concatenate(out) * FALLBACK_SCALE


EXTRACTORS.add("resnet18-random-init", ResNet18RandomInit)

_loaded: dict[str, FeatureExtractor] = {}


def get_extractor(name: str = "auto") -> FeatureExtractor:
    """``auto``: real Inception when its weights are registered, else the labelled fallback."""
    if name == "auto":
        name = "resnet18-random-init"
        if "inception-clean" in EXTRACTORS.names():
            try:
                return get_extractor("inception-clean")
            except FileNotFoundError:
                pass
    if name not in _loaded:
        _loaded[name] = EXTRACTORS.get(name, field="eval.features")()
    return _loaded[name]


class FeatureCache:
    """``cache_dir/features/<extractor>/<hash of images>.npy``."""

    def __init__(self, extractor: FeatureExtractor, cache_dir: Path | None) -> None:
        self.ex = extractor
        self.dir = None if cache_dir is None else Path(cache_dir) / "features" / extractor.info.name

    def __call__(self, images: np.ndarray) -> np.ndarray:
        if self.dir is None:
            return self.ex(images)
        h = hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()[:24]
        path = self.dir / f"{h}-{self.ex.info.weights.replace(':', '_')}.npy"
        if path.is_file():
            try:
                return np.load(path)
            except Exception:
                path.unlink(missing_ok=True)
        f = self.ex(images)
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, f)
        tmp.replace(path)
        return f
