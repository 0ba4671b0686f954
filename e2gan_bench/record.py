"""The one record type that flows from evaluation to results store to report."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class RunRecord(BaseModel):
    """Everything measured for one concept × method × seed, under one evaluation.

    Metric values are not declared here: every registered metric (:mod:`e2gan_bench.metrics`) stores its value,
    and any secondary values it reports (``kid_std``, ``clip_directional``), under its own name as extra fields,
    so adding a metric needs no change to this schema. Read them with :meth:`value`.
    """

    model_config = ConfigDict(extra="allow")

    key: str  # the run: training key + evaluation settings
    train_key: str | None = None  # the trained artifact this record evaluates
    eval_key: str | None = None  # evaluation settings, metric backends (weights hashes) and metric code
    concept: str
    method: str
    seed: int
    status: Literal["ok", "failed"] = "ok"
    reference: bool = False
    error: str | None = None
    # training details that are not metrics
    search_seconds: float | None = None
    search_flops: float | None = None
    total_params: int | None = None
    n_train_used: int | None = None
    n_test: int | None = None
    eval_seconds: float | None = None
    # quality on the validation split during training: {"points": [{step, seconds, flops, psnr, ssim, lpips}],
    # "backends": {...}, "n_images": n} (training/validation.py); None for runs without a validation split
    val_curve: dict[str, Any] | None = None
    # per test image (metrics/contract.py): {"image": [index], "hash": [source image hash], "psnr": [...], ...}; a value
    # that was not finite is None (excluded from the mean, counted in details.per_image_excluded)
    per_image: dict[str, list[Any]] | None = None
    # where the numbers came from, and method details (rank pattern, data selection, …)
    backends: dict[str, str] = Field(default_factory=dict)
    provenance: dict[str, Any] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    created: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def value(self, name: str) -> float | None:
        """The finite value stored under ``name`` (a metric or a secondary value), else ``None``."""
        v = getattr(self, name, None)
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
            return None
        v = float(v)
        return v if math.isfinite(v) else None
