"""``compare``: the regression gate between two result sets (BASE and CANDIDATE).

One method is taken from each side (:mod:`.sides`) and its runs are paired by (concept, seed); failed runs and
runs without a counterpart are listed as unmatched and left out.

Per metric measured on both sides, for the matched pairs ``d_i = candidate_i - base_i``: the mean difference, a
two-sided Student-t interval and a paired bootstrap interval (:mod:`.stats`). With one pair there is no interval.
The relative change is ``mean(d) / mean(|base_i|)``. A metric whose backend differs between the sides (see
``RunRecord.backends``) is not compared: "not comparable: backends differ".

Gate rule. Let the *worsening* be the mean difference signed so that positive means "candidate worse" (each
metric says which direction is better). A gated metric **fails** when both

1. the mean worsening is larger than the tolerance (practical significance; :mod:`.gates`), and
2. the confidence interval lies entirely on the worse side of zero, i.e. the worsening is not explained by
   run-to-run noise (a one-sided test at level (1 + confidence) / 2). With n = 1 the point difference decides.

When (1) holds but (2) does not, the metric is *inconclusive* ("?"): it does not fail the gate, and the verdict
says to add seeds or concepts. Why: the tolerance says how much worse is too much, the interval says whether the
difference is real. Asking that the interval's better-side bound be beyond the tolerance would count the noise
twice (with 3 pairs, t = 4.30, it misses regressions several times the tolerance); gating on the point estimate
alone would fail an equal candidate whenever noise pushes one mean past the tolerance. Deterministic metrics
(bytes, parameters, FLOPs) have zero spread, so their interval is a point and any worsening beyond the tolerance
fails.

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
from e2gan_bench.report.gates import Gate, resolve_gates
from e2gan_bench.report.sides import Side, as_side
from e2gan_bench.report.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, paired_stats

_STATUS_MARK = {"pass": "✓", "fail": "✗", "inconclusive": "?", "not gated": "—", "not comparable": "n/c",
                "not measured": "—"}


@dataclass
class MetricResult:
    metric: str
    higher_is_better: bool
    status: str  # pass | fail | inconclusive | not gated | not comparable | not measured
    n: int = 0
    base_mean: float | None = None
    candidate_mean: float | None = None
    diff: float | None = None  # mean(candidate - base)
    diff_pct: float | None = None
    ci_t: tuple[float, float] | None = None
    ci_bootstrap: tuple[float, float] | None = None
    worsening: float | None = None  # diff signed so that > 0 means the candidate is worse
    gate: str | None = None
    tolerance: float | None = None
    backend_base: str | None = None
    backend_candidate: str | None = None
    note: str = ""

    @property
    def mark(self) -> str:
        return _STATUS_MARK[self.status]


@dataclass
class Unmatched:
    side: str  # BASE / CANDIDATE
    concept: str
    seed: int
    reason: str


@dataclass
class Comparison:
    base: Side
    candidate: Side
    confidence: float
    matched: list[tuple[str, int]]
    unmatched: list[Unmatched]
    metrics: list[MetricResult]
    errors: dict[str, str]  # gated metric → why it cannot be evaluated (→ exit 2)
    gates: dict[str, Gate]
    bootstrap_resamples: int = BOOTSTRAP_RESAMPLES

    @property
    def failed(self) -> list[MetricResult]:
        return [m for m in self.metrics if m.status == "fail"]

    @property
    def inconclusive(self) -> list[MetricResult]:
        return [m for m in self.metrics if m.status == "inconclusive"]

    @property
    def verdict(self) -> str:
        if self.errors:
            return "CANNOT GATE"
        return "FAIL" if self.failed else "PASS"

    @property
    def exit_code(self) -> int:
        return 2 if self.errors else (1 if self.failed else 0)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "confidence": self.confidence,
            "bootstrap_resamples": self.bootstrap_resamples,
            "bootstrap_seed": BOOTSTRAP_SEED,
            "base": {k: v for k, v in asdict(self.base).items() if k != "records"},
            "candidate": {k: v for k, v in asdict(self.candidate).items() if k != "records"},
            "matched": [{"concept": c, "seed": s} for c, s in self.matched],
            "unmatched": [asdict(u) for u in self.unmatched],
            "metrics": [asdict(m) for m in self.metrics],
            "errors": dict(self.errors),
            "gates": {m: {"abs": g.abs, "rel": g.rel, "explicit": g.explicit} for m, g in self.gates.items()},
            "rule": ("fail when mean worsening > tolerance and the confidence interval lies entirely on the "
                     "worse side of zero (n=1: point difference); tolerance = max(abs, rel × mean |base|)"),
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
    """(base backends, candidate backends, reason or '') for one metric over the matched pairs."""
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


def _match(bside: Side, cside: Side) -> tuple[Pairs, list[tuple[str, int]], list[Unmatched]]:
    bidx, unmatched = _index(bside)
    cidx, cun = _index(cside)
    unmatched += cun
    keys = sorted(set(bidx) & set(cidx))
    for c, s in sorted(set(bidx) - set(cidx)):
        why = "run failed in CANDIDATE" if any(u.concept == c and u.seed == s for u in cun) else "no run in CANDIDATE"
        unmatched.append(Unmatched("BASE", c, s, why))
    for c, s in sorted(set(cidx) - set(bidx)):
        unmatched.append(Unmatched("CANDIDATE", c, s, "no run in BASE"))
    if not keys:
        def _desc(side: Side, idx: dict[tuple[str, int], RunRecord]) -> str:
            runs = ", ".join(f"{c}/{s}" for c, s in sorted(idx)[:6]) or "no finished runs"
            return f"{side.role} method '{side.method}' ({runs})"
        raise UserError(f"no runs match by (concept, seed): {_desc(bside, bidx)} vs {_desc(cside, cidx)}",
                        field="CANDIDATE", value=cside.path)
    return [(bidx[k], cidx[k]) for k in keys], keys, unmatched


def _not_comparable(m: type[Metric], pairs_all: Pairs, gate: Gate | None) -> MetricResult | None:
    """The metric's result when it cannot be compared (measured on one side only, or backends differ)."""
    name = m.name
    pairs = [(b, c) for b, c in pairs_all if b.value(name) is not None and c.value(name) is not None]
    res = MetricResult(name, m.higher_is_better, "not comparable", n=len(pairs), gate=gate.describe() if gate else None)
    if not pairs:
        b_any = any(b.value(name) is not None for b, _ in pairs_all)
        c_any = any(c.value(name) is not None for _, c in pairs_all)
        only = "BASE" if not c_any else "CANDIDATE" if not b_any else None
        res.note = f"not comparable: measured only in {only}" if only else \
            "not comparable: measured on different runs in BASE and CANDIDATE"
    else:
        res.backend_base, res.backend_candidate, res.note = _backend_mismatch(pairs, name, m.compare_also)
    return res if res.note else None


def _gate_metric(m: type[Metric], pairs_all: Pairs, gate: Gate | None, confidence: float) -> MetricResult:
    """Paired statistics of one comparable metric and its gate verdict."""
    pairs = [(b, c) for b, c in pairs_all if b.value(m.name) is not None and c.value(m.name) is not None]
    res = MetricResult(m.name, m.higher_is_better, "not gated", n=len(pairs), gate=gate.describe() if gate else None)
    res.backend_base, res.backend_candidate, _ = _backend_mismatch(pairs, m.name, m.compare_also)
    bv = np.array([b.value(m.name) for b, _ in pairs], dtype=float)
    cv = np.array([c.value(m.name) for _, c in pairs], dtype=float)
    st = paired_stats(cv, bv, confidence)
    scale = float(np.abs(bv).mean())
    res.base_mean, res.candidate_mean, res.diff = float(bv.mean()), float(cv.mean()), st.mean
    res.diff_pct = 100.0 * st.mean / scale if scale > 0 else None
    res.ci_t, res.ci_bootstrap = st.ci_t, st.ci_boot
    sign = -1.0 if m.higher_is_better else 1.0
    res.worsening = sign * st.mean
    notes = [f"measured on {len(pairs)} of {len(pairs_all)} matched runs"] if len(pairs) < len(pairs_all) else []
    if st.n == 1:
        notes.append("n=1: no interval")
    if gate is not None:
        res.tolerance = gate.tolerance(scale)
        # significant: the better-side bound of the worsening is above zero (n=1: the point difference)
        significant = res.worsening > 0 if st.ci_t is None else min(sign * st.ci_t[0], sign * st.ci_t[1]) > 0
        if res.worsening > res.tolerance and significant:
            res.status = "fail"
        elif res.worsening > res.tolerance:
            res.status = "inconclusive"
            notes.append("worse than tolerance but within noise: add seeds or concepts")
        else:
            res.status = "pass"
    res.note = "; ".join(notes)
    return res


def compare(base: Side | list[RunRecord], candidate: Side | list[RunRecord], gates: dict[str, Gate] | None = None,
            confidence: float = 0.95) -> Comparison:
    """Pair runs by (concept, seed), compare every metric measured on both sides and apply the gates.

    ``gates`` defaults to the metrics' default gates. Raises UserError when no run matches."""
    if not (0.0 < confidence < 1.0):
        raise UserError("confidence must be between 0 and 1 (exclusive)", field="--confidence", value=confidence)
    gates = resolve_gates() if gates is None else gates
    bside, cside = as_side(base, "BASE"), as_side(candidate, "CANDIDATE")
    pairs_all, keys, unmatched = _match(bside, cside)
    results: list[MetricResult] = []
    errors: dict[str, str] = {}
    for m in all_metrics():
        gate = gates.get(m.name)
        if not any(b.value(m.name) is not None or c.value(m.name) is not None for b, c in pairs_all):
            if gate is not None and gate.explicit:
                errors[m.name] = "measured on neither side"
            continue
        res = _not_comparable(m, pairs_all, gate)
        if res is not None:
            if gate is not None:
                errors[m.name] = res.note.removeprefix("not comparable: ")
        else:
            res = _gate_metric(m, pairs_all, gate, confidence)
        results.append(res)
    return Comparison(bside, cside, confidence, keys, unmatched, results, errors, gates)
