"""The tuning protocol (``e2gan-bench tune``), after MLCommons AlgoPerf's external-tuning rules.

Every method declares its search space (``tuning:`` in its YAML: dotted setting -> range or choices) and gets the
**same number of trials**: its current settings (trial 0) and ``n - 1`` quasi-random draws from its space (a
scrambled Sobol sequence, ``scipy.stats.qmc``, with a fixed seed, so the draws are reproducible and spread evenly).
The trials run on a tuning suite whose concepts are disjoint from every suite that reports results (checked), and
are scored on the validation split — never on the test split the reports use.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

from scipy.stats import qmc

from e2gan_bench.config import Method, MethodEntry, Suite
from e2gan_bench.errors import ConfigError
from e2gan_bench.resources import Catalog, find_suite, suite_names

#: Suites that report no results of their own (so the tuning concepts may overlap them).
NOT_REPORTED = ("smoke", "gpu-check")
TUNING_SEED = 0


@dataclass(frozen=True)
class Trial:
    method: str  # the method tuned
    index: int  # 0: its current settings
    label: str  # the trial's method label in the tuning suite
    config: dict[str, Any]  # dotted setting -> value

    def overrides(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for path, v in self.config.items():
            node = out
            *parents, leaf = path.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = v
        return out


def _current(method: Method, path: str) -> Any:
    node: Any = method.model_dump()
    for p in path.split("."):
        node = node.get(p) if isinstance(node, dict) else None
    if path == "lora.alpha" and node is None:
        return method.lora.rank  # alpha unset means alpha = rank
    return node


def draw_trials(method: Method, n: int, seed: int = TUNING_SEED) -> list[Trial]:
    """Trial 0 = the method's current values of its tuned settings; trials 1..n-1 = Sobol draws from its space."""
    dims = sorted(method.tuning.items())
    if not dims:
        return [Trial(method.name, 0, f"{method.name}-t0", {})]
    trials = [Trial(method.name, 0, f"{method.name}-t0", {p: _current(method, p) for p, _ in dims})]
    if n > 1:
        # a power-of-2 block of the sequence (Sobol's balance), of which the first n - 1 points
        points = qmc.Sobol(d=len(dims), scramble=True, seed=seed).random_base2(max(0, math.ceil(math.log2(n - 1))))
        points = points[: n - 1]
        for i, u in enumerate(points, start=1):
            trials.append(Trial(method.name, i, f"{method.name}-t{i}",
                                {p: d.value(float(x)) for (p, d), x in zip(dims, u, strict=True)}))
    return trials


def check_disjoint(suite: Suite, file: str) -> None:
    """The tuning concepts appear in no suite that reports results (nor in its base model)."""
    for name in suite_names():
        if name == suite.name or name in NOT_REPORTED or name.startswith(("targets-", "tuning")):
            continue
        other, _ = find_suite(name)
        shared = set(suite.concepts) & (set(other.concepts) | set(other.base.concepts))
        if shared:
            raise ConfigError(f"tuning concepts must be disjoint from the suites that report results; suite "
                              f"'{name}' uses it", file=file, field="concepts", value=sorted(shared)[0])


def tuning_methods(suite: Suite, catalog: Catalog, n: int, file: str) -> tuple[list[MethodEntry], list[Trial]]:
    """The tuning suite's methods: every trial of every method with a search space (reference methods as they are)."""
    entries: list[MethodEntry] = []
    trials: list[Trial] = []
    for i, e in enumerate(suite.methods):
        m = catalog.method(e.starts_from, file=file, field=f"methods[{i}]")
        if m.reference or not m.tuning:
            entries.append(e)
            continue
        for t in draw_trials(m, n):
            trials.append(Trial(e.name, t.index, f"{e.name}-t{t.index}", t.config))
            entries.append(MethodEntry(name=f"{e.name}-t{t.index}", method=e.starts_from,
                                       overrides=_merge(copy.deepcopy(e.overrides), t.overrides())))
    if not trials:
        raise ConfigError("no method of this suite declares a search space (tuning: in its method file)", file=file,
                          field="methods")
    return entries, trials


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    for k, v in b.items():
        a[k] = _merge(a.get(k, {}), v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
    return a
