"""Devices: what ``--device`` accepts, resolving it, and a device's provenance."""

from __future__ import annotations

from typing import Any

from e2gan_bench.errors import UserError

#: What ``--device`` and a suite's ``device:`` accept; ``auto`` is cuda when torch sees a GPU, else cpu.
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str, *, field: str = "--device", file: str | None = None, require: bool = True) -> str:
    """``auto`` | ``cpu`` | ``cuda`` -> the device type a run uses (``cpu`` or ``cuda``); ``cuda`` where torch sees
    no GPU is a one-line UserError (exit 2) unless ``require=False`` (keys and reports need no GPU)."""
    import torch  # heavy: imported when a command resolves its device, not when the CLI starts

    if name not in DEVICES:
        raise UserError("unknown device", file=file, field=field, value=name, allowed=", ".join(DEVICES))
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and require and (reason := cuda_unavailable_reason()) is not None:
        raise UserError(f"CUDA is not available here ({reason}); use --device cpu or auto", file=file, field=field,
                        value=name)
    return name


def cuda_unavailable_reason(template: str = "torch {torch}, built for CUDA {cuda}") -> str | None:
    """None when torch sees a CUDA GPU; otherwise why not: ``template`` with ``{torch}`` (torch's version) and
    ``{cuda}`` (the CUDA version torch was built for, ``none`` for a CPU-only build) filled in."""
    import torch  # heavy: imported only when asked

    if torch.cuda.is_available():
        return None
    return template.format(torch=torch.__version__, cuda=torch.version.cuda or "none")


def device_info(device: str) -> dict[str, Any]:
    """Provenance of a device: its type, and on a GPU its name, the CUDA version torch was built with and the
    driver's compute capability."""
    import torch

    if device != "cuda":
        return {"device": "cpu"}
    i = torch.cuda.current_device()
    return {"device": "cuda", "gpu": torch.cuda.get_device_name(i), "cuda": torch.version.cuda,
            "capability": ".".join(map(str, torch.cuda.get_device_capability(i)))}
