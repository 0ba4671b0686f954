"""The regression gate's rule, on paired units (:mod:`.units`).

For each gated metric, the *worsening* is the mean paired difference over units (concepts), signed so that
positive means "candidate worse". The metric **regresses** when both

1. the worsening is larger than its tolerance (practical significance), and
2. the one-sided t-test of "worsening > 0" over the units is significant at ``alpha`` after a Holm correction
   across the gated metrics that have run-to-run noise (statistical significance, family-wise).

Deterministic metrics (bytes, parameters, FLOPs: every unit the same difference) carry no noise: they regress
when the worsening exceeds the tolerance, and are left out of the Holm family. With a single unit there is no
test: the point difference decides, and the result says so. When (1) holds and (2) does not the metric is
*inconclusive*: it does not fail the gate.
"""

from __future__ import annotations

from dataclasses import dataclass

from e2gan_bench.report.stats.inference import holm
from e2gan_bench.report.stats.intervals import Interval, constant, hierarchical_bootstrap, one_sided_p, t_interval
from e2gan_bench.report.stats.units import Units

#: Family-wise one-sided level of the gate (A/A false alarms are measured against it: reports/gate-validation).
GATE_ALPHA = 0.05

PASS, REGRESSED, INCONCLUSIVE = "pass", "regressed", "inconclusive"


@dataclass
class GateTest:
    """One metric's paired statistics and, when it is gated, the gate's decision."""

    units: Units
    interval: Interval  # of mean(candidate - base) over units
    bootstrap: tuple[float, float] | None
    worsening: float  # > 0: candidate worse
    p_worse: float | None  # one-sided p of "worsening > 0"; None with one unit
    deterministic: bool  # every unit the same difference
    tolerance: float | None = None
    p_holm: float | None = None
    status: str | None = None  # PASS | REGRESSED | INCONCLUSIVE when gated


def paired_test(u: Units, higher_is_better: bool, confidence: float) -> GateTest:
    d = u.values.to_numpy(dtype=float)
    iv = t_interval(d, confidence)
    sign = -1.0 if higher_is_better else 1.0
    det = len(d) >= 2 and constant(d)
    p = one_sided_p(sign * d, "greater") if len(d) >= 2 else None
    return GateTest(u, iv, hierarchical_bootstrap(u.groups, confidence), sign * iv.mean, p, det)


def decide(tests: dict[str, GateTest], tolerances: dict[str, float], alpha: float = GATE_ALPHA) -> None:
    """Set ``tolerance``, ``p_holm`` and ``status`` of every gated test (``tolerances``: metric -> tolerance)."""
    family = {m: t.p_worse for m, t in tests.items() if m in tolerances and not t.deterministic}
    adjusted = holm(family)
    for m, t in tests.items():
        if m not in tolerances:
            continue
        t.tolerance = tolerances[m]
        t.p_holm = adjusted.get(m, t.p_worse)
        beyond = t.worsening > t.tolerance
        if t.units.n < 2 or t.deterministic:
            significant = t.worsening > 0
        else:
            significant = t.p_holm is not None and t.p_holm < alpha
        t.status = REGRESSED if beyond and significant else INCONCLUSIVE if beyond else PASS
