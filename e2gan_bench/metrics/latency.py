"""Latency: export the merged generator to ONNX, check ONNX Runtime against PyTorch, time it.

A *desktop CPU proxy* for mobile latency (the paper timed its generators on an iPhone): the generator
is exported with fixed shapes (mobile runtimes use static shapes), its ONNX Runtime output is checked
against PyTorch eager on the same random input, then both are timed single-image with declared
threads and settings (warm-up, then median / p90 of ``runs`` timed calls). MACs (counted, machine
independent) and parameters come along, and optionally a static int8 (QDQ, per-channel) variant with
its accuracy cost. Every result carries the label :data:`PROXY_LABEL`.

LoRA adapters are folded into their base layers before export (:mod:`e2gan_bench.metrics.onnx`), so a
LoRA-tuned generator runs exactly like its base architecture: latency depends on the architecture, not the
weights (:func:`latency_key`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from e2gan_bench.errors import UserError
from e2gan_bench.metrics.onnx import (
    TEXT_TOKENS,
    LatencyError,
    calibration_feeds,
    check_settings,
    count_macs,
    example_inputs,
    export_prepared,
    make_session,
    onnx_opset,
    quantize_int8,
)
from e2gan_bench.metrics.provenance import cpu_model
from e2gan_bench.models.lora import unwrap_lora

__all__ = ["ATOL", "PROXY_LABEL", "LatencyCheckError", "LatencyError", "LatencyResult", "cpu_model", "latency_key",
           "measure_latency"]

#: Printed next to every latency number.
PROXY_LABEL = "desktop CPU proxy for mobile latency (ONNX Runtime); not a phone measurement"

#: Default tolerance of the ORT-vs-PyTorch check (fp32).
ATOL = 1e-4

#: Bump when the export or timing protocol changes (invalidates cached latencies).
PROTOCOL_VERSION = 1


class LatencyCheckError(LatencyError):
    """ONNX Runtime's output differs from PyTorch eager beyond tolerance: the timing would be meaningless."""


@dataclass
class LatencyResult:
    """One latency measurement. Times are milliseconds per single-image forward pass."""

    arch: str
    resolution: int
    threads: int
    opt_level: str
    warmup: int
    runs: int
    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    torch_median_ms: float
    torch_p90_ms: float
    max_abs_diff: float
    macs: int
    params: int
    onnx_bytes: int
    inputs: list[str]
    int8_median_ms: float | None = None
    int8_p90_ms: float | None = None
    int8_max_abs_diff: float | None = None
    int8_mean_abs_diff: float | None = None
    int8_onnx_bytes: int | None = None
    int8_calibration: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------------ timing


def _time_ms(fn: Callable[[], Any], warmup: int, runs: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def _p90(times: list[float]) -> float:
    return float(np.percentile(np.asarray(times), 90))


# ------------------------------------------------------------------------------------------ public


def measure_latency(G: nn.Module, resolution: int, *, threads: int = 1, warmup: int = 10, runs: int = 50,
                    opt_level: str = "all", int8: bool = False, workdir: str | os.PathLike | None = None,
                    seed: int = 0, calibration: np.ndarray | None = None, calibration_count: int = 8,
                    text_tokens: int = TEXT_TOKENS, text_dim: int | None = None, opset: int | None = None,
                    atol: float = ATOL, arch: str | None = None) -> LatencyResult:
    """Export ``G`` to ONNX, check ONNX Runtime against PyTorch eager, and time both on one CPU setting.

    Args:
        G: the generator (not modified; LoRA adapters are merged on a copy).
        resolution: square input side in pixels.
        threads: ONNX Runtime intra-op threads and ``torch.set_num_threads`` for the eager timing
            (restored afterwards).
        warmup: untimed calls before timing. runs: timed calls (``time.perf_counter``).
        opt_level: ONNX Runtime graph optimisation, one of ``disable``, ``basic``, ``extended``, ``all``.
        int8: also quantise statically (QDQ, per-channel) and time it; its accuracy cost is the max /
            mean absolute difference to the fp32 ONNX Runtime output.
        workdir: where the ``.onnx`` files go (kept); default a temporary folder (removed).
        seed: seed of the random input. calibration: optional (N,3,R,R) images in [-1, 1] for int8
            calibration (default ``calibration_count`` random smooth images).
        atol: tolerance of the fp32 check. arch: label for the result (default the class name).

    Raises:
        UserError: bad settings. LatencyExportError: export failed. LatencyCheckError: ORT output
            differs from PyTorch by more than ``atol``.
    """
    check_settings(threads, warmup, runs, opt_level)
    if not isinstance(resolution, int) or resolution < 1:
        raise UserError("must be a positive integer", field="resolution", value=resolution)
    import onnxruntime as ort  # heavy; only latency measurements need it

    label = arch or type(G).__name__
    ref_model = copy.deepcopy(G).to("cpu").float().eval()
    feeds = example_inputs(ref_model, resolution, text_tokens=text_tokens, text_dim=text_dim, seed=seed)
    args = [torch.from_numpy(v) for v in feeds.values()]
    with torch.no_grad():
        reference = ref_model(*args).numpy()  # the caller's model as given (LoRA unmerged, if any)
    model = unwrap_lora(ref_model)
    for p in model.parameters():
        p.requires_grad_(False)
    params = sum(p.numel() for p in model.parameters())
    macs = count_macs(model, feeds)

    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="e2gan-latency-")
        wd = Path(tmp.name)
    else:
        wd = Path(workdir)
        wd.mkdir(parents=True, exist_ok=True)
    try:
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in label) + f"-{resolution}"
        onnx_path = export_prepared(model, feeds, wd / f"{stem}.onnx", opset)
        sess = make_session(onnx_path, threads=threads, opt_level=opt_level)
        out = sess.run(None, feeds)[0]
        if out.shape != reference.shape:
            raise LatencyCheckError(f"{label}: ONNX Runtime output shape {out.shape} != PyTorch {reference.shape}")
        max_abs_diff = float(np.max(np.abs(out - reference)))
        if not np.isfinite(max_abs_diff) or max_abs_diff > atol:
            raise LatencyCheckError(f"{label}: ONNX Runtime output differs from PyTorch eager by {max_abs_diff:.3g} "
                                    f"(max abs, tolerance {atol:g}) at {resolution}px")
        ort_times = _time_ms(lambda: sess.run(None, feeds), warmup, runs)

        prev_threads = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            with torch.inference_mode():
                torch_times = _time_ms(lambda: model(*args), warmup, runs)
        finally:
            torch.set_num_threads(prev_threads)

        result = LatencyResult(
            arch=label, resolution=resolution, threads=threads, opt_level=opt_level, warmup=warmup, runs=runs,
            median_ms=statistics.median(ort_times), p90_ms=_p90(ort_times), mean_ms=statistics.fmean(ort_times),
            min_ms=min(ort_times), torch_median_ms=statistics.median(torch_times), torch_p90_ms=_p90(torch_times),
            max_abs_diff=max_abs_diff, macs=macs, params=params, onnx_bytes=onnx_path.stat().st_size,
            inputs=[i.name for i in sess.get_inputs()],
        )

        if int8:
            cal_feeds, cal_source = calibration_feeds(model, resolution, calibration, calibration_count, seed,
                                                       text_tokens, text_dim)
            q_path = quantize_int8(onnx_path, wd / f"{stem}.int8.onnx", cal_feeds)
            qsess = make_session(q_path, threads=threads, opt_level=opt_level)
            q_out = qsess.run(None, feeds)[0]
            diff = np.abs(q_out - out)
            q_times = _time_ms(lambda: qsess.run(None, feeds), warmup, runs)
            result.int8_median_ms = statistics.median(q_times)
            result.int8_p90_ms = _p90(q_times)
            result.int8_max_abs_diff = float(diff.max())
            result.int8_mean_abs_diff = float(diff.mean())
            result.int8_onnx_bytes = q_path.stat().st_size
            result.int8_calibration = cal_source

        result.provenance = {
            "label": PROXY_LABEL,
            "backend": "onnxruntime",
            "onnxruntime": ort.__version__,
            "torch": torch.__version__,
            "exporter": "torch.onnx.export (dynamo), fixed shapes, LoRA merged",
            "opset": onnx_opset(onnx_path),
            "providers": sess.get_providers(),
            "threads": threads,
            "intra_op_num_threads": threads,
            "inter_op_num_threads": 1,
            "execution_mode": "sequential",
            "opt_level": opt_level,
            "timing": f"time.perf_counter, batch 1, {warmup} warm-up + {runs} timed runs, median/p90",
            "input_shapes": {k: list(v.shape) for k, v in feeds.items()},
            "int8": ("static QDQ, per-channel, weights int8 / activations uint8, MinMax calibration on "
                     f"{result.int8_calibration}") if int8 else None,
            "cpu": cpu_model(),
            "machine": platform.machine(),
            "logical_cpus": os.cpu_count(),
            "python": platform.python_version(),
            "protocol": PROTOCOL_VERSION,
        }
        return result
    finally:
        if tmp is not None:
            tmp.cleanup()


def latency_key(arch: str, model_kwargs: dict[str, Any], resolution: int, threads: int, opt_level: str, *,
                int8: bool = False) -> str:
    """Cache key of a latency measurement: architecture and settings, not weights (LoRA is merged away).

    Includes the CPU model and the ONNX Runtime / torch versions, since a latency is only valid on
    the machine and runtime that measured it, and :data:`PROTOCOL_VERSION`. 16 hex digits.
    """
    try:
        ort_version = version("onnxruntime")
    except PackageNotFoundError:  # pragma: no cover - onnxruntime is a dependency
        ort_version = None
    payload = {
        "arch": arch,
        "model_kwargs": model_kwargs,
        "resolution": int(resolution),
        "threads": int(threads),
        "opt_level": opt_level,
        "int8": bool(int8),
        "cpu": cpu_model(),
        "onnxruntime": ort_version,
        "torch": torch.__version__,
        "protocol": PROTOCOL_VERSION,
    }
    blob = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
