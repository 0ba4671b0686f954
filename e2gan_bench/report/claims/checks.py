"""The checks behind the claims table (:mod:`.claims`): each turns one suite's runs into an :class:`Outcome` — a
verdict, the numbers that decided it, and the metrics it read (whose backends the table names).

Three kinds, all paired over the (concept, seed) units both methods ran, on finished runs only:

* :class:`Ordering` — "A is better than B" (or "A ≈ B") on quality: the mean paired difference and its 95 %
  Student-t interval (:func:`e2gan_bench.report.tables.effects.quality_effect`). The first metric of ``metrics``
  that both methods measured with one backend decides; the others are reported.
* :class:`NonInferior` — "A is about as good as B": A is not worse than B by more than the metric's default
  regression-gate tolerance (:func:`e2gan_bench.report.compare.gates.default_gates`), judged on the interval.
* :class:`Ratio` — a cost ratio ``median(num) / median(den)`` over runs; its direction decides, the paired
  per-unit ratios give a 95 % interval (geometric mean; a noisy wall clock can make a ratio > 1 inconclusive),
  and the magnitude is set beside the paper's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from e2gan_bench.metrics import metric as metric_def
from e2gan_bench.report.compare.gates import default_gates
from e2gan_bench.report.stats import sooner, t_interval, units
from e2gan_bench.report.stats.comparable import mixed_backends
from e2gan_bench.report.tables.effects import quality_effect

#: Counts that do not vary between runs of one method at one size (a ratio of them is exact).
DETERMINISTIC = ("train_flops", "trainable_params", "stored_bytes", "peak_memory_bytes")

HOLDS = "holds"
FAILS = "does not hold"
NO_DIFF = "does not hold (no significant difference)"
INCONCLUSIVE = "inconclusive"
NOT_MEASURED = "not measured here"
#: Worst first: a claim with several checks gets the worst of their verdicts.
SEVERITY = (FAILS, NO_DIFF, INCONCLUSIVE, NOT_MEASURED, HOLDS)

#: Quality metrics in the order that decides: the paper's FID first, then KID, then PSNR.
QUALITY = ("fid", "kid", "psnr")
#: Costs measured over the whole step budget (equal for every method of a suite), not to a quality target.
EQUAL_STEPS = ("train_seconds", "train_flops")


@dataclass
class Outcome:
    verdict: str
    reason: str
    headline: str = ""  # the deciding number, short (the summary table's "ours" cell)
    numbers: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)  # metrics read (their backends are listed)


def worst(verdicts: list[str]) -> str:
    return min(verdicts, key=SEVERITY.index) if verdicts else NOT_MEASURED


def _higher(metric: str) -> bool:
    return metric_def(metric).higher_is_better  # an unknown metric is an error, never "higher is better"


def _f(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return f"{x:.{digits}g}"


def methods_with_runs(df: pd.DataFrame) -> set[str]:
    return set(df["method"]) if not df.empty else set()


def _backend_clash(df: pd.DataFrame, methods: tuple[str, ...], metric: str) -> list[str]:
    return mixed_backends(df, [metric], methods).get(metric, [])


def _measured(df: pd.DataFrame, methods: tuple[str, ...], metric: str) -> bool:
    return metric in df and all(df.loc[df["method"] == m, metric].notna().any() for m in methods)


def _effect_text(e: dict[str, Any]) -> str:
    return (f"{e['metric']} {_f(e['mean_a'])} vs {_f(e['mean_b'])} (Δ {_f(e['diff'], 3)} "
            f"[{_f(e['lo'], 3)}, {_f(e['hi'], 3)}], n={e['units']})")


def _effects(df: pd.DataFrame, a: str, b: str, metrics: tuple[str, ...]) -> tuple[list[dict[str, Any]], list[str]]:
    """quality_effect for each metric both measured (one backend each), and notes on those left out."""
    rows, notes = [], []
    for m in metrics:
        if not _measured(df, (a, b), m):
            continue
        clash = _backend_clash(df, (a, b), m)
        if clash:
            notes.append(f"{m} not compared: backends differ ({', '.join(clash)})")
            continue
        e = quality_effect(df, a, b, m, _higher(m))
        if e.get("units", 0) == 0:
            notes.append(f"{m}: no (concept, seed) unit in common")
            continue
        rows.append({**e, "higher_is_better": _higher(m), "text": _effect_text(e)})
    return rows, notes


@dataclass(frozen=True)
class Ordering:
    """``a`` better than ``b`` (``relation="better"``) or not significantly different (``"similar"``)."""

    a: str
    b: str
    relation: str = "better"
    metrics: tuple[str, ...] = QUALITY

    @property
    def methods(self) -> tuple[str, ...]:
        return (self.a, self.b)

    def describe(self) -> str:
        return f"{self.a} {'<' if self.relation == 'better' else '≈'} {self.b}"

    def evaluate(self, df: pd.DataFrame) -> Outcome:
        rows, notes = _effects(df, self.a, self.b, self.metrics)
        if not rows:
            return Outcome(NOT_MEASURED, f"{self.describe()}: no quality metric measured by both"
                           + (f" ({'; '.join(notes)})" if notes else ""))
        e = rows[0]
        for r in rows:
            r["decides"] = r is e
        n, verdict = e["units"], e["verdict"]
        what = f"{self.describe()} on {e['metric']} ({'higher' if e['higher_is_better'] else 'lower'} is better)"
        if n < 2:
            out, why = INCONCLUSIVE, f"{what}: {n} unit, no interval"
        elif self.relation == "similar":
            out = HOLDS if verdict == "no significant difference" else FAILS
            why = (f"{what}: consistent — no significant difference (which does not prove equality)"
                   if out == HOLDS else f"{what}: significant difference ({verdict})")
        elif verdict == f"{self.a} better":
            out, why = HOLDS, f"{what}: {self.a} significantly better"
        elif verdict == f"{self.b} better":
            out, why = FAILS, f"{what}: {self.b} significantly better"
        else:
            out, why = NO_DIFF, f"{what}: the 95 % interval of the difference spans 0"
        extra = f"; {'; '.join(notes)}" if notes else ""
        return Outcome(out, why + extra, f"{self.describe()}: {e['text']}", rows, [r["metric"] for r in rows])


@dataclass(frozen=True)
class NonInferior:
    """``a`` not worse than ``b`` by more than the metric's default gate tolerance (95 % interval)."""

    a: str
    b: str
    metrics: tuple[str, ...] = QUALITY

    @property
    def methods(self) -> tuple[str, ...]:
        return (self.a, self.b)

    def describe(self) -> str:
        return f"{self.a} ≈ {self.b} (within tolerance)"

    def evaluate(self, df: pd.DataFrame) -> Outcome:
        gates = default_gates()
        rows, notes = _effects(df, self.a, self.b, tuple(m for m in self.metrics if m in gates))
        if not rows:
            return Outcome(NOT_MEASURED, f"{self.describe()}: no gated quality metric measured by both"
                           + (f" ({'; '.join(notes)})" if notes else ""))
        for r in rows:
            sign = 1.0 if not r["higher_is_better"] else -1.0  # worsening = sign × (a − b) > 0
            tol = gates[r["metric"]].tolerance(r["mean_b"])
            bounds = None if r["lo"] is None else sorted((sign * r["lo"], sign * r["hi"]))
            r.update(tolerance=tol, gate=gates[r["metric"]].describe(), worsening=sign * r["diff"],
                     worsening_ci95=bounds, decides=r is rows[0])
        e = rows[0]
        what = (f"{self.a} vs {self.b} on {e['metric']}: worsening {_f(e['worsening'], 3)} "
                f"(95 % interval {_f((e['worsening_ci95'] or [None])[0], 3)} to "
                f"{_f((e['worsening_ci95'] or [None, None])[1], 3)}) against tolerance {_f(e['tolerance'], 3)} "
                f"({e['gate']})")
        if e["units"] < 2 or e["worsening_ci95"] is None:
            out, why = INCONCLUSIVE, f"{what}: {e['units']} unit, no interval"
        elif e["worsening_ci95"][1] <= e["tolerance"]:
            out, why = HOLDS, f"{what}: not worse beyond the tolerance (the whole interval is within it)"
        elif e["worsening"] > e["tolerance"] and e["worsening_ci95"][0] > 0:
            out, why = FAILS, f"{what}: significantly worse, by more than the tolerance"
        else:
            out, why = INCONCLUSIVE, f"{what}: the interval reaches past the tolerance (more units would decide)"
        extra = f"; {'; '.join(notes)}" if notes else ""
        return Outcome(out, why + extra, f"{self.a} vs {self.b}: {e['text']}, tol {_f(e['tolerance'], 3)}", rows,
                       [r["metric"] for r in rows])


def _per_method(df: pd.DataFrame, method: str, metric: str) -> pd.Series | None:
    """One value per (concept, seed) run of ``method`` (finite, positive); None when the method has none."""
    g = df[(df["method"] == method)]
    if metric not in g or g[metric].isna().all():
        return None
    g = g[g[metric].notna()]
    vals = g[metric].astype(float)
    return pd.Series(vals.to_numpy(), index=pd.MultiIndex.from_arrays([g["concept"], g["seed"]]))


def _label(metric: str) -> str:
    return f"{metric} (at equal steps)" if metric in EQUAL_STEPS else metric


def _ratio(num: float, den: float) -> float | None:
    if math.isinf(num) and math.isinf(den):
        return None
    if den == 0:
        return None if num == 0 else math.inf
    return num / den


@dataclass(frozen=True)
class Ratio:
    """``median(num) / median(den)`` of a cost, over each method's runs; ``want`` says the paper's direction
    (``"above"``: the ratio is > 1, ``"below"``: < 1). The first of ``metrics`` both measured decides."""

    num: str
    den: str
    metrics: tuple[str, ...]
    paper: float
    want: str = "above"
    # False: one measurement per architecture copied to every run (latency in a suite) — not replicated, so it is
    # reported but cannot decide (the paper-size latency files do: LatencyFiles)
    replicated: bool = True

    @property
    def methods(self) -> tuple[str, ...]:
        return (self.num, self.den)

    def describe(self) -> str:
        return f"{self.num} / {self.den}"

    def _one(self, df: pd.DataFrame, metric: str) -> dict[str, Any] | None:
        if metric.endswith("_to_target"):
            return self._time(df, metric)
        a, b = _per_method(df, self.num, metric), _per_method(df, self.den, metric)
        if a is None or b is None:
            return None
        ma, mb = float(np.median(a)), float(np.median(b))
        row: dict[str, Any] = {"metric": metric, "num": self.num, "den": self.den, "median_num": ma,
                               "median_den": mb, "ratio": _ratio(ma, mb), "paper": self.paper, "want": self.want}
        common = a.index.intersection(b.index)
        pa, pb = a.loc[common].to_numpy(), b.loc[common].to_numpy()
        ok = np.isfinite(pa) & np.isfinite(pb) & (pa > 0) & (pb > 0)
        logs = pd.DataFrame({"concept": [c for c, _ in common[ok]], "seed": [s for _, s in common[ok]],
                             "method": "ratio", "v": np.log(pa[ok] / pb[ok])})
        u = units(logs, "ratio", "v")
        iv = t_interval(u.values.to_numpy())
        det = bool(ok.sum()) and metric in DETERMINISTIC and float(np.ptp(logs["v"])) == 0.0
        row["units"], row["concepts"], row["paired_runs"] = u.n, u.n_concepts, int(ok.sum())
        row["deterministic"] = det
        row["ci95"] = [math.exp(iv.lo), math.exp(iv.hi)] if iv.lo is not None else \
            ([math.exp(iv.mean)] * 2 if det else None)
        row["geo_mean_ratio"] = None if not u.n else math.exp(iv.mean)
        row["text"] = (f"median {_label(metric)} {_f(ma)} / {_f(mb)} = {_f(row['ratio'], 3)}× (paper {_f(self.paper, 3)}×"
                       + (f"; 95 % interval over concepts {_f(row['ci95'][0], 3)}–{_f(row['ci95'][1], 3)}"
                          if row["ci95"] and not det else "; exact (deterministic)" if det else "")
                       + f", n={u.n} concept(s))")
        return row

    def _time(self, df: pd.DataFrame, metric: str) -> dict[str, Any] | None:
        """Time to target: Kaplan–Meier medians (not reached = censored) and the censored sign test stratified by
        concept; its p-value stands in for the interval."""
        if "reached" not in df or df["reached"].isna().all():
            return None
        unit = metric.removesuffix("_to_target")
        if not {self.num, self.den} <= set(df.loc[df["reached"].notna(), "method"]):
            return None
        t = sooner(df, self.num, self.den, unit)
        r = _ratio(t.median_a, t.median_b) if not (math.isnan(t.median_a) or math.isnan(t.median_b)) else None
        reached = {m: f"{int(g['reached'].astype(bool).sum())}/{len(g)}"
                   for m, g in df[df["reached"].notna()].groupby("method") if m in (self.num, self.den)}
        row = {"metric": metric, "num": self.num, "den": self.den, "median_num": t.median_a, "median_den": t.median_b,
               "ratio": r, "paper": self.paper, "want": self.want, "units": t.n_concepts, "concepts": t.n_concepts,
               "paired_runs": t.n_runs, "p_value": t.p_value, "reached": reached, "deterministic": False,
               "concept_scores": t.concept_scores, "ci95": None}
        row["text"] = (f"Kaplan–Meier median {metric} {_f(t.median_a)} / {_f(t.median_b)} = {_f(r, 3)}× (paper "
                       f"{_f(self.paper, 3)}×; reached {reached.get(self.num, '–')} vs {reached.get(self.den, '–')}; "
                       f"censored sign test over {t.n_concepts} concept(s): p = {_f(t.p_value, 3)})")
        return row

    def evaluate(self, df: pd.DataFrame) -> Outcome:
        rows = [r for m in self.metrics if (r := self._one(df, m)) is not None]
        if not rows:
            return Outcome(NOT_MEASURED, f"{self.describe()}: none of {', '.join(self.metrics)} measured by both")
        e = rows[0]
        for r in rows:
            r["decides"] = r is e
        r_, ci, metric = e["ratio"], e["ci95"], e["metric"]
        what = f"{self.describe()} {_label(metric)}: ours {_f(r_, 3)}× vs paper {_f(self.paper, 3)}×"
        if not self.replicated:
            return Outcome(INCONCLUSIVE, f"{what}: one timing per architecture at the suite's model size, copied to "
                           "every run — not a replicated measurement, and not the paper's size (the paper-size "
                           "latency files decide: claims --latency)", f"{_f(r_, 3)}× ({_label(metric)}, suite size)",
                           rows, [r["metric"] for r in rows])
        if r_ is None:
            out, why = INCONCLUSIVE, f"{self.describe()} {metric}: the ratio cannot be formed (neither median known)"
        elif "p_value" in e:  # time to target: the censored test decides whether the direction is real
            score = float(np.mean(list(e["concept_scores"].values()))) if e["concept_scores"] else 0.0
            good = score < 0 if self.want == "above" else score > 0  # > 0: the numerator's method got there first
            p = e["p_value"]
            if p is None:
                out, why = INCONCLUSIVE, f"{what}: one concept, no test"
            elif p >= 0.05:
                out, why = NO_DIFF, f"{what}: not significant (censored sign test over concepts, p = {_f(p, 3)})"
            else:
                out = HOLDS if good else FAILS
                why = f"{what}: " + ("direction holds" if good else "the other direction") + f" (p = {_f(p, 3)})"
        else:
            good = r_ > 1 if self.want == "above" else r_ < 1
            ci_good = ci is not None and (ci[0] > 1 if self.want == "above" else ci[1] < 1)
            ci_bad = ci is not None and (ci[1] < 1 if self.want == "above" else ci[0] > 1)
            if r_ == 1:
                out, why = NO_DIFF, f"{what}: equal"
            elif ci is None:
                out, why = INCONCLUSIVE, f"{what}: no interval ({e['units']} concept(s) with paired runs)"
            elif good and ci_good:
                out, why = HOLDS, f"{what}: direction holds" + (" (exact count)" if e.get("deterministic") else "")
            elif good:
                out, why = INCONCLUSIVE, f"{what}: direction holds, but the 95 % interval over concepts includes 1"
            elif ci_bad:
                out, why = FAILS, f"{what}: the other direction"
            else:
                out, why = NO_DIFF, f"{what}: the 95 % interval over concepts includes 1"
        notes = [f"{r['metric']} points the other way ({_f(r['ratio'], 3)}×)" for r in rows[1:]
                 if r["ratio"] is not None and r_ is not None and (r["ratio"] > 1) != (r_ > 1) and r["ratio"] != 1]
        if notes:
            why += "; note: " + "; ".join(notes)
        return Outcome(out, why, f"{_f(r_, 3)}× ({_label(metric)})", rows, [r["metric"] for r in rows])


@dataclass(frozen=True)
class LatencyFiles:
    """The latency claim at the paper's model size, from ``e2gan-bench latency --json`` files (each file one
    replicate: its own export and timing of both architectures): the ratio of ONNX Runtime medians per file, its
    geometric mean over files and a t interval of the log ratios (inconclusive with one file)."""

    num: str = "e2gan"
    den: str = "pix2pix-resnet"
    paper: float = 0.74

    def evaluate(self, files: list[tuple[str, dict[str, Any]]]) -> Outcome:
        ratios, sizes, rows = [], set(), []
        for name, d in files:
            by = {r.get("arch"): r for r in d.get("results") or []}
            if self.num not in by or self.den not in by:
                continue
            a, b = by[self.num], by[self.den]
            ratio = float(a["median_ms"]) / float(b["median_ms"])
            ratios.append(ratio)
            sizes.add(f"{a.get('resolution')} px")
            rows.append({"file": name, "metric": "latency median (ONNX Runtime)", "num": a["median_ms"],
                         "den": b["median_ms"], "ratio": ratio, "resolution": a.get("resolution"),
                         "threads": a.get("threads"),
                         "text": f"{name}: {_f(a['median_ms'])} / {_f(b['median_ms'])} ms = {_f(ratio, 3)}×"})
        if not ratios:
            return Outcome(NOT_MEASURED, "no latency file holds both architectures")
        iv = t_interval(np.log(ratios))
        geo = math.exp(iv.mean)
        ci = None if iv.lo is None else (math.exp(iv.lo), math.exp(iv.hi))
        what = (f"{self.num} / {self.den} latency at {', '.join(sorted(sizes))}: ours {_f(geo, 3)}× (geometric mean "
                f"over {len(ratios)} file(s)) vs paper {_f(self.paper, 3)}× (iPhone 14)")
        if ci is None:
            out, why = INCONCLUSIVE, f"{what}: one replicate, no interval"
        elif ci[1] < 1:
            out, why = HOLDS, f"{what}: faster, 95 % interval {_f(ci[0], 3)}–{_f(ci[1], 3)} below 1"
        elif ci[0] > 1:
            out, why = FAILS, f"{what}: slower, 95 % interval {_f(ci[0], 3)}–{_f(ci[1], 3)} above 1"
        else:
            out, why = NO_DIFF, f"{what}: 95 % interval {_f(ci[0], 3)}–{_f(ci[1], 3)} includes 1"
        return Outcome(out, why + " — a desktop ONNX Runtime proxy, not a phone", f"{_f(geo, 3)}× (paper size)", rows,
                       ["latency_ms"])
