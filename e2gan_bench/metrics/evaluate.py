"""Evaluate a trained generator on a concept's held-out test split against the teacher."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from e2gan_bench.config import EvalSpec
from e2gan_bench.data.dataset import PairedDataset
from e2gan_bench.metrics.features import FeatureCache, get_extractor
from e2gan_bench.metrics.quality import quality
from e2gan_bench.models.generators import Generator
from e2gan_bench.models.text import PromptEmbedding
from e2gan_bench.training.trainer import generate


def evaluate(G: Generator, ds: PairedDataset, emb: PromptEmbedding, spec: EvalSpec,
             cache_dir: Path | None) -> tuple[dict[str, Any], dict[str, str], np.ndarray]:
    """Returns (metrics, backends, student outputs)."""
    t0 = time.perf_counter()
    out = generate(G, ds.src_test, emb.tokens[None], emb.mask[None])
    ex = get_extractor("auto")
    feats = FeatureCache(ex, cache_dir)
    f_out, f_tgt = feats(out), feats(ds.tgt_test)
    m = quality(out, ds.tgt_test, f_out, f_tgt, spec.kid_subsets, spec.kid_subset_size)
    backends = {
        "kid": f"{ex.info.name}@{ex.info.weights}",
        "fid": f"{ex.info.name}@{ex.info.weights}",
        "resize": ex.info.resize,
        "psnr": "torchmetrics",
        "ssim": "torchmetrics",
    }
    if spec.lpips:
        from e2gan_bench.metrics.perceptual import get_lpips

        lp = get_lpips()
        m["lpips"] = lp(out, ds.tgt_test)
        backends["lpips"] = lp.backend
    m["eval_seconds"] = time.perf_counter() - t0
    m["n_test"] = int(len(out))
    return m, backends, out


def sample_grid(src: np.ndarray, tgt: np.ndarray, out: np.ndarray, n: int) -> np.ndarray:
    """Rows: source / teacher / student for the first ``n`` test images."""
    n = min(n, len(src))
    rows = [np.concatenate(list(a[:n]), axis=1) for a in (src, tgt, out)]
    return np.concatenate(rows, axis=0)
