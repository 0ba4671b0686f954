"""The built-in metrics, in report order. Each class is the whole definition of its metric (see
:mod:`e2gan_bench.metrics.contract`); the default gates were reasoned for the noise of the CPU suites (48 test images
per concept, one or a few seeds) and are not yet calibrated on a multi-seed run: recalibrate them once the
seed-to-seed spread has been measured."""

from __future__ import annotations

import tempfile
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from e2gan_bench.cache import DiskCache, json_text, read_json
from e2gan_bench.config import EvalSpec
from e2gan_bench.errors import UserError
from e2gan_bench.metrics.contract import Backend, EvalContext, Metric, MetricUnavailable, Tolerance, register_metric

if TYPE_CHECKING:
    from e2gan_bench.features import weights

# The backends (torch, torchvision, torchmetrics, lpips, peft, ONNX) are imported inside resolve() and compute():
# a metric's definition (name, direction, format, gate) is all that `report`, `compare`, `metrics list` and
# `--help` need, and importing the backends takes seconds.


def _weights(ref: weights.WeightRef) -> dict[str, str]:
    return {"path": str(ref.path), "sha256": ref.sha256, "source": ref.source}


# ------------------------------------------------------------------------------------------------ quality


class _FeatureDistance(Metric):
    """FID and KID share the feature extractor: real Inception (clean-fid) when registered, else the fallback."""

    compare_also = ("resize",)

    def resolve(self, spec: EvalSpec) -> Backend:
        from e2gan_bench.features import weights
        from e2gan_bench.features.extractors import get_extractor

        info = get_extractor("auto", batch=spec.feature_batch).info  # the instance the evaluation will use
        label, extra = f"{info.name}@{info.weights}", {"resize": info.resize}
        ref, why = weights.resolve_with_reason("inception")
        if info.fallback:
            return Backend(label, fallback=True, why=f"no clean-fid Inception: {why}", extra=extra,
                           note="numbers not comparable to published FID/KID")
        return Backend(label, weights=_weights(ref) if ref else None, extra=extra)


@register_metric
class KID(_FeatureDistance):
    name = "kid"
    label = "KID"
    headline = 4
    what = ("Kernel Inception Distance, student vs teacher outputs on the test split (unbiased; mean over subsets, "
            "kid_std their spread)")
    higher_is_better = False
    fmt = "{:.4f}"
    secondary = ("kid_std",)
    gate = Tolerance(rel=0.25, reason="KID from 48 images is noisy (subset std 10-100 % of its value) and its scale "
                     "depends on the extractor: relative only")

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        from e2gan_bench.metrics.quality import kid_from_features

        f_out, f_tgt = ctx.features()
        kid, std = kid_from_features(f_out, f_tgt, ctx.spec.kid_subsets, ctx.spec.kid_subset_size)
        return {"kid": kid, "kid_std": std}


@register_metric
class FID(_FeatureDistance):
    name = "fid"
    label = "FID"
    what = "Fréchet distance (clean-fid) between student and teacher output features on the test split"
    higher_is_better = False
    fmt = "{:.2f}"
    gate = Tolerance(rel=0.15, reason="FID from 48 images is biased, but equally on both sides (same n_test); its "
                     "paired noise is smaller than KID's")

    def compute(self, ctx: EvalContext) -> float:
        from e2gan_bench.metrics.quality import fid_from_features

        f_out, f_tgt = ctx.features()
        # FID needs more images than feature dimensions to be stable: the record says how many of each it had
        ctx.details["fid"] = {"n": int(len(f_out)), "dims": int(f_out.shape[1])}
        return fid_from_features(f_out, f_tgt)


@register_metric
class PSNR(Metric):
    name = "psnr"
    label = "PSNR (dB)"
    headline = 1
    by_concept = True
    what = "peak signal-to-noise ratio of each output vs its teacher target, mean over the test split (dB)"
    higher_is_better = True
    fmt = "{:.2f}"
    gate = Tolerance(abs=0.5, reason="the seed spread of a CPU-suite run is a few tenths of a dB; 0.5 dB is about "
                     "the smallest difference visible in the sample grids")
    per_image = True

    def resolve(self, spec: EvalSpec) -> Backend:
        return Backend("torchmetrics")

    def compute_images(self, ctx: EvalContext) -> np.ndarray:
        from e2gan_bench.metrics.quality import psnr_images

        return psnr_images(ctx.outputs, ctx.targets)


@register_metric
class SSIM(Metric):
    name = "ssim"
    label = "SSIM"
    headline = 2
    by_concept = True
    what = "structural similarity of each output vs its teacher target (Gaussian window 11, sigma 1.5)"
    higher_is_better = True
    fmt = "{:.3f}"
    gate = Tolerance(abs=0.02, reason="same reasoning as PSNR on SSIM's scale (seed spread about 0.01)")
    per_image = True

    def resolve(self, spec: EvalSpec) -> Backend:
        return Backend("torchmetrics")

    def compute_images(self, ctx: EvalContext) -> np.ndarray:
        from e2gan_bench.metrics.quality import ssim_images

        return ssim_images(ctx.outputs, ctx.targets)


@register_metric
class LPIPS(Metric):
    name = "lpips"
    label = "LPIPS"
    headline = 3
    what = "learned perceptual distance (lpips package, AlexNet) of outputs vs teacher targets"
    higher_is_better = False
    fmt = "{:.3f}"
    gate = Tolerance(rel=0.10, reason="relative: LPIPS is on a relative scale and the offline backbone's scale is "
                     "arbitrary")
    per_image = True

    def enabled(self, spec: EvalSpec) -> bool:
        return spec.lpips

    def resolve(self, spec: EvalSpec) -> Backend:
        from e2gan_bench.metrics.perceptual import lpips_backend

        label, ref, why = lpips_backend()
        if ref is None:
            return Backend(label, fallback=True, why=f"AlexNet weights: {why}",
                           note="numbers not comparable to published LPIPS (e2gan-bench weights add alexnet PATH)")
        return Backend(label, weights=_weights(ref))

    def compute_images(self, ctx: EvalContext) -> np.ndarray:
        from e2gan_bench.metrics.perceptual import get_lpips

        return get_lpips().images(ctx.outputs, ctx.targets, device=ctx.device)


@register_metric
class ClipScore(Metric):
    name = "clip_score"
    label = "CLIP score"
    what = ("CLIP score of the outputs against the prompt (torchmetrics, 100 × cosine); clip_directional: the "
            "directional CLIP similarity")
    higher_is_better = True
    fmt = "{:.2f}"
    secondary = ("clip_directional",)
    gate = Tolerance(abs=0.5, reason="CLIP score (100 × cosine) of one concept moves by a few tenths between seeds")

    def enabled(self, spec: EvalSpec) -> bool:
        return spec.clip

    def resolve(self, spec: EvalSpec) -> Backend:
        from e2gan_bench.features import weights
        from e2gan_bench.features.clip import NO_WEIGHTS, backend_label

        try:
            ref, why = weights.resolve_with_reason("clip")
        except Exception as exc:  # e.g. an unreadable weight registry: CLIP is optional, say why
            ref, why = None, str(exc)
        if ref is None:
            label = NO_WEIGHTS if why.startswith("not registered; not in the usual caches") else f"n/a: {why}"
            return Backend(label, fallback=True, why=why, available=False)
        return Backend(backend_label(ref), weights=_weights(ref), note="model loaded at first use")

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        from e2gan_bench.features.clip import clip_scorer_with_reason

        scorer, why = clip_scorer_with_reason()
        if scorer is None:
            raise MetricUnavailable(why.removeprefix("n/a: "))
        return {"clip_score": scorer.score(ctx.outputs, ctx.prompt),
                "clip_directional": scorer.directional(ctx.sources, ctx.outputs, ctx.prompt)}


# --------------------------------------------------------------------------------------------------- cost


class _TrainingCost(Metric):
    """Measured while training and stored with the artifact; evaluation reads it (``ctx.training``)."""

    stage = "train"
    how: ClassVar[str]

    def resolve(self, spec: EvalSpec) -> Backend:
        return Backend(self.how)

    def compute(self, ctx: EvalContext) -> float | None:
        return ctx.training.get(self.name)


@register_metric
class TrainSeconds(_TrainingCost):
    name = "train_seconds"
    label = "train\nseconds"
    what = "wall-clock seconds of the optimisation loop, rank-search trials included (no data building, no evaluation)"
    how = "time.perf_counter"
    higher_is_better = False
    fmt = "{:.1f}"
    gate = Tolerance(reason="wall-clock on a shared CPU is noisy (train_flops is the "
                     "deterministic proxy)")

    def compute(self, ctx: EvalContext) -> float:
        return float(ctx.training["seconds"] + ctx.training.get("search_seconds", 0.0))


@register_metric
class TrainFlops(_TrainingCost):
    name = "train_flops"
    label = "train\nFLOPs"
    cost = 1
    what = "training FLOPs: one real step counted with torch.utils.flop_counter × steps, plus rank-search trials"
    how = "torch.utils.flop_counter"
    higher_is_better = False
    fmt = "{:.3g}"
    gate = Tolerance(rel=0.25, reason="deterministic count including the rank-search trials; a variant may spend "
                     "somewhat more on search, not much more")

    def compute(self, ctx: EvalContext) -> float:
        return float(ctx.training["flops"] + ctx.training.get("search_flops", 0))


class _Count(_TrainingCost):
    """A count (parameters, bytes): an integer, lower is better."""

    higher_is_better = False
    fmt = "{:,.0f}"
    integer = True


@register_metric
class TrainableParams(_Count):
    name = "trainable_params"
    label = "trainable\nparameters"
    what = "parameters updated by training (LoRA adapters only, for LoRA methods)"
    how = "parameter count"
    gate = Tolerance(rel=0.10, reason="deterministic; a small per-concept artifact is the point of E2GAN")


@register_metric
class StoredBytes(_Count):
    name = "stored_bytes"
    label = "stored\nbytes"
    cost = 2
    what = "bytes on disk of what each concept must keep (the LoRA adapter for E2GAN, the generator otherwise)"
    how = "file size of the saved safetensors"
    gate = Tolerance(rel=0.10, reason="deterministic; a small per-concept artifact is the point of E2GAN")


@register_metric
class PeakMemory(_Count):
    name = "peak_memory_bytes"
    label = "peak memory\n(bytes)"
    cost = 3
    what = ("peak tensor memory of one training step: parameters, gradients, optimizer state, activations "
            "(generator and discriminator)")
    how = ("tensor storages alive during the second step (a torch dispatch mode), plus parameters, gradients "
           "and optimizer state")
    gate = Tolerance(rel=0.10, reason="deterministic for a given model, batch and trainable set")


# ------------------------------------------------------------------------------------------------ latency


@register_metric
class Latency(Metric):
    name = "latency_ms"
    label = "latency\n(ms)"
    what = "median ONNX Runtime latency of the LoRA-merged generator, batch 1 (desktop CPU proxy for mobile)"
    higher_is_better = False
    fmt = "{:.2f}"
    gate = Tolerance(reason="depends on the machine and its load")

    def enabled(self, spec: EvalSpec) -> bool:
        return spec.latency

    def resolve(self, spec: EvalSpec) -> Backend:
        try:
            ort = version("onnxruntime")
        except PackageNotFoundError:
            return Backend("n/a: onnxruntime not installed", fallback=True, available=False)
        from e2gan_bench.metrics.latency import PROXY_LABEL

        return Backend(f"onnxruntime-{ort} cpu {spec.latency_threads} thread(s) opt=all (desktop proxy for mobile "
                       "latency)", note=PROXY_LABEL)

    def compute(self, ctx: EvalContext) -> float | None:
        """Measured once per architecture, settings, CPU and runtime (weights do not change it), cached. Any
        failure to export, check or time the generator is recorded as ``n/a: <why>``, never an empty value."""
        if ctx.generator is None or ctx.arch == "identity":
            raise MetricUnavailable(f"nothing to time: the {ctx.arch} architecture has no network")
        from e2gan_bench.metrics.latency import latency_key, measure_latency

        spec = ctx.spec
        key = latency_key(ctx.arch, ctx.model_kwargs, ctx.resolution, spec.latency_threads, "all")
        cache = DiskCache(ctx.cache_dir, "latency", ".json")
        d = cache.get(key, read_json)
        if d is None:
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    d = measure_latency(ctx.generator, ctx.resolution, threads=spec.latency_threads,
                                        runs=spec.latency_runs, workdir=tmp, arch=ctx.arch).to_dict()
            except UserError:  # bad settings are the user's to fix
                raise
            except Exception as exc:  # export, ONNX Runtime or timing failed: n/a with the reason, the run goes on
                first = " ".join(str(exc).split())[:200]
                raise MetricUnavailable(f"{type(exc).__name__}: {first}" if first else type(exc).__name__) from None
            cache.put(key, json_text(d).encode())
        ctx.details["latency"] = {k: d[k] for k in ("median_ms", "p90_ms", "torch_median_ms", "max_abs_diff", "macs",
                                                    "params", "onnx_bytes") if k in d}
        return float(d["median_ms"])
