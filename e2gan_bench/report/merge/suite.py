"""One suite's runs merged from several results stores (``e2gan-bench leaderboard STORE… --dest DIR``).

Stores made on different machines, or at different times, hold runs of the same suite (say, seeds 0–1 on one
machine and seeds 2–3 on another). The merge reads each store read-only, keeps the suite's grid (its concepts ×
methods × seeds), checks that the runs may be averaged together, and hands them to the report code of
``e2gan-bench report`` (:func:`e2gan_bench.report.tables.leaderboard.write_reports`,
:func:`e2gan_bench.report.page.html_page.write_html_report`) with where each run came from.

What may be merged — each refusal is one line naming the store (or the run's ``config.json``), the field and the
two values, and nothing is written:

* **One protocol.** The stored configuration of every run (``runs/<run key>/config.json``) must agree: per concept
  its definition, data settings and data key (which covers the photographs, the teacher and the data code); per
  method label its method, model sizes, validation curve, base model and device; for all runs the evaluation
  settings. A (concept, method, seed) held by two stores must have the same training key: equal settings with
  another training key means other training code or another prompt encoder.
* **One backend per metric.** Every metric's backend label (weights hashes included), and the extra backend keys
  (FID's resize protocol, the prompt encoder), is the same for every run whose value is averaged; and the runs share
  one evaluation key (equal backends but another key: other metric code, metric parameters or set of metrics).

Which record represents a run:

* **In one store, the newest record** of each (concept, method, seed) of the suite (an older one was made under
  earlier settings or code and is superseded; the Sources section counts them). Runs outside the suite file's grid
  are left out and counted.
* **A run key in several stores** — the same run computed twice, e.g. on two machines — is one unit, never two
  samples: one record is kept (a finished one before a failed one, then the store named first on the command line)
  and the other copies are compared with it metric by metric: *identical*, *agree* (every gated metric within its
  default gate tolerance, :mod:`e2gan_bench.report.compare.gates`; wall-clock values may differ) or *disagree* (a gated
  metric beyond its tolerance, or a value only one copy has). The verdicts are in ``runs.csv`` (``also_in``,
  ``duplicate_check``) and in the Sources section, each disagreement with its values.

Every merged run carries its store, machine (CPU model, host id, GPU if any) and commit (``runs.csv`` columns
``store``, ``machine``, ``commit``), and the Sources section says which stores, machines and commits contributed.
"""

from __future__ import annotations

import json
from collections.abc import Container
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from e2gan_bench.config import Suite
from e2gan_bench.errors import UserError
from e2gan_bench.record import RunRecord
from e2gan_bench.report.merge.checks import StoredRun, check_backends, check_protocol, compare_copies
from e2gan_bench.report.stores import latest, locate_store, read_records, store_suites
from e2gan_bench.report.tables.amortise import read_base_meta
from e2gan_bench.resources import find_suite

#: The runs.csv columns a merge adds.
ORIGIN_COLUMNS = ("store", "machine", "commit", "also_in", "duplicate_check")

def machine_label(prov: dict[str, Any]) -> str:
    """The machine a record was made on: CPU model, host id (a hash of the host name) and GPU, from its provenance
    (records written before the CPU model and host were stored say so)."""
    cpu = prov.get("cpu") or prov.get("machine") or "unknown CPU"
    host = f"host {prov['host']}" if prov.get("host") else "host not recorded"
    gpu = f", {prov['gpu']}" if prov.get("gpu") else ""
    return f"{cpu} ({host}{gpu})"


@dataclass
class Duplicate:
    """A run key held by several stores: the record kept and how the other copies compare with it."""

    kept: StoredRun
    others: list[StoredRun]
    verdict: str  # identical | agree | disagree | one copy failed | every copy failed
    details: list[str] = field(default_factory=list)

    def text(self) -> str:
        return self.verdict + (f" ({'; '.join(self.details)})" if self.details else "")


@dataclass
class Merge:
    suite: Suite
    stores: list[Path]
    runs: list[StoredRun]  # the kept records, in the suite's grid order
    duplicates: dict[str, Duplicate]  # run key -> duplicate
    superseded: dict[Path, int]  # store -> older records of the same cell left out
    outside: dict[Path, int]  # store -> records outside the suite's grid left out
    missing: int  # grid cells no store holds
    base_meta: list[dict[str, Any]]

    @property
    def pairs(self) -> list[tuple[str, RunRecord]]:
        return [(r.method, r.rec) for r in self.runs]

    @property
    def order(self) -> list[str]:
        return [m.name for m in self.suite.methods]

    def run_dir(self, key: str) -> Path:
        """The folder of a kept run, in the store its record came from."""
        run = self._by_key.get(key)
        return (run.store if run else self.stores[0]) / "runs" / key

    @cached_property
    def _by_key(self) -> dict[str, StoredRun]:
        return {r.rec.key: r for r in self.runs}

    def run_info(self) -> dict[str, dict[str, Any]]:
        """runs.csv's origin columns per run key."""
        out = {}
        for r in self.runs:
            dup = self.duplicates.get(r.rec.key)
            out[r.rec.key] = {
                "store": str(r.store), "machine": machine_label(r.rec.provenance),
                "commit": r.rec.provenance.get("git") or "unrecorded",
                "also_in": "; ".join(str(o.store) for o in dup.others) if dup else None,
                "duplicate_check": dup.text() if dup else None}
        return out

    def sources(self) -> list[str]:
        """The Sources section: which stores, machines and commits contributed, what was left out, and the
        duplicates."""
        s = self.suite
        lines = [f"- merged by `e2gan-bench leaderboard` from {len(self.stores)} store(s): the runs of suite "
                 f"`{s.name}` ({len(s.concepts)} concepts × {len(s.methods)} methods × {len(s.seeds)} seeds); "
                 "protocols (stored run configurations, training keys) and metric backends (evaluation keys) "
                 "checked equal"]
        for st in self.stores:
            mine = [r for r in self.runs if r.store == st]
            machines = sorted({machine_label(r.rec.provenance) for r in mine})
            commits = sorted({str(r.rec.provenance.get("git") or "unrecorded") for r in mine})
            dropped = sum(1 for d in self.duplicates.values() for o in d.others if o.store == st)
            extra = [f"{dropped} copy(ies) of runs kept from another store" if dropped else "",
                     f"{self.superseded.get(st, 0)} older record(s) superseded" if self.superseded.get(st) else "",
                     f"{self.outside.get(st, 0)} run(s) outside the suite's grid left out"
                     if self.outside.get(st) else ""]
            lines.append(f"- store `{st}`: {len(mine)} run(s) kept; machine {', '.join(machines) or '–'}; "
                         f"commit {', '.join(commits) or '–'}" + "".join(f"; {x}" for x in extra if x))
        machines = sorted({machine_label(r.rec.provenance) for r in self.runs})
        if len(machines) > 1:
            lines.append(f"- **runs from {len(machines)} machines**: `train_seconds` and `latency_ms` are wall-clock "
                         "on each machine, and the same run drifts by about 0.3 dB PSNR between CPU models (README, "
                         "cross-machine tolerance); the means above include both")
        commits = sorted({str(r.rec.provenance.get("git") or "unrecorded") for r in self.runs})
        if len(commits) > 1:
            lines.append(f"- **code from {len(commits)} commits** ({', '.join(commits)}): settings, data keys, base "
                         "models and evaluation keys are equal; training code is compared only where two stores ran "
                         "the same (concept, method, seed) (its training key)")
        if self.duplicates:
            counts: dict[str, int] = {}
            for d in self.duplicates.values():
                counts[d.verdict] = counts.get(d.verdict, 0) + 1
            lines.append(f"- {len(self.duplicates)} run(s) held by more than one store: one record kept per run (a "
                         "finished one before a failed one, then the store named first), the other copies compared "
                         "with it (gated metrics within their default gate tolerance: agree): "
                         + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())))
            for d in self.duplicates.values():
                if d.verdict != "identical" and d.verdict != "agree":
                    lines.append(f"- **{d.kept.label}** (key `{d.kept.rec.key}`): kept from `{d.kept.store}`, "
                                 f"{d.text()}")
        if self.missing:
            lines.append(f"- {self.missing} run(s) of the suite's grid are in none of the stores")
        return lines


# ------------------------------------------------------------------------------------------------ reading


def _suite(arg: str | None, held: dict[Path, list[str]]) -> Suite:
    """The suite to merge: ``--suite`` (a built-in name or a suite YAML), else the one suite the stores hold."""
    names = sorted({n for ns in held.values() for n in ns})
    if arg is None:
        if len(names) != 1:
            raise UserError("the stores hold several suites; choose one" if names else "the stores hold no suite runs",
                            field="--suite", allowed=", ".join(names) or None)
        arg = names[0]
    try:
        return find_suite(arg)[0]
    except UserError:
        if arg in names:
            raise UserError("the stores hold this suite but it is not built in: pass its YAML file with --suite PATH",
                            field="--suite", value=arg) from None
        raise


def _config(store: Path, rec: RunRecord) -> dict[str, Any] | None:
    path = store / "runs" / rec.key / "config.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"unreadable run configuration ({type(exc).__name__})", file=str(path)) from None


def _read(roots: list[Path], suite: Suite, held: dict[Path, list[str]],
          grid: Container[tuple[str, str, int]]) -> tuple[list[StoredRun], dict[Path, int], dict[Path, int]]:
    """Every store's newest record per (concept, method, seed) of the suite's ``grid``; counts of superseded and
    out-of-grid records per store. ``held``: the suites each store holds (for the refusal of a store without this
    one)."""
    runs, superseded, outside = [], {}, {}
    for root in roots:
        pairs = read_records(root, suite.name)
        if not pairs:
            raise UserError(f"no runs of suite '{suite.name}' in this store", field="STORE", value=str(root),
                            allowed=", ".join(held[root]) or "none")
        pairs, superseded[root] = latest(pairs)
        kept = [(m, r) for m, r in pairs if (r.concept, m, r.seed) in grid]
        outside[root] = len(pairs) - len(kept)
        runs += [StoredRun(root, m, r, _config(root, r)) for m, r in kept]
    return runs, superseded, outside


def _dedupe(runs: list[StoredRun], roots: list[Path]) -> tuple[list[StoredRun], dict[str, Duplicate]]:
    by_key: dict[str, list[StoredRun]] = {}
    for r in runs:
        by_key.setdefault(r.rec.key, []).append(r)
    kept, dups = [], {}
    for key, copies in by_key.items():
        copies = sorted(copies, key=lambda r: (r.rec.status != "ok", roots.index(r.store)))
        kept.append(copies[0])
        if len(copies) > 1:
            verdicts = [compare_copies(copies[0], o) for o in copies[1:]]
            rank = ("disagree", "one copy failed", "every copy failed", "agree", "identical")
            verdict = min((v for v, _ in verdicts), key=rank.index)
            details = [f"{o.store}: {d}" if len(copies) > 2 else d for o, (_, ds) in zip(copies[1:], verdicts,
                                                                                          strict=True) for d in ds]
            dups[key] = Duplicate(copies[0], copies[1:], verdict, details)
    return kept, dups


def _base_meta(runs: list[StoredRun], roots: list[Path]) -> list[dict[str, Any]]:
    """The base models the kept runs were trained from (``cache/base/<key>/meta.json``), from the run's own store
    first, then the others in order."""
    return read_base_meta((r.rec.provenance.get("base") or (r.config or {}).get("base"),
                           [r.store / "cache", *[x / "cache" for x in roots if x != r.store]]) for r in runs)


def merge_stores(paths: list[Path], suite: str | None = None) -> Merge:
    """Read, check and merge the suite's runs of several stores (UserError before anything is written: a missing or
    unreadable store, a store without the suite, mixed protocols or backends)."""
    roots = [locate_store(Path(p)) for p in paths]
    resolved = [r.resolve() for r in roots]
    for i, r in enumerate(resolved):
        if r in resolved[:i]:
            raise UserError("store named twice", field="STORE", value=str(roots[i]))
    held = {root: store_suites(root / "results.sqlite") for root in roots}
    s = _suite(suite, held)
    position = {(c, m.name, sd): i for i, (c, m, sd) in enumerate(
        (c, m, sd) for c in s.concepts for m in s.methods for sd in s.seeds)}  # the grid, in report order
    runs, superseded, outside = _read(roots, s, held, position)
    check_protocol(runs)
    check_backends(runs)
    kept, dups = _dedupe(runs, roots)
    kept.sort(key=lambda r: position[r.cell])
    missing = len(position) - len({r.cell for r in kept})
    return Merge(s, roots, kept, dups, superseded, outside, missing, _base_meta(kept, roots))
