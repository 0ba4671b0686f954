"""Targets on the validation curve: which direction is better per metric, when a value reaches a target, and
the target a reference run sets. Shared by early stop (training), the runner and time-to-quality (reports); free
of torch, so reports import it without loading the training stack."""

from __future__ import annotations

from typing import Any

from e2gan_bench.config import TargetSpec
from e2gan_bench.errors import ConfigError
from e2gan_bench.resources import find_targets

#: Quality measured on the validation curve and which direction is better.
CURVE_METRICS = {"psnr": True, "ssim": True, "lpips": False}


def reaches(value: float, target: float, metric: str) -> bool:
    """Whether a validation quality is at least as good as the target (time-to-quality and early stop alike)."""
    return value >= target if CURVE_METRICS[metric] else value <= target


def final_value(points: list[dict[str, Any]], metric: str) -> float | None:
    """A curve's last value of ``metric`` (None when no point has it)."""
    vals = [p[metric] for p in points if p.get(metric) is not None]
    return float(vals[-1]) if vals else None


def reference_target(final: float, tolerance: float, metric: str) -> float:
    """A reference run's final quality, ``tolerance`` towards the worse side: the target of ``target.reference``."""
    return final - tolerance if CURVE_METRICS[metric] else final + tolerance


def fixed_values(spec: TargetSpec, *, file: str | None = None) -> dict[str, float]:
    """concept -> the fixed target on ``spec.metric`` (empty for a relative target)."""
    if not spec.fixed:
        return {}
    tf, _ = find_targets(str(spec.file), file=file)
    return {c: v[spec.metric] for c, v in tf.values.items() if spec.metric in v}


def check_fixed(spec: TargetSpec, concepts: list[str], resolution: int | None, curve_images: int | None, *,
                file: str | None) -> None:
    """A suite's fixed targets exist for each of its concepts and hold for its settings (one line otherwise)."""
    if not spec.fixed:
        return
    tf, path = find_targets(str(spec.file), file=file)
    for i, c in enumerate(concepts):
        if tf.value(c, spec.metric) is None:
            raise ConfigError(f"no {spec.metric} target for this concept in {path} (e2gan-bench targets make)",
                              file=file, field=f"concepts[{i}]", value=c)
    for name, have, want in (("data.resolution", resolution, tf.resolution),
                             ("curve.max_images", curve_images, tf.curve_images)):
        if have is not None and have != want:
            raise ConfigError(f"the targets in {path} were measured with {name} = {want}", file=file, field=name,
                              value=have)
