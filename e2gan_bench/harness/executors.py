"""Executors: where the runs of a suite are computed. One interface, three implementations:

* ``local`` (the default): in the driver process, one run after the other — the driver's torch threads, a progress
  bar per training step;
* ``process`` (``--jobs N``): N worker processes on this machine (:class:`concurrent.futures.ProcessPoolExecutor`,
  spawn context), each with ``max(1, cores // N)`` torch threads and, where several GPUs are visible, a GPU of its
  own (``CUDA_VISIBLE_DEVICES``);
* ``ray`` (``--executor ray [--ray-address ADDR]``, extra ``e2gan-bench[ray]``): each run a Ray task with its CPU
  and GPU resources (``num_cpus`` = its torch threads, ``num_gpus``); without an address a local Ray instance is
  started for the command and stopped after it.

"cores" is the driver's torch thread count (``torch.get_num_threads()``: what the local executor would use; it
follows ``OMP_NUM_THREADS`` and ``torch.set_num_threads``), so N workers share what one local run would have had.

The harness (``runner.run_specs``) decides *what* to compute and keeps the bookkeeping in the driver: it trains the
base models first, leases each run in the store, hands the run to :meth:`Executor.submit` and, when its future is
done, counts it, prints it and records a failure. Workers compute a run end to end — train into the store's
``artifacts/``, evaluate, commit the run folder and its database row — in the **same store folder**: the store is
made for several processes (leases for trainings, atomic renames, the database row as commit point), so a worker
killed half-way leaves only what any killed process leaves, and the next ``run`` resumes. On a Ray cluster of
several machines the output folder must therefore be one shared folder, at the same path on every node, on a
filesystem whose locks SQLite can use.

Executors are a plugin kind (``EXECUTORS``, entry-point group ``e2gan_bench.executor``): an :class:`Executor` subclass
whose ``Params`` are the command-line options it reads (``--jobs``, ``--ray-address``: field ``ray_address``),
constructed with the validated ``Params`` instance by :func:`make_executor`.

A submitted function must be a module-level function (pickled by reference) taking ``(job, on_step)``; remote
executors pass ``on_step=None``. Its result comes back through a :class:`concurrent.futures.Future` (Ray's
``ObjectRef.future()``), so the driver waits on all executors alike with :func:`concurrent.futures.wait`.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_mod
import sys
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from pydantic import BaseModel, field_validator

from e2gan_bench.errors import ConfigError, UserError
from e2gan_bench.plugins import Params, params_model
from e2gan_bench.registry import Registry
from e2gan_bench.yamlio import validate

#: The most worker processes or concurrent Ray tasks one command may ask for.
MAX_JOBS = 256


def driver_cores() -> int:
    """The torch threads one local run would use: what N workers share."""
    import torch

    return max(1, torch.get_num_threads())


def threads_per_job(cores: int, jobs: int) -> int:
    return max(1, cores // jobs)


def visible_gpus() -> list[str]:
    """The GPUs this process sees, as ``CUDA_VISIBLE_DEVICES`` names them (indices when it is unset)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


class ExecutorParams(Params):
    """The options every executor reads: ``--jobs``, how many runs at once (unset: the executor's default)."""

    jobs: int | None = None

    @field_validator("jobs")
    @classmethod
    def _jobs_bounded(cls, v: int | None) -> int | None:
        if v is not None and not 1 <= v <= MAX_JOBS:
            raise ValueError(f"must be from 1 to {MAX_JOBS}")
        return v


class LocalParams(ExecutorParams):
    @field_validator("jobs")
    @classmethod
    def _one_at_a_time(cls, v: int | None) -> int | None:
        if v not in (None, 1):
            raise ValueError("the local executor runs one run at a time (use --executor process or ray)")
        return v


class RayParams(ExecutorParams):
    """``--ray-address``: an existing Ray cluster (unset: a local instance for the command)."""

    ray_address: str | None = None

    @field_validator("ray_address")
    @classmethod
    def _not_empty(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("empty address")
        return v


class WorkerLost(UserError):
    """A worker process or Ray task stopped without an answer (killed, out of memory): the command stops; what
    finished is stored and running the command again resumes."""


class Executor:
    """Computes submitted runs. ``slots``: how many may be in flight at once (the driver submits no more).

    Used as a context manager around the submissions: entering starts the workers, leaving stops them — on an error,
    pending runs are cancelled and running ones finish or are stopped before the driver releases their leases."""

    name = "local"
    slots = 1
    #: Runs are computed in the driver process (they may use its objects; ``on_step`` is called).
    in_process = False
    #: Some run uses a GPU (set by the driver before entering): workers then get GPUs, CPU-only runs never wait
    #: for one.
    use_gpus = False

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def describe(self) -> str:
        return "local (in this process)"

    def submit(self, fn: Callable[[Any, Callable[[int], None] | None], Any], job: Any,
               on_step: Callable[[int], None] | None = None) -> Future:
        raise NotImplementedError

    def unwrap(self, exc: BaseException) -> BaseException:
        """The exception a run raised, as the worker raised it."""
        return exc


class LocalExecutor(Executor):
    """Today's behaviour: each run computed in the driver when it is submitted (``on_step`` drives the progress
    bar). Ctrl-C and other non-``Exception`` errors propagate at once."""

    Params = LocalParams
    in_process = True

    def __init__(self, params: LocalParams | None = None) -> None:
        self.params = params or self.Params()

    def submit(self, fn, job, on_step=None) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(job, on_step))
        except Exception as exc:  # the driver reads it from the future, like a remote executor's
            fut.set_exception(exc)
        return fut


def _quiet() -> None:
    """Libraries' warnings are not printed (stderr is for the driver's one-line messages), as in the CLI, unless
    asked for with ``python -W`` / ``PYTHONWARNINGS``."""
    if not sys.warnoptions:
        warnings.simplefilter("ignore")


def _init_worker(threads: int, gpus: Any) -> None:
    """Worker start (spawned, nothing of torch initialised yet): its GPU, then its torch threads."""
    _quiet()
    if gpus is not None:
        try:
            os.environ["CUDA_VISIBLE_DEVICES"] = gpus.get_nowait()
        except queue_mod.Empty:
            pass
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


class ProcessExecutor(Executor):
    """``jobs`` spawned worker processes on this machine, ``threads`` torch threads each, one GPU each where
    several are visible (round robin when there are more workers than GPUs)."""

    name = "process"
    Params = ExecutorParams

    def __init__(self, params: ExecutorParams | None = None, *, cores: int | None = None) -> None:
        self.params = params or self.Params()
        jobs = self.params.jobs or driver_cores()
        self.jobs = self.slots = jobs
        self.threads = threads_per_job(cores or driver_cores(), jobs)
        self.gpus = visible_gpus()
        self._pool: ProcessPoolExecutor | None = None

    def describe(self) -> str:
        gpu = f", one of {len(self.gpus)} GPUs each" if self.use_gpus and len(self.gpus) > 1 else ""
        return f"process: {self.jobs} worker processes × {self.threads} torch thread(s){gpu}"

    def __enter__(self) -> ProcessExecutor:
        ctx = multiprocessing.get_context("spawn")
        gpus = None
        if self.use_gpus and len(self.gpus) > 1:
            gpus = ctx.Queue()
            for i in range(self.jobs):
                gpus.put(self.gpus[i % len(self.gpus)])
        self._pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=ctx, initializer=_init_worker,
                                         initargs=(self.threads, gpus))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)  # running runs finish (and commit) first
            self._pool = None

    def submit(self, fn, job, on_step=None) -> Future:
        assert self._pool is not None, "submit inside `with executor:`"
        return self._pool.submit(fn, job, None)

    def unwrap(self, exc: BaseException) -> BaseException:
        if isinstance(exc, BrokenProcessPool):
            return WorkerLost("a worker process stopped without an answer (killed, or out of memory); finished "
                              "runs are stored — run the same command again to resume", field="--executor",
                              value="process")
        return exc


def _ray_call(fn: Callable, job: Any, threads: int) -> Any:
    """A Ray task: the run with its torch threads (Ray sets the task's GPU in ``CUDA_VISIBLE_DEVICES``)."""
    import torch

    _quiet()
    torch.set_num_threads(threads)
    return fn(job, None)


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError("needs Ray: pip install 'e2gan-bench[ray]'", field="--executor", value="ray") from None
    return ray


class RayExecutor(Executor):
    """Each run a Ray task (``num_cpus`` = its torch threads, ``num_gpus``: a GPU each, or an equal share when
    there are more concurrent runs than GPUs). ``address``: an existing cluster; without it a local instance is
    started for the command (``ray.init(num_cpus=jobs × threads, include_dashboard=False)``) and stopped after it.
    ``jobs``: concurrent runs (default: the driver's cores on a local instance, the cluster's CPUs otherwise)."""

    name = "ray"
    Params = RayParams

    def __init__(self, params: RayParams | None = None, *, cores: int | None = None) -> None:
        self.params = params or self.Params()
        self.ray = require_ray()
        self.address = self.params.ray_address
        self.jobs = self.params.jobs
        self.cores = cores
        self.threads = 1
        self.gpus_per_run = 0.0
        self.slots = self.jobs or 1
        self._started = False
        self._remote: Any = None
        self._refs: set[Any] = set()

    def describe(self) -> str:
        where = f"cluster {self.address}" if self.address else "a local instance"
        gpu = f", {self.gpus_per_run:g} GPU" if self.gpus_per_run else ""
        return f"ray on {where}: {self.slots} concurrent task(s) × {self.threads} CPU / torch thread(s){gpu}"

    def __enter__(self) -> RayExecutor:
        import logging

        ray = self.ray
        if self.address:
            try:
                ray.init(address=self.address, logging_level=logging.ERROR, log_to_driver=False)
            except Exception as exc:  # unreachable address, version mismatch
                first = " ".join(str(exc).split())[:160]
                raise UserError(f"cannot connect to the Ray cluster ({type(exc).__name__}: {first})",
                                field="--ray-address", value=self.address) from None
            self._started = True
            nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
            cpus = int(sum(r.get("CPU", 0) for r in nodes)) or 1
            per_node = int(min((r.get("CPU", 0) for r in nodes), default=1)) or 1
            self.slots = self.jobs or cpus
            self.threads = max(1, min(threads_per_job(cpus, self.slots), per_node))
            gpus = sum(r.get("GPU", 0) for r in nodes)
        else:
            cores = self.cores or driver_cores()
            self.slots = self.jobs or cores
            self.threads = threads_per_job(cores, self.slots)
            gpus = len(visible_gpus())
            ray.init(num_cpus=self.slots * self.threads, num_gpus=gpus, include_dashboard=False,
                     logging_level=logging.ERROR, log_to_driver=False)
            self._started = True
        self.gpus_per_run = min(1.0, gpus / self.slots) if gpus and self.use_gpus else 0.0
        self._remote = ray.remote(_ray_call).options(num_cpus=self.threads, num_gpus=self.gpus_per_run,
                                                      max_retries=0)
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._started:
            return
        for ref in list(self._refs):  # on an error: stop what still runs before the driver releases the leases
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - finished meanwhile
                pass
        self._refs.clear()
        self.ray.shutdown()
        self._started = False

    def submit(self, fn, job, on_step=None) -> Future:
        ref = self._remote.remote(fn, job, self.threads)
        self._refs.add(ref)
        fut = ref.future()
        fut.add_done_callback(lambda _f, ref=ref: self._refs.discard(ref))
        return fut

    def unwrap(self, exc: BaseException) -> BaseException:
        ray_exc = self.ray.exceptions
        if isinstance(exc, ray_exc.RayTaskError) and getattr(exc, "cause", None) is not None:
            return exc.cause
        if isinstance(exc, ray_exc.RayError):  # a worker or node died, a task was cancelled
            first = " ".join(str(exc).split())[:160]
            return WorkerLost(f"a Ray task stopped without an answer ({type(exc).__name__}: {first}); finished "
                              "runs are stored — run the same command again to resume", field="--executor",
                              value="ray")
        return exc


#: Executors by ``--executor`` name: classes constructed with their validated ``Params`` (:func:`make_executor`).
EXECUTORS: Registry[type[Executor]] = Registry("executor")
EXECUTORS.add("local", LocalExecutor)
EXECUTORS.add("process", ProcessExecutor)
EXECUTORS.add("ray", RayExecutor)


def _option(field: str) -> str:
    """The command-line option of a ``Params`` field (``ray_address`` -> ``--ray-address``)."""
    return "--" + field.replace("_", "-")


def _validated(model: type[BaseModel], options: dict[str, Any]) -> Any:
    """``options`` validated as ``model``; an error names the option (``--jobs``), as the CLI spells it."""
    try:
        return validate(model, options, file=None)
    except ConfigError as exc:
        field = _option(exc.field) if exc.field else None
        raise UserError(exc.message, field=field, value=exc.value, allowed=exc.allowed) from None


def executor_params(kind: str, options: dict[str, Any]) -> tuple[type[Executor], Any]:
    """The executor class ``kind`` and its ``Params`` validated from the options given (``None``: not given).

    The options every executor reads are checked first (``--jobs`` out of bounds), then an option this executor does
    not read is refused, naming the executors that do ("only with --executor ray"), then its own ``Params``."""
    names = EXECUTORS.names()
    if kind not in names:
        raise UserError("unknown executor", field="--executor", value=kind, allowed=", ".join(names))
    cls = EXECUTORS.get(kind)
    given = {k: v for k, v in options.items() if v is not None}
    _validated(ExecutorParams, {k: v for k, v in given.items() if k in ExecutorParams.model_fields})
    fields = params_model(cls).model_fields
    for k, v in given.items():
        if k not in fields:
            takers = [n for n in names if k in params_model(EXECUTORS.get(n)).model_fields]
            raise UserError(f"only with {' or '.join(f'--executor {n}' for n in takers)}", field=_option(k), value=v)
    return cls, _validated(params_model(cls), given)


def make_executor(kind: str | None, jobs: int | None, ray_address: str | None) -> Executor:
    """The executor the ``run`` options ask for (UserError naming the option for a bad combination). ``kind=None``:
    ``local``, or ``process`` when ``jobs`` > 1."""
    if kind is None:
        kind = "process" if jobs and jobs > 1 else "local"
    cls, params = executor_params(kind, {"jobs": jobs, "ray_address": ray_address})
    return cls(params)
