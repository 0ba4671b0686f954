"""What a suite measures against: the validation curve, the time-to-quality target (fixed targets files and the
protocol that made them) and the regression gate's settings with its measured calibration."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from e2gan_bench.config.common import MAX_IMAGES, NAME_PATTERN, Seed, _Strict


class CurveSpec(_Strict):
    """``curve:`` in a suite — the validation curve every trained run records (time-to-quality)."""

    points: int = Field(8, ge=0, le=64)  # log-spaced checkpoints from ``first`` to the last step (0: no curve)
    first: int = Field(10, ge=1, le=10_000_000)  # the first checkpoint's step
    max_images: int = Field(32, ge=1, le=MAX_IMAGES)  # validation images scored per point
    lpips: bool = True  # LPIPS besides PSNR and SSIM


class TargetSpec(_Strict):
    """``target:`` in a suite — the quality each run must reach on the validation split, for time to target
    (``steps_to_target``, ``flops_to_target``, ``seconds_to_target``).

    ``file`` set (the built-in suites): **fixed targets**, MLPerf-style — one value per (concept, metric), stored as
    versioned data (``targets/<name>.yaml``) and made once by ``e2gan-bench targets make`` from a reference protocol
    that is not among the methods ranked; adding or removing a method changes no other method's numbers.

    Otherwise a **relative** target, computed from the runs being ranked (it moves when methods are added, and is
    labelled so in every report): ``reference`` set — that method's final validation quality minus ``tolerance``;
    else ``gap_fraction`` of the way from the ``floor`` method's quality to the best final quality any method
    reached.

    ``early_stop``: every trained run stops at its first validation checkpoint that reaches the target (with a
    relative target only ``reference`` works: the reference run trains first, its whole budget). The stopped run's
    test metrics are those of the stopped generator; its costs count the steps it trained (the learning-rate
    schedule stays that of the whole budget)."""

    metric: Literal["psnr", "ssim", "lpips"] = "psnr"
    file: str | None = Field(None, min_length=1, max_length=500)  # a name in targets/ or a path to a targets file
    reference: str | None = Field(None, pattern=NAME_PATTERN)
    tolerance: float = Field(0.5, ge=0, le=1e6)
    gap_fraction: float = Field(0.9, gt=0, le=1)
    floor: str = Field("identity", pattern=NAME_PATTERN)
    early_stop: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> TargetSpec:
        if self.file is not None and self.reference is not None:
            raise ValueError("give fixed targets (file) or a relative reference method, not both")
        return self

    @property
    def fixed(self) -> bool:
        return self.file is not None


#: Metrics a target file may hold (the validation curve's).
TARGET_METRICS = ("psnr", "ssim", "lpips")


class TargetProtocol(_Strict):
    """How a targets file's values were made: the reference suite and method (never a ranked method), its seeds,
    and the rule turning their validation quality into a target."""

    suite: str = Field(min_length=1, max_length=200)
    method: str = Field(pattern=NAME_PATTERN)
    seeds: tuple[Seed, ...] = Field(min_length=1, max_length=1000)
    fraction: float = Field(gt=0, le=1)  # target = floor + fraction × (reference − floor)
    floor: str = Field("identity", pattern=NAME_PATTERN)
    rule: str = Field(min_length=1, max_length=1000)


class TargetFile(_Strict):
    """``targets/<name>.yaml``: fixed time-to-target values per concept and metric, with how they were made."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    protocol: TargetProtocol
    # the data and curve settings the values hold for (a suite using the file must match them)
    resolution: int = Field(ge=16, le=1024)
    curve_images: int = Field(ge=1, le=MAX_IMAGES)
    made: dict[str, str] = Field(default_factory=dict)  # commit, date, machine, command
    values: dict[str, dict[Literal["psnr", "ssim", "lpips"], Annotated[float, Field(ge=-1e6, le=1e6)]]] = Field(
        min_length=1)
    # per concept and metric: the reference's and the floor's mean validation quality, for the record
    reference: dict[str, dict[str, float]] = Field(default_factory=dict)
    floor: dict[str, dict[str, float]] = Field(default_factory=dict)

    def value(self, concept: str, metric: str) -> float | None:
        return (self.values.get(concept) or {}).get(metric)  # type: ignore[call-overload]


class GateCalibration(_Strict):
    """A suite's measured gate error rates (``gate.calibration``), written by ``scripts/gate_validation.py`` from
    independent A/A replicates and injected regressions; shown beside every verdict gated on the suite."""

    false_alarm_rate: float | None = Field(None, ge=0, le=1)  # A/A comparisons failed / compared
    false_alarm_comparisons: int | None = Field(None, ge=0, le=1_000_000)
    mde_psnr_db: float | None = Field(None, ge=0, le=100)  # smallest mean PSNR drop caught with 80 % power
    cold_seconds: float | None = Field(None, ge=0, le=1e7)  # reference + candidate + base on 2 CPU cores
    measured: str | None = Field(None, max_length=300)  # where and at which commit (reports/gate-validation)


class GateSpec(_Strict):
    """``gate:`` in a suite recommended for regression-testing variants: the method a candidate is gated against,
    the suite's tolerances (``--gate`` syntax, over the metrics' defaults), the family-wise level, and the
    calibration measured for exactly these settings."""

    reference: str | None = Field(None, pattern=NAME_PATTERN)
    tolerances: tuple[str, ...] = ()  # e.g. "psnr:abs=0.2", "kid:off"
    alpha: float = Field(0.05, gt=0, lt=1)
    calibration: GateCalibration | None = None
