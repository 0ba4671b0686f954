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
    if spec.clip:
        from e2gan_bench.metrics.clip import clip_scorer_with_reason

        scorer, why = clip_scorer_with_reason()
        if scorer is not None:
            m["clip_score"] = scorer.score(out, ds.prompt)
            m["clip_directional"] = scorer.directional(ds.src_test, out, ds.prompt)
            backends["clip_score"] = scorer.backend
        else:
            backends["clip_score"] = why
    m["eval_seconds"] = time.perf_counter() - t0
    m["n_test"] = int(len(out))
    return m, backends, out


def sample_grid(src: np.ndarray, tgt: np.ndarray, out: np.ndarray, n: int) -> np.ndarray:
    """Rows: source / teacher / student for the first ``n`` test images."""
    n = min(n, len(src))
    rows = [np.concatenate(list(a[:n]), axis=1) for a in (src, tgt, out)]
    return np.concatenate(rows, axis=0)


def latency_for(G: Generator, arch: str, model_kwargs: dict[str, Any], resolution: int, spec: EvalSpec,
                cache_dir: Path) -> tuple[float | None, str, dict[str, Any]]:
    """ONNX Runtime latency of the (LoRA-merged) generator: measured once per architecture, settings,
    CPU and runtime version (weights do not change it), cached in ``cache_dir/latency``. Returns
    (median ms, backend label, details)."""
    import json
    import tempfile

    from e2gan_bench.metrics.latency import LatencyError, latency_key, measure_latency
    from e2gan_bench.util import write_json

    key = latency_key(arch, model_kwargs, resolution, spec.latency_threads, "all")
    path = Path(cache_dir) / "latency" / f"{key}.json"
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):  # not measured yet, or an unreadable cache entry: measure
        d = None
    if d is None:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                d = measure_latency(G, resolution, threads=spec.latency_threads, runs=spec.latency_runs,
                                    workdir=tmp, arch=arch).to_dict()
        except LatencyError as exc:
            return None, f"n/a: {type(exc).__name__}: {exc}", {}
        write_json(path, d)
    prov = d.get("provenance", {})
    backend = (f"onnxruntime-{prov.get('onnxruntime', '?')} cpu {d['threads']} thread(s) opt={d['opt_level']} "
               "(desktop proxy for mobile latency)")
    return float(d["median_ms"]), backend, {k: d[k] for k in ("median_ms", "p90_ms", "torch_median_ms", "max_abs_diff",
                                                              "macs", "params", "onnx_bytes") if k in d}
