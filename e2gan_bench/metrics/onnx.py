"""ONNX export and ONNX Runtime sessions of generators: what the latency measurement times.

The generator is exported with fixed shapes (mobile runtimes use static shapes) after its LoRA adapters are
folded into their base layers (:func:`e2gan_bench.models.lora.unwrap_lora`), so a LoRA-tuned generator exports
— and runs — exactly like its base architecture. Also: MACs of one forward pass, and static int8 quantisation.
onnx, onnxruntime and the quantiser are imported where they are used: they are heavy and only the latency
measurement needs them.
"""

from __future__ import annotations

import copy
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from e2gan_bench.errors import UserError
from e2gan_bench.models.lora import unwrap_lora

#: ``opt_level`` name -> ``onnxruntime.GraphOptimizationLevel`` member name.
OPT_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}

TEXT_TOKENS = 16
TEXT_DIM = 384


class LatencyError(RuntimeError):
    """Base class of latency failures (not user input errors)."""


class LatencyExportError(LatencyError):
    """The generator could not be exported to ONNX."""


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
    return TEXT_DIM


def example_inputs(G: nn.Module, resolution: int, *, text_tokens: int = TEXT_TOKENS, text_dim: int | None = None,
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


def export_prepared(model: nn.Module, feeds: dict[str, np.ndarray], path: Path, opset: int | None) -> Path:
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


def export_onnx(G: nn.Module, resolution: int, path: str | os.PathLike, *, text_tokens: int = TEXT_TOKENS,
                text_dim: int | None = None, opset: int | None = None) -> Path:
    """Export ``G`` (LoRA merged and unwrapped, on a copy) to one ONNX file with fixed shapes.

    Graph inputs are ``[image]`` or, for text-conditioned generators, ``[image, text, text_mask]``
    (shapes (1,3,R,R), (1,text_tokens,text_dim), (1,text_tokens) bool); the output is ``output``.
    ``text_dim=None`` infers it from the generator's cross-attention. ``opset=None``: the exporter's
    default. Raises :class:`LatencyExportError` when the exporter fails.
    """
    model = _prepare(G)
    feeds = example_inputs(model, resolution, text_tokens=text_tokens, text_dim=text_dim)
    return export_prepared(model, feeds, Path(path), opset)


# ---------------------------------------------------------------------------------------- counting


def _sdpa_cpu_flops(query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def count_macs(model: nn.Module, feeds: dict[str, np.ndarray]) -> int:
    """Multiply-accumulates of one forward pass (``FlopCounterMode`` FLOPs / 2; CPU attention included)."""
    custom = {}
    cpu_sdpa = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if cpu_sdpa is not None:  # not in torch's registry: CPU attention would count as zero
        custom[cpu_sdpa] = _sdpa_cpu_flops
    args = [torch.from_numpy(v) for v in feeds.values()]
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=custom) as counter:
        model(*args)
    return int(counter.get_total_flops()) // 2



def check_settings(threads: int, warmup: int, runs: int, opt_level: str) -> None:
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

    check_settings(threads, 0, 1, opt_level)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[opt_level])
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])



def onnx_opset(path: Path) -> int | None:
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


def calibration_feeds(model: nn.Module, resolution: int, calibration: np.ndarray | None, n: int, seed: int,
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


#: The op types quantised: the compute-heavy ones. Ops that share one quantisation parameter between input
#: and output (Split, Concat, …) are left in float — ONNX Runtime cannot quantise them when their input is a
#: weight, as the prompt-conditioned scale/shift (FiLM) of a fixed prompt is once constants are folded.
INT8_OPS = ["Conv", "MatMul", "Gemm"]


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
                        calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=INT8_OPS)
    except Exception as exc:
        raise LatencyExportError(f"int8 quantisation failed: {exc}") from exc
    finally:
        root.setLevel(level)
        pre.unlink(missing_ok=True)
    return out_path
