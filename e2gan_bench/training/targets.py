"""Targets on the validation curve: which direction is better per metric, when a value reaches a target, and
the target a reference run sets. Shared by early stop (training), the runner and time-to-quality (reports); free
of torch, so reports import it without loading the training stack."""

from __future__ import annotations

from typing import Any

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
