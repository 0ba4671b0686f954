"""Data selectors: which training pairs a method sees (plugins), and the draws both selector kinds share.

A data selector is a function ``select(ctx) -> (indices, info)`` registered in :data:`DATA_SELECTORS`
(entry-point group ``e2gan_bench.data_selector``); ``ctx`` is a :class:`DataSelectionContext` whose ``params``
is the selector's validated ``Params``. Built in:

* ``all`` keeps every pair;
* ``random`` a random subset (:func:`random_subset`, the same draw the ``random`` base selector makes);
* ``kmeans`` clusters image features of the *source* images and keeps the sample nearest to each centroid
  (the paper's selection: one sample per cluster, as many clusters as samples kept). The features used are
  recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sklearn.cluster import KMeans

from e2gan_bench.config import DataSpec
from e2gan_bench.errors import ConfigError
from e2gan_bench.features.clip import clip_scorer_with_reason
from e2gan_bench.features.thumb import thumb_features
from e2gan_bench.features.weights import resolve
from e2gan_bench.plugins import Params, parse_params
from e2gan_bench.registry import Registry


@dataclass(frozen=True)
class DataSelectionContext:
    images: np.ndarray  # uint8 N×H×W×3: the source images of the train split
    k: int  # how many to keep (1 ≤ k < N)
    seed: int
    params: Any  # the selector's validated Params


DataSelector = Callable[[DataSelectionContext], tuple[np.ndarray, dict[str, Any]]]
DATA_SELECTORS: Registry[DataSelector] = Registry("data_selector")


def n_keep(spec: DataSpec, n: int) -> int:
    if spec.count is not None:
        return max(1, min(n, spec.count))
    if spec.fraction is not None:
        return max(1, min(n, int(round(n * spec.fraction))))
    return n


def random_subset(n: int, k: int, seed: int) -> np.ndarray:
    """``min(k, n)`` distinct indices of ``range(n)`` drawn with ``seed``, sorted."""
    return np.sort(np.random.default_rng(seed).choice(n, size=min(k, n), replace=False))


def nearest_to_centroids(X: np.ndarray, k: int, seed: int, n_init: int = 10) -> np.ndarray:
    """k-means with ``k`` clusters; for each centroid the index of the nearest not-yet-chosen row."""
    km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(X)
    chosen: list[int] = []
    for c in range(k):
        d = np.linalg.norm(X - km.cluster_centers_[c], axis=1)
        d[chosen] = np.inf
        chosen.append(int(np.argmin(d)))
    return np.array(chosen)


def clip_features(images: np.ndarray) -> np.ndarray:
    """CLIP image embeddings (the paper's choice); needs registered CLIP weights."""
    scorer, why = clip_scorer_with_reason()
    if scorer is None:
        raise ConfigError(f"CLIP features unavailable: {why}", field="data.features", value="clip")
    return np.asarray(scorer.image_embeddings(images), np.float64)


FEATURES: dict[str, Callable[[np.ndarray], np.ndarray]] = {"thumb": thumb_features, "clip": clip_features}


def auto_features() -> str:
    """``clip`` when CLIP weights are registered (as in the paper), else the offline ``thumb`` features."""
    return "clip" if resolve("clip") is not None else "thumb"


@DATA_SELECTORS.register("all")
def select_all(ctx: DataSelectionContext) -> tuple[np.ndarray, dict[str, Any]]:
    return np.arange(len(ctx.images)), {"selector": "all"}


@DATA_SELECTORS.register("random")
def select_random(ctx: DataSelectionContext) -> tuple[np.ndarray, dict[str, Any]]:
    return random_subset(len(ctx.images), ctx.k, ctx.seed), {"selector": "random"}


class KMeansParams(Params):
    features: Literal["auto", "thumb", "clip"] = "auto"  # auto: clip when CLIP weights are registered


@DATA_SELECTORS.register("kmeans", params=KMeansParams)
def select_kmeans(ctx: DataSelectionContext) -> tuple[np.ndarray, dict[str, Any]]:
    name = auto_features() if ctx.params.features == "auto" else ctx.params.features
    f = FEATURES[name](ctx.images)
    f = (f - f.mean(0)) / (f.std(0) + 1e-6)
    return np.sort(nearest_to_centroids(f, ctx.k, ctx.seed, n_init=4)), {"selector": "kmeans", "features": name}


def select(spec: DataSpec, images: np.ndarray, seed: int, *, file: str | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """The training pairs a method keeps: (sorted indices, what was done)."""
    fn = DATA_SELECTORS.get(spec.selector, file=file, field="data.selector")
    params = parse_params(fn, spec.params, file=file, field="data.params", offered={"features": spec.features},
                          offered_field="data")
    k = n_keep(spec, len(images))
    if spec.selector != "all" and k >= len(images):
        return np.arange(len(images)), {"selector": spec.selector, "note": "kept all"}
    idx, info = fn(DataSelectionContext(images, k, seed, params))
    return idx, {**info, "kept": int(len(idx)), "of": int(len(images))}
