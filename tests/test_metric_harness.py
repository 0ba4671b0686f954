"""One test harness for every registered metric (in the manner of torchmetrics' ``MetricTester``): each built-in
metric is put through the same checks, so a new metric gets them by being registered.

* **direction**: outputs closer to the teacher's score better, on the side ``higher_is_better`` says;
* **determinism**: the same inputs give the same value, twice, in one process;
* **batch invariance**: feature metrics give the same value whatever ``eval.feature_batch`` is; per-image metrics
  give each image the same value whether it is scored alone in a half of the split or with the whole split;
* **golden value**: the value on a fixed input equals the one recorded in ``tests/data/metric_golden.json``
  (relative 1e-3, KID 2 % and FID 1 %: the last digits of float kernels differ between CPUs).
  ``E2GAN_BENCH_UPDATE_GOLDEN=1`` rewrites the file from this machine (review the diff: a changed value is a
  changed metric).

Training-stage metrics read the measurements stored with the artifact: their golden values come from a fixed
``training.json``. What cannot take a check says why in :data:`EXEMPT`; a metric added to the registry without
being placed here fails :func:`test_every_registered_metric_is_covered`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from e2gan_bench.config import EvalSpec
from e2gan_bench.metrics import EvalContext, all_metrics, metric

GOLDEN = Path(__file__).parent / "data" / "metric_golden.json"
#: metrics computed from the test images (outputs vs teacher targets)
IMAGE = ("kid", "fid", "psnr", "ssim", "lpips")
#: metrics read from the stored training measurements
TRAINING = ("train_seconds", "train_flops", "trainable_params", "stored_bytes", "peak_memory_bytes")
#: what cannot take the harness's checks, and why (each is tested where its inputs exist)
EXEMPT = {
    "clip_score": "needs CLIP weights (none offline): here only its labelled 'unavailable'; values in test_clip.py "
                  "with a tiny random CLIP built in code",
    "latency_ms": "a wall-clock measurement of an ONNX export (not deterministic): tests/test_latency.py",
}
#: relative tolerance of the golden values beyond the default 1e-3: KID and FID are differences of feature statistics
#: of a float network, which amplify the last-digit differences between CPU kernels
GOLDEN_REL = {"kid": 0.02, "fid": 0.01}
TRAINING_JSON = {"seconds": 12.5, "search_seconds": 2.5, "flops": 4_000_000, "search_flops": 1_000_000,
                 "trainable_params": 29_092, "stored_bytes": 120_896, "peak_memory_bytes": 55_203_308}


def _images(n: int = 12, size: int = 64, seed: int = 0) -> np.ndarray:
    """Smooth random colour fields (photograph-like: correlated neighbours), uint8 N×H×W×3."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (n, 8, 8, 3))
    big = np.repeat(np.repeat(coarse, size // 8, axis=1), size // 8, axis=2)
    return np.clip(big + rng.normal(0, 8, big.shape), 0, 255).astype(np.uint8)


def _noisy(x: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(x.astype(float) + rng.normal(0, sigma, x.shape), 0, 255).astype(np.uint8)


def _ctx(outputs: np.ndarray, targets: np.ndarray, *, feature_batch: int = 32, training: dict | None = None,
         tmp: Path | None = None) -> EvalContext:
    spec = EvalSpec(kid_subsets=20, kid_subset_size=6, feature_batch=feature_batch, latency=False)
    return EvalContext(spec=spec, outputs=outputs, targets=targets, sources=targets, prompt="make it sepia",
                       generator=None, arch="e2gan", model_kwargs={}, resolution=int(targets.shape[1]),
                       cache_dir=tmp, training=training if training is not None else dict(TRAINING_JSON))


def _value(name: str, ctx: EvalContext) -> float:
    m = metric(name)()
    v = m.compute(ctx)
    v = v[name] if isinstance(v, dict) else v
    assert v is not None and np.isfinite(v), (name, v)
    return float(v)


def test_every_registered_metric_is_covered():
    """A metric registered without a place in this harness (or an exemption saying why) fails here."""
    built_in = {m.name for m in all_metrics() if m.__module__.startswith("e2gan_bench.")}
    assert built_in == set(IMAGE) | set(TRAINING) | set(EXEMPT), built_in ^ (set(IMAGE) | set(TRAINING) | set(EXEMPT))


@pytest.mark.parametrize("name", IMAGE)
def test_direction(name):
    """Less noise on the outputs scores better, on the metric's declared side."""
    t = _images()
    close, far = _value(name, _ctx(_noisy(t, 6), t)), _value(name, _ctx(_noisy(t, 60), t))
    better = close > far if metric(name).higher_is_better else close < far
    assert better, (name, close, far)


@pytest.mark.parametrize("name", IMAGE + TRAINING)
def test_determinism(name):
    t = _images()
    o = _noisy(t, 20)
    assert _value(name, _ctx(o, t)) == _value(name, _ctx(o.copy(), t.copy()))


@pytest.mark.parametrize("name", IMAGE)
def test_batch_invariance(name):
    t = _images()
    o = _noisy(t, 20)
    cls = metric(name)
    if cls.per_image:  # each image's value does not depend on which other images share its call
        whole = np.asarray(cls().compute_images(_ctx(o, t)), dtype=float)
        halves = np.concatenate([np.asarray(cls().compute_images(_ctx(o[s], t[s])), dtype=float)
                                 for s in (slice(0, 5), slice(5, None))])
        np.testing.assert_allclose(halves, whole, rtol=1e-5, atol=1e-6)
    else:  # feature metrics: the feature network's batch size changes nothing
        small, large = _ctx(o, t, feature_batch=3), _ctx(o, t, feature_batch=32)
        assert (small.extractor().batch, large.extractor().batch) == (3, 32)  # eval.feature_batch reaches the network
        a, b = _value(name, small), _value(name, large)
        assert a == pytest.approx(b, rel=1e-4, abs=1e-6), (name, a, b)


def _golden_values() -> dict[str, float]:
    t = _images(seed=3)
    o = _noisy(t, 25, seed=4)
    return {name: _value(name, _ctx(o, t)) for name in IMAGE + TRAINING}


def test_golden_values():
    values = _golden_values()
    if os.environ.get("E2GAN_BENCH_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(values, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert set(golden) == set(values)
    for name, v in values.items():
        rel = GOLDEN_REL.get(name, 1e-3)
        assert v == pytest.approx(golden[name], rel=rel, abs=1e-6), (name, v, golden[name])
    # the training-stage values are exact functions of training.json
    assert values["train_seconds"] == 15.0 and values["train_flops"] == 5_000_000
    assert values["stored_bytes"] == 120_896 and values["trainable_params"] == 29_092


def test_exempt_metrics_say_why_they_are_unavailable():
    """Offline, CLIP score is not computed but labelled: its backend says n/a and why, and computing it raises
    MetricUnavailable with the reason (recorded as the run's backend, never a made-up number)."""
    from e2gan_bench.metrics import MetricUnavailable

    t = _images()
    ctx = _ctx(t, t)
    clip = metric("clip_score")()
    backend = clip.resolve(ctx.spec)
    assert not backend.available and backend.label.startswith("n/a") and "weights add clip" in backend.label
    with pytest.raises(MetricUnavailable) as exc:
        clip.compute(ctx)
    assert str(exc.value)
