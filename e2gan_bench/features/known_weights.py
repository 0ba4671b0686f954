"""The pretrained weights the benchmark knows (file names, pinned hashes, where the usual caches keep them) and a
resolved local copy (:class:`WeightRef`). The registry that finds them is :mod:`.weights`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CLIP_REPOS = ("openai/clip-vit-base-patch32", "openai/clip-vit-base-patch16", "openai/clip-vit-large-patch14")
IP2P_REPOS = ("timbrooks/instruct-pix2pix",)


@dataclass(frozen=True)
class KnownWeights:
    name: str
    filename: str  # expected file name (for folders: the weights file inside the folder)
    sha256: str | None  # full pinned hash, or None when no official hash is published
    sha256_prefix: str | None  # pinned hash prefix (torchvision puts the first 8 hex of sha256 in file names)
    what: str
    caches: str  # where the usual library caches keep it
    folder: bool = False

    @property
    def pin(self) -> str | None:
        return self.sha256 or self.sha256_prefix

    def pin_note(self) -> str:
        if self.sha256:
            return f"pinned sha256 {self.sha256}"
        if self.sha256_prefix:
            return f"pinned sha256 prefix {self.sha256_prefix} (from the file name)"
        return "hash not pinned: recorded as observed"


KNOWN: dict[str, KnownWeights] = {
    "inception": KnownWeights(
        "inception", "inception-2015-12-05.pt",
        # clean-fid / StyleGAN2-ADA publish only the URL, no checksum: the hash is recorded as observed
        None, None,
        "clean-fid's Inception-v3 TorchScript (FID/KID, mode='clean')",
        "clean-fid downloads it to /tmp, which is never searched (anyone may write there): register it with "
        "`weights add inception FILE`, point $E2GAN_BENCH_INCEPTION at it, or name a folder only you can write as "
        "$E2GAN_BENCH_CLEANFID_DIR",
    ),
    "alexnet": KnownWeights(
        "alexnet", "alexnet-owt-7be5be79.pth", None, "7be5be79",
        "torchvision ImageNet AlexNet (LPIPS backbone)",
        "torch hub checkpoints folder ($TORCH_HOME/hub/checkpoints)",
    ),
    "clip": KnownWeights(
        "clip", "model.safetensors", None, None,
        "a local Hugging Face CLIP model folder (config.json + model.safetensors + tokenizer/processor files)",
        "Hugging Face hub cache (" + ", ".join(CLIP_REPOS) + "), local files only",
        folder=True,
    ),
    "instruct-pix2pix": KnownWeights(
        "instruct-pix2pix", "unet/diffusion_pytorch_model.safetensors", None, None,
        "a local diffusers InstructPix2Pix folder (e.g. timbrooks/instruct-pix2pix): the `diffusers` teacher",
        "Hugging Face hub cache (" + ", ".join(IP2P_REPOS) + "), local files only",
        folder=True,
    ),
}


@dataclass(frozen=True)
class WeightRef:
    """A usable local copy of known weights."""

    name: str
    path: Path  # the file, or the model folder for ``clip``
    file: Path  # the hashed file (== path for single-file weights)
    sha256: str
    size: int
    source: str  # "registry", "env E2GAN_BENCH_INCEPTION", "clean-fid cache", "torch hub cache", "hf cache …"
    pinned: bool  # True when the hash was checked against a pinned (full or prefix) hash

    @property
    def tag(self) -> str:
        return f"sha256:{self.sha256}"
