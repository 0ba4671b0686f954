"""Where a number came from: package versions, git commit, machine, threads."""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from e2gan_bench.cache import host_id
from e2gan_bench.devices import device_info

PACKAGES = ("e2gan-bench", "torch", "torchvision", "peft", "clean-fid", "torchmetrics", "lpips", "onnxruntime",
            "sentence-transformers", "numpy", "scikit-image")


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():  # installed as a wheel: the checkout we run from, if any
        root = Path.cwd()
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip()[:12] + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


@functools.lru_cache(maxsize=4)
def environment(device: str = "cpu") -> dict[str, Any]:
    """Versions, commit, machine and threads, and the device the numbers were computed on (``device``; on a GPU
    its name and the CUDA version torch was built with, :func:`e2gan_bench.devices.device_info`)."""
    return {
        "versions": {p: _version(p) for p in PACKAGES if _version(p)},
        "git": git_commit(),
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu": cpu_model(),  # which machine: the CPU model and a hash of the host name (cache.host_id)
        "host": host_id(),
        "torch_threads": torch.get_num_threads(),
        **device_info(device),
    }
