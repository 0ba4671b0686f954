"""Typed schemas (pydantic) for concepts, methods and suites, and safe YAML loading.

Every loader turns a pydantic or YAML error into a :class:`ConfigError` that names the file,
the field and the offending value, so the CLI can print one line and exit 2.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from e2gan_bench.errors import ConfigError

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ComponentSpec(BaseModel):
    """``{kind: NAME, **params}`` — a registry entry and its parameters."""

    model_config = ConfigDict(extra="allow", frozen=True)
    kind: str

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Concept(_Strict):
    """An image edit: a prompt, a teacher that performs it, and the images it is applied to."""

    name: str = Field(pattern=NAME_PATTERN)
    prompt: str = Field(min_length=3)
    category: str = "uncategorised"
    tags: tuple[str, ...] = ()
    teacher: ComponentSpec
    source: ComponentSpec = ComponentSpec(kind="builtin-photos")
    resolution: int = Field(64, ge=16, le=1024)
    n_train: int = Field(192, ge=2)
    n_test: int = Field(48, ge=2)
    split_seed: int = 0


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
    steps: int = Field(400, ge=0)
    batch: int = Field(8, ge=1)
    lr: float = Field(2e-4, gt=0)
    lr_d: float | None = None
    beta1: float = 0.5
    beta2: float = 0.999
    l1_weight: float = Field(100.0, ge=0)
    gan_weight: float = Field(1.0, ge=0)
    gan_mode: Literal["lsgan", "vanilla", "none"] = "lsgan"


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


class BaseSpec(_Strict):
    """How the suite's shared base generator is built."""

    concepts: tuple[str, ...] = ()
    selector: str = "list"  # a base-selector plugin: list | representative | random | single
    count: int = Field(4, ge=1)  # concepts and count are offered to selectors whose Params have those fields
    params: dict[str, Any] = Field(default_factory=dict)  # the selector's own Params
    pool: tuple[str, ...] = ()
    budget: Budget = Budget(steps=800)
    seed: int = 0


class EvalSpec(_Strict):
    kid_subsets: int = Field(50, ge=1)
    kid_subset_size: int = Field(16, ge=2)
    feature_batch: int = Field(32, ge=1)
    lpips: bool = True
    clip: bool = True  # CLIP score when CLIP weights are registered; else n/a with the reason
    latency: bool = True  # ONNX Runtime latency of the generator (once per architecture)
    latency_threads: int = Field(1, ge=1)
    latency_runs: int = Field(50, ge=5)
    samples_in_grid: int = Field(6, ge=0)
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)  # metric name -> that metric's Params


class DataOverrides(_Strict):
    resolution: int | None = Field(None, ge=16, le=1024)
    n_train: int | None = Field(None, ge=2)
    n_test: int | None = Field(None, ge=2)


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


class Suite(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    concepts: tuple[str, ...] = Field(min_length=1)
    methods: tuple[MethodEntry, ...] = Field(min_length=1)
    seeds: tuple[int, ...] = (0,)
    base: BaseSpec = BaseSpec()
    data: DataOverrides = DataOverrides()
    model: dict[str, dict[str, Any]] = Field(default_factory=dict)
    budget: dict[str, Any] = Field(default_factory=dict)
    eval: EvalSpec = EvalSpec()

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


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping safely; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("file not found", file=str(path))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"malformed YAML{where}: {problem}", file=str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError("not a UTF-8 text file", file=str(path)) from None
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
        field = cur.model_fields.get(part)
        if field is None:
            return []
        ann = field.annotation
        cur = ann
        for arg in getattr(ann, "__args__", ()) or ():
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                cur = arg
    if isinstance(cur, type) and issubclass(cur, BaseModel):
        return sorted(cur.model_fields)
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


def load_suite(path: Path) -> Suite:
    return validate(Suite, load_yaml(path), file=str(path))
