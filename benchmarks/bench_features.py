"""pytest-benchmark: FID/KID feature extraction, as the quick suite's evaluation computes it.

The extractor is the one evaluations use (``features.extractors.get_extractor("auto")``: clean-fid's Inception
when its weights are registered on this machine, else the seeded random-init ResNet-18 fallback; its label is in
``extra_info``), called directly (no feature cache) on one batch of ``IMAGES`` teacher outputs of one concept's
test split (48 px), resized by the extractor's own protocol. An evaluation of the quick suite extracts 96 images
(48 outputs, 48 targets) per run.

Run with ``tox -e bench`` (README "Benchmarks").
"""

from __future__ import annotations

import numpy as np
from conftest import Quick, machine_info

from e2gan_bench.features.extractors import get_extractor

IMAGES = 32  # one batch of the extractors (batch 32)


def test_features(benchmark, quick: Quick) -> None:
    ex = get_extractor("auto")
    images = quick.pairs.tgt_test[:IMAGES]
    info = ex.info
    benchmark.group = f"features-{len(images)}x{images.shape[1]}px"
    benchmark.extra_info.update(extractor=f"{info.name}@{info.weights}", resize=info.resize, fallback=info.fallback,
                                images=len(images), resolution=int(images.shape[1]), **machine_info())
    feats = benchmark.pedantic(ex, args=(images,), rounds=3, iterations=1, warmup_rounds=1)
    assert feats.shape[0] == len(images) and np.isfinite(feats).all()
    benchmark.extra_info["dim"] = int(feats.shape[1])
