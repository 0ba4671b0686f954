"""The runner: trains what is not trained yet, evaluates what has no up-to-date evaluation, skips the rest
(resume); the runs are computed by an executor (``harness/executors.py``: in this process, worker processes or Ray).
Training and evaluation are separate steps: a run is evaluated from its stored artifact, so
re-scoring under new metric backends (``e2gan-bench evaluate``) never retrains."""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
import time
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from e2gan_bench.cache import write_json
from e2gan_bench.errors import CheckpointError, UserError
from e2gan_bench.faults import fault_point
from e2gan_bench.harness.compute import run_one
from e2gan_bench.harness.executors import Executor, LocalExecutor
from e2gan_bench.harness.spec import RunSpec
from e2gan_bench.harness.store import POLL_SECONDS, ResultsStore
from e2gan_bench.metrics.evaluate import EvaluationPlan, plan_evaluation
from e2gan_bench.metrics.provenance import environment
from e2gan_bench.models.text import CachedPromptEncoder, default_encoder
from e2gan_bench.record import RunRecord
from e2gan_bench.training.base import BaseCheckpoint, load_base, load_or_train_base
from e2gan_bench.training.trainer import TrainingDiverged


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console)


@dataclass
class Counts:
    total: int = 0
    cached: int = 0
    done: int = 0  # trained and evaluated
    reevaluated: int = 0  # evaluated again from a stored artifact
    failed: int = 0
    untrained: int = 0  # evaluation only: no artifact to evaluate
    failures: list[str] = field(default_factory=list)

    def line(self) -> str:
        text = f"{self.done} run(s) computed, {self.cached} already in the store, {self.failed} failed"
        if self.reevaluated:
            text += f", {self.reevaluated} re-evaluated from stored artifacts (not retrained)"
        if self.untrained:
            text += f", {self.untrained} not trained yet (run `e2gan-bench run` first)"
        return text


class _Plans:
    """One evaluation plan per distinct evaluation settings (resolving backends loads extractors)."""

    def __init__(self) -> None:
        self._plans: dict[str, EvaluationPlan] = {}

    def __call__(self, s: RunSpec) -> EvaluationPlan:
        k = s.eval.model_dump_json() + s.device
        if k not in self._plans:
            self._plans[k] = plan_evaluation(s.eval, device=s.device)
        return self._plans[k]


def _current(rec: RunRecord | None, plan: EvaluationPlan) -> bool:
    return rec is not None and rec.status == "ok" and rec.eval_key == plan.key


def _reason(exc: BaseException) -> str:
    """One line saying why a run failed (what its record and the reports show)."""
    text = " ".join(str(exc).split())[:300]
    if isinstance(exc, TrainingDiverged):
        return f"training diverged: {text}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_specs(specs: list[RunSpec], store: ResultsStore, cache_dir: Path, console: Console, *, fail_fast: bool = False,
              train: bool = True, force: bool = False, executor: Executor | None = None) -> Counts:
    """Bring every spec's record up to date. ``train=False`` (``evaluate``): never train, count runs without an
    artifact as untrained. ``force``: evaluate again even when the stored evaluation is current.

    Other processes may work on the same store: each run is leased before it is computed (a run another process
    holds is put back and looked at again later, when it is usually finished), so no run is computed twice. A run
    that fails (a diverged training, a bug) is stored as a ``failed`` record with its reason, and the suite goes
    on; running again retries it.

    ``executor`` (default: :class:`LocalExecutor`, in this process) computes the runs; the base models are trained
    first, here, and the bookkeeping (leases, counts, failed records, progress) stays in this process
    (``harness/executors.py``)."""
    store.clean_staging()
    plans = _Plans()
    counts = Counts(total=len(specs))
    todo = []
    seen: dict[str, RunRecord | None] = {}  # each run's record when this command started
    for s in specs:
        rec = seen[s.key] = store.get(s.key)
        if not force and _current(rec, plans(s)):
            store.link(s.suite, s.key, s.method.name)
            counts.cached += 1
        elif not train and not store.has_artifacts(s.train_key):
            counts.untrained += 1
        else:
            todo.append(s)
    for s in todo:  # stored artifacts that cannot be read: one line now, before anything is (re)computed
        if store.has_artifacts(s.train_key):
            store.check_artifact(s.train_key)
    if not todo:
        return counts
    # early stop: a run's target comes from its reference run, so references go first and a run whose reference
    # is still being computed waits for it (below)
    todo.sort(key=lambda s: s.stop is not None)
    encoder = CachedPromptEncoder(default_encoder(), cache_dir)
    ex = executor or LocalExecutor()
    with _progress(console) as progress:
        overall = progress.add_task("runs", total=len(todo))
        bases, broken = _bases(todo, store, cache_dir, encoder, progress, train, fail_fast)
        ex.use_gpus = any(s.device != "cpu" for s in todo)
        compute = functools.partial(_compute, ctx=_Context(store, encoder, plans, bases)) if ex.in_process else _compute
        queue, waiting = deque(todo), []
        running: dict[Future, tuple[RunSpec, TaskID, bool]] = {}  # submitted runs, under this process's lease
        try:
            with ex:
                if not ex.in_process:
                    progress.console.print(f"executor: {ex.describe()}")
                while queue or waiting or running:
                    if not queue and waiting:  # the rest is being computed by other processes: look again
                        if not running:
                            time.sleep(POLL_SECONDS)
                        queue.extend(waiting)
                        waiting.clear()
                    while queue and len(running) < ex.slots:
                        s = queue.popleft()
                        if _reference_pending(s, store, queue, waiting, running):
                            waiting.append(s)
                            continue
                        if not store.try_lease(f"run:{s.key}"):
                            waiting.append(s)
                            continue
                        submitted = False
                        try:
                            rec = store.get(s.key)
                            if _current(rec, plans(s)) and (not force or rec != seen[s.key]):  # done by another process
                                store.link(s.suite, s.key, s.method.name)
                                counts.cached += 1
                            elif not train and not store.has_artifacts(s.train_key):
                                counts.untrained += 1
                            elif s.base_key in broken and not store.has_artifacts(s.train_key):
                                _count_failure(s, store, cache_dir, plans(s), progress, counts, broken[s.base_key],
                                               None)
                            else:
                                fut, task, trained = _submit(ex, compute, s, store, cache_dir, progress, fail_fast)
                                running[fut] = (s, task, trained)
                                submitted = True
                        finally:
                            if not submitted:
                                store.release(f"run:{s.key}")
                        if not submitted:
                            progress.advance(overall)
                    if running:
                        done, _ = wait(list(running), timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
                        for fut in done:
                            s, task, trained = running.pop(fut)
                            try:
                                _finish(ex, fut, s, task, trained, store, cache_dir, plans(s), progress, counts)
                            finally:
                                store.release(f"run:{s.key}")
                            progress.advance(overall)
        finally:  # an error or Ctrl-C: the executor has stopped its workers; their runs are free again
            for s, _, _ in running.values():
                store.release(f"run:{s.key}")
    return counts


def _reference_pending(s: RunSpec, store: ResultsStore, queue: deque, waiting: list, running: dict) -> bool:
    """An early-stopped run whose reference run's training is not stored yet but is still to come (queued, waiting
    or running here, or leased by another process): it waits. A reference that is nowhere (it failed) does not
    hold the run back: the run fails, saying why (:func:`e2gan_bench.harness.compute.stop_target`)."""
    if s.stop is None or "reference_train_key" not in s.stop or store.has_artifacts(s.stop["reference_train_key"]):
        return False
    ref = s.stop["reference_train_key"]
    here = (*queue, *waiting, *(o for o, _, _ in running.values()))
    return any(o.train_key == ref for o in here) or store.held_elsewhere(f"train:{ref}")


@dataclass(frozen=True)
class _Job:
    """One run for a worker: picklable, small (the base model is read from the store's cache by its key)."""

    spec: RunSpec
    root: str
    cache_dir: str
    fail_fast: bool


@dataclass
class _Outcome:
    record: RunRecord | None
    reason: str | None = None
    trace: str | None = None


@dataclass
class _Context:
    """What a process keeps between its runs: the store, the prompt encoder, evaluation plans, base models."""

    store: ResultsStore
    encoder: CachedPromptEncoder
    plans: _Plans
    bases: dict[str, BaseCheckpoint]


_WORKER_CONTEXTS: dict[tuple[str, str], _Context] = {}


def _worker_context(root: str, cache_dir: str) -> _Context:
    key = (root, cache_dir)
    if key not in _WORKER_CONTEXTS:
        _WORKER_CONTEXTS[key] = _Context(ResultsStore(Path(root)), CachedPromptEncoder(default_encoder(),
                                         Path(cache_dir)), _Plans(), {})
    return _WORKER_CONTEXTS[key]


def _compute(job: _Job, on_step: Callable[[int], None] | None, ctx: _Context | None = None) -> _Outcome:
    """Compute one run (train if needed, evaluate, commit into the store) — in the driver or in a worker. A failure
    becomes an outcome with its reason (the driver records it); bad input, a failing disk and Ctrl-C raise."""
    s = job.spec
    ctx = ctx or _worker_context(job.root, job.cache_dir)
    if s.base_key is not None and s.base_key not in ctx.bases:
        found = load_base(Path(job.cache_dir), s.base_key)  # trained by the driver before any run was submitted
        if found is not None:
            ctx.bases[s.base_key] = found
    try:
        rec = run_one(s, ctx.store, Path(job.cache_dir), ctx.encoder, ctx.bases.get(s.base_key), ctx.plans(s),
                      on_step=on_step or _fault_step)
        return _Outcome(rec)
    except (UserError, KeyboardInterrupt, OSError):  # bad input, Ctrl-C, a failing disk: stop, one line
        raise
    except Exception as exc:  # a diverged training, a bug or a numerical failure in one run: record it, go on
        if job.fail_fast:
            raise
        return _Outcome(None, _reason(exc), traceback.format_exc())


def _fault_step(i: int) -> None:
    fault_point("train-step")


def _submit(ex: Executor, compute: Callable, s: RunSpec, store: ResultsStore, cache_dir: Path, progress: Progress,
            fail_fast: bool) -> tuple[Future, TaskID, bool]:
    """Hand one leased run to the executor, with a progress line (per step in this process, running elsewhere)."""
    trained = store.has_artifacts(s.train_key)
    steps = 1 if trained else max(1, s.method.budget.steps)
    label = ("evaluate " if trained else "") + s.label
    task = progress.add_task(label if ex.in_process else f"{label} ({ex.name})", total=steps if ex.in_process else None)

    def on_step(i: int) -> None:
        fault_point("train-step")
        progress.advance(task)

    job = _Job(dataclasses.replace(s, base=None), str(store.root), str(cache_dir), fail_fast)
    return ex.submit(compute, job, on_step), task, trained


def _finish(ex: Executor, fut: Future, s: RunSpec, task: TaskID, trained: bool, store: ResultsStore, cache_dir: Path,
            plan: EvaluationPlan, progress: Progress, counts: Counts) -> None:
    """Count a finished run and print it; a failure becomes a ``failed`` record (the suite goes on)."""
    progress.update(task, total=1, completed=1, visible=False)
    exc = fut.exception()
    if exc is not None:  # raised in the run (fail-fast, bad input, a failing disk) or a worker lost: stop
        raise ex.unwrap(exc)
    out: _Outcome = fut.result()
    rec = out.record
    if rec is None:
        _count_failure(s, store, cache_dir, plan, progress, counts, out.reason or "failed", out.trace)
        return
    if trained:
        counts.reevaluated += 1
    else:
        counts.done += 1
    stop = (rec.details or {}).get("early_stop") or {}
    progress.console.print(f"  {s.label}: " + "  ".join(
        f"{m} {rec.value(m):{fmt}}" for m, fmt in (("psnr", ".2f"), ("kid", ".4f"), ("train_seconds", ".1f"))
        if rec.value(m) is not None) + (f"  stopped at step {stop['stopped_at']} of {stop['budget']}"
                                        if stop.get("stopped_at") is not None else ""))


def _count_failure(s: RunSpec, store: ResultsStore, cache_dir: Path, plan: EvaluationPlan, progress: Progress,
                   counts: Counts, reason: str, trace: str | None) -> None:
    """Count, print, log and store a failed run: its record (status ``failed``, the reason) and configuration —
    the reports show it, and the next run retries it."""
    counts.failed += 1
    counts.failures.append(s.label)
    progress.console.print(f"[red]run failed[/red] {escape(s.label)}: {escape(reason)}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / "failures.log", "a") as f:
        f.write(f"{s.key} {s.label}\n{trace or reason}\n")
    prev = store.get(s.key)
    if prev is not None and prev.status == "ok":  # a re-evaluation failed: keep the earlier numbers
        return
    rec = RunRecord(key=s.key, train_key=s.train_key, eval_key=plan.key, concept=s.concept.name, method=s.method.name,
                    seed=s.seed, reference=s.method.reference, status="failed", error=reason,
                    provenance={**environment(s.device), "precision": s.method.budget.precision})
    staged = store.staging(s.key)
    try:
        write_json(staged / "config.json", s.config())
        store.commit(rec, staged, s.suite)
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)


def _bases(specs: list[RunSpec], store: ResultsStore, cache_dir: Path, encoder: CachedPromptEncoder,
           progress: Progress, train: bool, fail_fast: bool) -> tuple[dict[str, BaseCheckpoint], dict[str, str]]:
    """The base models the specs need: loaded, or trained first (``train``) — by one process only: the others wait
    for it and load it. Returns them, and the reason for each base model whose training failed (the runs on it
    then fail with that reason; the other runs go on)."""
    bases: dict[str, BaseCheckpoint] = {}
    broken: dict[str, str] = {}
    for s in specs:
        if s.base_key is None or s.base_key in bases or s.base_key in broken:
            continue
        found = load_base(cache_dir, s.base_key)
        if found is None and (not train or s.base is None):
            raise CheckpointError("the base model these runs were trained from is not stored; `e2gan-bench run` "
                                  "the suite to rebuild it", file=str(cache_dir / "base" / s.base_key))
        if found is None:
            with store.lease(f"base:{s.base_key}"):
                found = load_base(cache_dir, s.base_key)  # another process may have trained it meanwhile
                if found is None:
                    plan = s.base
                    t = progress.add_task(f"base model ({len(plan.concepts)} concepts)", total=plan.spec.budget.steps)

                    def on_step(i: int, t: TaskID = t) -> None:
                        fault_point("base-step")
                        progress.advance(t)

                    try:
                        found = load_or_train_base(plan, cache_dir, encoder, on_step=on_step)
                    except (UserError, KeyboardInterrupt, OSError):
                        raise
                    except Exception as exc:  # e.g. a diverged base training: its runs fail, the suite goes on
                        if fail_fast:
                            raise
                        broken[s.base_key] = f"base model: {_reason(exc)}"
                        continue
                    finally:
                        progress.update(t, completed=plan.spec.budget.steps)
        bases[s.base_key] = found
    return bases, broken


def stored_specs(store: ResultsStore) -> tuple[list[RunSpec], list[str]]:
    """The specs of every run in the store, from their stored configuration (to evaluate them without suites),
    and the run folders that cannot be evaluated that way (written by an older version: no configuration)."""
    specs, skipped = [], []
    for _, rec in store.records():
        path = store.run_dir(rec.key) / "config.json"
        try:
            specs.append(RunSpec.from_config(json.loads(path.read_text()), file=str(path)))
        except (OSError, ValueError, UserError):
            skipped.append(str(path.parent))
    return specs, skipped
