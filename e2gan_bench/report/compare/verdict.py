"""The comparison as text: the per-metric table (terminal and markdown), the headline and the markdown verdict."""

from __future__ import annotations

from e2gan_bench.metrics import all_metrics, format_number
from e2gan_bench.report.compare.comparison import RULE, Comparison, MetricResult
from e2gan_bench.report.compare.gates import default_gates
from e2gan_bench.report.compare.sides import Side
from e2gan_bench.report.stats import BOOTSTRAP_SEED


def _num(metric: str, v: float | None, signed: bool = False) -> str:
    fmts = {m.name: m.fmt for m in all_metrics()}
    return format_number(fmts.get(metric, "{:.4g}"), v, signed=signed).replace("-", "−")


def _ci(metric: str, ci: tuple[float, float] | None, n: int) -> str:
    if ci is None:
        return "n=1: no interval" if n == 1 else "–"
    return f"[{_num(metric, ci[0])}, {_num(metric, ci[1])}]"


def _units(r: MetricResult) -> str:
    if not r.n_runs:
        return "–"
    what = "concepts" if r.level == "concept" else "seeds of 1 concept"
    return f"{r.n} {what} ({r.n_runs} runs)"


def _p(p: float | None, holm: float | None) -> str:
    if p is None:
        return "–"
    return f"{p:.3g}" + (f" ({holm:.3g})" if holm is not None and holm != p else "")


def table_rows(c: Comparison) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-metric table (shared by the markdown and the terminal); the last column is
    the note."""
    pct = f"{c.confidence * 100:g}%"
    header = ["metric", "better", "units", "reference", "candidate", "Δ (cand − ref)", "Δ%", f"{pct} CI (t)",
              f"{pct} CI (bootstrap)", "p worse (Holm)", "gate (tolerance)", "verdict", "note"]
    rows = []
    for r in c.metrics:
        gate = "not gated"
        if r.gate is not None:
            gate = r.gate + (f" → {_num(r.metric, r.tolerance)}" if r.tolerance is not None else "")
        compared = r.status not in ("not comparable", "not measured")
        rows.append([
            r.metric, "higher" if r.higher_is_better else "lower", _units(r),
            _num(r.metric, r.reference_mean), _num(r.metric, r.candidate_mean), _num(r.metric, r.diff, signed=True),
            "–" if r.diff_pct is None else f"{r.diff_pct:+.1f}%".replace("-", "−"),
            _ci(r.metric, r.ci_t, r.n) if compared else "–",
            _ci(r.metric, r.ci_bootstrap, r.n) if compared else "–",
            _p(r.p_worse, r.p_holm) if compared else "–",
            gate, f"{r.mark} {r.status}", r.note,
        ])
    return header, rows


def headline(c: Comparison) -> str:
    who = f"candidate `{c.candidate.method}` vs reference `{c.reference.method}`"
    if c.errors:
        return f"compare: CANNOT GATE — {who}: " + "; ".join(f"{m}: {e}" for m, e in c.errors.items())
    cal = f" [{calibration_text(c.calibration)}]" if c.calibration else ""
    if c.failed:
        worse = ", ".join(m.metric for m in c.failed)
        return f"compare: REGRESSED — {who}: significantly worse beyond tolerance on {worse}{cal}"
    return f"compare: PASS — {who}: no gated metric significantly worse beyond tolerance{cal}"


def calibration_text(cal: dict) -> str:
    """The suite's measured error rates, beside a verdict: how often the gate fails an equal candidate, and the
    smallest regression it catches 4 times in 5."""
    parts = []
    if cal.get("false_alarm_rate") is not None:
        parts.append(f"this suite's gate: false alarms {cal['false_alarm_rate']:.1%} in A/A replicates")
    if cal.get("mde_psnr_db") is not None:
        parts.append(f"catches a PSNR drop of {cal['mde_psnr_db']:.2g} dB with 80 % power")
    if cal.get("measured"):
        parts.append(f"measured {cal['measured']}")
    return "; ".join(parts) or "calibration not measured"


def side_line(s: Side) -> str:
    where = f"`{s.path}` ({s.kind}" + (f", suite `{s.suite}`" if s.suite else "") + ")"
    n_ok = sum(r.status == "ok" for r in s.records)
    return f"**{s.role.lower()}**: {where}, method `{s.method}`, {n_ok} finished run(s)" + \
        (f", {len(s.records) - n_ok} failed" if len(s.records) > n_ok else "")


def gate_rule_lines(c: Comparison) -> list[str]:
    pct = f"{c.confidence * 100:g}%"
    lines = [
        f"Units: the runs are paired by (concept, seed), the differences averaged within each concept, and the "
        f"concepts are the units. Rule: {RULE} (alpha = {c.alpha:g}). Worse than tolerance but not significant is "
        f"reported as `?` (inconclusive) and does not fail. Intervals: {pct} Student-t over units, and a "
        f"hierarchical bootstrap (concepts, then seeds; {c.bootstrap_resamples} resamples, seed {BOOTSTRAP_SEED}) "
        "shown for reference.",
        "",
        "Gates in effect: " + (", ".join(f"`{m}` {g.describe()}" + (" (set by --gate)" if g.explicit else "")
                                         for m, g in c.gates.items()) or "none") + ".",
    ]
    off = [m for m in default_gates() if m not in c.gates]
    if off:
        lines.append("Default gates switched off: " + ", ".join(f"`{m}`" for m in off) + ".")
    return lines


def default_gate_table() -> list[str]:
    """Every registered metric's default tolerance and the reason for it (also the README's metric table)."""
    rows = ["| metric | default tolerance | why |", "|---|---|---|"]
    rows += [f"| {m.name} | {m.gate.describe()} | {m.gate.reason} |" for m in all_metrics()]
    return rows


def to_markdown(c: Comparison) -> str:
    header, rows = table_rows(c)
    md = [f"# {headline(c)}", "", f"- {side_line(c.reference)}", f"- {side_line(c.candidate)}"]
    for s in (c.reference, c.candidate):
        md += [f"- note ({s.role.lower()}): {n}" for n in s.notes]
    matched = ", ".join(f"{cc}/{s}" for cc, s in c.matched)
    md += [f"- matched runs (concept/seed): **{len(c.matched)}** — {matched}", ""]
    md += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    md += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    md.append("")
    md.append("✓ within tolerance · ✗ regressed (significantly worse beyond tolerance) · ? worse than tolerance "
              "but not significant · — not gated · n/c not comparable (backends differ) · ∅ not measured")
    if c.calibration:
        md += ["", f"**Gate calibration of this suite**: {calibration_text(c.calibration)}."]
    md.append("")
    nc = [m for m in c.metrics if m.status in ("not comparable", "not measured")]
    if nc or c.errors:
        md += ["## Not comparable or not measured", ""]
        md += [f"- `{m.metric}`: {m.note}" + (f" — reference {m.backend_reference}, candidate {m.backend_candidate}"
                                              if "backends" in m.note else "") for m in nc]
        md += [f"- **cannot gate `{m}`: {e}** (compare without it: `--gate {m}:off`)" for m, e in c.errors.items()]
        md.append("")
    md += ["## Unmatched runs", ""]
    md += [f"- {u.side}: `{u.concept}` seed {u.seed} — {u.reason}" for u in c.unmatched] or ["_none_"]
    md += ["", "## Gate rule", "", *gate_rule_lines(c), "", "Default gates (reasoned for the CPU suites' noise; "
           "override with `--gate METRIC:abs=X`, `METRIC:rel=Y` or `METRIC:off`):", "", *default_gate_table(), ""]
    return "\n".join(md)
