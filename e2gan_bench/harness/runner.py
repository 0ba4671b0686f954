"""The local executor: runs a suite's grid with progress, skipping finished runs (resume)."""

from __future__ import annotations

import csv
import io
import shutil
import traceback
from pathlib import Path
from typing import Any

from PIL import Image
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from e2gan_bench.data.dataset import build_dataset
from e2gan_bench.errors import UserError
from e2gan_bench.harness.spec import RunSpec
from e2gan_bench.harness.store import ResultsStore
from e2gan_bench.metrics.evaluate import evaluate, latency_for, sample_grid
from e2gan_bench.metrics.provenance import environment
from e2gan_bench.models.text import CachedPromptEncoder, default_encoder
from e2gan_bench.record import RunRecord
from e2gan_bench.training.base import load_or_train_base
from e2gan_bench.training.methods import run_method
from e2gan_bench.util import write_json


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console)


def run_specs(specs: list[RunSpec], store: ResultsStore, cache_dir: Path, console: Console,
              fail_fast: bool = False) -> dict[str, Any]:
    """Run every spec whose key is not in the store. Returns counts."""
    store.clean_staging()
    todo = []
    for s in specs:
        if store.has(s.key):
            store.link(s.suite, s.key, s.method)
        else:
            todo.append(s)
    counts = {"total": len(specs), "cached": len(specs) - len(todo), "done": 0, "failed": 0}
    if not todo:
        return counts
    encoder = CachedPromptEncoder(default_encoder(), cache_dir)
    with _progress(console) as progress:
        overall = progress.add_task("runs", total=len(todo))
        bases: dict[str, Any] = {}
        for s in todo:
            if s.base is not None and s.base.key not in bases:
                t = progress.add_task(f"base model ({len(s.base.concepts)} concepts)", total=s.base.spec.budget.steps)
                bases[s.base.key] = load_or_train_base(s.base, cache_dir, encoder,
                                                      on_step=lambda i, t=t: progress.advance(t))
                progress.update(t, completed=s.base.spec.budget.steps)
        for s in todo:
            task = progress.add_task(s.label, total=max(1, s.recipe.budget.steps))
            try:
                rec = run_one(s, store, cache_dir, encoder, bases.get(s.base.key) if s.base else None,
                              on_step=lambda i, task=task: progress.advance(task))
                counts["done"] += 1
            except (UserError, KeyboardInterrupt):
                raise
            except Exception as exc:  # a bug or numerical failure in one run: record it, go on
                if fail_fast:
                    raise
                counts["failed"] += 1
                console.print(f"[red]run failed[/red] {s.label}: {type(exc).__name__}: {exc}")
                rec = None
                (cache_dir / "failures.log").parent.mkdir(parents=True, exist_ok=True)
                with open(cache_dir / "failures.log", "a") as f:
                    f.write(f"{s.key} {s.label}\n{traceback.format_exc()}\n")
            progress.update(task, completed=max(1, s.recipe.budget.steps), visible=False)
            if rec is not None:
                progress.console.print(
                    f"  {s.label}: psnr {rec.psnr:.2f}  kid {rec.kid:.4f}  train {rec.train_seconds:.1f}s  "
                    f"stored {rec.stored_bytes:,} B")
            progress.advance(overall)
    return counts


def run_one(s: RunSpec, store: ResultsStore, cache_dir: Path, encoder: CachedPromptEncoder, base: Any,
            on_step: Any = None) -> RunRecord:
    ds = build_dataset(s.concept, s.data, cache_dir, file=s.concept_file)
    emb = encoder.encode(s.concept.prompt)
    staged = store.staging(s.key)
    try:
        outcome = run_method(s.recipe, ds, emb, s.seed, s.model_kwargs, s.ndf, staged,
                             base_state=base.state if base is not None else None, on_step=on_step)
        metrics, backends, out = evaluate(outcome.G, ds, emb, s.eval, cache_dir)
        if s.eval.latency and s.recipe.arch != "identity":
            lat, backends["latency_ms"], outcome.details["latency"] = latency_for(
                outcome.G, s.recipe.arch, s.model_kwargs, s.data.resolution, s.eval, cache_dir)
            metrics["latency_ms"] = lat
        res = outcome.train
        rec = RunRecord(
            key=s.key, concept=s.concept.name, method=s.method, seed=s.seed, reference=s.recipe.reference,
            **{k: v for k, v in metrics.items()},
            train_seconds=res.seconds + outcome.search_seconds,
            train_flops=float(res.flops + outcome.search_flops),
            search_seconds=outcome.search_seconds,
            search_flops=float(outcome.search_flops),
            trainable_params=res.trainable_params,
            peak_memory_bytes=res.peak_memory_bytes,
            total_params=outcome.details.get("total_params"),
            stored_bytes=outcome.stored_bytes,
            n_train_used=outcome.n_train_used,
            backends={**backends, "text_encoder": f"{encoder.info.name}@{encoder.info.weights}"},
            provenance={**environment(), "data": ds.provenance, "base": base.key if base is not None else None,
                        "text_encoder": encoder.info.__dict__},
            details={**outcome.details, "artifacts": outcome.artifacts},
        )
        write_json(staged / "config.json", {
            "concept": s.concept.model_dump(), "method": s.method, "recipe": s.recipe.model_dump(), "seed": s.seed,
            "data": s.data.__dict__, "model": s.model_kwargs, "eval": s.eval.model_dump(),
            "base": s.base.key if s.base else None})
        if s.eval.samples_in_grid:
            grid = sample_grid(ds.src_test, ds.tgt_test, out, s.eval.samples_in_grid)
            Image.fromarray(grid).save(staged / "samples.png")
        if res.curve:
            buf = io.StringIO()
            keys = sorted({k for row in res.curve for k in row}, key=lambda k: (k != "step", k))
            w = csv.DictWriter(buf, fieldnames=keys)
            w.writeheader()
            w.writerows(res.curve)
            (staged / "curve.csv").write_text(buf.getvalue())
        store.commit(rec, staged, s.suite)
        return rec
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)

