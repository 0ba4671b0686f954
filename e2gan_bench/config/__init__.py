"""Typed schemas for everything a user writes, and their loaders: :mod:`.common` (strict models, names, seeds),
:mod:`.protocol` (validation curve, time-to-quality targets, the regression gate), :mod:`.schemas` (concepts,
methods, suites and loading them). YAML is read and validated by :mod:`e2gan_bench.yamlio`; ``validate`` is offered
here too, for plugin code that validates its parameters against these schemas."""

from e2gan_bench.config.common import MAX_IMAGES, NAME_PATTERN, ComponentSpec, Seed
from e2gan_bench.config.protocol import (
    TARGET_METRICS,
    CurveSpec,
    GateCalibration,
    GateSpec,
    TargetFile,
    TargetProtocol,
    TargetSpec,
)
from e2gan_bench.config.schemas import (
    CONCEPT_LABELS,
    METHOD_LABELS,
    BaseSpec,
    Budget,
    Concept,
    DataOverrides,
    DataSpec,
    DiscriminatorSizes,
    E2GANSizes,
    EvalSpec,
    IdentitySizes,
    LoraSpec,
    Method,
    MethodEntry,
    ModelSizes,
    Pix2PixSizes,
    Suite,
    SuitePaths,
    TuneDim,
    load_concept,
    load_method,
    load_suite,
    load_targets,
)
from e2gan_bench.yamlio import validate

__all__ = ["CONCEPT_LABELS", "MAX_IMAGES", "METHOD_LABELS", "NAME_PATTERN", "TARGET_METRICS", "BaseSpec", "Budget",
           "ComponentSpec", "Concept", "CurveSpec", "DataOverrides", "DataSpec", "DiscriminatorSizes", "E2GANSizes",
           "EvalSpec", "GateCalibration", "GateSpec", "IdentitySizes", "LoraSpec", "Method", "MethodEntry",
           "ModelSizes", "Pix2PixSizes", "Seed", "Suite", "SuitePaths", "TargetFile", "TargetProtocol", "TargetSpec",
           "TuneDim", "load_concept", "load_method", "load_suite", "load_targets", "validate"]
