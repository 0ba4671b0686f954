"""Minimal-data selectors: which training pairs a method sees.

``all`` keeps every pair; ``random`` a random subset; ``kmeans`` clusters image features of the
*source* images and keeps the sample nearest to each centroid (the paper's selection, one sample
per cluster, as many clusters as samples kept). The feature extractor used is recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from e2gan_bench.config import DataSpec
from e2gan_bench.errors import ConfigError
from e2gan_bench.registry import Registry

Selector = Callable[[np.ndarray, int, int, str], tuple[np.ndarray, dict[str, Any]]]
SELECTORS: Registry[Selector] = Registry("selector")


def n_keep(spec: DataSpec, n: int) -> int:
    if spec.count is not None:
        return max(1, min(n, spec.count))
    if spec.fraction is not None:
        return max(1, min(n, int(round(n * spec.fraction))))
    return n


def thumb_features(images: np.ndarray) -> np.ndarray:
    """Cheap offline image features: an 8×8 colour thumbnail plus per-channel histograms."""
    from PIL import Image

    feats = []
    for im in images:
        th = np.asarray(Image.fromarray(im).resize((8, 8), Image.Resampling.BOX), np.float32).ravel() / 255.0
        hist = np.concatenate([np.histogram(im[..., c], bins=8, range=(0, 256))[0] for c in range(3)])
        feats.append(np.concatenate([th, hist / hist.sum() * 4]))
    return np.stack(feats)


def clip_features(images: np.ndarray) -> np.ndarray:
    """CLIP image embeddings (the paper's choice); needs registered CLIP weights."""
    from e2gan_bench.metrics.clip import clip_scorer_with_reason

    scorer, why = clip_scorer_with_reason()
    if scorer is None:
        raise ConfigError(f"CLIP features unavailable: {why}", field="data.features", value="clip")
    return np.asarray(scorer.image_embeddings(images), np.float64)


FEATURES: dict[str, Callable[[np.ndarray], np.ndarray]] = {"thumb": thumb_features, "clip": clip_features}


def auto_features() -> str:
    """``clip`` when CLIP weights are registered (as in the paper), else the offline ``thumb`` features."""
    from e2gan_bench.metrics.weights import resolve

    return "clip" if resolve("clip") is not None else "thumb"


@SELECTORS.register("all")
def select_all(images: np.ndarray, k: int, seed: int, features: str) -> tuple[np.ndarray, dict[str, Any]]:
    return np.arange(len(images)), {"selector": "all"}


@SELECTORS.register("random")
def select_random(images: np.ndarray, k: int, seed: int, features: str) -> tuple[np.ndarray, dict[str, Any]]:
    idx = np.sort(np.random.default_rng(seed).choice(len(images), size=k, replace=False))
    return idx, {"selector": "random"}


@SELECTORS.register("kmeans")
def select_kmeans(images: np.ndarray, k: int, seed: int, features: str) -> tuple[np.ndarray, dict[str, Any]]:
    name = auto_features() if features == "auto" else features
    if name not in FEATURES:
        raise ConfigError("unknown image features", field="data.features", value=name, allowed=", ".join(FEATURES))
    f = FEATURES[name](images)
    f = (f - f.mean(0)) / (f.std(0) + 1e-6)
    return np.sort(nearest_to_centroids(f, k, seed, n_init=4)), {"selector": "kmeans", "features": name}


def nearest_to_centroids(X: np.ndarray, k: int, seed: int, n_init: int = 10) -> np.ndarray:
    """k-means with ``k`` clusters; for each centroid the index of the nearest not-yet-chosen row."""
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(X)
    chosen: list[int] = []
    for c in range(k):
        d = np.linalg.norm(X - km.cluster_centers_[c], axis=1)
        d[chosen] = np.inf
        chosen.append(int(np.argmin(d)))
    return np.array(chosen)


def select(spec: DataSpec, images: np.ndarray, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    k = n_keep(spec, len(images))
    fn = SELECTORS.get(spec.selector, field="data.selector")
    if spec.selector != "all" and k >= len(images):
        return np.arange(len(images)), {"selector": spec.selector, "note": "kept all"}
    idx, info = fn(images, k, seed, spec.features)
    return idx, {**info, "kept": int(len(idx)), "of": int(len(images))}
