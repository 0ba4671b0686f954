"""Regression-gate tolerances: the defaults (each metric's ``gate``, :mod:`e2gan_bench.metrics`) and the
``--gate METRIC:SPEC`` overrides.

A tolerance is ``abs=X`` (metric units), ``rel=Y`` (fraction of ``mean(|reference|)`` over the pairs), or both
(``abs=X,rel=Y``: the larger one applies). ``--gate METRIC:X`` means ``abs=X``, ``--gate METRIC:off`` removes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from e2gan_bench.errors import UserError
from e2gan_bench.metrics import Tolerance, all_metrics

FORMAT = "METRIC:abs=X, METRIC:rel=Y, METRIC:abs=X,rel=Y, METRIC:X or METRIC:off"


@dataclass
class Gate:
    """Tolerance on the mean worsening of one metric: max(abs, rel × mean |reference|)."""

    metric: str
    abs: float | None = None
    rel: float | None = None
    explicit: bool = False

    def tolerance(self, scale: float) -> float:
        return max(self.abs or 0.0, (self.rel or 0.0) * abs(scale))

    def describe(self) -> str:
        return Tolerance(self.abs, self.rel).describe()


def default_gates() -> dict[str, Gate]:
    """The registered metrics' default gates (metrics whose tolerance is unset are not gated)."""
    return {m.name: Gate(m.name, m.gate.abs, m.gate.rel) for m in all_metrics() if m.gate.gated}


def parse_gate(text: str) -> Gate | None:
    """``"psnr:abs=0.5"``, ``"kid:rel=0.25"``, ``"kid:abs=0.01,rel=0.2"``, ``"psnr:0.5"`` (abs) → Gate;
    ``"train_seconds:off"`` → None (metric not gated). Raises UserError naming ``--gate`` and the value."""
    metric, sep, spec = text.partition(":")
    metric, spec = metric.strip(), spec.strip()
    if not sep or not metric or not spec:
        raise UserError("malformed gate", field="--gate", value=text, allowed=FORMAT)
    names = [m.name for m in all_metrics()]
    if metric not in names:
        raise UserError(f"unknown metric '{metric}'", field="--gate", value=text, allowed=", ".join(names))
    if spec.lower() in ("off", "none"):
        return None
    gate = Gate(metric, explicit=True)
    for part in spec.split(","):
        kind, eq, num = part.partition("=")
        kind, num = kind.strip().lower(), num.strip()
        if not eq:
            kind, num = "abs", part.strip()
        if kind not in ("abs", "rel"):
            raise UserError(f"unknown tolerance kind '{kind}'", field="--gate", value=text, allowed=FORMAT)
        try:
            x = float(num)
        except ValueError:
            raise UserError(f"not a number: '{num}'", field="--gate", value=text, allowed=FORMAT) from None
        if not math.isfinite(x) or x < 0:
            raise UserError("tolerance must be a finite number ≥ 0", field="--gate", value=text)
        setattr(gate, kind, x)
    return gate


def resolve_gates(specs: list[str] | None = None) -> dict[str, Gate]:
    """Default gates overridden by ``--gate`` specs (the last one per metric wins)."""
    gates = default_gates()
    for s in specs or []:
        metric = s.partition(":")[0].strip()
        g = parse_gate(s)
        if g is None:
            gates.pop(metric, None)
        else:
            gates[metric] = g
    return gates


def metric_table() -> str:
    """The README's metric table (``e2gan-bench metrics list --markdown``): one row per registered metric."""
    rows = ["| metric | better | what | measured | default gate | why |", "|---|---|---|---|---|---|"]
    for m in all_metrics():
        stage = "while training" if m.stage == "train" else "at evaluation"
        rows.append(f"| `{m.name}` | {'higher' if m.higher_is_better else 'lower'} | {m.what} | {stage} | "
                    f"{m.gate.describe()} | {m.gate.reason} |")
    return "\n".join(rows)


def suite_gate(suite: str | None) -> tuple[list[str], float | None, dict | None]:
    """A suite's own ``gate:`` settings — its tolerances (``--gate`` syntax), level and calibration — when
    ``suite`` names a readable suite (built in, or a YAML path); nothing otherwise."""
    if not suite:
        return [], None, None
    from e2gan_bench.resources import find_suite

    try:
        s, _ = find_suite(suite)
    except UserError:
        return [], None, None
    cal = s.gate.calibration.model_dump() if s.gate.calibration else None
    return list(s.gate.tolerances), s.gate.alpha, cal
