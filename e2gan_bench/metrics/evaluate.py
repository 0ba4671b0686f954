"""Evaluate a trained generator on a concept's held-out test split against the teacher, with every registered
metric, and the evaluation key that says when a stored evaluation is out of date."""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from e2gan_bench.config import EvalSpec
from e2gan_bench.data.dataset import PairedDataset
from e2gan_bench.errors import ConfigError
from e2gan_bench.keys import code_version, content_key
from e2gan_bench.metrics.contract import Backend, EvalContext, Metric, MetricUnavailable, all_metrics, image_mean
from e2gan_bench.models.generators import Generator
from e2gan_bench.models.tensors import generate
from e2gan_bench.models.text import PromptEmbedding
from e2gan_bench.plugins import parse_params

#: The code an evaluation's numbers depend on (beyond the generator, which the training key covers).
EVAL_CODE = ("metrics", "features", "models/tensors")


@dataclass(frozen=True)
class EvaluationPlan:
    """The metrics one evaluation computes, the backend each will use, and the evaluation key.

    The key hashes the evaluation settings, every metric's parameters and backend label (weights hashes
    included) and the metric code's fingerprint: registering real weights, adding a metric plugin or changing
    metric code changes it, and stored runs are then re-evaluated from their artifacts, never retrained.
    """

    spec: EvalSpec
    metrics: tuple[Metric, ...]
    backends: dict[str, Backend]
    key: str
    device: str = "cpu"  # where the generator and the feature networks run (cpu | cuda)


def metrics_for(spec: EvalSpec, *, file: str | None = None) -> list[Metric]:
    """The metrics ``spec`` enables, each with its validated ``Params`` (from ``eval.params.<name>``)."""
    classes = all_metrics()
    names = [m.name for m in classes]
    for name in spec.params:
        if name not in names:
            raise ConfigError("unknown metric", file=file, field="eval.params", value=name, allowed=", ".join(names))
    metrics = [cls(parse_params(cls, spec.params.get(cls.name), file=file, field=f"eval.params.{cls.name}"))
               for cls in classes]
    return [m for m in metrics if m.enabled(spec)]


def on_device(label: str, device: str) -> str:
    """A backend label with the device it ran on: unchanged on the CPU (the labels and keys of CPU runs are
    those from before devices existed), ``label [cuda]`` elsewhere — numbers from different devices then never
    share a label, so reports never average or compare them as one."""
    if device == "cpu" or label.startswith("n/a"):
        return label
    return f"{label} [{device}]"


def plan_evaluation(spec: EvalSpec, *, file: str | None = None, device: str = "cpu") -> EvaluationPlan:
    metrics = metrics_for(spec, file=file)
    backends = {m.name: m.resolve(spec) for m in metrics if m.stage == "eval"}
    if device != "cpu":
        backends = {n: replace(b, label=on_device(b.label, device)) for n, b in backends.items()}
    key = content_key("eval", spec.model_dump(), {n: [b.label, b.extra] for n, b in sorted(backends.items())},
                      {m.name: m.params.model_dump() for m in metrics}, code_version(*EVAL_CODE),
                      *(() if device == "cpu" else ({"device": device},)))
    return EvaluationPlan(spec, tuple(metrics), backends, key, device)


@dataclass
class Evaluation:
    values: dict[str, float]  # metric (and secondary) values
    backends: dict[str, str]  # metric -> backend label (or "n/a: why"), plus extra backend keys
    details: dict[str, Any]  # what metrics left for the record (e.g. latency details)
    outputs: np.ndarray  # the student's outputs on the test split
    seconds: float
    # per test image: "image" (index in the test split), "hash" (of the source image), and each per-image metric
    per_image: dict[str, list[Any]] | None = None


def image_ids(images: np.ndarray) -> list[str]:
    """A short content hash of each uint8 image (which test photograph crop a per-image score belongs to)."""
    return [hashlib.sha256(np.ascontiguousarray(im).tobytes()).hexdigest()[:16] for im in images]


def evaluate(plan: EvaluationPlan, G: Generator, ds: PairedDataset, emb: PromptEmbedding, *, arch: str,
             model_kwargs: dict[str, Any], training: dict[str, Any], cache_dir: Path | None) -> Evaluation:
    """Run ``G`` on the test split and compute every metric of ``plan``."""
    t0 = time.perf_counter()
    out = generate(G, ds.src_test, emb.tokens[None], emb.mask[None])
    ctx = EvalContext(plan.spec, out, ds.tgt_test, ds.src_test, ds.prompt, G, arch, model_kwargs, ds.resolution,
                      cache_dir, training, device=plan.device)
    # where the training costs were measured: a run that trained no step (identity) costs nothing anywhere, and is
    # labelled with the evaluation's device, so that it never reads as a mix of devices beside the suite's other runs
    trained_on = str(training.get("device", "cpu")) if training.get("steps") else plan.device
    values: dict[str, float] = {}
    backends: dict[str, str] = {}
    per_image: dict[str, list[Any]] = {"image": list(range(len(out))), "hash": image_ids(ds.src_test)}
    for m in plan.metrics:
        b = plan.backends.get(m.name)
        if b is not None and not b.available:
            backends[m.name] = b.label
            continue
        try:
            if m.per_image:
                imgs = np.asarray(m.compute_images(ctx), dtype=float)
                per_image[m.name] = [float(x) if np.isfinite(x) else None for x in imgs]
                v, excluded = image_mean(imgs)
                if excluded:
                    ctx.details.setdefault("per_image_excluded", {})[m.name] = excluded
            else:
                v = m.compute(ctx)
        except MetricUnavailable as exc:
            backends[m.name] = f"n/a: {exc}"
            continue
        got = v if isinstance(v, dict) else {m.name: v}
        main = got.get(m.name)
        if main is None or (isinstance(main, float) and not math.isfinite(main)):
            # never a silent empty value: the record says the metric was not measured, and why
            backends[m.name] = "n/a: " + ("no value returned" if main is None else f"non-finite value ({main})")
            got = {k: x for k, x in got.items() if k != m.name}
        values.update({k: x for k, x in got.items() if x is not None})
        if b is not None and m.name not in backends:
            backends[m.name] = b.label
            backends.update(b.extra)
        elif b is None and trained_on != "cpu" and m.name in values:  # a training cost measured on a GPU
            how = (training.get("backends") or {}).get(m.name) or m.resolve(plan.spec).label
            backends[m.name] = on_device(how, trained_on)
    return Evaluation(values, backends, ctx.details, out, time.perf_counter() - t0,
                      per_image if len(per_image) > 2 else None)


def sample_grid(src: np.ndarray, tgt: np.ndarray, out: np.ndarray, n: int) -> np.ndarray:
    """Rows: source / teacher / student for the first ``n`` test images."""
    n = min(n, len(src))
    rows = [np.concatenate(list(a[:n]), axis=1) for a in (src, tgt, out)]
    return np.concatenate(rows, axis=0)
