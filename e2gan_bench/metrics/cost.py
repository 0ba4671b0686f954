"""Cost measurements that need more than a timer: peak tensor memory of a training step."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Sequence

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class _LiveTensorBytes(TorchDispatchMode):
    """Bytes of the storages created by the ops that run under it and still alive; the peak of that sum.

    Every op's output tensors are registered by storage; a storage is counted once, however many views share it,
    and leaves the count when the last tensor object that was seen holding it dies (autograd's saved tensors
    keep theirs alive until backward frees them)."""

    def __init__(self) -> None:
        super().__init__()
        self.current = 0
        self.peak = 0
        self._holders: dict[int, int] = {}  # storage pointer -> live tensor objects seen holding it
        self._bytes: dict[int, int] = {}
        self._seen: set[int] = set()  # ids of the tensor objects registered

    def _release(self, tid: int, ptr: int) -> None:
        self._seen.discard(tid)
        self._holders[ptr] -= 1
        if self._holders[ptr] == 0:
            del self._holders[ptr]
            self.current -= self._bytes.pop(ptr)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor) or id(t) in self._seen:
                continue
            st = t.untyped_storage()
            ptr, n = st.data_ptr(), st.nbytes()
            if n == 0:
                continue
            self._seen.add(id(t))
            if ptr not in self._holders:
                self._holders[ptr] = 0
                self._bytes[ptr] = n
                self.current += n
                self.peak = max(self.peak, self.current)
            self._holders[ptr] += 1
            weakref.finalize(t, self._release, id(t), ptr)
        return out


def _tensor_bytes(tensors: Iterable[torch.Tensor]) -> int:
    seen: dict[int, int] = {}
    for t in tensors:
        st = t.untyped_storage()
        seen[st.data_ptr()] = st.nbytes()
    return sum(seen.values())


def step_peak_tensor_bytes(step: Callable[[], None], modules: Sequence[torch.nn.Module],
                           optimizers: Sequence[torch.optim.Optimizer]) -> dict[str, int]:
    """Peak tensor memory of one training step: what exists before it (parameters and buffers of ``modules``,
    gradients, ``optimizers``' state) plus the peak of what the step's ops allocate and keep alive (activations
    saved for backward, new gradients, temporaries) — counted by storage, with a dispatch mode that sees every op,
    on CPU or GPU. Unlike the process's RSS it does not depend on what ran before in the process, so it ranks
    methods: LoRA saves gradients and optimizer state, not activations."""
    params = [t for m in modules for t in (*m.parameters(), *m.buffers())]
    grads = [p.grad for m in modules for p in m.parameters() if p.grad is not None]
    state = [v for o in optimizers for st in o.state.values() for v in st.values() if isinstance(v, torch.Tensor)]
    before = {"parameters": _tensor_bytes(params), "gradients": _tensor_bytes(grads),
              "optimizer_state": _tensor_bytes(state)}
    mode = _LiveTensorBytes()
    with mode:
        step()
    return {**before, "step_peak": mode.peak, "total": sum(before.values()) + mode.peak}


#: The backend label of ``peak_memory_bytes`` measured on a GPU (:func:`step_peak_cuda_bytes`): the CUDA caching
#: allocator's peak, which also counts what else lives on the GPU (the training data) — not comparable with the
#: CPU's tensor count, so the label differs.
CUDA_PEAK_LABEL = "torch.cuda.max_memory_allocated (peak allocated during the second step)"


def step_peak_cuda_bytes(step: Callable[[], None], modules: Sequence[torch.nn.Module],
                         optimizers: Sequence[torch.optim.Optimizer]) -> dict[str, int]:
    """Peak GPU memory of one training step: ``torch.cuda.max_memory_allocated`` over the step, its statistics
    reset just before it, with the bytes of parameters, gradients and optimizer state that existed before it."""
    params = [t for m in modules for t in (*m.parameters(), *m.buffers())]
    grads = [p.grad for m in modules for p in m.parameters() if p.grad is not None]
    state = [v for o in optimizers for st in o.state.values() for v in st.values() if isinstance(v, torch.Tensor)]
    device = params[0].device if params else torch.device("cuda")
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    start = torch.cuda.memory_allocated(device)
    step()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    return {"parameters": _tensor_bytes(params), "gradients": _tensor_bytes(grads),
            "optimizer_state": _tensor_bytes(state), "allocated_before": start, "step_peak": peak - start,
            "total": peak}
