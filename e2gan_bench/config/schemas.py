"""Typed schemas (pydantic) for concepts, methods and suites, and their loaders (YAML read and validated by
:mod:`e2gan_bench.yamlio`: every error is one :class:`ConfigError` naming the file, the field and the offending value,
so the CLI prints one line and exits 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_serializer,
    model_validator,
)

from e2gan_bench.config.common import MAX_IMAGES, NAME_PATTERN, ComponentSpec, Seed, _Strict
from e2gan_bench.config.protocol import CurveSpec, GateSpec, TargetFile, TargetSpec
from e2gan_bench.errors import ConfigError
from e2gan_bench.yamlio import load_yaml, validate

#: Concept fields that label it without changing its data or training: kept out of the keys (so adding them kept
#: every stored result).
CONCEPT_LABELS = frozenset({"origin", "paper_name"})


class Concept(_Strict):
    """An image edit: a prompt, a teacher that performs it, and the images it is applied to."""

    name: str = Field(pattern=NAME_PATTERN)
    prompt: str = Field(min_length=3)
    category: str = "uncategorised"
    tags: tuple[str, ...] = ()
    teacher: ComponentSpec
    source: ComponentSpec = ComponentSpec(kind="builtin-photos")
    resolution: int = Field(64, ge=16, le=1024)
    n_train: int = Field(192, ge=2, le=MAX_IMAGES)
    n_test: int = Field(48, ge=2, le=MAX_IMAGES)
    n_val: int = Field(32, ge=0, le=MAX_IMAGES)  # validation crops (training curves); 0: none
    split_seed: Seed = 0
    # where the concept comes from: ``paper`` (named in the E2GAN paper; ``paper_name`` is the paper's wording, the
    # instruction is ours) or ``ours`` (the project's own, e.g. completing a paper set with concepts of the same kind)
    origin: Literal["paper", "ours"] = "ours"
    paper_name: str | None = Field(None, min_length=2, max_length=200)

    @model_validator(mode="after")
    def _paper_name_with_paper_origin(self) -> Concept:
        if (self.origin == "paper") != (self.paper_name is not None):
            raise ValueError("paper_name is required with origin: paper, and only then")
        return self


class DataSpec(_Strict):
    """Which training pairs a method sees: a data-selector plugin and how many pairs it keeps."""

    selector: str = "all"
    fraction: float | None = Field(None, gt=0, le=1)
    count: int | None = Field(None, ge=1, le=MAX_IMAGES)
    features: str = "auto"  # offered to selectors whose Params have a ``features`` field (kmeans)
    params: dict[str, Any] = Field(default_factory=dict)  # the selector's own Params


class LoraSpec(_Strict):
    rank: int = Field(4, ge=1, le=512)
    alpha: float | None = Field(None, gt=0, le=1e6)  # None -> alpha = rank (scale 1)
    search: str = "fixed"
    search_params: dict[str, Any] = Field(default_factory=dict)  # the rank search's Params
    dropout: float = Field(0.0, ge=0, lt=1)


class Budget(_Strict):
    steps: int = Field(400, ge=0, le=10_000_000)
    batch: int = Field(8, ge=1, le=4096)
    lr: float = Field(2e-4, gt=0)  # no upper bound: a diverging learning rate is a legitimate experiment
    lr_d: float | None = Field(None, gt=0)
    beta1: float = Field(0.5, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    l1_weight: float = Field(100.0, ge=0, le=1e6)
    gan_weight: float = Field(1.0, ge=0, le=1e6)
    gan_mode: Literal["lsgan", "vanilla", "none"] = "lsgan"
    schedule: Literal["constant", "cosine", "linear"] = "constant"  # learning-rate decay over ``steps``
    warmup: int = Field(0, ge=0, le=10_000_000)  # linear learning-rate warm-up steps
    # fp32, or bf16 autocast for the forward passes and losses (weights, gradients and Adam stay fp32)
    precision: Literal["fp32", "bf16"] = "fp32"
    # added to the run's seed for the training randomness only (initialisation, data subset, batch order), not for
    # its data split or base model: the same method with another offset is an A/A replicate (gate calibration)
    seed_offset: int = Field(0, ge=0, le=1_000_000)

    @model_serializer(mode="wrap")
    def _without_default_offset(self, handler: Any) -> dict[str, Any]:
        # an offset of 0 is left out of dumps (and so of keys): budgets written before it existed keep their keys
        d = handler(self)
        if isinstance(d, dict) and d.get("seed_offset") == 0:
            d.pop("seed_offset")
        return d


class TuneDim(_Strict):
    """One dimension of a method's tuning search space: a range (``low``/``high``, ``log``-uniform or uniform) or a
    list of ``choices``."""

    low: float | None = Field(None, ge=-1e9, le=1e9)
    high: float | None = Field(None, ge=-1e9, le=1e9)
    log: bool = False
    choices: tuple[Any, ...] | None = Field(None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _range_or_choices(self) -> TuneDim:
        if (self.choices is None) == (self.low is None or self.high is None):
            raise ValueError("give low and high, or choices")
        if self.choices is None and not (self.low < self.high):  # type: ignore[operator]
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.choices is None and self.low <= 0:  # type: ignore[operator]
            raise ValueError("a log range needs low > 0")
        return self

    def value(self, u: float) -> Any:
        """The point at quantile ``u`` in [0, 1) (quasi-random draws map through here)."""
        if self.choices is not None:
            return self.choices[min(int(u * len(self.choices)), len(self.choices) - 1)]
        lo, hi = float(self.low), float(self.high)  # type: ignore[arg-type]
        x = lo * (hi / lo) ** u if self.log else lo + u * (hi - lo)
        return float(f"{x:.3g}")


#: Method fields that describe or label a method without changing what it trains (kept out of training keys).
METHOD_LABELS = ("name", "description", "tuning")


class Method(_Strict):
    """A method: init × arch × trainable × ranks × data × budget (a file in ``methods/``, or a suite's
    variant of one)."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    arch: str = "e2gan"
    init: Literal["scratch", "base", "none"] = "scratch"
    # a trainable-set plugin (methods/contract.py): all | lora-crucial | lora-all | none | package.module:attr
    trainable: str = Field("all", min_length=1, max_length=200)
    groups: tuple[str, ...] | None = None  # train only these layer groups (LoRA or full); None -> by ``trainable``
    base: dict[str, Any] | None = None  # overrides of the suite's base spec for this method (base ablations)
    lora: LoraSpec = LoraSpec()
    data: DataSpec = DataSpec()
    budget: Budget = Budget()
    reference: bool = False  # a reference row (e.g. identity), not a trained method
    # the search space ``e2gan-bench tune`` draws from: dotted setting -> range or choices (e.g. budget.lr); the same
    # number of quasi-random trials for every method (AlgoPerf's external tuning)
    tuning: dict[str, TuneDim] = Field(default_factory=dict)


class BaseSpec(_Strict):
    """How the suite's shared base generator is built."""

    concepts: tuple[str, ...] = ()
    selector: str = "list"  # a base-selector plugin: list | representative | random | single
    count: int = Field(4, ge=1, le=1000)  # concepts and count are offered to selectors whose Params have those fields
    params: dict[str, Any] = Field(default_factory=dict)  # the selector's own Params
    pool: tuple[str, ...] = ()
    budget: Budget = Budget(steps=800)
    seed: Seed = 0


class EvalSpec(_Strict):
    kid_subsets: int = Field(50, ge=1, le=10_000)
    kid_subset_size: int = Field(16, ge=2, le=MAX_IMAGES)
    feature_batch: int = Field(32, ge=1, le=4096)
    lpips: bool = True
    clip: bool = True  # CLIP score when CLIP weights are registered; else n/a with the reason
    latency: bool = True  # ONNX Runtime latency of the generator (once per architecture)
    latency_threads: int = Field(1, ge=1, le=256)
    latency_runs: int = Field(50, ge=5, le=100_000)
    samples_in_grid: int = Field(6, ge=0, le=64)
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)  # metric name -> that metric's Params


class DataOverrides(_Strict):
    resolution: int | None = Field(None, ge=16, le=1024)
    n_train: int | None = Field(None, ge=2, le=MAX_IMAGES)
    n_test: int | None = Field(None, ge=2, le=MAX_IMAGES)
    n_val: int | None = Field(None, ge=0, le=MAX_IMAGES)


class _GeneratorForm(_Strict):
    """The departures from the paper's generator both architectures share (models/generators.py says why);
    ``norm: instance, head: tanh, skips: false, color_path: false`` is the paper's / pix2pix's form."""

    norm: Literal["group", "instance"] = "group"
    head: Literal["residual", "tanh"] = "residual"
    color_path: bool = True


class E2GANSizes(_GeneratorForm):
    """``model.e2gan``: the E2GAN generator's sizes and form (``text_dim`` follows the prompt encoder)."""

    ngf: int = Field(16, ge=1, le=256)
    heads: int = Field(4, ge=1, le=64)
    mlp_ratio: int = Field(2, ge=1, le=16)
    skips: bool = True
    film: bool = True

    @model_validator(mode="after")
    def _heads_divide_width(self) -> E2GANSizes:
        if (4 * self.ngf) % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide the transformer width 4 × ngf = {4 * self.ngf}")
        return self


class Pix2PixSizes(_GeneratorForm):
    """``model.pix2pix-resnet``: the pix2pix ResNet generator's sizes and form."""

    ngf: int = Field(64, ge=1, le=256)
    n_blocks: int = Field(9, ge=0, le=64)
    skips: bool = False  # the stem's features reach the output layer, as in the E2GAN generator (on in the suites)


class IdentitySizes(_Strict):
    """``model.identity``: the identity generator has no sizes."""


class DiscriminatorSizes(_Strict):
    """``model.discriminator``: the PatchGAN discriminator's width."""

    ndf: int = Field(32, ge=1, le=512)


class ModelSizes(_Strict):
    """A suite's ``model:`` — sizes per architecture (they enter the keys).

    The built-in architectures' sizes are typed, bounded models here (suites are checked before torch is imported;
    each is also its generator class's ``Params``). Any other key is the sizes of a registered architecture (``ARCHS``
    in models/generators.py: a plugin or ``package.module:attr``), kept as written and validated against that
    architecture's ``Params`` when the suite is expanded (``harness.spec.check_model``: errors name
    ``model.<arch>.<field>``; an unknown architecture is answered with the registered ones).
    """

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, dict[str, Any] | None] = Field(init=False)  # type: ignore[assignment]

    e2gan: E2GANSizes | None = None
    pix2pix_resnet: Pix2PixSizes | None = Field(None, alias="pix2pix-resnet")
    identity: IdentitySizes | None = None
    discriminator: DiscriminatorSizes | None = None

    def registered(self) -> dict[str, dict[str, Any]]:
        """The sizes written for architectures that are not built in (as written: not validated yet)."""
        return {arch: dict(sizes or {}) for arch, sizes in (self.model_extra or {}).items()}

    def kwargs(self, arch: str) -> dict[str, Any]:
        """The sizes the suite sets for ``arch`` (only those written: defaults come from the harness; a registered
        architecture's as written)."""
        field = next((n for n, f in type(self).model_fields.items() if (f.alias or n) == arch), None)
        if field is None:
            return self.registered().get(arch, {})
        sizes = getattr(self, field)
        return {} if sizes is None else sizes.model_dump(exclude_unset=True)


class MethodEntry(_Strict):
    """A method in a suite: its label, the method it starts from (default: the label) and overrides.

    ``method:`` names the starting method; ``recipe:`` is accepted as its former name.
    """

    name: str = Field(pattern=NAME_PATTERN)
    method: str | None = Field(None, validation_alias=AliasChoices("method", "recipe"))
    overrides: dict[str, Any] = Field(default_factory=dict)

    @property
    def starts_from(self) -> str:
        return self.method or self.name


class SuitePaths(_Strict):
    """``paths:`` in a suite — machine-specific inputs (``--data-root`` / ``--teacher-weights`` override them).

    ``data_root``: relative ``path``s of the concepts' ``folder`` sources are taken inside it (``DATA_ROOT/ffhq``).
    ``teacher_weights``: the InstructPix2Pix folder every ``diffusers`` teacher of the suite uses; unset, a teacher
    that names no ``model`` uses the registered ``instruct-pix2pix`` weights (``e2gan-bench weights add``)."""

    data_root: str | None = Field(None, min_length=1)
    teacher_weights: str | None = Field(None, min_length=1)


class Suite(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    concepts: tuple[str, ...] = Field(min_length=1)
    methods: tuple[MethodEntry, ...] = Field(min_length=1)
    seeds: tuple[Seed, ...] = Field((0,), min_length=1, max_length=1000)
    base: BaseSpec = BaseSpec()
    data: DataOverrides = DataOverrides()
    model: ModelSizes = ModelSizes()
    budget: dict[str, Any] = Field(default_factory=dict)
    eval: EvalSpec = EvalSpec()
    curve: CurveSpec = CurveSpec()
    target: TargetSpec = TargetSpec()
    paths: SuitePaths = SuitePaths()
    gate: GateSpec = GateSpec()
    # where training and evaluation run (`--device` overrides it); auto: cuda when torch sees a GPU, else cpu.
    # A CPU run's keys are those of a suite without the field; a GPU run's keys and metric labels name the device.
    device: Literal["auto", "cpu", "cuda"] = "cpu"

    @field_validator("methods", mode="before")
    @classmethod
    def _methods(cls, v: Any) -> Any:
        if not isinstance(v, (list, tuple)):
            return v
        out = []
        for item in v:
            if isinstance(item, str):
                out.append({"name": item})
            elif isinstance(item, dict) and len(item) == 1 and "name" not in item:
                (name, ov), = item.items()
                out.append({"name": name, "overrides": ov or {}})
            else:
                out.append(item)
        return out


# ----------------------------------------------------------------------------- loading

def _load_named(path: Path, model: type[BaseModel], kind: str) -> Any:
    """A file whose ``name`` must equal its file name (it becomes a path and a registry key)."""
    obj = validate(model, load_yaml(path), file=str(path))
    if obj.name != Path(path).stem:
        raise ConfigError(f"{kind} name must equal the file name", file=str(path), field="name", value=obj.name)
    return obj


def load_concept(path: Path) -> Concept:
    return _load_named(path, Concept, "concept")


def load_method(path: Path) -> Method:
    return _load_named(path, Method, "method")


def load_targets(path: Path) -> TargetFile:
    return _load_named(path, TargetFile, "targets file")


def known_arch_names() -> list[str]:
    """Architecture names a suite's ``model:`` may size, found without importing torch: the built-ins, installed
    plugins (entry points of ``e2gan_bench.arch``) and those registered in this process (if the registry is loaded)."""
    import sys
    from importlib import metadata

    names = {f.alias or n for n, f in ModelSizes.model_fields.items() if n != "discriminator"}
    names |= {ep.name for ep in metadata.entry_points(group="e2gan_bench.arch")}
    generators = sys.modules.get("e2gan_bench.models.generators")
    if generators is not None:
        names |= set(generators.ARCHS.names())
    return sorted(names)


def load_suite(path: Path) -> Suite:
    suite = validate(Suite, load_yaml(path), file=str(path))
    unknown = [a for a in suite.model.registered() if ":" not in a]
    if unknown:  # a misspelt architecture is answered here, before torch is imported, not when the suite expands
        import difflib

        known = known_arch_names()
        for arch in unknown:
            if arch not in known:
                close = difflib.get_close_matches(arch, known, n=2, cutoff=0.6)
                hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
                raise ConfigError(f"unknown architecture{hint}", file=str(path), field=f"model.{arch}", value=arch,
                                  allowed=", ".join([*known, "discriminator", "or package.module:attr"]))
    return suite
