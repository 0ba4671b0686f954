"""Crash injection: named fault points where the crash tests kill the process."""

from __future__ import annotations

import os
import signal

_fault_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    """A named moment where the crash tests stop the process. With ``E2GAN_BENCH_FAULT=NAME:N`` in the
    environment, the N-th time this process reaches point ``NAME`` it kills itself with SIGKILL — no cleanup, no
    ``finally`` blocks, exactly as a power cut or ``kill -9`` would; without it this does nothing.

    Points: ``train-step`` and ``base-step`` (a training step of a run / of the base model), ``artifact-commit``
    (a trained artifact complete, before its rename), ``evaluate`` (a run evaluated, before its folder is written),
    ``commit-rename`` (a run folder complete, before its rename), ``commit-swap`` (re-evaluation: the previous run
    folder moved away, the new one not yet in place), ``commit-db`` (renamed, before its database row).
    """
    spec = os.environ.get("E2GAN_BENCH_FAULT")
    if not spec:
        return
    want, _, n = spec.partition(":")
    if want != name:
        return
    _fault_hits[name] = _fault_hits.get(name, 0) + 1
    if _fault_hits[name] == int(n or 1):
        kill = getattr(signal, "SIGKILL", None)
        if kill is None:  # Windows: the closest to a kill -9
            os._exit(137)
        os.kill(os.getpid(), kill)
