"""Suite expansion: a suite YAML becomes a grid of :class:`RunSpec` (concept × method × seed), with its keys.

**A seed replicates the whole protocol**: seed ``s`` of a concept uses split seed ``concept.split_seed + s`` (its own
photographs for train, validation and test, its own crops) and its own base model (trained on the base concepts'
seed-``s`` splits with base seed ``base.seed + s``, so a base never sees a test photograph of the runs it serves),
besides its own training randomness. Seed 0 is exactly the protocol of a single-seed suite.

* **training key** — everything that determines the trained artifact: the concept and its data, the method
  (label and description excluded: two labels for the same method share one training), the seed, the model
  sizes, the base model's key, the prompt encoder, and the code of ``data/``, ``models/`` and ``training/``.
* **run key** — the training key plus the evaluation settings: one stored record per run.
* **evaluation key** (:func:`e2gan_bench.metrics.evaluate.plan_evaluation`) — evaluation settings, metric
  parameters, metric backends with their weights hashes, and metric code. A record whose evaluation key is
  out of date is re-evaluated from its stored artifact; it is never retrained.

Code enters keys as :func:`e2gan_bench.keys.code_version` fingerprints, which ignore docstrings, comments and
formatting: such edits keep every stored result.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2gan_bench.cache import default_home
from e2gan_bench.config import (
    CONCEPT_LABELS,
    METHOD_LABELS,
    BaseSpec,
    Concept,
    CurveSpec,
    EvalSpec,
    Method,
    MethodEntry,
    Suite,
)
from e2gan_bench.data.dataset import DataSettings, dataset_key
from e2gan_bench.devices import resolve_device
from e2gan_bench.errors import ConfigError
from e2gan_bench.keys import code_version, content_key
from e2gan_bench.methods.contract import TRAINABLES
from e2gan_bench.methods.e2gan.rank_search import RANK_SEARCHES
from e2gan_bench.metrics.evaluate import metrics_for
from e2gan_bench.models.generators import ARCHS, generator_sizes
from e2gan_bench.models.text import CachedPromptEncoder, default_encoder
from e2gan_bench.plugins import parse_params
from e2gan_bench.resources import Catalog
from e2gan_bench.training.base import BasePlan, select_base_concepts
from e2gan_bench.training.selection import DATA_SELECTORS
from e2gan_bench.training.targets import check_fixed, fixed_values
from e2gan_bench.yamlio import deep_merge, validate

#: default model sizes when a suite does not set them (CPU-sized)
DEFAULT_MODEL: dict[str, dict[str, Any]] = {
    "e2gan": {"ngf": 16},
    "pix2pix-resnet": {"ngf": 16, "n_blocks": 9},
    "identity": {},
    "discriminator": {"ndf": 32},
}

#: The code a trained artifact depends on.
TRAIN_CODE = ("data", "models", "training", "methods")


@dataclass(frozen=True)
class RunSpec:
    suite: str
    concept: Concept
    concept_file: str
    method: Method  # resolved: the suite's overrides applied, ``name`` is the method's label in the suite
    seed: int
    data: DataSettings
    data_key: str
    model_kwargs: dict[str, Any]
    ndf: int
    eval: EvalSpec
    base: BasePlan | None  # how to train the base model (None: not base-initialised, or restored from a store)
    base_key: str | None
    train_key: str
    key: str
    curve: CurveSpec = CurveSpec()
    device: str = "cpu"  # resolved: cpu | cuda (training and evaluation run there)
    # early stop (the suite's ``target.early_stop``): metric, tolerance, the reference method and its run's training
    # key, whose final validation quality minus the tolerance is where this run stops; None: the whole budget
    stop: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return f"{self.concept.name} × {self.method.name} × seed {self.seed}"

    def config(self) -> dict[str, Any]:
        """Everything needed to evaluate this run again without its suite (``config.json``)."""
        return {"suite": self.suite, "concept": self.concept.model_dump(), "concept_file": self.concept_file,
                "method": self.method.model_dump(), "seed": self.seed, "data": self.data.__dict__,
                "data_key": self.data_key, "model": self.model_kwargs, "ndf": self.ndf,
                "eval": self.eval.model_dump(), "base": self.base_key, "train_key": self.train_key, "key": self.key,
                "curve": self.curve.model_dump(), "device": self.device, "stop": self.stop}

    @classmethod
    def from_config(cls, d: dict[str, Any], *, file: str) -> RunSpec:
        """The spec a stored ``config.json`` describes (raises ConfigError naming the file when it cannot)."""
        try:
            return cls(d["suite"], Concept.model_validate(d["concept"]), d["concept_file"],
                       Method.model_validate(d["method"]), int(d["seed"]), DataSettings(**d["data"]), d["data_key"],
                       dict(d["model"]), int(d["ndf"]), EvalSpec.model_validate(d["eval"]), None, d["base"],
                       d["train_key"], d["key"], CurveSpec.model_validate(d.get("curve", {"points": 0})),
                       str(d.get("device", "cpu")), d.get("stop"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"stored run configuration from an older version or damaged ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:100]}); run its suite again", file=file) from None


def model_kwargs(suite: Suite, arch: str) -> dict[str, Any]:
    """The sizes of ``arch``'s generator in the suite's runs: the sizes the suite writes over :data:`DEFAULT_MODEL`
    (a registered architecture's as its ``Params`` reads them, only those written; :func:`check_model` checked them)."""
    written = suite.model.kwargs(arch)
    if arch in suite.model.registered():
        written = generator_sizes(arch, written).model_dump(exclude_unset=True)
    return {**DEFAULT_MODEL.get(arch, {}), **written}


def check_model(suite: Suite, *, file: str) -> None:
    """The sizes a suite writes for architectures that are not built in (``model.<arch>``): the architecture exists
    and accepts them (its ``Params``; errors name ``model.<arch>.<field>``). The built-ins' were checked on loading."""
    for arch, sizes in suite.model.registered().items():
        generator_sizes(arch, sizes, file=file)


def check_plugins(method: Method, *, file: str, prefix: str) -> None:
    """The method's architecture and plugins exist and accept their parameters (fails before anything trains)."""
    ARCHS.get(method.arch, file=file, field=f"{prefix}.arch")
    TRAINABLES.get(method.trainable, file=file, field=f"{prefix}.trainable")
    search = RANK_SEARCHES.get(method.lora.search, file=file, field=f"{prefix}.lora.search")
    parse_params(search, method.lora.search_params, file=file, field=f"{prefix}.lora.search_params")
    sel = DATA_SELECTORS.get(method.data.selector, file=file, field=f"{prefix}.data.selector")
    parse_params(sel, method.data.params, file=file, field=f"{prefix}.data.params",
                 offered={"features": method.data.features}, offered_field=f"{prefix}.data")


def device_part(device: str) -> tuple[dict[str, str], ...]:
    """What the device adds to a key: nothing on the CPU (CPU keys are those of the code before devices existed,
    so existing stores stay valid), the device type elsewhere (numbers differ across devices)."""
    return () if device == "cpu" else ({"device": device},)


def replicate(concept: Concept, seed: int) -> Concept:
    """The concept as seed ``seed`` sees it: its split seed moved by the seed (seed 0: unchanged)."""
    return concept if seed == 0 else concept.model_copy(update={"split_seed": concept.split_seed + seed})


def _base_plan(suite: Suite, spec: BaseSpec, catalog: Catalog, suite_file: str, encoder: CachedPromptEncoder,
               device: str = "cpu", seed: int = 0) -> BasePlan:
    for i, n in enumerate(spec.concepts):
        catalog.concept(n, file=suite_file, field=f"base.concepts[{i}]")
    if spec.pool:
        pool_names = [catalog.concept(n, file=suite_file, field=f"base.pool[{i}]").name for i, n in enumerate(spec.pool)]
    else:  # every concept of the bank that the suite does not evaluate: targets stay unseen
        pool_names = [n for n in catalog.bank_names() if n not in suite.concepts]
    pool = [catalog.concept(n) for n in pool_names]
    names = select_base_concepts(spec, pool, encoder, file=suite_file)
    concepts = tuple(replicate(catalog.concept(n, file=suite_file, field="base.concepts"), seed) for n in names)
    if seed:
        spec = spec.model_copy(update={"seed": spec.seed + seed})
    settings = tuple(DataSettings.for_concept(c, suite.data) for c in concepts)
    keys = tuple(dataset_key(c, s, file=catalog.concept_file(c.name)) for c, s in zip(concepts, settings, strict=True))
    mk = model_kwargs(suite, "e2gan")
    ndf = int(model_kwargs(suite, "discriminator")["ndf"])
    enc = encoder.info
    # the key depends on which concepts were chosen, not on how: same concepts, same base model
    key = content_key("base", spec.budget.model_dump(), spec.seed, keys, [c.prompt for c in concepts], mk, ndf,
                      enc.name, enc.weights, code_version("models", "training/trainer", "training/base"),
                      *device_part(device))
    return BasePlan(spec, concepts, settings, keys, mk, ndf, key, device)


def resolve_methods(suite: Suite, catalog: Catalog, suite_file: str) -> list[Method]:
    """The suite's methods with their overrides applied (and the suite-wide budget), checked."""
    methods: list[Method] = []
    for i, entry in enumerate(suite.methods):
        start = catalog.method(entry.starts_from, file=suite_file, field=f"methods[{i}]")
        merged = deep_merge(start.model_dump(), {"budget": dict(suite.budget)} if suite.budget else {})
        merged = deep_merge(merged, entry.overrides)
        merged["name"] = entry.name
        if start.reference:
            merged["budget"] = start.budget.model_dump()
        method = validate(Method, merged, file=suite_file, prefix=f"methods[{i}]")
        check_plugins(method, file=suite_file, prefix=f"methods[{i}]")
        methods.append(method)
    names = [m.name for m in methods]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError("method listed twice", file=suite_file, field="methods", value=sorted(dup)[0])
    return methods


def expand_suite(suite: Suite, catalog: Catalog, suite_file: str, cache_dir: Path | None = None,
                 device: str | None = None) -> list[RunSpec]:
    """Every run of the suite, in (concept, method, seed) order, on ``device`` (cpu | cuda; default: the suite's
    ``device:``, resolved; whether that device is here is checked where runs are computed, not here: keys and
    reports need no GPU)."""
    device = device or resolve_device(suite.device, field="device", file=suite_file, require=False)
    check_model(suite, file=suite_file)
    methods = resolve_methods(suite, catalog, suite_file)
    metrics_for(suite.eval, file=suite_file)  # metric parameters are checked before anything runs
    names = [m.name for m in methods]
    check_fixed(suite.target, list(suite.concepts), suite.data.resolution, suite.curve.max_images, file=suite_file)
    if suite.gate.reference is not None and suite.gate.reference not in names:
        raise ConfigError("not a method of this suite", file=suite_file, field="gate.reference",
                          value=suite.gate.reference, allowed=", ".join(names))
    for fld, name in (("target.reference", suite.target.reference), ("target.floor", suite.target.floor)):
        if name is not None and name not in names and not (fld == "target.floor" and name == "identity"):
            raise ConfigError("not a method of this suite", file=suite_file, field=fld, value=name,
                              allowed=", ".join(names))
    if suite.target.early_stop:
        _check_early_stop(suite, methods, suite_file)
    encoder = CachedPromptEncoder(default_encoder(), cache_dir or default_home())
    plans: dict[tuple[str, int], BasePlan] = {}

    def plan_for(method: Method, i: int, seed: int) -> BasePlan:
        """The suite's base spec, with the method's own ``base`` overrides (for base ablations), for one seed."""
        spec = validate(BaseSpec, deep_merge(suite.base.model_dump(), method.base or {}), file=suite_file,
                        prefix=f"methods[{i}].base")
        k = (spec.model_dump_json(), seed)
        if k not in plans:
            plans[k] = _base_plan(suite, spec, catalog, suite_file, encoder, device, seed)
        return plans[k]

    base_plans = {(m.name, seed): plan_for(m, i, seed) for i, m in enumerate(methods) if m.init == "base"
                  for seed in suite.seeds}
    enc = encoder.info
    ndf = int(model_kwargs(suite, "discriminator")["ndf"])
    specs = []
    for j, cname in enumerate(suite.concepts):
        concept0 = catalog.concept(cname, file=suite_file, field=f"concepts[{j}]")
        cfile = catalog.concept_file(cname)
        settings = DataSettings.for_concept(concept0, suite.data)
        replicas = {seed: replicate(concept0, seed) for seed in suite.seeds}
        dkeys = {seed: dataset_key(c, settings, file=cfile) for seed, c in replicas.items()}
        for method in methods:
            if method.init == "base" and method.arch != "e2gan":
                raise ConfigError("only the e2gan architecture has a base model", file=suite_file,
                                  field=f"methods.{method.name}.arch", value=method.arch)
            # the curve scores LPIPS only where the suite's evaluation does (a suite turns LPIPS off for images too
            # small for AlexNet, or to save time)
            curve = suite.curve.model_copy(update={"lpips": suite.curve.lpips and suite.eval.lpips})
            for seed in suite.seeds:
                concept, dkey = replicas[seed], dkeys[seed]
                base = base_plans.get((method.name, seed))
                mk = base.model_kwargs if base is not None else model_kwargs(suite, method.arch)
                train_key = content_key(
                    "train", concept.model_dump(exclude=CONCEPT_LABELS), dkey,
                    method.model_dump(exclude=set(METHOD_LABELS)), seed, mk,
                    ndf, base.key if base else None, enc.name, enc.weights, code_version(*TRAIN_CODE),
                    curve.model_dump(), *device_part(device), n=20)
                key = content_key("run", train_key, suite.eval.model_dump(), n=20)
                specs.append(RunSpec(suite.name, concept, cfile, method, seed, settings, dkey, mk, ndf, suite.eval,
                                     base, base.key if base else None, train_key, key, curve, device))
    return _with_early_stop(specs, suite) if suite.target.early_stop else specs


def _trains(m: Method) -> bool:
    return not m.reference and TRAINABLES.get(m.trainable).trains and m.budget.steps > 0


def _check_early_stop(suite: Suite, methods: list[Method], suite_file: str) -> None:
    """Early stop needs a target a run can know before it ends: a fixed target, or a trained reference method's
    final quality."""
    t = suite.target
    if suite.curve.points <= 0:
        raise ConfigError("early stop checks the validation curve: give it points", file=suite_file,
                          field="curve.points", value=suite.curve.points)
    if t.fixed:
        return
    if t.reference is None:
        raise ConfigError("needs target.reference: the gap target depends on every method's final quality, which no "
                          "run knows while it trains", file=suite_file, field="target.early_stop", value=True)
    ref = next(m for m in methods if m.name == t.reference)
    if not _trains(ref):
        raise ConfigError("the early-stop target comes from a trained method's final validation quality; this one "
                          "trains nothing", file=suite_file, field="target.reference", value=t.reference)


def _with_early_stop(specs: list[RunSpec], suite: Suite) -> list[RunSpec]:
    """Every trained run stops at its target: the fixed target of its concept, or (relative) the target its concept
    and seed's reference run sets. Its training key gains the target (fixed: the value; relative: the reference
    run's training key, the metric and the tolerance); a suite without early stop keeps its keys."""
    t = suite.target
    values = fixed_values(t) if t.fixed else {}
    ref_keys = {(s.concept.name, s.seed): s.train_key for s in specs if s.method.name == t.reference}
    out = []
    for s in specs:
        if (not t.fixed and s.method.name == t.reference) or not _trains(s.method):
            out.append(s)
            continue
        if t.fixed:
            stop = {"metric": t.metric, "target": values[s.concept.name], "targets": t.file}
        else:
            stop = {"metric": t.metric, "tolerance": t.tolerance, "reference": t.reference,
                    "reference_train_key": ref_keys[(s.concept.name, s.seed)]}
        train_key = content_key("train-stop", s.train_key, stop, n=20)
        key = content_key("run", train_key, s.eval.model_dump(), n=20)
        out.append(dataclasses.replace(s, train_key=train_key, key=key, stop=stop))
    return out


def rank_search_name(method: str, rank_search: str) -> str:
    """The name of ``method`` with ``--rank-search`` applied: ``<method>-rs-<search>`` (the search's last part,
    slugged, at most 24 characters; the method's part shortened so that the name stays a valid 64-character name)."""
    slug = re.sub(r"[^a-z0-9]+", "-", rank_search.split(":")[-1].lower()).strip("-")[:24] or "custom"
    return f"{method[:64 - 4 - len(slug)]}-rs-{slug}"


def suite_with_rank_search(found: tuple[Suite, Path], rank_search: str | None,
                           catalog: Catalog) -> tuple[Suite, Path]:
    """A suite (as :func:`e2gan_bench.resources.find_suite` loaded it, once), with ``--rank-search`` applied to every
    LoRA method: the method is renamed ``<method>-rs-<search>`` and its search parameters are dropped (they belong
    to the search it replaces)."""
    s, path = found
    if not rank_search:
        return s, path
    RANK_SEARCHES.get(rank_search, field="--rank-search")
    methods = []
    for i, m in enumerate(s.methods):
        start = catalog.method(m.starts_from, file=str(path), field=f"methods[{i}]")
        trainable = m.overrides.get("trainable", start.trainable)
        if TRAINABLES.get(trainable, file=str(path), field=f"methods[{i}].trainable").lora:
            lora = {k: v for k, v in m.overrides.get("lora", {}).items() if k != "search_params"}
            m = MethodEntry(name=rank_search_name(m.name, rank_search), method=m.starts_from,
                            overrides={**m.overrides, "lora": {**lora, "search": rank_search}})
        methods.append(m)
    return s.model_copy(update={"methods": tuple(methods)}), path
