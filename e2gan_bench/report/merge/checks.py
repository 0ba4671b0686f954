"""The checks of a merge (:mod:`.suite`): that runs from several stores follow one protocol and one backend per
metric, and how two copies of the same run compare. Each refusal is one line naming the store (or the run's
``config.json``), the field and the two values."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2gan_bench.config import METHOD_LABELS
from e2gan_bench.errors import UserError
from e2gan_bench.metrics import all_metrics, format_number
from e2gan_bench.record import RunRecord
from e2gan_bench.report.compare.gates import default_gates

#: config.json fields that name a run rather than how it was made (``concept_file`` is a path on its machine).
IDENTITY_FIELDS = ("suite", "seed", "key", "train_key", "concept_file")
#: config.json fields that must agree per (concept, seed): each seed has its own split of photographs.
CONCEPT_FIELDS = ("concept", "data", "data_key")
#: config.json fields that must agree per (method, seed): each seed has its own base model.
SEED_FIELDS = ("base",)
#: config.json fields that must agree for every run.
SUITE_FIELDS = ("eval",)

_ABSENT = "(absent)"


@dataclass
class StoredRun:
    """One record of one store, with its stored configuration (``None`` for stores older than config.json)."""

    store: Path
    method: str
    rec: RunRecord
    config: dict[str, Any] | None

    @property
    def cell(self) -> tuple[str, str, int]:
        return self.rec.concept, self.method, self.rec.seed

    @property
    def label(self) -> str:
        return f"{self.rec.concept} × {self.method} × seed {self.rec.seed}"

    @property
    def config_file(self) -> Path:
        return self.store / "runs" / self.rec.key / "config.json"


def _first_diff(a: Any, b: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """The first (dotted path, value in a, value in b) where two JSON values differ, or ``None``."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            d = _first_diff(a.get(k, _ABSENT), b.get(k, _ABSENT), f"{path}.{k}" if path else str(k))
            if d is not None:
                return d
        return None
    return None if a == b else (path, a, b)


def _short(v: Any) -> str:
    text = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
    return text if len(text) <= 60 else text[:57] + "…"


def _facets(run: StoredRun) -> list[tuple[str, dict[str, Any]]]:
    """(what must agree, the settings) for one run's stored configuration."""
    c = run.config or {}
    method = {k: v for k, v in c.items()
              if k not in (*IDENTITY_FIELDS, *CONCEPT_FIELDS, *SUITE_FIELDS, *SEED_FIELDS)}
    if isinstance(method.get("method"), dict):
        method["method"] = {k: v for k, v in method["method"].items() if k not in METHOD_LABELS}
    concept = dict(c.get("concept") or {})
    split = concept.pop("split_seed", None)  # each seed has its own split of photographs (and data key)
    return [("every run", {k: c.get(k) for k in SUITE_FIELDS}),
            (f"concept '{run.rec.concept}'", {"concept": concept, "data": c.get("data")}),
            (f"concept '{run.rec.concept}' seed {run.rec.seed}", {"split_seed": split, "data_key": c.get("data_key")}),
            (f"method '{run.method}' seed {run.rec.seed}", {k: c.get(k) for k in SEED_FIELDS}),
            (f"method '{run.method}'", method)]


def check_protocol(runs: list[StoredRun]) -> None:
    """One protocol: the stored settings agree (per concept and seed, per method label, for every run), and a (concept,
    method, seed) in several stores has one training key."""
    seen: dict[str, tuple[StoredRun, dict[str, Any]]] = {}
    for run in runs:
        if run.config is None:
            continue
        for what, settings in _facets(run):
            if what not in seen:
                seen[what] = (run, settings)
                continue
            first, ref = seen[what]
            d = _first_diff(ref, settings)
            if d is not None:
                path, a, b = d
                raise UserError(f"protocols differ for {what}: {_short(a)} in {first.store} ({first.label}) — only "
                                "runs made with the same settings are merged", file=str(run.config_file),
                                field=path, value=_short(b))
    cells: dict[tuple[str, str, int], StoredRun] = {}
    for run in runs:
        first = cells.setdefault(run.cell, run)
        if first.rec.key == run.rec.key:  # the same run (or the first of its cell): duplicates are handled apart
            continue
        why = ("the same settings with another training key: other training code (data, models, training) or "
               f"prompt encoder, commits {first.rec.provenance.get('git')} vs {run.rec.provenance.get('git')}"
               if first.config and run.config else "another run key, and no stored configuration to say why")
        raise UserError(f"protocols differ for {run.label}: {why}; key {first.rec.key} in {first.store}",
                        file=str(run.store), field="key", value=run.rec.key)


def check_backends(runs: list[StoredRun]) -> None:
    """One backend per metric among the finished runs whose value is averaged, one label per extra backend key, and
    one evaluation key."""
    ok = [r for r in runs if r.rec.status == "ok"]
    metrics = [m.name for m in all_metrics()]
    keys = list(dict.fromkeys(k for r in ok for k in r.rec.backends))
    for name in list(dict.fromkeys([*metrics, *keys])):
        first: StoredRun | None = None
        for r in ok:
            if name in metrics:
                if r.rec.value(name) is None:
                    continue
                label = r.rec.backends.get(name, "unrecorded")
            elif name in r.rec.backends:
                label = r.rec.backends[name]
            else:
                continue
            if first is None:
                first = r
            elif first.rec.backends.get(name, "unrecorded") != label:
                raise UserError(f"metric backends differ: {_short(first.rec.backends.get(name, 'unrecorded'))} in "
                                f"{first.store} ({first.label}) — numbers from different backends are never averaged; "
                                "re-score the stores under the same weights (`e2gan-bench evaluate`)",
                                file=str(r.store), field=f"backends.{name}", value=_short(label))
    first = next((r for r in ok if r.rec.eval_key), None)
    for r in ok:
        if first is not None and r.rec.eval_key and r.rec.eval_key != first.rec.eval_key:
            raise UserError(f"evaluation keys differ ({first.rec.eval_key} in {first.store}, commit "
                            f"{first.rec.provenance.get('git')} vs {r.rec.provenance.get('git')}) under equal "
                            "settings and backends: other metric code, metric parameters or set of metrics; re-score "
                            "the stores at one commit (`e2gan-bench evaluate`)", file=str(r.store),
                            field="eval_key", value=r.rec.eval_key)


def _fmt(name: str, v: float | None) -> str:
    fmts = {c: m.fmt for m in all_metrics() for c in (m.name, *m.secondary)}
    return "–" if v is None else format_number(fmts.get(name, "{:.4g}"), v)


def compare_copies(kept: StoredRun, other: StoredRun) -> tuple[str, list[str]]:
    """How another store's copy of a run compares with the kept one: identical, agree (gated metrics within their
    default gate tolerance) or disagree, with the values that differ."""
    a, b = kept.rec, other.rec
    if a.status != "ok" or b.status != "ok":
        if a.status == b.status:
            return "every copy failed", []
        return "one copy failed", [f"{other.store}: {(b.error or 'no reason recorded')[:100]}"]
    gates = default_gates()
    disagree, within, ungated = [], [], []
    for m in all_metrics():
        for name in (m.name, *m.secondary):
            va, vb = a.value(name), b.value(name)
            if va == vb:
                continue
            text = f"{name} {_fmt(name, va)} vs {_fmt(name, vb)}"
            gate = gates.get(name)
            if va is None or vb is None:
                disagree.append(text + " (measured in one copy only)")
            elif gate is None:
                ungated.append(text)
            elif abs(va - vb) <= gate.tolerance((abs(va) + abs(vb)) / 2):
                within.append(text)
            else:
                disagree.append(f"{text} (tolerance {gate.describe()})")
    if disagree:
        return "disagree", disagree + within
    if within or ungated:
        return "agree", within + [f"{t} (not gated)" for t in ungated]
    return "identical", []
