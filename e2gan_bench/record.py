"""The one record type that flows from trainer to results store to report."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Metrics in report order; ``higher`` says which direction is better.
METRICS: dict[str, dict[str, Any]] = {
    "kid": {"higher": False, "fmt": "{:.4f}", "backend": "features"},
    "fid": {"higher": False, "fmt": "{:.2f}", "backend": "features"},
    "psnr": {"higher": True, "fmt": "{:.2f}", "backend": None},
    "ssim": {"higher": True, "fmt": "{:.3f}", "backend": None},
    "lpips": {"higher": False, "fmt": "{:.3f}", "backend": "lpips"},
    "clip_score": {"higher": True, "fmt": "{:.2f}", "backend": "clip"},
    "train_seconds": {"higher": False, "fmt": "{:.1f}", "backend": None},
    "train_flops": {"higher": False, "fmt": "{:.3g}", "backend": None},
    "trainable_params": {"higher": False, "fmt": "{:,.0f}", "backend": None},
    "stored_bytes": {"higher": False, "fmt": "{:,.0f}", "backend": None},
    "peak_memory_bytes": {"higher": False, "fmt": "{:,.0f}", "backend": None},
    "latency_ms": {"higher": False, "fmt": "{:.2f}", "backend": "latency"},
}


class RunRecord(BaseModel):
    """Everything measured for one concept × method × seed."""

    model_config = ConfigDict(extra="allow")

    key: str
    concept: str
    method: str
    seed: int
    status: Literal["ok", "failed"] = "ok"
    reference: bool = False
    error: str | None = None
    # quality vs the teacher on the test split
    kid: float | None = None
    kid_std: float | None = None
    fid: float | None = None
    psnr: float | None = None
    ssim: float | None = None
    lpips: float | None = None
    clip_score: float | None = None
    clip_directional: float | None = None
    # cost
    train_seconds: float | None = None
    train_flops: float | None = None
    search_seconds: float | None = None
    search_flops: float | None = None
    trainable_params: int | None = None
    total_params: int | None = None
    stored_bytes: int | None = None
    peak_memory_bytes: int | None = None
    latency_ms: float | None = None
    n_train_used: int | None = None
    n_test: int | None = None
    eval_seconds: float | None = None
    # where the numbers came from, and method details (rank pattern, data selection, …)
    backends: dict[str, str] = Field(default_factory=dict)
    provenance: dict[str, Any] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    created: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
