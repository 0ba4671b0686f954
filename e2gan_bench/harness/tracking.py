"""``run --mlflow``: every run of a suite — computed now or found in the store — as one MLflow run.

One MLflow experiment per suite (``e2gan-bench/<suite>``) and one MLflow run per run key, found again by its tag
``e2gan_bench.run_key``: logging a suite twice adds nothing. A run whose record changed since it was logged (it was
re-evaluated under new metric backends, or a failed run succeeded on a retry) replaces its MLflow run (the old one
is deleted, MLflow's soft delete). A run is marked complete (tag ``e2gan_bench.complete``) only after everything
was logged, so an interrupted log is redone, never left half-written as if it were whole.

Logged: parameters (concept, method, seed, run key, suite, and the run's stored configuration flattened to dotted
names), every numeric value of the record as a metric, the validation curve as step-wise metrics ``val_psnr``,
``val_ssim``, ``val_lpips`` (and the curve's training seconds and FLOPs), the sample grid, configuration and
record as artifacts, and provenance tags (commit, each metric's backend, python, machine).

MLflow is optional (``pip install 'e2gan-bench[mlflow]'``, which installs ``mlflow-skinny``); it is imported in
the functions that use it."""

from __future__ import annotations

import json
import math
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from e2gan_bench.errors import UserError
from e2gan_bench.harness.spec import RunSpec
from e2gan_bench.harness.store import ResultsStore
from e2gan_bench.record import RunRecord

EXTRA = "pip install 'e2gan-bench[mlflow]'"
TAG = "e2gan_bench."
#: record fields that are numbers measured for the run (the metric values themselves are the record's extra fields)
NUMERIC_FIELDS = ("search_seconds", "search_flops", "total_params", "n_train_used", "n_test", "eval_seconds")
_KEY = re.compile(r"[^A-Za-z0-9_.\-]")
_PARAM_LEN, _TAG_LEN, _BATCH = 6000, 8000, 100


def default_uri(out: Path) -> str:
    """MLflow's file store in the results folder."""
    return (out / "mlruns").resolve().as_uri()


def _resolve_uri(uri: str) -> str:
    """A tracking URI; a plain path (no scheme) is a local file store."""
    return Path(uri).resolve().as_uri() if urlparse(uri).scheme == "" else uri


def _flat(d: Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts to dotted keys; lists and other leaves as JSON text."""
    if isinstance(d, dict):
        out: dict[str, str] = {}
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    text = d if isinstance(d, str) else json.dumps(d, sort_keys=True, default=str)
    return {_KEY.sub("_", prefix): text}


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def _finite(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def record_metrics(rec: RunRecord) -> dict[str, float]:
    """Every finite number of the record: the metric values (and secondary values) and the measured fields."""
    names = [*(rec.model_extra or {}), *NUMERIC_FIELDS]
    return {_KEY.sub("_", n): v for n in names if (v := rec.value(n)) is not None}


def val_curve_metrics(rec: RunRecord) -> list[tuple[str, float, int]]:
    """(name, value, step) of each validation-curve point: ``val_psnr`` … at the step it was measured."""
    out = []
    for p in (rec.val_curve or {}).get("points", []):
        step = p.get("step")
        if step is None:
            continue
        for k, v in sorted(p.items()):
            if k != "step" and (x := _finite(v)) is not None:
                out.append((f"val_{_KEY.sub('_', k)}", x, int(step)))
    return out


class Tracker:
    """An MLflow tracking store, checked when opened (a bad URI or a missing extra fails before anything runs)."""

    def __init__(self, uri: str) -> None:
        # a run sends nothing anywhere but the tracking store: MLflow's usage telemetry stays off unless asked for
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        try:  # optional dependency: the `mlflow` extra
            from mlflow.exceptions import MlflowException
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise UserError(f"MLflow tracking needs the optional extra: {EXTRA}", field="--mlflow") from None
        self.uri = _resolve_uri(uri)
        self._error = MlflowException
        if self.uri.startswith("file:"):
            # MLflow 3 keeps its file store in maintenance mode behind this switch; it needs no database packages
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self._experiments: dict[str, str] = {}
        try:
            self.client = MlflowClient(tracking_uri=self.uri)
            self.client.search_experiments(max_results=1)  # reach the store now
        except Exception as exc:  # noqa: BLE001 - any failure to open the store: one line
            raise self._user_error(exc) from None

    def _user_error(self, exc: BaseException) -> UserError:
        first = " ".join(str(exc).split())[:200]
        return UserError(f"MLflow tracking store not usable ({type(exc).__name__}: {first})", field="--mlflow-uri",
                         value=self.uri)

    def experiment(self, suite: str) -> str:
        name = f"e2gan-bench/{suite}"
        if name not in self._experiments:
            exp = self.client.get_experiment_by_name(name)
            self._experiments[name] = exp.experiment_id if exp is not None else self.client.create_experiment(name)
        return self._experiments[name]

    def log_runs(self, specs: list[RunSpec], store: ResultsStore) -> dict[str, int]:
        """Log every spec that has a record in ``store``; returns counts by outcome."""
        counts = {"logged": 0, "replaced": 0, "unchanged": 0, "not in store": 0}
        try:
            for s in specs:
                rec = store.get(s.key)
                if rec is None:
                    counts["not in store"] += 1
                    continue
                counts[self.log(s, rec, store.run_dir(s.key))] += 1
        except self._error as exc:
            raise self._user_error(exc) from None
        return counts

    def find(self, experiment_id: str, key: str) -> list[Any]:
        return self.client.search_runs([experiment_id], filter_string=f"tags.`{TAG}run_key` = '{key}'")

    def log(self, s: RunSpec, rec: RunRecord, run_dir: Path) -> str:
        """Log one run unless it is logged already with this record; ``logged``, ``replaced`` or ``unchanged``."""
        from mlflow.entities import Metric, Param, RunTag  # optional dependency (checked in __init__)

        eid = self.experiment(s.suite)
        stamp = f"{rec.eval_key}@{rec.created}"
        old = self.find(eid, s.key)
        if any(r.data.tags.get(f"{TAG}record") == stamp and r.data.tags.get(f"{TAG}complete") == "1" for r in old):
            return "unchanged"
        for r in old:
            self.client.delete_run(r.info.run_id)
        t = _ms(rec.created)
        tags = {f"{TAG}run_key": s.key, f"{TAG}train_key": s.train_key, f"{TAG}eval_key": rec.eval_key or "",
                f"{TAG}record": stamp, f"{TAG}suite": s.suite, f"{TAG}status": rec.status,
                f"{TAG}commit": str(rec.provenance.get("git")), f"{TAG}python": str(rec.provenance.get("python")),
                f"{TAG}machine": str(rec.provenance.get("machine"))}
        if rec.error:
            tags[f"{TAG}error"] = rec.error
        tags.update({f"{TAG}backend.{_KEY.sub('_', k)}": v for k, v in rec.backends.items()})
        run = self.client.create_run(eid, start_time=t, run_name=f"{s.concept.name}/{s.method.name}/seed{s.seed}",
                                     tags={k: str(v)[:_TAG_LEN] for k, v in tags.items()})
        rid = run.info.run_id
        cfg_file = run_dir / "config.json"
        config = json.loads(cfg_file.read_text()) if cfg_file.is_file() else s.config()
        params = {"concept": s.concept.name, "method": s.method.name, "seed": str(s.seed), "run_key": s.key,
                  "suite": s.suite, **_flat(config, "config")}
        plist = [Param(k, v[:_PARAM_LEN]) for k, v in params.items()]
        metrics = [Metric(k, v, t, 0) for k, v in record_metrics(rec).items()]
        metrics += [Metric(k, v, t, step) for k, v, step in val_curve_metrics(rec)]
        for i in range(0, max(len(plist), len(metrics)), _BATCH):
            self.client.log_batch(rid, metrics=metrics[i : i + _BATCH], params=plist[i : i + _BATCH])
        for name in ("samples.png", "config.json", "record.json"):
            if (run_dir / name).is_file():
                self.client.log_artifact(rid, str(run_dir / name))
        self.client.log_batch(rid, tags=[RunTag(f"{TAG}complete", "1")])
        self.client.set_terminated(rid, status="FINISHED" if rec.status == "ok" else "FAILED")
        return "replaced" if old else "logged"
