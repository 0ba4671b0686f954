"""CLIP score and directional CLIP similarity, from local CLIP weights only (never downloaded).

* ``score``: torchmetrics ``CLIPScore`` of the student outputs against the concept prompt,
  ``max(100 · mean cos(E_image, E_text), 0)`` (torchmetrics' definition).
* ``directional``: the directional CLIP similarity of StyleGAN-NADA / InstructPix2Pix — the cosine between the change
  of the (unit) image embeddings, source → output, and the change of the (unit) text embeddings, source caption →
  edit caption; mean over images, in [-1, 1].

The model is the resolved ``clip`` weights (``e2gan-bench weights add clip FOLDER`` or the Hugging Face cache). It
is handed to torchmetrics as a loader callable, wrapped in a small shim: with transformers >= 5
``get_image_features`` / ``get_text_features`` return a ``BaseModelOutputWithPooling`` instead of a tensor, which
torchmetrics 1.9 does not unwrap (torchmetrics issue #3407).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from e2gan_bench.features import weights

NO_WEIGHTS = "n/a: no CLIP weights registered (e2gan-bench weights add clip PATH)"


def _as_tensor(out: Any) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    pooled = getattr(out, "pooler_output", None)  # transformers >= 5: projected embeddings live here
    if isinstance(pooled, torch.Tensor):
        return pooled
    return out[0]


class _ClipShim(torch.nn.Module):
    """Wraps a transformers ``CLIPModel`` so its ``get_*_features`` return tensors (torchmetrics #3407)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.clip = model
        self.config = model.config

    def get_image_features(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return _as_tensor(self.clip.get_image_features(*args, **kwargs))

    def get_text_features(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return _as_tensor(self.clip.get_text_features(*args, **kwargs))

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.clip(*args, **kwargs)


# transformers (and torchmetrics' CLIP module, which imports it) are imported when a CLIP model is loaded: they
# take seconds to import and are needed only when CLIP weights are registered.


@contextlib.contextmanager
def _quiet_transformers():
    from transformers.utils import logging as tlog

    was = tlog.is_progress_bar_enabled()
    level = tlog.get_verbosity()
    tlog.disable_progress_bar()
    tlog.set_verbosity_error()
    try:
        yield
    finally:
        tlog.set_verbosity(level)
        if was:
            tlog.enable_progress_bar()


def load_clip(folder: Path) -> tuple[_ClipShim, Any]:
    """(shimmed CLIPModel, CLIPProcessor) from a local folder: local files and safetensors only."""
    from transformers import CLIPModel, CLIPProcessor

    with _quiet_transformers():
        model = CLIPModel.from_pretrained(str(folder), local_files_only=True, use_safetensors=True).eval()
        processor = CLIPProcessor.from_pretrained(str(folder), local_files_only=True)
    return _ClipShim(model).eval(), processor


def _chw(images: np.ndarray) -> list[torch.Tensor]:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 N×H×W×3 images, got {images.dtype} {images.shape}")
    return [torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1) for im in images]


def backend_label(ref: weights.WeightRef) -> str:
    """The backend label of CLIP scores computed with these weights (known before the model is loaded)."""
    return f"torchmetrics-clipscore:{Path(ref.path).name or 'clip'}@{ref.tag}"


class ClipScorer:
    """CLIP score / directional CLIP similarity with one local CLIP model."""

    def __init__(self, ref: weights.WeightRef, batch: int = 32) -> None:
        from torchmetrics.multimodal.clip_score import CLIPScore

        self.weights = ref
        self.batch = batch
        self.metric = CLIPScore(model_name_or_path=lambda: load_clip(ref.path))
        self.model: _ClipShim = self.metric.model
        self.processor = self.metric.processor
        self.model_name = Path(ref.path).name or "clip"
        self.backend = backend_label(ref)
        self.info = {
            "backend": self.backend,
            "weights": ref.tag,
            "path": str(ref.path),
            "source": ref.source,
            "definition": "max(100*mean cos(image, prompt), 0); directional: cos(dE_image, dE_text)",
        }

    @torch.no_grad()
    def score(self, images: np.ndarray, prompt: str) -> float:
        """CLIP score (torchmetrics) of uint8 N×H×W×3 images against one prompt, in [0, 100]."""
        ims = _chw(images)
        self.metric.reset()
        for s in range(0, len(ims), self.batch):
            chunk = ims[s : s + self.batch]
            self.metric.update(chunk, [prompt] * len(chunk))
        v = float(self.metric.compute())
        self.metric.reset()
        return v

    @torch.no_grad()
    def image_embeddings(self, images: np.ndarray) -> torch.Tensor:
        """Unit-norm CLIP image embeddings, N×D."""
        ims, out = _chw(images), []
        for s in range(0, len(ims), self.batch):
            px = self.processor(images=ims[s : s + self.batch], return_tensors="pt")["pixel_values"]
            out.append(self.model.get_image_features(pixel_values=px))
        e = torch.cat(out).double()
        return e / e.norm(dim=-1, keepdim=True)

    @torch.no_grad()
    def text_embeddings(self, prompts: list[str]) -> torch.Tensor:
        """Unit-norm CLIP text embeddings, N×D (captions truncated to the model's context length)."""
        max_len = int(getattr(self.model.config.text_config, "max_position_embeddings", 77))
        t = self.processor(text=list(prompts), return_tensors="pt", padding=True, truncation=True, max_length=max_len)
        e = self.model.get_text_features(input_ids=t["input_ids"], attention_mask=t["attention_mask"]).double()
        return e / e.norm(dim=-1, keepdim=True)

    @torch.no_grad()
    def directional(self, src: np.ndarray, out: np.ndarray, edit_prompt: str, src_prompt: str = "a photo") -> float:
        """Mean directional CLIP similarity cos(E(out) − E(src), T(edit_prompt) − T(src_prompt)), in [-1, 1]."""
        if len(src) != len(out):
            raise ValueError(f"src and out differ in length: {len(src)} != {len(out)}")
        d_img = self.image_embeddings(out) - self.image_embeddings(src)
        t = self.text_embeddings([src_prompt, edit_prompt])
        d_txt = (t[1] - t[0])[None].expand_as(d_img)
        cos = torch.nn.functional.cosine_similarity(d_img, d_txt, dim=-1, eps=1e-8)
        return float(cos.mean().clamp(-1.0, 1.0))


_scorers: dict[str, ClipScorer] = {}


def clip_scorer_with_reason() -> tuple[ClipScorer | None, str]:
    """(scorer, "ok") when local CLIP weights resolve and load, else (None, "n/a: …" one-line reason)."""
    try:
        ref, why = weights.resolve_with_reason("clip")
    except Exception as exc:  # e.g. an unreadable registry file
        return None, f"n/a: {exc}"
    if ref is None:
        return None, NO_WEIGHTS if why.startswith("not registered; not in the usual caches") else f"n/a: {why}"
    key = f"{ref.path}@{ref.sha256}"
    if key not in _scorers:
        try:
            _scorers[key] = ClipScorer(ref)
        except Exception as exc:
            msg = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:300]
            return None, f"n/a: CLIP weights at {ref.path} failed to load ({msg})"
    return _scorers[key], "ok"


def get_clip_scorer() -> ClipScorer | None:
    """The CLIP scorer, or ``None`` when no usable local CLIP weights exist (see :func:`unavailable_reason`)."""
    return clip_scorer_with_reason()[0]


def unavailable_reason() -> str | None:
    """Why :func:`get_clip_scorer` returns ``None`` (e.g. ``"n/a: no CLIP weights registered (…)"``), else None."""
    scorer, why = clip_scorer_with_reason()
    return None if scorer is not None else why
