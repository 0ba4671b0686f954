"""Image feature extractors for FID / KID.

* ``inception-clean``: clean-fid's Inception-v3 (``mode="clean"`` resize to 299) — used only when its
  weights are present locally (clean-fid's own cache or ``E2GAN_BENCH_INCEPTION``); never downloaded.
* ``resnet18-random-init`` (offline fallback): torchvision ResNet-18 with seeded random weights,
  PIL-bicubic resize to 224. Random conv features still separate distributions, but the numbers are
  **not comparable** to published FIDs; every record labels them with the weights hash.

Features of a fixed image set (the teacher outputs of a test split) are cached on disk by content.
"""

from __future__ import annotations

import glob
import hashlib
import io
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision
from cleanfid.resize import build_resizer
from cleanfid.utils import EXTENSIONS
from PIL import Image
from pydantic import Field

from e2gan_bench.cache import DiskCache
from e2gan_bench.errors import UserError
from e2gan_bench.features import weights
from e2gan_bench.plugins import Params, parse_params
from e2gan_bench.registry import Registry


@dataclass(frozen=True)
class ExtractorInfo:
    name: str
    weights: str  # "sha256:…" for real weights, "random-init:<hash>" for the fallback
    resize: str
    fallback: bool


class FeatureExtractor:
    info: ExtractorInfo
    batch: int = 32  # images per forward pass
    device: str = "cpu"  # where its network runs now (:meth:`to`)

    def __call__(self, images: np.ndarray) -> np.ndarray:  # uint8 N×H×W×3 -> float64 N×D
        raise NotImplementedError

    def networks(self) -> list[torch.nn.Module]:
        """The modules :meth:`to` moves."""
        return []

    def to(self, device: str) -> FeatureExtractor:
        """Run on ``device`` (cpu | cuda) from now on; moves the networks in place."""
        if device != self.device:
            for m in self.networks():
                m.to(device)
            self.device = device
        return self


class ExtractorParams(Params):
    """A feature extractor's parameters: how many images one forward pass takes."""

    batch: int = Field(32, ge=1, le=4096)


#: Feature extractors: :class:`FeatureExtractor` subclasses with a ``Params`` model, constructed with the validated
#: ``Params`` instance (:func:`get_extractor` builds them with their defaults).
EXTRACTORS: Registry[Callable[..., FeatureExtractor]] = Registry("feature_extractor")


def _state_hash(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


FALLBACK_SCALE = 0.15


class ResNet18RandomInit(FeatureExtractor):
    Params = ExtractorParams

    def __init__(self, params: ExtractorParams | None = None) -> None:
        params = params or self.Params()
        g = torch.random.fork_rng()
        with g:
            torch.manual_seed(0)
            model = torchvision.models.resnet18(weights=None)
        model.fc = torch.nn.Identity()
        self.model = model.eval()
        self.batch = params.batch
        self.info = ExtractorInfo("resnet18-random-init", f"random-init:{_state_hash(self.model)}",
                                  "PIL-bicubic-224", fallback=True)
        self.mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        self.std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def networks(self) -> list[torch.nn.Module]:
        return [self.model]

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        out = []
        for s in range(0, len(images), self.batch):
            x = np.stack([np.asarray(Image.fromarray(im).resize((224, 224), Image.Resampling.BICUBIC), np.float32)
                          for im in images[s : s + self.batch]])
            t = torch.from_numpy(x).permute(0, 3, 1, 2).to(self.device) / 255.0
            mean, std = self.mean.to(self.device), self.std.to(self.device)
            out.append(self.model((t - mean) / std).double().cpu().numpy())
        # fixed scale (not data-dependent): brings the mean activation on photos near Inception pool3's
        # (~0.3), so KID's cubic kernel sits in its usual range
        return np.concatenate(out) * FALLBACK_SCALE


EXTRACTORS.add("resnet18-random-init", ResNet18RandomInit)

_loaded: dict[tuple[str, int | None], FeatureExtractor] = {}  # (name, batch) -> instance


def get_extractor(name: str = "auto", *, batch: int | None = None) -> FeatureExtractor:
    """``auto``: real Inception when its weights are registered, else the labelled fallback. ``batch``: images per
    forward pass (``eval.feature_batch``; default the extractor's own). One instance per name and batch size, kept
    for the process (an instance's network moves between devices with it, so instances share nothing)."""
    if name == "auto":
        name = "resnet18-random-init"
        if "inception-clean" in EXTRACTORS.names():
            try:
                return get_extractor("inception-clean", batch=batch)
            except FileNotFoundError:
                pass
    cls = EXTRACTORS.get(name, field="eval.features")
    params = parse_params(cls, {} if batch is None else {"batch": batch}, field="eval.feature_batch")
    key = (name, getattr(params, "batch", None))
    if key not in _loaded:
        _loaded[key] = cls(params)
    return _loaded[key]


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


class FeatureCache:
    """Features by content: ``cache_dir/features/<extractor>/<hash of images>-<weights>.npy``."""

    def __init__(self, extractor: FeatureExtractor, cache_dir: Path | None, device: str = "cpu") -> None:
        self.ex = extractor
        self.device = device
        self.cache = DiskCache(None if cache_dir is None else Path(cache_dir) / "features", extractor.info.name,
                               ".npy")

    @property
    def dir(self) -> Path | None:
        return self.cache.dir

    def __call__(self, images: np.ndarray) -> np.ndarray:
        h = hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()[:24]
        # features computed on a GPU differ in the last bits: their own entries (CPU keys as before devices existed)
        key = f"{h}-{self.ex.info.weights.replace(':', '_')}" + ("" if self.device == "cpu" else f"-{self.device}")
        return self.cache.get_or_compute(key, lambda: self.ex.to(self.device)(images),
                                         lambda p: np.load(p, allow_pickle=False), _npy_bytes)


# ------------------------------------------------------------------------------------ clean-fid protocol

def clean_resize(image: np.ndarray) -> np.ndarray:
    """clean-fid ``mode="clean"`` resize of one uint8 H×W×3 image: per-channel float PIL bicubic to 299², no
    quantisation; returns float32 299×299×3 in [0, 255] (``cleanfid.resize.build_resizer("clean")``)."""
    return build_resizer("clean")(image)


class CleanFidExtractor(FeatureExtractor):
    """Any feature network under clean-fid's protocol.

    ``model_fn`` is what clean-fid calls a (custom) feature extractor: it takes a float32 tensor N×3×299×299 with
    values in [0, 255] (clean-resized, not quantised) and returns N×D features. Images are resized one by one
    with clean-fid's own resizer, exactly as ``cleanfid.fid.get_folder_features`` does.
    """

    def __init__(self, model_fn: Callable[[torch.Tensor], torch.Tensor], info: ExtractorInfo, batch: int = 32) -> None:
        self.model_fn = model_fn
        self.info = info
        self.batch = batch

    @torch.no_grad()
    def features_resized(self, batch: torch.Tensor) -> np.ndarray:
        """Features of an already clean-resized float batch N×3×299×299 in [0, 255]."""
        return self.model_fn(batch).detach().cpu().double().numpy()

    def __call__(self, images: np.ndarray | list[np.ndarray]) -> np.ndarray:
        out = []
        for s in range(0, len(images), self.batch):
            x = np.stack([clean_resize(np.asarray(im)) for im in images[s : s + self.batch]])
            out.append(self.features_resized(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous().to(self.device)))
        return np.concatenate(out) if out else np.zeros((0, 0))


def folder_images(folder: Path) -> list[np.ndarray]:
    """The images of a folder as clean-fid lists and reads them: every file with an image extension, recursively,
    in sorted path order, converted to RGB."""
    files = sorted([f for ext in EXTENSIONS for f in glob.glob(os.path.join(str(folder), f"**/*.{ext}"), recursive=True)])
    return [np.load(f) if ".npy" in f else np.array(Image.open(f).convert("RGB")) for f in files]


def folder_features(folder: Path, extractor: CleanFidExtractor) -> np.ndarray:
    """Features of a folder of images under clean-fid's protocol (same files, order, decoding and resize)."""
    return extractor(folder_images(folder))


class InceptionClean(CleanFidExtractor):
    """clean-fid's Inception-v3 TorchScript (``mode="clean"``), from the resolved ``inception`` weights.

    Raises:
        FileNotFoundError: no intact local copy is registered or cached (``get_extractor("auto")`` falls back).
        UserError: the resolved file is not a TorchScript model with clean-fid's ``layers`` interface.
    """

    Params = ExtractorParams

    def __init__(self, params: ExtractorParams | None = None) -> None:
        params = params or self.Params()
        ref, why = weights.resolve_with_reason("inception")
        if ref is None:
            raise FileNotFoundError(f"clean-fid Inception weights: {why}")
        try:
            with warnings.catch_warnings():  # "torch.jit is deprecated": clean-fid ships the model as TorchScript
                warnings.simplefilter("ignore", FutureWarning)
                base = torch.jit.load(str(ref.file), map_location="cpu").eval()
            layers = base.layers
        except Exception as exc:  # registered, but not clean-fid's TorchScript Inception
            raise UserError(f"not clean-fid's Inception TorchScript ({type(exc).__name__}); "
                            "re-register with `e2gan-bench weights add inception PATH`", file=str(ref.file)) from None

        def model_fn(x: torch.Tensor) -> torch.Tensor:  # cleanfid.inception_torchscript.InceptionV3W.forward
            return layers.forward((x - 128) / 128).view((x.shape[0], 2048))

        super().__init__(model_fn, ExtractorInfo("inception-clean", ref.tag, "clean-fid clean (PIL bicubic 299)",
                                                 fallback=False), params.batch)
        self.weights = ref
        self.base = base

    def networks(self) -> list[torch.nn.Module]:
        return [self.base]


EXTRACTORS.add("inception-clean", InceptionClean)
