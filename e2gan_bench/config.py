"""Typed schemas (pydantic) for concepts, methods and suites, and safe YAML loading.

Every loader turns a pydantic or YAML error into a :class:`ConfigError` that names the file,
the field and the offending value, so the CLI can print one line and exit 2.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from e2gan_bench.errors import ConfigError

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"

#: Seeds (and split seeds) feed numpy's and torch's generators: non-negative 32-bit integers.
Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]
#: Most images a concept's split may hold (each is resolution² × 3 bytes, twice: source and target).
MAX_IMAGES = 100_000


class _Strict(BaseModel):
    # unknown fields are errors; nan and inf are never a valid setting
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ComponentSpec(BaseModel):
    """``{kind: NAME, **params}`` — a registry entry and its parameters."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)
    kind: str

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


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
    count: int | None = Field(None, ge=1)
    features: str = "auto"  # offered to selectors whose Params have a ``features`` field (kmeans)
    params: dict[str, Any] = Field(default_factory=dict)  # the selector's own Params


class LoraSpec(_Strict):
    rank: int = Field(4, ge=1, le=512)
    alpha: float | None = None  # None -> alpha = rank (scale 1)
    search: str = "fixed"
    search_params: dict[str, Any] = Field(default_factory=dict)  # the rank search's Params
    dropout: float = Field(0.0, ge=0, lt=1)


class Budget(_Strict):
    steps: int = Field(400, ge=0, le=10_000_000)
    batch: int = Field(8, ge=1, le=4096)
    lr: float = Field(2e-4, gt=0)
    lr_d: float | None = None
    beta1: float = 0.5
    beta2: float = 0.999
    l1_weight: float = Field(100.0, ge=0)
    gan_weight: float = Field(1.0, ge=0)
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
    trainable: Literal["all", "lora-crucial", "lora-all", "none"] = "all"
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
    count: int = Field(4, ge=1)  # concepts and count are offered to selectors whose Params have those fields
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
    """A suite's ``model:`` — sizes per architecture, each a typed, bounded model (they enter the keys)."""

    e2gan: E2GANSizes | None = None
    pix2pix_resnet: Pix2PixSizes | None = Field(None, alias="pix2pix-resnet")
    identity: IdentitySizes | None = None
    discriminator: DiscriminatorSizes | None = None

    def kwargs(self, arch: str) -> dict[str, Any]:
        """The sizes the suite sets for ``arch`` (only those written: defaults come from the harness)."""
        field = next((n for n, f in type(self).model_fields.items() if (f.alias or n) == arch), None)
        sizes = getattr(self, field) if field else None
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


#: Largest YAML file read (concepts, methods and suites are a few hundred bytes).
MAX_YAML_BYTES = 1 << 20
#: Most nodes a YAML document may have once its aliases are expanded (a guard against alias bombs).
MAX_YAML_NODES = 100_000


class _GuardedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (no Python tags, nothing executed) that also refuses duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # unhashable: the base class reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _expanded_nodes(root: yaml.Node, file: str) -> int:
    """Nodes of the document with every alias expanded (what a JSON dump of it would hold); a recursive alias or
    more than :data:`MAX_YAML_NODES` is an error."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        k = id(node)
        if k in sizes:
            return sizes[k]
        if k in active:
            raise ConfigError("recursive YAML alias (a node that contains itself)", file=file)
        active.add(k)
        if isinstance(node, yaml.MappingNode):
            n = 1 + sum(size(a) + size(b) for a, b in node.value)
        elif isinstance(node, yaml.SequenceNode):
            n = 1 + sum(size(c) for c in node.value)
        else:
            n = 1
        active.discard(k)
        if n > MAX_YAML_NODES:
            raise ConfigError(f"YAML document too large once its aliases are expanded (more than {MAX_YAML_NODES:,} "
                              "nodes): refusing an alias bomb", file=file)
        sizes[k] = n
        return n

    return size(root)


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping safely: at most :data:`MAX_YAML_BYTES`, plain YAML only (no Python tags), no duplicate
    keys, and no more than :data:`MAX_YAML_NODES` nodes once aliases are expanded. Errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("file not found", file=str(path))
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read ({exc.strerror or type(exc).__name__})", file=str(path)) from None
    if len(raw) > MAX_YAML_BYTES:
        raise ConfigError(f"file too large for a concept, method or suite (over {MAX_YAML_BYTES:,} bytes)",
                          file=str(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("not a UTF-8 text file", file=str(path)) from None
    loader = _GuardedLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _expanded_nodes(node, str(path))
        data = None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"malformed YAML{where}: {problem}", file=str(path)) from None
    except RecursionError:
        raise ConfigError("YAML nested too deeply", file=str(path)) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping at the top level", file=str(path), value=type(data).__name__)
    return data


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def validate(model: type[BaseModel], data: dict[str, Any], *, file: str | None, prefix: str = "") -> Any:
    """Validate ``data`` as ``model``; the first error becomes a one-line ConfigError.

    ``prefix`` is prepended to field paths (e.g. ``teacher`` for a teacher's own parameters).
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        if prefix:
            loc = (prefix, *loc)
        value = err.get("input")
        if err["type"] == "missing":
            value = None
        msg = err["msg"]
        if err["type"] == "value_error":  # a validator's own message, without pydantic's "Value error, " prefix
            msg = str(err.get("ctx", {}).get("error", msg))
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_fields(model, loc[1 if prefix else 0 : -1]))
            raise ConfigError("unknown field", file=file, field=_loc(loc), allowed=allowed) from None
        raise ConfigError(msg, file=file, field=_loc(loc) or None, value=value) from None


def _allowed_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    cur: Any = model
    for part in loc:
        if isinstance(part, int) or not (isinstance(cur, type) and issubclass(cur, BaseModel)):
            continue
        field = next((f for n, f in cur.model_fields.items() if part in (n, f.alias)), None)
        if field is None:
            return []
        ann = field.annotation
        cur = ann
        for arg in getattr(ann, "__args__", ()) or ():
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                cur = arg
    if isinstance(cur, type) and issubclass(cur, BaseModel):
        return sorted(f.alias or n for n, f in cur.model_fields.items())
    return []


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base`` (dicts merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


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


def load_suite(path: Path) -> Suite:
    return validate(Suite, load_yaml(path), file=str(path))
