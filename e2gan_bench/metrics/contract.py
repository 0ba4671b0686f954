"""A metric is one registered object: the contract and the registry.

A metric is a :class:`Metric` subclass registered with :func:`register_metric` (or exposed through the
entry-point group ``e2gan_bench.metric``). Its class attributes say everything the rest of the project needs —
the name (its column in records and reports), which direction is better, how to print it, its default
regression-gate tolerance and the reason for it — and two hooks do the work:

* :meth:`Metric.resolve` says which backend a run will use (weights and their hashes, or the labelled fallback
  and why). Runs record the label, the evaluation key hashes it, and ``e2gan-bench doctor`` prints it.
* :meth:`Metric.compute` produces the value from an :class:`EvalContext`: for ``stage = "eval"`` metrics from
  the student's outputs on the held-out test split (or the generator itself), for ``stage = "train"`` metrics
  from the measurements stored with the trained artifact.
* A metric defined image by image (``per_image = True``: PSNR, SSIM, LPIPS) implements
  :meth:`Metric.compute_images` instead — one value per test image, all stored with the run (``per_image`` in the
  record, ``per_image.csv`` in reports) so anyone can bootstrap over images or re-score one failure. Its value is
  the mean over images; **a per-image value that is not finite is excluded from the mean and counted**
  (``details.per_image_excluded``), never averaged in or silently dropped.

The leaderboard's sentence on directions, the compare gates, ``doctor`` and the README's metric table are all
generated from this registry, so a new metric is one file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from e2gan_bench import plugins
from e2gan_bench.config import EvalSpec
from e2gan_bench.errors import ConfigError
from e2gan_bench.record import RunRecord
from e2gan_bench.registry import Registry

if TYPE_CHECKING:
    import torch

    from e2gan_bench.features.extractors import FeatureExtractor


@dataclass(frozen=True)
class Tolerance:
    """Default regression-gate tolerance on the mean worsening: ``max(abs, rel × mean |reference|)``; neither set
    means the metric is reported but not gated. ``reason`` says why (both ways)."""

    abs: float | None = None
    rel: float | None = None
    reason: str = ""

    @property
    def gated(self) -> bool:
        return self.abs is not None or self.rel is not None

    def describe(self) -> str:
        parts = []
        if self.abs is not None:
            parts.append(f"abs {self.abs:g}")
        if self.rel is not None:
            parts.append(f"rel {self.rel * 100:g}%")
        if not parts:
            return "not gated"
        return parts[0] if len(parts) == 1 else f"max({', '.join(parts)})"


@dataclass(frozen=True)
class Backend:
    """Which implementation and weights produce a metric's numbers.

    ``label`` is recorded in ``RunRecord.backends`` and hashed into the evaluation key; numbers with different
    labels are never averaged or compared. ``available=False``: the metric cannot be computed here and ``label``
    says why ("n/a: …"). ``extra`` holds further backend keys recorded alongside (e.g. the resize protocol).
    """

    label: str
    fallback: bool = False
    weights: dict[str, Any] | None = None  # path, sha256, source of real weights
    why: str | None = None  # why a fallback (or n/a)
    note: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    available: bool = True


class MetricUnavailable(Exception):
    """Raised by :meth:`Metric.compute` when the value cannot be produced here; the message (one line) is
    recorded as the metric's backend, ``n/a: <message>``."""


@dataclass
class EvalContext:
    """What a metric may look at. Images are uint8 N×H×W×3."""

    spec: EvalSpec
    outputs: np.ndarray  # the student's outputs on the test split
    targets: np.ndarray  # the teacher's outputs on the test split
    sources: np.ndarray  # the test inputs
    prompt: str
    generator: torch.nn.Module | None
    arch: str
    model_kwargs: dict[str, Any]
    resolution: int
    cache_dir: Path | None
    training: dict[str, Any]  # measurements stored with the trained artifact (training.json)
    details: dict[str, Any] = field(default_factory=dict)  # metrics may leave details for the record
    _features: tuple[np.ndarray, np.ndarray] | None = None
    device: str = "cpu"  # where feature networks run (cpu | cuda); the generator is already there

    def extractor(self) -> FeatureExtractor:
        """The FID/KID feature extractor of this evaluation (real Inception when registered, else the fallback)."""
        from e2gan_bench.features.extractors import get_extractor  # torchvision: not imported by report or --help

        return get_extractor("auto", batch=self.spec.feature_batch)

    def features(self) -> tuple[np.ndarray, np.ndarray]:
        """(output features, target features) of :meth:`extractor`, computed once (and cached on disk)."""
        if self._features is None:
            from e2gan_bench.features.extractors import FeatureCache  # torchvision: not imported by report or --help

            cache = FeatureCache(self.extractor(), self.cache_dir, device=self.device)
            self._features = (cache(self.outputs), cache(self.targets))
        return self._features


class Metric:
    """Base of every metric; see the module docstring. Instances carry their validated ``Params``."""

    name: ClassVar[str]
    what: ClassVar[str]  # one line: what is measured, on what
    higher_is_better: ClassVar[bool]
    fmt: ClassVar[str] = "{:.4g}"
    integer: ClassVar[bool] = False  # stored as an integer (counts, bytes)
    stage: ClassVar[Literal["eval", "train"]] = "eval"
    gate: ClassVar[Tolerance] = Tolerance()
    secondary: ClassVar[tuple[str, ...]] = ()  # further values compute() returns (e.g. kid_std)
    compare_also: ClassVar[tuple[str, ...]] = ()  # backend keys that also decide comparability (e.g. resize)
    per_image: ClassVar[bool] = False  # defined per test image: implement compute_images (mean = the value)
    Params: ClassVar[type[plugins.Params]] = plugins.Params
    # How reports show the metric (the report code reads these; it names no metric itself):
    label: ClassVar[str] = ""  # column header ("PSNR (dB)"); "\n" marks where a narrow header breaks; "": the name
    headline: ClassVar[int] = 0  # > 0: a headline quality column, at this position: its leaderboard mean carries a
    #                              95 % interval over concepts; on the page's main table and the terminal's table
    cost: ClassVar[int] = 0  # > 0: a cost-per-concept column of the page's main table and the terminal's, at this position
    by_concept: ClassVar[bool] = False  # the page has a methods × concepts table of it

    def __init__(self, params: plugins.Params | None = None) -> None:
        self.params = params if params is not None else self.Params()

    def enabled(self, spec: EvalSpec) -> bool:
        """Whether this evaluation computes the metric (e.g. ``eval.lpips: false`` switches LPIPS off)."""
        return True

    def resolve(self, spec: EvalSpec) -> Backend:
        """Which backend this metric will use under ``spec``."""
        raise NotImplementedError

    def compute(self, ctx: EvalContext) -> float | dict[str, float] | None:
        """The value (or ``{name: value, secondary: value}``); ``None`` when it does not apply to this run. A
        per-image metric's value is the mean of :meth:`compute_images` over its finite values."""
        if self.per_image:
            return image_mean(self.compute_images(ctx))[0]
        raise NotImplementedError

    def compute_images(self, ctx: EvalContext) -> np.ndarray:
        """One value per test image, in the test split's order (``per_image`` metrics)."""
        raise NotImplementedError

    @classmethod
    def format(cls, value: Any, *, signed: bool = False) -> str:
        return format_number(cls.fmt, value, signed=signed)

    @classmethod
    def header(cls, *, narrow: bool = False) -> str:
        """The column header: ``label`` (its line breaks kept when ``narrow``), else the name."""
        text = cls.label or cls.name
        return text if narrow else " ".join(text.split())


def image_mean(values: np.ndarray) -> tuple[float | None, int]:
    """(mean over the finite per-image values, how many were excluded as not finite); None when none is finite."""
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    return (float(v[ok].mean()) if ok.any() else None), int((~ok).sum())


def format_number(fmt: str, value: Any, *, signed: bool = False) -> str:
    """``value`` with ``fmt``; "–" when missing; tiny non-zero values that would print as zero get 3 digits."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if signed:
        fmt = fmt.replace("{:", "{:+", 1)
    try:
        s = fmt.format(value)
    except (ValueError, TypeError):
        return str(value)
    if isinstance(value, (int, float)) and value != 0 and not any(ch in s for ch in "123456789"):
        s = f"{value:+.3g}" if signed else f"{value:.3g}"
    return s


METRICS: Registry[type[Metric]] = Registry("metric")

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def check_metric(cls: Any, name: str | None = None) -> type[Metric]:
    """A metric class is complete, and its name can be a record field and a column."""
    if not (isinstance(cls, type) and issubclass(cls, Metric)):
        raise ConfigError("a metric plugin must be a Metric subclass", field="metric", value=repr(cls))
    missing = [a for a in ("name", "what", "higher_is_better") if not hasattr(cls, a)]
    if missing:
        raise ConfigError(f"metric class {cls.__qualname__} lacks {', '.join(missing)}", field="metric")
    if name is not None and name != cls.name:
        raise ConfigError(f"metric registered as '{name}' but named '{cls.name}'", field="metric", value=name)
    for n in (cls.name, *cls.secondary):
        if not _NAME.match(n) or n in RunRecord.model_fields or hasattr(RunRecord, n):
            raise ConfigError("metric names must be lower_snake_case and not a RunRecord field", field="metric",
                              value=n)
    return cls


def register_metric(cls: type[Metric]) -> type[Metric]:
    """Class decorator: register a metric under its ``name``."""
    METRICS.add(check_metric(cls).name, cls)
    return cls


def all_metrics() -> list[type[Metric]]:
    """Every registered metric class in report order (built-ins, then plugins), each checked."""
    return [check_metric(cls, name) for name, cls in METRICS.entries()]


def metric(name: str, *, field: str | None = None) -> type[Metric]:
    return check_metric(METRICS.get(name, field=field), name if ":" not in name else None)


def headline_metrics() -> list[type[Metric]]:
    """The headline quality metrics (``headline`` > 0), in their order."""
    return sorted((m for m in all_metrics() if m.headline > 0), key=lambda m: m.headline)


def cost_metrics() -> list[type[Metric]]:
    """The cost-per-concept columns (``cost`` > 0), in their order."""
    return sorted((m for m in all_metrics() if m.cost > 0), key=lambda m: m.cost)


def directions(names: list[str] | None = None) -> str:
    """"Lower is better for …; higher for …" over ``names`` (default: every metric)."""
    ms = [m for m in all_metrics() if names is None or m.name in names]
    lower = [m.name for m in ms if not m.higher_is_better]
    higher = [m.name for m in ms if m.higher_is_better]
    parts = []
    if lower:
        parts.append(f"lower is better for {', '.join(lower)}")
    if higher:
        parts.append(f"higher for {', '.join(higher)}")
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "." if text else ""

