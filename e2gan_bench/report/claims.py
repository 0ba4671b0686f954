"""The paper's quantitative claims, as data, and their verdicts computed from result stores (``e2gan-bench claims``).

The paper: Gong, Zhan, Jin, Li, Idelbayev, Liu, Zharkov, Aberman, Tulyakov, Wang, Ren, "E2GAN: Efficient Training
of Efficient GANs for Image-to-Image Translation", ICML 2024 (PMLR 235, pp. 15929–15950; arXiv:2401.06127). Its
numbers below are copied from its abstract, project page and figures.

Each :class:`Claim` names the suites and methods that measure our nearest quantity, and the checks
(:mod:`.claim_checks`) that decide it. A claim is evaluated on every (store, suite) that holds all its checks'
methods with finished runs; each such evaluation is one row of the table, naming the store, the suite and the
metric backends (offline fallbacks flagged: our FID comes from a random-init ResNet unless Inception weights were
registered, and is never comparable to the paper's FID — only its ordering is). A claim no store can measure is
"not measured here". Verdicts: see :data:`VERDICTS`.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import pandas as pd

from e2gan_bench.config import TargetSpec, load_suite
from e2gan_bench.errors import UserError
from e2gan_bench.harness.store import ResultsStore
from e2gan_bench.record import RunRecord
from e2gan_bench.report.claim_checks import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NO_DIFF,
    NOT_MEASURED,
    LatencyFiles,
    NonInferior,
    Ordering,
    Outcome,
    Ratio,
    methods_with_runs,
    worst,
)
from e2gan_bench.report.leaderboard import runs_frame
from e2gan_bench.report.sides import _store_suites
from e2gan_bench.report.stats import counts
from e2gan_bench.report.time_to_quality import add_time_to_quality
from e2gan_bench.resources import builtin_dir, suite_names
from e2gan_bench.training.targets import fixed_values

PAPER = ("Gong et al., \"E2GAN: Efficient Training of Efficient GANs for Image-to-Image Translation\", ICML 2024 "
         "(PMLR 235:15929-15950; arXiv:2401.06127)")

VERDICTS = {
    HOLDS: "the paper's direction is reproduced: a paired difference significant at 95 % (orderings), not worse "
           "beyond the gate tolerance (\"≈\" claims), or a cost ratio on the paper's side of 1 (its magnitude is "
           "shown beside the paper's, and is not part of the verdict)",
    FAILS: "significantly the other way (for \"≈\" claims: significantly worse beyond the tolerance), or a cost "
           "ratio on the other side of 1",
    NO_DIFF: "the 95 % interval of the paired difference (or of the per-unit ratios) spans 0 (or 1)",
    INCONCLUSIVE: "too few units for an interval, or the interval straddles the tolerance / 1",
    NOT_MEASURED: "no given store holds a suite with the methods this claim needs",
}

Check = Union[Ordering, NonInferior, Ratio]

#: The paper's base-model ablation (FID on FFHQ after fine-tuning to the target concept).
BASE_ABLATION = {  # concept: (representative, 20 random, 200 art concepts, single concept)
    "White Walker": (40.18, 53.92, 40.32, 51.99), "blond person": (48.01, 52.77, 61.50, 55.58),
    "sunglasses": (38.49, 40.54, 41.37, 44.12), "Van Gogh style": (71.82, 78.58, 68.21, 78.06),
}


def _mean_col(i: int) -> float:
    return round(sum(v[i] for v in BASE_ABLATION.values()) / len(BASE_ABLATION), 2)


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str  # the paper's statement
    paper: Mapping[str, float]  # the paper's numbers, labelled
    suites: tuple[str, ...]  # suites that measure our nearest quantity
    ours: str  # our nearest quantity and how it is computed
    rule: str  # how the verdict is reached
    checks: tuple[Check, ...]  # all must hold
    also: tuple[Check, ...] = ()  # reported beside, not part of the verdict
    paper_note: str = ""

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m for c in self.checks for m in c.methods))


_ORDER_RULE = ("holds when the first one significantly better (95 % t interval of the paired difference entirely on "
               "its side of 0); does not hold when the other is significantly better, or (no significant "
               "difference) when the interval spans 0; inconclusive with one unit")
_RATIO_RULE = ("holds when the ratio of medians is on the paper's side of 1 and the 95 % interval of the per-unit "
               "(paired) ratios excludes 1 (deterministic counts have a point interval); the magnitude is reported "
               "beside the paper's, not judged")
_LOOSE = ("quick", "standard", "regime")

CLAIMS: tuple[Claim, ...] = (
    Claim("fid-vs-pix2pix",
          "E2GAN reaches a lower FID than pix2pix trained per concept (FFHQ 80.28 vs 86.03; Flickr-Scenery "
          "109.37 vs 114.2, averaged over concepts).",
          {"FID E2GAN FFHQ": 80.28, "FID pix2pix FFHQ": 86.03, "FID E2GAN Scenery": 109.37,
           "FID pix2pix Scenery": 114.2}, _LOOSE,
          "test FID (student vs teacher outputs) of e2gan vs pix2pix, paired over (concept, seed) units at the "
          "suite's equal step budget; KID and PSNR reported beside", _ORDER_RULE + " (FID decides; KID, then PSNR, "
          "when FID is not measured)", (Ordering("e2gan", "pix2pix"),)),
    Claim("time-vs-pix2pix", "E2GAN needs 4.8× less training time per concept than pix2pix (200 s vs 950 s).",
          {"seconds E2GAN": 200, "seconds pix2pix": 950, "reduction ×": 4.8}, _LOOSE,
          "median seconds to the suite's validation target (time-to-quality, rank search included, a run that "
          "never got there counts as ∞), pix2pix / e2gan; beside it, median train_seconds at equal steps "
          "(stated as such; decides only when the suite has no validation curves)", _RATIO_RULE,
          (Ratio("pix2pix", "e2gan", ("seconds_to_target", "train_seconds"), 4.8),)),
    Claim("flops-vs-pix2pix", "E2GAN needs 14× fewer training FLOPs per concept than pix2pix (≈0.2e16 vs ≈2.8e16).",
          {"FLOPs E2GAN": 0.2e16, "FLOPs pix2pix": 2.8e16, "reduction ×": 14}, _LOOSE,
          "median FLOPs to the validation target, pix2pix / e2gan; beside it, train_flops at equal steps (counted "
          "with torch.utils.flop_counter, rank-search trials included)", _RATIO_RULE,
          (Ratio("pix2pix", "e2gan", ("flops_to_target", "train_flops"), 14),)),
    Claim("params-vs-pix2pix", "E2GAN trains (and stores) 121× fewer parameters per concept than pix2pix "
          "(≈0.09M vs ≈11M).", {"trainable params E2GAN (M)": 0.09, "pix2pix (M)": 11, "reduction ×": 121}, _LOOSE,
          "median trainable_params, pix2pix / e2gan; beside it, stored_bytes (bytes on disk per concept)",
          _RATIO_RULE, (Ratio("pix2pix", "e2gan", ("trainable_params", "stored_bytes"), 121),),
          paper_note="ours at the suite's model sizes (CPU-sized widths), so the magnitude differs by design"),
    Claim("latency-vs-pix2pix", "E2GAN runs faster than pix2pix with 9 ResNet blocks on an iPhone 14: 15.5 ms vs "
          "21.0 ms (ratio 0.74).", {"latency E2GAN (ms)": 15.5, "latency pix2pix (ms)": 21.0, "ratio": 0.74},
          _LOOSE, "median ONNX Runtime latency e2gan / pix2pix ResNet-9 at the paper's size (256², ngf 64) from "
          "`e2gan-bench latency --json` files (claims --latency; each file one replicate) — a desktop proxy for the "
          "paper's phone, not a phone measurement; the suites' one timing at their own size is shown beside it and "
          "cannot decide", "holds when the 95 % interval of the per-file ratios lies below 1; inconclusive with one "
          "file; a suite's single timing copied to every run is not a replicated measurement",
          (Ratio("e2gan", "pix2pix", ("latency_ms",), 0.74, want="below", replicated=False),)),
    Claim("base-representative", "A base model trained on representative concepts fine-tunes better than one "
          "trained on random concepts or on a single concept (mean FID over 4 target concepts: "
          f"{_mean_col(0)} vs {_mean_col(1)} (20 random) and {_mean_col(3)} (single)).",
          {"mean FID representative": _mean_col(0), "mean FID 20 random": _mean_col(1),
           "mean FID 200 art concepts": _mean_col(2), "mean FID single": _mean_col(3)}, ("ablation-base",),
          "test FID of E2GAN fine-tuned from a base on 6 representative concepts (k-means) vs 6 random and vs one "
          "concept, paired over (concept, seed) units; KID and PSNR beside", _ORDER_RULE + "; both comparisons "
          "must hold", (Ordering("representative", "random-6"), Ordering("representative", "single")),
          paper_note="ours: 6 random concepts where the paper uses 20; the paper's means over its 4 target "
          "concepts are computed here from its table"),
    Claim("rank-search-order", "Searched LoRA ranks beat uniform allocations and a random one: FID searched "
          "109.37 < uniform 4× 111.42 < random 129.87 ≈ uniform 1× 130.98 (Flickr-Scenery, 10 concepts).",
          {"FID searched": 109.37, "FID uniform 4×": 111.42, "FID random": 129.87, "FID uniform 1×": 130.98},
          ("ablation-rank",), "test FID of the four allocations, each step of the ordering a paired comparison "
          "over (concept, seed) units; KID and PSNR beside", _ORDER_RULE + "; every '<' step must hold and the "
          "'≈' step must show no significant difference (consistent with, not proof of, equality)",
          (Ordering("e2gan-searched", "uniform-4x"), Ordering("uniform-4x", "random"),
           Ordering("uniform-4x", "uniform-1x"), Ordering("random", "uniform-1x", "similar")),
          also=(Ordering("e2gan-searched", "uniform-1x"), Ordering("e2gan-searched", "random"))),
    Claim("lora-vs-full-finetune", "Fine-tuning LoRA on the crucial layers of the base model — about 1 % of its "
          "weights (0.092M parameters) — instead of the whole model keeps the quality at a fraction of the "
          "per-concept storage.", {"LoRA params (M)": 0.092, "fraction of weights fine-tuned": 0.01,
                                   "implied reduction ×": 100}, _LOOSE,
          "test FID (then KID, PSNR) of e2gan vs full-finetune, paired over (concept, seed) units, against the "
          "metric's default gate tolerance; and median stored_bytes full-finetune / e2gan (trainable_params beside)",
          "holds when e2gan is not worse than full-finetune beyond the tolerance (the worse end of the 95 % "
          "interval within it) and the storage ratio holds (" + _RATIO_RULE + ")",
          (NonInferior("e2gan", "full-finetune"),
           Ratio("full-finetune", "e2gan", ("stored_bytes", "trainable_params"), 100)),
          paper_note="the paper gives the LoRA size and the 1 % fraction; the 100× is implied, not stated, and "
          "it reports no full-fine-tuning FID"),
    Claim("minimal-data", "Training on a k-means-selected subset of the pairs (nearest the cluster centres of "
          "image features) loses little quality against training on all of them.", {}, ("ablation-data",),
          "test FID (then KID, PSNR) of E2GAN on the k-means 25 % subset vs all pairs, paired over (concept, seed) "
          "units, against the metric's default gate tolerance; beside it the 12.5 % subset, and k-means vs random "
          "subsets of the same size",
          "holds when kmeans-25 is not worse than all-data beyond the tolerance (the worse end of the 95 % interval "
          "within it); does not hold when significantly worse beyond it; inconclusive otherwise",
          (NonInferior("kmeans-25", "all-data"),),
          also=(NonInferior("kmeans-12", "all-data"), Ordering("kmeans-25", "random-25"),
                Ordering("kmeans-12", "random-12")),
          paper_note="no number: the paper fixes no subset size; ours clusters thumbnail features unless "
          "CLIP weights are registered (the paper: CLIP features)"),
)


# ------------------------------------------------------------------------------------------------ stores

@dataclass
class SuiteRuns:
    """One suite of one store: finished runs as a runs.csv frame with time-to-quality, and what was left out."""

    store: str
    suite: str
    pairs: list[tuple[str, RunRecord]]
    df: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def _locate(path: Path) -> Path:
    if not path.exists():
        raise UserError("not found", field="STORE", value=str(path))
    if path.is_file() and path.name == "results.sqlite":
        return path.parent
    if not (path / "results.sqlite").is_file():
        raise UserError("not a results folder of `e2gan-bench run` (no results.sqlite)", field="STORE",
                        value=str(path))
    return path


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


def _latest(pairs: list[tuple[str, RunRecord]]) -> tuple[list[tuple[str, RunRecord]], int]:
    """The newest record per (method, concept, seed) (records come oldest first), and how many were dropped."""
    keep: dict[tuple[str, str, int], tuple[str, RunRecord]] = {}
    for m, r in pairs:
        keep[(m, r.concept, r.seed)] = (m, r)
    return list(keep.values()), len(pairs) - len(keep)


def load_stores(paths: list[Path], target: TargetSpec | None = None) -> tuple[list[SuiteRuns], list[dict[str, Any]]]:
    """Every suite of every store (UserError for a missing or unreadable store), and a description of each store;
    ``target`` replaces the suites' own time-to-target definition."""
    roots = [_locate(Path(p)) for p in paths]  # every path checked before anything is read
    out, stores = [], []
    for root in roots:
        store = ResultsStore(root, readonly=True)
        suites = _store_suites(store.db)
        stores.append({"path": str(root), "suites": suites})
        for suite in suites:
            try:
                pairs, dropped = _latest(store.records(suite))
            except (sqlite3.Error, ValueError) as exc:
                raise UserError(f"unreadable results store ({type(exc).__name__}: {exc})", file=str(store.db)) from None
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
