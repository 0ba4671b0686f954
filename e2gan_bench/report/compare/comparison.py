"""``compare``: the regression gate between two result sets (REFERENCE and CANDIDATE).

One method is taken from each side (:mod:`.sides`) and its runs are paired by (concept, seed); failed runs and
runs without a counterpart are listed as unmatched and left out.

Per metric measured on both sides, the paired differences ``candidate - reference`` are averaged within each concept and
**the concepts are the units** (:mod:`e2gan_bench.report.stats.units`; with one concept, its seeds, labelled so):
the mean difference, a two-sided Student-t interval over the units, a hierarchical bootstrap interval (concepts,
then seeds) and a one-sided test of "candidate worse". The relative change is ``mean(d) / mean(|reference|)``. A metric
whose backend differs between the sides (see ``RunRecord.backends``) is *not comparable*; one measured on one side
only, or on neither, is *not measured* — never confused with a regression.

Gate rule (:mod:`e2gan_bench.report.stats.gate`): a gated metric **regresses** when its mean worsening exceeds the
tolerance and the one-sided test is significant at ``alpha`` after a Holm correction across the gated metrics with
run-to-run noise (deterministic counts are exact and decide alone); worse than the tolerance but not significant is
*inconclusive* and does not fail. The tolerances are the metrics' defaults, a suite's ``gate:`` overrides, then
``--gate`` options.

A gated metric that cannot be compared (backends differ, or measured on one side only) makes the gate impossible:
the CLI exits 2 (``--gate METRIC:off`` compares without it). An explicitly requested gate on a metric that neither
side measured is an error; default gates on unmeasured metrics are skipped.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from e2gan_bench.errors import UserError
from e2gan_bench.metrics import Metric, all_metrics
from e2gan_bench.record import RunRecord
from e2gan_bench.report.compare.gates import Gate, resolve_gates
from e2gan_bench.report.compare.sides import Side, as_side
from e2gan_bench.report.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, paired_records
from e2gan_bench.report.stats.gate import GATE_ALPHA, REGRESSED, decide, paired_test

_STATUS_MARK = {"pass": "✓", REGRESSED: "✗", "inconclusive": "?", "not gated": "—", "not comparable": "n/c",
                "not measured": "∅"}


@dataclass
class MetricResult:
    metric: str
    higher_is_better: bool
    status: str  # pass | regressed | inconclusive | not gated | not comparable | not measured
    n: int = 0  # units (concepts; the seeds of one concept when there is one)
    level: str = "concept"
    n_concepts: int = 0
    n_seeds: int = 0
    n_runs: int = 0  # matched (concept, seed) pairs with a value on both sides
    reference_mean: float | None = None
    candidate_mean: float | None = None
    diff: float | None = None  # mean over units of (candidate - reference)
    diff_pct: float | None = None
    ci_t: tuple[float, float] | None = None
    ci_bootstrap: tuple[float, float] | None = None
    worsening: float | None = None  # diff signed so that > 0 means the candidate is worse
    p_worse: float | None = None  # one-sided p of "candidate worse"
    p_holm: float | None = None  # Holm-adjusted across the gated metrics with run-to-run noise
    gate: str | None = None
    tolerance: float | None = None
    backend_reference: str | None = None
    backend_candidate: str | None = None
    note: str = ""

    @property
    def mark(self) -> str:
        return _STATUS_MARK[self.status]


@dataclass
class Unmatched:
    side: str  # REFERENCE / CANDIDATE
    concept: str
    seed: int
    reason: str


@dataclass
class Comparison:
    reference: Side
    candidate: Side
    confidence: float
    matched: list[tuple[str, int]]
    unmatched: list[Unmatched]
    metrics: list[MetricResult]
    errors: dict[str, str]  # gated metric → why it cannot be evaluated (→ exit 2)
    gates: dict[str, Gate]
    bootstrap_resamples: int = BOOTSTRAP_RESAMPLES
    alpha: float = GATE_ALPHA
    calibration: dict[str, Any] | None = None  # the suite's measured false-alarm rate and detectable effect

    @property
    def failed(self) -> list[MetricResult]:
        return [m for m in self.metrics if m.status == REGRESSED]

    @property
    def inconclusive(self) -> list[MetricResult]:
        return [m for m in self.metrics if m.status == "inconclusive"]

    @property
    def verdict(self) -> str:
        if self.errors:
            return "CANNOT GATE"
        return "REGRESSED" if self.failed else "PASS"

    @property
    def exit_code(self) -> int:
        return 2 if self.errors else (1 if self.failed else 0)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "confidence": self.confidence,
            "alpha": self.alpha,
            "calibration": self.calibration,
            "bootstrap_resamples": self.bootstrap_resamples,
            "bootstrap_seed": BOOTSTRAP_SEED,
            "reference": {k: v for k, v in asdict(self.reference).items() if k != "records"},
            "candidate": {k: v for k, v in asdict(self.candidate).items() if k != "records"},
            "matched": [{"concept": c, "seed": s} for c, s in self.matched],
            "unmatched": [asdict(u) for u in self.unmatched],
            "metrics": [asdict(m) for m in self.metrics],
            "errors": dict(self.errors),
            "gates": {m: {"abs": g.abs, "rel": g.rel, "explicit": g.explicit} for m, g in self.gates.items()},
            "rule": RULE,
        }
        return _finite(d)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _index(side: Side) -> tuple[dict[tuple[str, int], RunRecord], list[Unmatched]]:
    ok: dict[tuple[str, int], RunRecord] = {}
    failed: dict[tuple[str, int], RunRecord] = {}
    for r in side.records:
        k = (r.concept, r.seed)
        if r.status != "ok":
            failed[k] = r
            continue
        if k in ok and ok[k].key != r.key:
            hint = " — pick one suite with --suite" if side.kind == "results store" else ""
            raise UserError(f"{side.role}: method '{side.method}' has more than one run for concept "
                            f"'{r.concept}' seed {r.seed} (keys {ok[k].key}, {r.key}){hint}", field=side.role,
                            value=side.path)
        ok[k] = r
    unmatched = [Unmatched(side.role, c, s, f"run failed in {side.role}: {(r.error or 'no error recorded')[:120]}")
                 for (c, s), r in sorted(failed.items()) if (c, s) not in ok]
    return ok, unmatched


def _backend_mismatch(pairs: list[tuple[RunRecord, RunRecord]], m: str,
                      also: tuple[str, ...]) -> tuple[str | None, str | None, str]:
    """(reference backends, candidate backends, reason or '') for one metric over the matched pairs."""
    bset = sorted({str(b.backends.get(m)) for b, _ in pairs})
    cset = sorted({str(c.backends.get(m)) for _, c in pairs})
    bb, cb = ", ".join(bset), ", ".join(cset)
    for b, c in pairs:
        if b.backends.get(m) != c.backends.get(m):
            return bb, cb, f"not comparable: backends differ ({b.backends.get(m) or 'unrecorded'} vs " \
                           f"{c.backends.get(m) or 'unrecorded'})"
        for extra in also:
            xb, xc = b.backends.get(extra), c.backends.get(extra)
            if xb is not None and xc is not None and xb != xc:
                return bb, cb, f"not comparable: backends differ ({extra}: {xb} vs {xc})"
    return (None if bset == ["None"] else bb), (None if cset == ["None"] else cb), ""


Pairs = list[tuple[RunRecord, RunRecord]]


def _match(ref_side: Side, cside: Side) -> tuple[Pairs, list[tuple[str, int]], list[Unmatched]]:
    ref_idx, unmatched = _index(ref_side)
    cidx, cun = _index(cside)
    unmatched += cun
    keys = sorted(set(ref_idx) & set(cidx))
    for c, s in sorted(set(ref_idx) - set(cidx)):
        why = "run failed in CANDIDATE" if any(u.concept == c and u.seed == s for u in cun) else "no run in CANDIDATE"
        unmatched.append(Unmatched("REFERENCE", c, s, why))
    for c, s in sorted(set(cidx) - set(ref_idx)):
        unmatched.append(Unmatched("CANDIDATE", c, s, "no run in REFERENCE"))
    if not keys:
        def _desc(side: Side, idx: dict[tuple[str, int], RunRecord]) -> str:
            runs = ", ".join(f"{c}/{s}" for c, s in sorted(idx)[:6]) or "no finished runs"
            return f"{side.role} method '{side.method}' ({runs})"
        raise UserError(f"no runs match by (concept, seed): {_desc(ref_side, ref_idx)} vs {_desc(cside, cidx)}",
                        field="CANDIDATE", value=cside.path)
    return [(ref_idx[k], cidx[k]) for k in keys], keys, unmatched


RULE = ("a gated metric regresses when the mean worsening over units (concepts) exceeds its tolerance and the "
        "one-sided t-test of 'candidate worse' is significant at alpha after a Holm correction across the gated "
        "metrics with run-to-run noise (deterministic counts decide exactly; one unit: the point difference); "
        "tolerance = max(abs, rel × mean |reference|)")


def _not_comparable(m: type[Metric], pairs_all: Pairs, gate: Gate | None) -> MetricResult | None:
    """The metric's result when it cannot be compared: measured on one side only (*not measured*), or backends
    differ (*not comparable*)."""
    name = m.name
    pairs = [(b, c) for b, c in pairs_all if b.value(name) is not None and c.value(name) is not None]
    res = MetricResult(name, m.higher_is_better, "not comparable", n_runs=len(pairs),
                       gate=gate.describe() if gate else None)
    if not pairs:
        r_any = any(b.value(name) is not None for b, _ in pairs_all)
        c_any = any(c.value(name) is not None for _, c in pairs_all)
        res.status = "not measured"
        res.note = ("not measured in CANDIDATE" if not c_any else "not measured in REFERENCE" if not r_any else
                    "not measured on the same runs in REFERENCE and CANDIDATE")
    else:
        res.backend_reference, res.backend_candidate, res.note = _backend_mismatch(pairs, name, m.compare_also)
    return res if res.note else None


def _paired_metric(m: type[Metric], pairs_all: Pairs, gate: Gate | None, confidence: float) -> tuple[MetricResult, Any]:
    """Paired statistics of one comparable metric (its gate is decided afterwards, with the others: Holm)."""
    pairs = [(b, c) for b, c in pairs_all if b.value(m.name) is not None and c.value(m.name) is not None]
    res = MetricResult(m.name, m.higher_is_better, "not gated", n_runs=len(pairs),
                       gate=gate.describe() if gate else None)
    res.backend_reference, res.backend_candidate, _ = _backend_mismatch(pairs, m.name, m.compare_also)
    bv = {(b.concept, b.seed): float(b.value(m.name)) for b, _ in pairs}
    cv = {(c.concept, c.seed): float(c.value(m.name)) for _, c in pairs}
    u = paired_records(bv, cv)
    test = paired_test(u, m.higher_is_better, confidence)
    ref_units = paired_records({k: 0.0 for k in bv}, bv).values  # the reference side's own concept means
    cand_units = paired_records({k: 0.0 for k in cv}, cv).values
    scale = float(np.abs(np.array(list(bv.values()))).mean())
    res.n, res.level, res.n_concepts, res.n_seeds = u.n, u.level, u.n_concepts, u.n_seeds
    res.reference_mean, res.candidate_mean = float(ref_units.mean()), float(cand_units.mean())
    res.diff = test.interval.mean
    res.diff_pct = 100.0 * res.diff / scale if scale > 0 else None
    res.ci_t, res.ci_bootstrap = test.interval.bounds, test.bootstrap
    res.worsening, res.p_worse = test.worsening, test.p_worse
    notes = [f"measured on {len(pairs)} of {len(pairs_all)} matched runs"] if len(pairs) < len(pairs_all) else []
    if u.n == 1:
        notes.append("one unit: no interval, no test")
    elif u.level != "concept":
        notes.append("one concept: its seeds are the units (a conclusion about this concept only)")
    res.note = "; ".join(notes)
    return res, test


def compare(reference: Side | list[RunRecord], candidate: Side | list[RunRecord], gates: dict[str, Gate] | None = None,
            confidence: float = 0.95, alpha: float = GATE_ALPHA,
            calibration: dict[str, Any] | None = None) -> Comparison:
    """Pair runs by (concept, seed), compare every metric measured on both sides and apply the gates.

    ``gates`` defaults to the metrics' default gates. Raises UserError when no run matches."""
    if not (0.0 < confidence < 1.0):
        raise UserError("confidence must be between 0 and 1 (exclusive)", field="--confidence", value=confidence)
    if not (0.0 < alpha < 1.0):
        raise UserError("alpha must be between 0 and 1 (exclusive)", field="--alpha", value=alpha)
    gates = resolve_gates() if gates is None else gates
    ref_side, cside = as_side(reference, "REFERENCE"), as_side(candidate, "CANDIDATE")
    pairs_all, keys, unmatched = _match(ref_side, cside)
    results: list[MetricResult] = []
    tests: dict[str, Any] = {}
    tolerances: dict[str, float] = {}
    errors: dict[str, str] = {}
    for m in all_metrics():
        gate = gates.get(m.name)
        if not any(b.value(m.name) is not None or c.value(m.name) is not None for b, c in pairs_all):
            if gate is not None and gate.explicit:
                errors[m.name] = "measured on neither side"
                results.append(MetricResult(m.name, m.higher_is_better, "not measured", gate=gate.describe(),
                                            note="measured on neither side"))
            continue
        res = _not_comparable(m, pairs_all, gate)
        if res is not None:
            if gate is not None:
                errors[m.name] = res.note.removeprefix("not comparable: ")
        else:
            res, tests[m.name] = _paired_metric(m, pairs_all, gate, confidence)
            if gate is not None:
                tolerances[m.name] = gate.tolerance(float(np.abs([b.value(m.name) for b, c in pairs_all
                                                                  if b.value(m.name) is not None
                                                                  and c.value(m.name) is not None]).mean()))
        results.append(res)
    decide(tests, tolerances, alpha)
    for res in results:
        t = tests.get(res.metric)
        if t is not None and t.status is not None:
            res.status, res.tolerance, res.p_holm = t.status, t.tolerance, t.p_holm
            if t.status == "inconclusive":
                res.note = "; ".join(x for x in (res.note, "worse than tolerance but not significant: add concepts")
                                     if x)
    return Comparison(ref_side, cside, confidence, keys, unmatched, results, errors, gates, alpha=alpha,
                      calibration=calibration)
