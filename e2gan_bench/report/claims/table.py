"""The claims table (``e2gan-bench claims``): each claim of :mod:`.paper` evaluated on every (store, suite) that holds
all its checks' methods with finished runs; each such evaluation is one row, naming the store, the suite and the
metric backends (offline fallbacks flagged: our FID comes from a random-init ResNet unless Inception weights were
registered, and is never comparable to the paper's FID — only its ordering is). A claim no store can measure is
"not measured here". Verdicts: see :data:`.paper.VERDICTS`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from e2gan_bench.config import TargetSpec, load_suite
from e2gan_bench.errors import UserError
from e2gan_bench.record import RunRecord
from e2gan_bench.report.claims.checks import NOT_MEASURED, LatencyFiles, Outcome, methods_with_runs, worst
from e2gan_bench.report.claims.paper import CLAIMS, PAPER, VERDICTS, Check, Claim
from e2gan_bench.report.stats import counts
from e2gan_bench.report.stores import latest, locate_store, read_records, store_suites
from e2gan_bench.report.tables.leaderboard import runs_frame
from e2gan_bench.report.tables.time_to_quality import add_time_to_quality
from e2gan_bench.resources import builtin_dir, suite_names
from e2gan_bench.training.targets import fixed_values

# ------------------------------------------------------------------------------------------------ stores

@dataclass
class SuiteRuns:
    """One suite of one store: finished runs as a runs.csv frame with time-to-quality, and what was left out."""

    store: str
    suite: str
    pairs: list[tuple[str, RunRecord]]
    df: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def _target(suite: str) -> tuple[TargetSpec, str | None]:
    if suite in suite_names():
        try:
            t = load_suite(builtin_dir("suites") / f"{suite}.yaml").target
            if t.fixed:
                fixed_values(t)  # the targets file is readable
            return t, None
        except UserError:
            pass
    return TargetSpec(), (f"suite '{suite}' is not a readable built-in suite: time-to-quality uses the default "
                          "target (90 % of the way from identity to the best final validation PSNR)")


def load_stores(paths: list[Path], target: TargetSpec | None = None) -> tuple[list[SuiteRuns], list[dict[str, Any]]]:
    """Every suite of every store (UserError for a missing or unreadable store), and a description of each store;
    ``target`` replaces the suites' own time-to-target definition."""
    roots = [locate_store(Path(p)) for p in paths]  # every path checked before anything is read
    out, stores = [], []
    for root in roots:
        suites = store_suites(root / "results.sqlite")
        stores.append({"path": str(root), "suites": suites})
        for suite in suites:
            pairs, dropped = latest(read_records(root, suite))
            ok = [(m, r) for m, r in pairs if r.status == "ok"]
            spec, note = (target, None) if target is not None else _target(suite)
            df = add_time_to_quality(runs_frame(ok), ok, spec)
            notes = [note] if note else []
            if dropped:
                notes.append(f"{dropped} older record(s) of the same (method, concept, seed) ignored")
            if len(ok) < len(pairs):
                notes.append(f"{len(pairs) - len(ok)} failed run(s) left out")
            out.append(SuiteRuns(str(root), suite, ok, df, notes))
    return out, stores


# ------------------------------------------------------------------------------------------------ verdicts

def _offline(label: str) -> bool:
    return any(w in label for w in ("random", "fallback", "hash-bow"))


def backends_of(runs: SuiteRuns, methods: tuple[str, ...], metrics: list[str]) -> dict[str, list[str]]:
    """metric -> the backend labels of the compared runs' values (offline fallbacks flagged); time-to-quality
    numbers name the backends of the validation curves they come from."""
    chosen = [r for m, r in runs.pairs if m in methods]
    out: dict[str, list[str]] = {}
    for m in dict.fromkeys(metrics):
        if m.endswith("_to_target"):
            key = "time-to-quality (validation curves)"
            vals = {f"{k}: {v}" for r in chosen for k, v in ((r.val_curve or {}).get("backends") or {}).items()}
        else:
            key, vals = m, {r.backends[m] for r in chosen if m in r.backends}
        if vals:
            flagged = [v + (" (offline fallback: not comparable to published numbers)" if _offline(v) else "")
                       for v in sorted(vals)]
            out[key] = sorted(set(out.get(key, [])) | set(flagged))
    return out


def _combine(outcomes: list[Outcome]) -> tuple[str, str]:
    verdict = worst([o.verdict for o in outcomes])
    return verdict, "; ".join(o.reason for o in outcomes)


def _sample_notes(runs: SuiteRuns, methods: tuple[str, ...], metrics: list[str]) -> list[str]:
    """FID with fewer images than feature dimensions is biased and unstable (clean-fid, torch-fidelity say so)."""
    if "fid" not in metrics:
        return []
    ns, dims = set(), set()
    for m, r in runs.pairs:
        if m in methods and r.value("fid") is not None:
            ns.add(r.n_test)
            d = (r.details or {}).get("fid", {}).get("dims")
            label = r.backends.get("fid", "")
            dims.add(d or (2048 if "inception" in label else 512 if "resnet18" in label else None))
    low = [(n, d) for n in ns for d in dims if n is not None and d is not None and n < d]
    if not low:
        return []
    n, d = min(low)
    return [f"FID from n = {n} test images per run, below the feature dimension ({d}): biased and unstable at this "
            "sample size — read KID (unbiased) beside it, or grow n_test"]


def evaluate(claim: Claim, suites: list[SuiteRuns]) -> list[dict[str, Any]]:
    """One result per (store, suite) that measures ``claim``; a single "not measured here" result when none does."""
    results = []
    for runs in suites:
        if runs.suite not in claim.suites or not set(claim.methods) <= methods_with_runs(runs.df):
            continue
        checks = [c.evaluate(runs.df) for c in claim.checks]
        also = [c.evaluate(runs.df) if set(c.methods) <= methods_with_runs(runs.df)
                else Outcome(NOT_MEASURED, f"{c.describe()}: methods absent") for c in claim.also]
        verdict, reason = _combine(checks)
        metrics = [m for o in checks + also for m in o.metrics]
        methods = tuple(dict.fromkeys(m for c in claim.checks + claim.also for m in c.methods))
        n_concepts = min(counts(runs.df, m)[0] for m in claim.methods)
        n_seeds = max(counts(runs.df, m)[1] for m in claim.methods)
        notes = [*runs.notes, *_sample_notes(runs, methods, metrics)]
        results.append({
            "store": runs.store, "suite": runs.suite, "verdict": verdict, "reason": reason,
            "headline": "; ".join(o.headline for o in checks if o.headline), "concepts": n_concepts,
            "seeds": n_seeds,
            "checks": [_outcome_dict(c, o) for c, o in zip(claim.checks, checks, strict=True)],
            "also": [_outcome_dict(c, o) for c, o in zip(claim.also, also, strict=True)],
            "backends": backends_of(runs, methods, metrics), "notes": notes})
    if results:
        return results
    have = sorted({f"{r.suite}: {', '.join(sorted(methods_with_runs(r.df)))}" for r in suites})
    why = (f"needs suite {' or '.join(claim.suites)} with methods {', '.join(claim.methods)}; the stores hold "
           + ("; ".join(have) if have else "no suite"))
    return [{"store": None, "suite": None, "verdict": NOT_MEASURED, "reason": why, "headline": "", "checks": [],
             "also": [], "backends": {}, "notes": [], "concepts": 0, "seeds": 0}]


def latency_rows(files: list[Path]) -> list[dict[str, Any]]:
    """The latency claim's row from paper-size ``e2gan-bench latency --json`` files (UserError for an unreadable
    one)."""
    loaded = []
    for f in files:
        try:
            loaded.append((Path(f).name, json.loads(Path(f).read_text())))
        except (OSError, ValueError) as exc:
            raise UserError(f"unreadable latency file ({type(exc).__name__})", field="--latency", value=str(f)) from None
    check = LatencyFiles()
    o = check.evaluate(loaded)
    return [{"store": ", ".join(str(f) for f in files), "suite": "latency files", "verdict": o.verdict,
             "reason": o.reason, "headline": o.headline, "concepts": 0, "seeds": len(o.numbers),
             "checks": [{"check": "e2gan / pix2pix-resnet (paper size)", "kind": "LatencyFiles", "verdict": o.verdict,
                         "reason": o.reason, "headline": o.headline, "numbers": o.numbers}],
             "also": [], "backends": {"latency_ms": sorted({str((d.get("provenance") or {}).get("backend", "?")) + " "
                                                           + str((d.get("provenance") or {}).get("onnxruntime", ""))
                                                           for _, d in loaded})},
             "notes": [d.get("label", "") for _, d in loaded[:1]]}]


def _outcome_dict(check: Check, o: Outcome) -> dict[str, Any]:
    return {"check": check.describe(), "kind": type(check).__name__, "verdict": o.verdict, "reason": o.reason,
            "headline": o.headline, "numbers": o.numbers}


def claims_table(paths: list[Path], claims: tuple[Claim, ...] = CLAIMS, target: TargetSpec | None = None,
                 latency: list[Path] | None = None) -> dict[str, Any]:
    """Everything ``claims.json`` holds: the paper, the stores read, the verdict legend, each claim with its results
    (``target``: the time-to-target definition for every suite, instead of each built-in suite's own; ``latency``:
    paper-size latency files, which decide the latency claim)."""
    suites, stores = load_stores(paths, target)
    lat = latency_rows(latency) if latency else []

    def results(c: Claim) -> list[dict[str, Any]]:
        rows = evaluate(c, suites)
        if c.id == "latency-vs-pix2pix" and lat:
            rows = lat + [r for r in rows if r["suite"] is not None]
        return rows

    return {"paper": PAPER, "stores": stores, "verdicts": VERDICTS,
            "claims": [{"id": c.id, "statement": c.statement, "paper": dict(c.paper), "paper_note": c.paper_note,
                        "suites": list(c.suites), "methods": list(c.methods), "ours": c.ours, "rule": c.rule,
                        "results": results(c)} for c in claims]}


# ------------------------------------------------------------------------------------------------ output

def _plain(x: Any) -> Any:
    """Strict JSON: an infinite number (a run that never reached the target) becomes "inf", NaN becomes null."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):  # numpy scalars
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def to_json(table: dict[str, Any]) -> str:
    return json.dumps(_plain(table), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _paper_cell(c: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in c["paper"].items()) or "qualitative"


def _where(r: dict[str, Any]) -> str:
    return "–" if r["suite"] is None else f"`{r['suite']}` · `{r['store']}`"


def to_markdown(table: dict[str, Any]) -> str:
    """claims.md: the summary table (one row per claim and suite that measured it), then each claim in full."""
    md = ["# The paper's claims, checked on this benchmark", "",
          f"Generated by `e2gan-bench claims` from result stores, never typed by hand. Paper: {table['paper']}.", ""]
    md += [f"- store `{s['path']}`: suites {', '.join(s['suites']) or '(none linked)'}" for s in table["stores"]]
    md += ["", "Verdicts:", ""] + [f"- **{k}**: {v}" for k, v in table["verdicts"].items()]
    md += ["", "| claim | the paper | ours | verdict | concepts × seeds | suite · store |", "|---|---|---|---|---|---|"]
    for c in table["claims"]:
        for r in c["results"]:
            n = f"{r.get('concepts', 0)} × {r.get('seeds', 0)}" if r.get("concepts") else \
                (f"{r.get('seeds')} file(s)" if r["suite"] == "latency files" else "–")
            md.append(f"| `{c['id']}` | {_cell(_paper_cell(c))} | {_cell(r['headline'] or '–')} | "
                      f"**{r['verdict']}** | {n} | {_cell(_where(r))} |")
    for c in table["claims"]:
        md += ["", f"## `{c['id']}`", "", f"> {c['statement']}", "",
               f"- the paper: {_paper_cell(c)}" + (f" ({c['paper_note']})" if c["paper_note"] else ""),
               f"- ours: {c['ours']}", f"- verdict rule: {c['rule']}",
               f"- measured by suites {', '.join(c['suites'])}, methods {', '.join(c['methods'])}"]
        for r in c["results"]:
            md += ["", f"### {_where(r)}: **{r['verdict']}**", ""]
            if not r["checks"]:
                md.append(f"- {r['reason']}")
            for part, label in (("checks", "check"), ("also", "beside (not in the verdict)")):
                for o in r[part]:
                    md.append(f"- {label} `{o['check']}`: **{o['verdict']}** — {o['reason']}")
                    md += [f"  - {n['text']}" + (" (decides)" if n.get("decides") else "") for n in o["numbers"]]
            md += [f"- backend `{k}`: {', '.join(v)}" for k, v in r["backends"].items()]
            md += [f"- note: {n}" for n in r["notes"]]
    return "\n".join(md) + "\n"
