"""``compare``: the regression gate between two result sets (BASE and CANDIDATE).

Each side is a results folder written by ``e2gan-bench run`` (it holds ``results.sqlite``) or an export
written by ``e2gan-bench report`` (a ``runs.csv`` file, or a folder holding one). One method is taken from
each side (``--base-method`` / ``--candidate-method``; by default the side's only non-reference method),
and its runs are paired by (concept, seed). Failed runs and runs without a counterpart are listed as
unmatched and left out.

Statistics, per metric measured on both sides
---------------------------------------------
For the matched pairs ``d_i = candidate_i - base_i``: the mean difference, a two-sided Student-t
confidence interval on the paired differences (``--confidence``, default 95 %; ``scipy.stats.t``, n - 1
degrees of freedom) and, alongside, a paired percentile bootstrap interval (2000 resamples of the pairs,
fixed seed 0). With one pair there is no interval ("n=1: no interval"). The relative change is
``mean(d) / mean(|base_i|)`` in %. A metric whose measurement backend differs between the two sides (for
example KID computed with different feature extractors or weights, see ``RunRecord.backends``) is not
compared at all: "not comparable: backends differ".

Gate rule
---------
Let the *worsening* be the mean difference signed so that positive means "candidate worse" (``METRICS``
says whether higher is better). A gated metric **fails** when both

1. the mean worsening is larger than the tolerance (practical significance), and
2. the confidence interval lies entirely on the worse side of zero, i.e. the worsening is not explained by
   run-to-run noise (statistical significance; a one-sided test at level (1 + confidence) / 2). With n = 1
   there is no interval and the point difference alone decides.

When (1) holds but (2) does not, the metric is reported as *inconclusive* ("?"): it does not fail the
gate, and the verdict says to add seeds or concepts. Why this rule: the tolerance says how much worse is
too much, the interval says whether the difference is real. Asking instead that the interval's better-side
bound be beyond the tolerance would count the noise twice: with 3 pairs (t = 4.30) it misses regressions
several times the tolerance. Gating on the point estimate alone would fail an equal candidate whenever
noise pushes one mean past the tolerance. Deterministic metrics (bytes, parameters, FLOPs) have zero
variance across pairs, so their interval is a point and any worsening beyond the tolerance fails.

A tolerance is ``abs=X`` (metric units), ``rel=Y`` (fraction of ``mean(|base|)`` over the pairs), or both
(``abs=X,rel=Y``: the larger one applies). ``--gate METRIC:SPEC`` overrides a default, ``--gate METRIC:X``
means ``abs=X``, ``--gate METRIC:off`` removes it.

Default gates (chosen for the noise of the CPU suites: 48 test images per concept, one or a few seeds)
----------------------------------------------------------------------------------------------------
These are reasoned estimates, not yet calibrated on a multi-seed run of the suites: recalibrate them once
the seed-to-seed spread has been measured.

==================  =============  ==============================================================================
metric              tolerance      why
==================  =============  ==============================================================================
psnr                abs 0.5 dB     expected seed-to-seed spread of a CPU-suite run: a few tenths of a dB; 0.5 dB is
                                   about the smallest difference visible in the sample grids
ssim                abs 0.02       same reasoning on SSIM's scale (expected seed spread ~0.01)
lpips               rel 10 %       LPIPS is on a relative scale and its offline backbone has an arbitrary scale
kid                 rel 25 %       unbiased KID from 48 images (subsets of 24) has a subset std of 10-100 % of
                                   its value; its scale depends on the extractor (random-init offline features
                                   give hundreds, pretrained ones ~0.01), so only a relative tolerance is portable
fid                 rel 15 %       FID from 48 images is biased, but equally so on both sides (same n_test); the
                                   paired noise is smaller than KID's
clip_score          abs 0.5        CLIP score (100 x cosine) of one concept moves by a few tenths between seeds
stored_bytes        rel 10 %       deterministic: the point of E2GAN is a small per-concept artifact
trainable_params    rel 10 %       deterministic, same reason
train_flops         rel 25 %       deterministic count including the rank-search trials; a variant may spend
                                   somewhat more on search, not much more
train_seconds       not gated      wall-clock on a shared CPU is noisy; train_flops is the deterministic proxy
latency_ms          not gated      depends on the machine and its load
==================  =============  ==============================================================================

A gated metric that cannot be compared (backends differ, or measured on one side only) makes the gate
impossible: ``compare`` reports it and the CLI exits 2 (use ``--gate METRIC:off`` to compare without it).
An explicitly requested gate on a metric that neither side measured is also an error; default gates on
unmeasured metrics are skipped.
"""

from __future__ import annotations

import math
import sqlite3
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from e2gan_bench.errors import UserError
from e2gan_bench.record import METRICS, RunRecord

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0

#: (abs, rel) tolerance per gated metric; see the module docstring for the reasoning.
DEFAULT_GATES: dict[str, tuple[float | None, float | None]] = {
    "psnr": (0.5, None),
    "ssim": (0.02, None),
    "lpips": (None, 0.10),
    "kid": (None, 0.25),
    "fid": (None, 0.15),
    "clip_score": (0.5, None),
    "stored_bytes": (None, 0.10),
    "trainable_params": (None, 0.10),
    "train_flops": (None, 0.25),
}

#: One-line reasons for the defaults, repeated in the markdown verdict.
GATE_REASONS = {
    "psnr": "seed spread of a CPU-suite run is a few tenths of a dB; 0.5 dB is about the smallest visible change",
    "ssim": "same reasoning on SSIM's scale",
    "lpips": "relative: the offline LPIPS backbone has an arbitrary scale",
    "kid": "KID from 48 images is noisy and its scale depends on the extractor: relative only",
    "fid": "FID from 48 images is biased, equally on both sides; less noisy than KID",
    "clip_score": "CLIP score (100 × cosine) moves by a few tenths between seeds",
    "stored_bytes": "deterministic; a small per-concept artifact is the point of E2GAN",
    "trainable_params": "deterministic; same reason",
    "train_flops": "deterministic, includes rank-search trials",
    "train_seconds": "not gated by default: wall-clock on a shared CPU is noisy (train_flops is the proxy)",
    "latency_ms": "not gated by default: depends on the machine and its load",
}

#: Extra backend keys that also decide comparability (compared only when both sides recorded them).
_EXTRA_BACKEND_KEYS = {"kid": ("resize",), "fid": ("resize",)}

_STATUS_MARK = {"pass": "✓", "fail": "✗", "inconclusive": "?", "not gated": "—", "not comparable": "n/c",
                "not measured": "—"}


# ---------------------------------------------------------------------------------------------- gates

@dataclass
class Gate:
    """Tolerance on the mean worsening of one metric: max(abs, rel × mean |base|)."""

    metric: str
    abs: float | None = None
    rel: float | None = None
    explicit: bool = False

    def tolerance(self, scale: float) -> float:
        return max(self.abs or 0.0, (self.rel or 0.0) * abs(scale))

    def describe(self) -> str:
        parts = []
        if self.abs is not None:
            parts.append(f"abs {_g(self.abs)}")
        if self.rel is not None:
            parts.append(f"rel {_g(self.rel * 100)}%")
        return parts[0] if len(parts) == 1 else f"max({', '.join(parts)})"


def _g(v: float) -> str:
    return f"{v:g}"


def parse_gate(text: str) -> Gate | None:
    """``"psnr:abs=0.5"``, ``"kid:rel=0.25"``, ``"kid:abs=0.01,rel=0.2"``, ``"psnr:0.5"`` (abs) → Gate;
    ``"train_seconds:off"`` → None (metric not gated). Raises UserError naming ``--gate`` and the value."""
    metric, sep, spec = text.partition(":")
    metric, spec = metric.strip(), spec.strip()
    fmt = "METRIC:abs=X, METRIC:rel=Y, METRIC:abs=X,rel=Y, METRIC:X or METRIC:off"
    if not sep or not metric or not spec:
        raise UserError("malformed gate", field="--gate", value=text, allowed=fmt)
    if metric not in METRICS:
        raise UserError(f"unknown metric '{metric}'", field="--gate", value=text, allowed=", ".join(METRICS))
    if spec.lower() in ("off", "none"):
        return None
    gate = Gate(metric, explicit=True)
    for part in spec.split(","):
        kind, eq, num = part.partition("=")
        kind, num = kind.strip().lower(), num.strip()
        if not eq:
            kind, num = "abs", part.strip()
        if kind not in ("abs", "rel"):
            raise UserError(f"unknown tolerance kind '{kind}'", field="--gate", value=text, allowed=fmt)
        try:
            x = float(num)
        except ValueError:
            raise UserError(f"not a number: '{num}'", field="--gate", value=text, allowed=fmt) from None
        if not math.isfinite(x) or x < 0:
            raise UserError("tolerance must be a finite number ≥ 0", field="--gate", value=text)
        setattr(gate, kind, x)
    return gate


def resolve_gates(specs: list[str] | None = None) -> dict[str, Gate]:
    """Default gates overridden by ``--gate`` specs (the last one per metric wins)."""
    gates = {m: Gate(m, a, r) for m, (a, r) in DEFAULT_GATES.items()}
    for s in specs or []:
        metric = s.partition(":")[0].strip()
        g = parse_gate(s)
        if g is None:
            gates.pop(metric, None)
        else:
            gates[metric] = g
    return gates


# ----------------------------------------------------------------------------------------------- sides

@dataclass
class Side:
    """One side of the comparison: where it came from and the chosen method's runs (any status)."""

    role: str  # "BASE" / "CANDIDATE"
    path: str
    kind: str  # "results store" / "runs.csv" / "records"
    method: str
    suite: str | None = None
    records: list[RunRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _store_suites(db: Path) -> list[str]:
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            return [r[0] for r in con.execute("SELECT DISTINCT suite FROM suite_runs ORDER BY suite")]
    except sqlite3.Error:
        return []


def _read_store(root: Path, suite: str | None, role: str) -> list[tuple[str, RunRecord]]:
    from e2gan_bench.harness.store import ResultsStore

    store = ResultsStore(root)
    try:
        pairs = store.records(suite)
    except (sqlite3.Error, ValueError) as exc:
        raise UserError(f"unreadable results store ({type(exc).__name__}: {exc})", file=str(store.db)) from None
    if suite is not None and not pairs:
        suites = _store_suites(store.db)
        raise UserError(f"{role}: no runs of this suite in {root}", field="--suite", value=suite,
                        allowed=", ".join(suites) or "the store has no suite links")
    return pairs


def _cell(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, str) and not v.strip():
        return None
    return v


def _as_bool(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return bool(v) if v is not None else False


def read_runs_csv(path: Path) -> list[tuple[str, RunRecord]]:
    """(method, RunRecord) pairs from a runs.csv written by ``e2gan-bench report``."""
    import pandas as pd

    try:
        df = pd.read_csv(path, dtype={"concept": str, "method": str, "key": str})
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise UserError(f"unreadable runs.csv ({type(exc).__name__})", file=str(path)) from None
    for col in ("concept", "method", "seed"):
        if col not in df.columns:
            raise UserError(f"not a runs.csv written by `e2gan-bench report` (no column '{col}')", file=str(path))
    out = []
    for i, row in enumerate(df.to_dict("records")):
        concept, method, seed = _cell(row.get("concept")), _cell(row.get("method")), _cell(row.get("seed"))
        data: dict[str, Any] = {"concept": concept, "method": method, "seed": seed}
        for c in (*METRICS, "kid_std", "search_seconds", "n_train_used", "eval_seconds", "n_test"):
            if (v := _cell(row.get(c))) is not None:
                data[c] = v  # pydantic turns 1234.0 into the int fields' 1234
        data["backends"] = {m: str(b) for m in METRICS if (b := _cell(row.get(f"backend_{m}"))) is not None}
        data["reference"] = _as_bool(_cell(row.get("reference")))
        status = _cell(row.get("status"))
        if status is not None:
            data["status"] = status
        data["key"] = _cell(row.get("key")) or f"csv:{concept}:{method}:{seed}"
        try:
            rec = RunRecord.model_validate(data)
        except ValueError as exc:
            first = str(exc).splitlines()[1:2] or [type(exc).__name__]
            raise UserError(f"bad row {i + 2}: {first[0].strip()}", file=str(path)) from None
        out.append((str(method), rec))
    return out


def _locate(path: Path, role: str) -> tuple[str, Path]:
    if not path.exists():
        raise UserError("not found", field=role, value=str(path))
    if path.is_dir():
        if (path / "results.sqlite").is_file():
            return "results store", path
        if (path / "runs.csv").is_file():
            return "runs.csv", path / "runs.csv"
        raise UserError("no results store (results.sqlite) or exported runs.csv in this folder", field=role,
                        value=str(path))
    if path.name == "results.sqlite":
        return "results store", path.parent
    if path.suffix.lower() == ".csv":
        return "runs.csv", path
    raise UserError("not a results folder or a runs.csv file", field=role, value=str(path))


def _pick_method(pairs: list[tuple[str, RunRecord]], method: str | None, role: str, option: str,
                 where: str) -> str:
    methods = list(dict.fromkeys(m for m, _ in pairs))
    if not methods:
        raise UserError(f"{role}: no runs in {where}", field=role, value=where)
    if method is not None:
        if method not in methods:
            raise UserError(f"{role}: unknown method (not in {where})", field=option, value=method,
                            allowed=", ".join(methods))
        return method
    trained = [m for m in methods if any(not r.reference for mm, r in pairs if mm == m)]
    if len(trained) == 1:
        return trained[0]
    if len(methods) == 1:
        return methods[0]
    raise UserError(f"{role} ({where}) holds {len(trained) or len(methods)} methods; choose one", field=option,
                    allowed=", ".join(trained or methods))


def open_side(path: Path | str, suite: str | None = None, method: str | None = None, *, role: str = "BASE",
              option: str = "--base-method") -> Side:
    """Read one side (results folder, runs.csv or a folder holding one) and pick its method."""
    path = Path(path)
    kind, where = _locate(path, role)
    notes = []
    if kind == "results store":
        pairs = _read_store(where, suite, role)
    else:
        pairs = read_runs_csv(where)
        if suite is not None:
            notes.append("--suite does not apply to an exported runs.csv; all its rows of the method are used")
    chosen = _pick_method(pairs, method, role, option, str(path))
    records = [r.model_copy(update={"method": chosen}) for m, r in pairs if m == chosen]
    return Side(role, str(path), kind, chosen, suite if kind == "results store" else None, records, notes)


def load_side(path: Path | str, suite: str | None = None, method: str | None = None, *, role: str = "BASE",
              option: str = "--base-method") -> list[RunRecord]:
    """The chosen method's run records (any status) of one side; see :func:`open_side`."""
    return open_side(path, suite, method, role=role, option=option).records


# ----------------------------------------------------------------------------------------------- stats

@dataclass
class PairedStats:
    n: int
    mean: float
    sd: float | None
    ci_t: tuple[float, float] | None
    ci_boot: tuple[float, float] | None


def paired_stats(diffs: np.ndarray | list[float], confidence: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> PairedStats:
    """Mean of paired differences with a Student-t and a percentile-bootstrap interval (none when n = 1)."""
    from scipy import stats

    d = np.asarray(diffs, dtype=float)
    n = len(d)
    mean = float(d.mean())
    if n < 2:
        return PairedStats(n, mean, None, None, None)
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        return PairedStats(n, mean, 0.0, (mean, mean), (mean, mean))
    lo, hi = stats.t.interval(confidence, n - 1, loc=mean, scale=sd / math.sqrt(n))
    rng = np.random.default_rng(seed)
    boot = d[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    a = (1 - confidence) / 2
    blo, bhi = np.quantile(boot, [a, 1 - a])
    return PairedStats(n, mean, sd, (float(lo), float(hi)), (float(blo), float(bhi)))


# ------------------------------------------------------------------------------------------ comparison

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


def _value(r: RunRecord, m: str) -> float | None:
    v = getattr(r, m, None)
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


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


def _backend_mismatch(pairs: list[tuple[RunRecord, RunRecord]], m: str) -> tuple[str | None, str | None, str]:
    """(base backends, candidate backends, reason or '') for one metric over the matched pairs."""
    bset = sorted({str(b.backends.get(m)) for b, _ in pairs})
    cset = sorted({str(c.backends.get(m)) for _, c in pairs})
    bb, cb = ", ".join(bset), ", ".join(cset)
    for b, c in pairs:
        if b.backends.get(m) != c.backends.get(m):
            return bb, cb, f"not comparable: backends differ ({b.backends.get(m) or 'unrecorded'} vs " \
                           f"{c.backends.get(m) or 'unrecorded'})"
        for extra in _EXTRA_BACKEND_KEYS.get(m, ()):
            xb, xc = b.backends.get(extra), c.backends.get(extra)
            if xb is not None and xc is not None and xb != xc:
                return bb, cb, f"not comparable: backends differ ({extra}: {xb} vs {xc})"
    return (None if bset == ["None"] else bb), (None if cset == ["None"] else cb), ""


def _as_side(x: Side | list[RunRecord], role: str) -> Side:
    if isinstance(x, Side):
        return x
    methods = list(dict.fromkeys(r.method for r in x))
    if len(methods) > 1:
        raise UserError(f"{role}: records of more than one method; pass one method's runs", field=role,
                        value=", ".join(methods))
    return Side(role, "-", "records", methods[0] if methods else "-", None, list(x))


def compare(base: Side | list[RunRecord], candidate: Side | list[RunRecord], gates: dict[str, Gate] | None = None,
            confidence: float = 0.95) -> Comparison:
    """Pair runs by (concept, seed), compare every metric measured on both sides and apply the gates.

    ``gates`` defaults to :data:`DEFAULT_GATES`. Raises UserError when no run matches."""
    if not (0.0 < confidence < 1.0):
        raise UserError("confidence must be between 0 and 1 (exclusive)", field="--confidence", value=confidence)
    gates = resolve_gates() if gates is None else gates
    bside, cside = _as_side(base, "BASE"), _as_side(candidate, "CANDIDATE")
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
        def _desc(side: Side, idx) -> str:
            runs = ", ".join(f"{c}/{s}" for c, s in sorted(idx)[:6]) or "no finished runs"
            return f"{side.role} method '{side.method}' ({runs})"
        raise UserError(f"no runs match by (concept, seed): {_desc(bside, bidx)} vs {_desc(cside, cidx)}",
                        field="CANDIDATE", value=cside.path)

    results: list[MetricResult] = []
    errors: dict[str, str] = {}
    for m, spec in METRICS.items():
        hib = bool(spec["higher"])
        gate = gates.get(m)
        pairs_all = [(bidx[k], cidx[k]) for k in keys]
        b_any = any(_value(b, m) is not None for b, _ in pairs_all)
        c_any = any(_value(c, m) is not None for _, c in pairs_all)
        if not b_any and not c_any:
            if gate is not None and gate.explicit:
                errors[m] = "measured on neither side"
            continue
        pairs = [(b, c) for b, c in pairs_all if _value(b, m) is not None and _value(c, m) is not None]
        res = MetricResult(m, hib, "not comparable", n=len(pairs), gate=gate.describe() if gate else None)
        if not pairs:
            only = "BASE" if not c_any else "CANDIDATE" if not b_any else None
            res.note = f"not comparable: measured only in {only}" if only else \
                "not comparable: measured on different runs in BASE and CANDIDATE"
        else:
            res.backend_base, res.backend_candidate, why = _backend_mismatch(pairs, m)
            res.note = why
        if res.note:
            results.append(res)
            if gate is not None:
                errors[m] = res.note.removeprefix("not comparable: ")
            continue
        bv = np.array([_value(b, m) for b, _ in pairs], dtype=float)
        cv = np.array([_value(c, m) for _, c in pairs], dtype=float)
        st = paired_stats(cv - bv, confidence)
        scale = float(np.abs(bv).mean())
        res.base_mean, res.candidate_mean, res.diff = float(bv.mean()), float(cv.mean()), st.mean
        res.diff_pct = 100.0 * st.mean / scale if scale > 0 else None
        res.ci_t, res.ci_bootstrap = st.ci_t, st.ci_boot
        sign = -1.0 if hib else 1.0
        res.worsening = sign * st.mean
        if len(pairs) < len(keys):
            res.note = f"measured on {len(pairs)} of {len(keys)} matched runs"
        if st.n == 1:
            res.note = "; ".join(filter(None, [res.note, "n=1: no interval"]))
        if gate is None:
            res.status = "not gated"
        else:
            res.tolerance = gate.tolerance(scale)
            if st.ci_t is None:
                significant = res.worsening > 0
            else:
                worse_lo = min(sign * st.ci_t[0], sign * st.ci_t[1])  # better-side bound of the worsening
                significant = worse_lo > 0
            if res.worsening > res.tolerance and significant:
                res.status = "fail"
            elif res.worsening > res.tolerance:
                res.status = "inconclusive"
                res.note = "; ".join(filter(None, [res.note, "worse than tolerance but within noise: add seeds "
                                                              "or concepts"]))
            else:
                res.status = "pass"
        results.append(res)
    return Comparison(bside, cside, confidence, keys, unmatched, results, errors, gates)


# -------------------------------------------------------------------------------------------- rendering

def _num(metric: str, v: float | None, signed: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    fmt = METRICS.get(metric, {}).get("fmt", "{:.4g}")
    if signed:
        fmt = fmt.replace("{:", "{:+", 1)
    try:
        s = fmt.format(v)
    except (ValueError, TypeError):
        s = str(v)
    if v != 0 and not any(ch in s for ch in "123456789"):
        s = (f"{v:+.3g}" if signed else f"{v:.3g}")
    return s.replace("-", "−")


def _ci(metric: str, ci: tuple[float, float] | None, n: int) -> str:
    if ci is None:
        return "n=1: no interval" if n == 1 else "–"
    return f"[{_num(metric, ci[0])}, {_num(metric, ci[1])}]"


def table_rows(c: Comparison) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-metric table (shared by the markdown and the terminal); the last column is
    the note."""
    pct = f"{c.confidence * 100:g}%"
    header = ["metric", "better", "n", "base", "candidate", "Δ (cand − base)", "Δ%", f"{pct} CI (t)",
              f"{pct} CI (bootstrap)", "gate (tolerance)", "verdict", "note"]
    rows = []
    for r in c.metrics:
        gate = "not gated"
        if r.gate is not None:
            gate = r.gate + (f" → {_num(r.metric, r.tolerance)}" if r.tolerance is not None else "")
        compared = r.status != "not comparable"
        rows.append([
            r.metric, "higher" if r.higher_is_better else "lower", str(r.n),
            _num(r.metric, r.base_mean), _num(r.metric, r.candidate_mean), _num(r.metric, r.diff, signed=True),
            "–" if r.diff_pct is None else f"{r.diff_pct:+.1f}%".replace("-", "−"),
            _ci(r.metric, r.ci_t, r.n) if compared else "–",
            _ci(r.metric, r.ci_bootstrap, r.n) if compared else "–",
            gate, f"{r.mark} {r.status}", r.note,
        ])
    return header, rows


def headline(c: Comparison) -> str:
    who = f"candidate `{c.candidate.method}` vs base `{c.base.method}`"
    if c.errors:
        return f"compare: CANNOT GATE — {who}: " + "; ".join(f"{m}: {e}" for m, e in c.errors.items())
    if c.failed:
        worse = ", ".join(m.metric for m in c.failed)
        return f"compare: FAIL — {who}: worse beyond tolerance on {worse}"
    return f"compare: PASS — {who}: no gated metric worse beyond tolerance"


def side_line(s: Side) -> str:
    where = f"`{s.path}` ({s.kind}" + (f", suite `{s.suite}`" if s.suite else "") + ")"
    n_ok = sum(r.status == "ok" for r in s.records)
    return f"**{s.role.lower()}**: {where}, method `{s.method}`, {n_ok} finished run(s)" + \
        (f", {len(s.records) - n_ok} failed" if len(s.records) > n_ok else "")


def gate_rule_lines(c: Comparison) -> list[str]:
    pct = f"{c.confidence * 100:g}%"
    lines = [
        f"A gated metric fails when the candidate's mean worsening exceeds the tolerance **and** the {pct} "
        "Student-t interval of the paired differences lies entirely on the worse side of zero (with n=1: the "
        "point difference alone). Worse than tolerance but within noise is reported as `?` (inconclusive) and "
        "does not fail. Tolerance = max(abs, rel × mean |base|). The bootstrap interval "
        f"({c.bootstrap_resamples} paired resamples, seed {BOOTSTRAP_SEED}) is shown for reference.",
        "",
        "Gates in effect: " + (", ".join(f"`{m}` {g.describe()}" + (" (set by --gate)" if g.explicit else "")
                                         for m, g in c.gates.items()) or "none") + ".",
    ]
    off = [m for m in DEFAULT_GATES if m not in c.gates]
    if off:
        lines.append("Default gates switched off: " + ", ".join(f"`{m}`" for m in off) + ".")
    return lines


def default_gate_table() -> list[str]:
    rows = ["| metric | default tolerance | why |", "|---|---|---|"]
    for m in METRICS:
        a, r = DEFAULT_GATES.get(m, (None, None))
        tol = Gate(m, a, r).describe() if m in DEFAULT_GATES else "not gated"
        rows.append(f"| {m} | {tol} | {GATE_REASONS.get(m, '')} |")
    return rows


def to_markdown(c: Comparison) -> str:
    header, rows = table_rows(c)
    md = [f"# {headline(c)}", "", f"- {side_line(c.base)}", f"- {side_line(c.candidate)}"]
    for s in (c.base, c.candidate):
        md += [f"- note ({s.role.lower()}): {n}" for n in s.notes]
    matched = ", ".join(f"{cc}/{s}" for cc, s in c.matched)
    md += [f"- matched runs (concept/seed): **{len(c.matched)}** — {matched}", ""]
    md += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    md += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    md.append("")
    md.append("✓ within tolerance · ✗ worse beyond tolerance · ? worse than tolerance but within noise · "
              "— not gated · n/c not comparable")
    md.append("")
    nc = [m for m in c.metrics if m.status == "not comparable"]
    if nc or c.errors:
        md += ["## Not comparable", ""]
        md += [f"- `{m.metric}`: {m.note}" + (f" — base {m.backend_base}, candidate {m.backend_candidate}"
                                              if "backends" in m.note else "") for m in nc]
        md += [f"- **cannot gate `{m}`: {e}** (compare without it: `--gate {m}:off`)" for m, e in c.errors.items()]
        md.append("")
    md += ["## Unmatched runs", ""]
    md += [f"- {u.side}: `{u.concept}` seed {u.seed} — {u.reason}" for u in c.unmatched] or ["_none_"]
    md += ["", "## Gate rule", "", *gate_rule_lines(c), "", "Default gates (reasoned for the CPU suites' noise; "
           "override with `--gate METRIC:abs=X`, `METRIC:rel=Y` or `METRIC:off`):", "", *default_gate_table(), ""]
    return "\n".join(md)
