"""One run, computed: its training if the artifact is not stored yet (with the early-stop target when the suite
asks for one), then its evaluation from the stored artifact, committed into the store with its configuration and
sample grid. The runner (:mod:`.runner`) decides which runs need this and where they are computed."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from e2gan_bench.cache import atomic_write_bytes, atomic_write_text, write_json
from e2gan_bench.data.dataset import build_dataset
from e2gan_bench.faults import fault_point
from e2gan_bench.harness.spec import RunSpec
from e2gan_bench.harness.store import TRAINING, ResultsStore
from e2gan_bench.methods.artifacts import load_generator, training_summary
from e2gan_bench.methods.run import run_method
from e2gan_bench.metrics.evaluate import EvaluationPlan, evaluate, sample_grid
from e2gan_bench.metrics.provenance import environment
from e2gan_bench.models.text import CachedPromptEncoder
from e2gan_bench.record import RunRecord
from e2gan_bench.training.base import BaseCheckpoint
from e2gan_bench.training.targets import final_value, reference_target


class ReferenceMissing(RuntimeError):
    """An early-stopped run whose reference run has no stored training (it failed): the run fails with this reason."""


def stop_target(s: RunSpec, store: ResultsStore) -> tuple[str, float] | None:
    """The early-stop target of a run (``target.early_stop``): its concept's fixed target, or (relative) its
    reference run's final validation quality minus the tolerance, on the metric's worse side; None without early
    stop."""
    if s.stop is None:
        return None
    if "target" in s.stop:
        return s.stop["metric"], float(s.stop["target"])
    metric, ref_key = s.stop["metric"], s.stop["reference_train_key"]
    final = None
    if store.has_artifacts(ref_key):
        final = final_value((store.training(ref_key).get("val_curve") or {}).get("points") or [], metric)
    if final is None:
        raise ReferenceMissing(f"early stop: the reference run ({s.stop['reference']}, same concept and seed) has no "
                               f"stored training with a validation curve, so the target is unknown (did it fail?)")
    return metric, reference_target(final, float(s.stop["tolerance"]), metric)


def run_one(s: RunSpec, store: ResultsStore, cache_dir: Path, encoder: CachedPromptEncoder,
            base: BaseCheckpoint | None, plan: EvaluationPlan, on_step: Callable[[int], None] | None = None) -> RunRecord:
    """Train the run if its artifact is not stored yet, then evaluate it from the artifact and store the record."""
    ds = build_dataset(s.concept, s.data, cache_dir, file=s.concept_file)
    emb = encoder.encode(s.concept.prompt)
    if not store.has_artifacts(s.train_key):
        with store.lease(f"train:{s.train_key}"):  # another suite's run may share this training
            if not store.has_artifacts(s.train_key):
                stop_at = stop_target(s, store)
                with store.new_artifacts(s.train_key) as staged:
                    outcome = run_method(s.method, ds, emb, s.seed, s.model_kwargs, s.ndf, staged,
                                         base_state=base.state if base is not None else None, on_step=on_step,
                                         curve=s.curve, device=s.device, stop_at=stop_at)
                    summary = training_summary(outcome)
                    write_json(staged / TRAINING, summary)
                    write_json(staged / "config.json", s.config())
                    if summary["curve"]:
                        atomic_write_text(staged / "curve.csv", _csv(summary["curve"]))
                    if summary["val_curve"]:
                        atomic_write_text(staged / "val_curve.csv", _csv(summary["val_curve"]["points"]))
    summary = store.training(s.train_key)
    G = load_generator(s.method, s.model_kwargs, s.seed, store.artifact_dir(s.train_key), summary,
                       base.state if base is not None else None).to(s.device)
    ev = evaluate(plan, G, ds, emb, arch=s.method.arch, model_kwargs=s.model_kwargs, training=summary,
                  cache_dir=cache_dir)
    fault_point("evaluate")
    rec = RunRecord(
        key=s.key, train_key=s.train_key, eval_key=plan.key, concept=s.concept.name, method=s.method.name,
        seed=s.seed, reference=s.method.reference, **ev.values,
        search_seconds=summary.get("search_seconds"), search_flops=float(summary.get("search_flops") or 0),
        total_params=summary.get("total_params"), n_train_used=summary.get("n_train_used"), n_test=len(ev.outputs),
        eval_seconds=ev.seconds, val_curve=summary.get("val_curve"), per_image=ev.per_image,
        backends={**ev.backends, "text_encoder": f"{encoder.info.name}@{encoder.info.weights}"},
        provenance={**environment(s.device), "precision": s.method.budget.precision,
                    "trained_on": summary.get("device", "cpu"), "data": ds.provenance, "base": s.base_key,
                    "text_encoder": encoder.info.__dict__},
        details={**summary.get("details", {}), **ev.details, "artifacts": summary.get("artifacts", [])},
    )
    staged = store.staging(s.key)
    try:
        write_json(staged / "config.json", s.config())
        if s.eval.samples_in_grid:
            grid = sample_grid(ds.src_test, ds.tgt_test, ev.outputs, s.eval.samples_in_grid)
            png = io.BytesIO()
            Image.fromarray(grid).save(png, format="PNG")
            atomic_write_bytes(staged / "samples.png", png.getvalue())
        store.commit(rec, staged, s.suite)
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)
    return rec


def _csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    keys = sorted({k for row in rows for k in row}, key=lambda k: (k != "step", k))
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()
