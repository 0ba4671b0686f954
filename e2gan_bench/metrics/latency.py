"""Latency: export the merged generator to ONNX, check ONNX Runtime against PyTorch, time it.

A *desktop CPU proxy* for mobile latency (the paper timed its generators on an iPhone): the generator
is exported with fixed shapes (mobile runtimes use static shapes), its ONNX Runtime output is checked
against PyTorch eager on the same random input, then both are timed single-image with declared
threads and settings (warm-up, then median / p90 of ``runs`` timed calls). MACs (counted, machine
independent) and parameters come along, and optionally a static int8 (QDQ, per-channel) variant with
its accuracy cost. Every result carries the label :data:`PROXY_LABEL`.

LoRA adapters are folded into their base layers and the peft wrappers removed before export
(:func:`unwrap_lora`), so a LoRA-tuned generator exports — and runs — exactly like its base
architecture: latency depends on the architecture, not the weights (:func:`latency_key`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from e2gan_bench.errors import UserError

#: Printed next to every latency number.
PROXY_LABEL = "desktop CPU proxy for mobile latency (ONNX Runtime); not a phone measurement"

#: ``opt_level`` name -> ``onnxruntime.GraphOptimizationLevel`` member name.
OPT_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}

#: Default tolerance of the ORT-vs-PyTorch check (fp32).
ATOL = 1e-4

#: Bump when the export or timing protocol changes (invalidates cached latencies).
PROTOCOL_VERSION = 1

_TEXT_TOKENS = 16
_TEXT_DIM = 384


class LatencyError(RuntimeError):
    """Base class of latency failures (not user input errors)."""


class LatencyExportError(LatencyError):
    """The generator could not be exported to ONNX."""


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


# --------------------------------------------------------------------------------------------- LoRA


def unwrap_lora(G: nn.Module) -> nn.Module:
    """Merge every peft LoRA adapter into its base layer and replace the wrapper by the base layer.

    Works **in place** (deep-copy first to keep the original) and returns ``G``: afterwards ``G``
    holds only plain ``nn.Conv2d`` / ``nn.Linear`` layers, computes what the adapted model computed
    (within float rounding), and exports like the base architecture. A model without LoRA is
    returned unchanged.
    """
    from peft.tuners.tuners_utils import BaseTunerLayer

    def outermost() -> list[tuple[str, nn.Module]]:
        found: list[tuple[str, nn.Module]] = []
        for name, mod in G.named_modules():
            if isinstance(mod, BaseTunerLayer) and not any(name.startswith(p + ".") for p, _ in found):
                found.append((name, mod))
        return found

    layers = outermost()
    if not layers:
        return G
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "already merged" when merge_lora ran before
        for _, mod in layers:
            mod.merge()  # merges the active adapters not merged yet
    for name, mod in layers:
        base = mod.get_base_layer()
        if name == "":
            return base
        parent_name, _, child = name.rpartition(".")
        setattr(G.get_submodule(parent_name) if parent_name else G, child, base)
    if "peft_config" in vars(G):  # set by peft's inject_adapter_in_model
        del G.peft_config
    return G


# ------------------------------------------------------------------------------------------- export


class _ImageOnly(nn.Module):
    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.generator(image)


class _TextConditioned(nn.Module):
    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, image: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        return self.generator(image, text, text_mask)


def _infer_text_dim(G: nn.Module) -> int:
    """``in_features`` of the cross-attention key projection when the generator has one, else 384."""
    for name, mod in G.named_modules():
        if name.endswith("cross_attn.k"):
            base = mod.get_base_layer() if hasattr(mod, "get_base_layer") else mod
            if isinstance(base, nn.Linear):
                return base.in_features
    return _TEXT_DIM


def example_inputs(G: nn.Module, resolution: int, *, text_tokens: int = _TEXT_TOKENS, text_dim: int | None = None,
                   seed: int = 0, image: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Named float32 / bool inputs of one forward pass: ``image`` (1,3,H,W) in [-1, 1], and for
    text-conditioned generators ``text`` (1,L,D) and ``text_mask`` (1,L), the first half real tokens."""
    rng = np.random.default_rng(seed)
    if image is None:
        image = rng.uniform(-1.0, 1.0, size=(1, 3, resolution, resolution))
    feeds = {"image": np.ascontiguousarray(image, dtype=np.float32)}
    if getattr(G, "text_conditioned", False):
        dim = text_dim or _infer_text_dim(G)
        feeds["text"] = rng.standard_normal((1, text_tokens, dim)).astype(np.float32)
        mask = np.zeros((1, text_tokens), dtype=bool)
        mask[:, : max(1, text_tokens // 2)] = True
        feeds["text_mask"] = mask
    return feeds


def _prepare(G: nn.Module) -> nn.Module:
    """A float32 CPU eval copy of ``G`` with LoRA merged and unwrapped; ``G`` is not touched."""
    model = unwrap_lora(copy.deepcopy(G).to("cpu").float().eval())
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _export(model: nn.Module, feeds: dict[str, np.ndarray], path: Path, opset: int | None) -> Path:
    wrapper = _TextConditioned(model) if "text" in feeds else _ImageOnly(model)
    args = tuple(torch.from_numpy(v) for v in feeds.values())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapper.eval(), args, str(path), input_names=list(feeds), output_names=["output"],
                              opset_version=opset, dynamo=True, external_data=False, verbose=False,
                              artifacts_dir=str(path.parent))
    except Exception as exc:  # the exporter raises many types; one clear class for callers
        raise LatencyExportError(f"ONNX export of {type(model).__name__} failed: {exc}") from exc
    if not path.is_file():
        raise LatencyExportError(f"ONNX export of {type(model).__name__} wrote no file at {path}")
    return path


def export_onnx(G: nn.Module, resolution: int, path: str | os.PathLike, *, text_tokens: int = _TEXT_TOKENS,
                text_dim: int | None = None, opset: int | None = None) -> Path:
    """Export ``G`` (LoRA merged and unwrapped, on a copy) to one ONNX file with fixed shapes.

    Graph inputs are ``[image]`` or, for text-conditioned generators, ``[image, text, text_mask]``
    (shapes (1,3,R,R), (1,text_tokens,text_dim), (1,text_tokens) bool); the output is ``output``.
    ``text_dim=None`` infers it from the generator's cross-attention. ``opset=None``: the exporter's
    default. Raises :class:`LatencyExportError` when the exporter fails.
    """
    model = _prepare(G)
    feeds = example_inputs(model, resolution, text_tokens=text_tokens, text_dim=text_dim)
    return _export(model, feeds, Path(path), opset)


# ---------------------------------------------------------------------------------------- counting


def _sdpa_cpu_flops(query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(query_shape, key_shape, value_shape)


def count_macs(model: nn.Module, feeds: dict[str, np.ndarray]) -> int:
    """Multiply-accumulates of one forward pass (``FlopCounterMode`` FLOPs / 2; CPU attention included)."""
    from torch.utils.flop_counter import FlopCounterMode

    custom = {}
    cpu_sdpa = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if cpu_sdpa is not None:  # not in torch's registry: CPU attention would count as zero
        custom[cpu_sdpa] = _sdpa_cpu_flops
    args = [torch.from_numpy(v) for v in feeds.values()]
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=custom) as counter:
        model(*args)
    return int(counter.get_total_flops()) // 2


# ------------------------------------------------------------------------------------------ timing


def _check_settings(threads: int, warmup: int, runs: int, opt_level: str) -> None:
    if opt_level not in OPT_LEVELS:
        raise UserError("unknown graph optimisation level", field="opt_level", value=opt_level,
                        allowed=", ".join(OPT_LEVELS))
    if not isinstance(threads, int) or threads < 1:
        raise UserError("must be a positive integer", field="threads", value=threads)
    if not isinstance(runs, int) or runs < 1:
        raise UserError("must be a positive integer", field="runs", value=runs)
    if not isinstance(warmup, int) or warmup < 0:
        raise UserError("must be a non-negative integer", field="warmup", value=warmup)


def make_session(path: str | os.PathLike, *, threads: int = 1, opt_level: str = "all"):
    """An ONNX Runtime CPU session: ``threads`` intra-op threads, 1 inter-op thread, sequential execution."""
    import onnxruntime as ort

    _check_settings(threads, 0, 1, opt_level)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[opt_level])
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


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


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _opset(path: Path) -> int | None:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


# -------------------------------------------------------------------------------------------- int8


class _Calibration:
    """``onnxruntime.quantization.CalibrationDataReader`` over a list of feed dicts."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._it = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:  # pragma: no cover - used by some calibrators only
        pass


def _calibration_feeds(model: nn.Module, resolution: int, calibration: np.ndarray | None, n: int, seed: int,
                       text_tokens: int, text_dim: int | None) -> tuple[list[dict[str, np.ndarray]], str]:
    if calibration is not None:
        arr = np.asarray(calibration, dtype=np.float32)
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4 or arr.shape[1:] != (3, resolution, resolution):
            raise UserError(f"calibration images must be (N, 3, {resolution}, {resolution}) in [-1, 1]",
                            field="calibration", value=tuple(arr.shape))
        images = [arr[i: i + 1] for i in range(arr.shape[0])]
        source = f"{len(images)} given images"
    else:
        # smooth random images (low-resolution noise upsampled, plus fine noise): closer to photographs'
        # activation ranges than white noise
        rng = np.random.default_rng(seed + 1)
        images = []
        for _ in range(n):
            low = torch.from_numpy(rng.uniform(-1, 1, size=(1, 3, 8, 8)).astype(np.float32))
            img = torch.nn.functional.interpolate(low, size=(resolution, resolution), mode="bilinear",
                                                  align_corners=False)
            img = img + 0.1 * torch.from_numpy(rng.standard_normal(img.shape).astype(np.float32))
            images.append(img.clamp(-1, 1).numpy())
        source = f"{n} random smooth images"
    feeds = [example_inputs(model, resolution, text_tokens=text_tokens, text_dim=text_dim, seed=seed + 2 + i, image=im)
             for i, im in enumerate(images)]
    return feeds, source


def quantize_int8(fp32_path: Path, out_path: Path, calibration_feeds: list[dict[str, np.ndarray]]) -> Path:
    """Static int8 quantisation (QDQ, per-channel weights int8, activations uint8, MinMax calibration)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = out_path.with_name(out_path.stem + ".pre.onnx")
    src = fp32_path
    try:
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        src = pre
    except Exception:  # pre-processing is an optimisation; quantise the raw export if it fails
        src = fp32_path
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs a warning per 1-D constant it cannot quantise per channel
    try:
        quantize_static(str(src), str(out_path), _Calibration(calibration_feeds), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
    except Exception as exc:
        raise LatencyExportError(f"int8 quantisation failed: {exc}") from exc
    finally:
        root.setLevel(level)
        pre.unlink(missing_ok=True)
    return out_path


# ------------------------------------------------------------------------------------------ public


def measure_latency(G: nn.Module, resolution: int, *, threads: int = 1, warmup: int = 10, runs: int = 50,
                    opt_level: str = "all", int8: bool = False, workdir: str | os.PathLike | None = None,
                    seed: int = 0, calibration: np.ndarray | None = None, calibration_count: int = 8,
                    text_tokens: int = _TEXT_TOKENS, text_dim: int | None = None, opset: int | None = None,
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
    _check_settings(threads, warmup, runs, opt_level)
    if not isinstance(resolution, int) or resolution < 1:
        raise UserError("must be a positive integer", field="resolution", value=resolution)
    import onnxruntime as ort

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
        onnx_path = _export(model, feeds, wd / f"{stem}.onnx", opset)
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
            cal_feeds, cal_source = _calibration_feeds(model, resolution, calibration, calibration_count, seed,
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
            "opset": _opset(onnx_path),
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
        from importlib.metadata import version

        ort_version = version("onnxruntime")
    except Exception:  # pragma: no cover - onnxruntime is a dependency
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
