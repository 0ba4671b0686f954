"""Cost measurements that need more than a timer: peak memory during training."""

from __future__ import annotations

import threading
from types import TracebackType

import psutil


class PeakRSS:
    """Peak resident memory of this process while the block runs, above its level at entry.

    Sampled by a background thread (every ``interval`` s) — CPU tensors are invisible to tracemalloc,
    and ``ru_maxrss`` only ever grows over a process's life. On CUDA, use torch.cuda.max_memory_allocated.
    """

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.baseline = 0
        self.peak = 0
        self._stop = threading.Event()
        self._proc = psutil.Process()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> PeakRSS:
        self.baseline = self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def delta_bytes(self) -> int:
        return max(0, self.peak - self.baseline)
