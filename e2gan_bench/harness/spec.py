"""Suite expansion: a suite YAML becomes a grid of RunSpec (concept × method × seed), each keyed
by the hash of everything that determines its result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2gan_bench.config import BaseSpec, Concept, EvalSpec, MethodRecipe, Suite, deep_merge, validate
from e2gan_bench.data.dataset import DataSettings, dataset_key
from e2gan_bench.errors import ConfigError
from e2gan_bench.resources import Catalog
from e2gan_bench.util import code_version, content_key

#: default model sizes when a suite does not set them (CPU-sized)
DEFAULT_MODEL: dict[str, dict[str, Any]] = {
    "e2gan": {"ngf": 16},
    "pix2pix-resnet": {"ngf": 16, "n_blocks": 9},
    "identity": {},
    "discriminator": {"ndf": 32},
}


@dataclass(frozen=True)
class BasePlan:
    """The suite's shared base generator: which concepts, how trained, its cache key."""

    spec: BaseSpec
    concepts: tuple[Concept, ...]
    data: tuple[DataSettings, ...]
    data_keys: tuple[str, ...]
    model_kwargs: dict[str, Any]
    ndf: int
    key: str


@dataclass(frozen=True)
class RunSpec:
    suite: str
    concept: Concept
    concept_file: str
    method: str
    recipe: MethodRecipe
    seed: int
    data: DataSettings
    data_key: str
    model_kwargs: dict[str, Any]
    ndf: int
    eval: EvalSpec
    base: BasePlan | None
    key: str = field(default="")

    @property
    def label(self) -> str:
        return f"{self.concept.name} × {self.method} × seed {self.seed}"


def model_kwargs(suite: Suite, arch: str) -> dict[str, Any]:
    return {**DEFAULT_MODEL.get(arch, {}), **suite.model.get(arch, {})}


def _base_plan(suite: Suite, spec: BaseSpec, catalog: Catalog, suite_file: str, cache_dir: Path | None) -> BasePlan:
    from e2gan_bench.models.text import CachedPromptEncoder, default_encoder
    from e2gan_bench.training.base import BASE_SELECTORS

    selector = BASE_SELECTORS.get(spec.selector, file=suite_file, field="base.selector")
    if spec.selector == "list" and not spec.concepts:
        raise ConfigError("a suite with a base-initialised method needs base.concepts (or base.selector: "
                          "representative | random | single)", file=suite_file, field="base.concepts")
    for i, n in enumerate(spec.concepts):
        catalog.concept(n, file=suite_file, field=f"base.concepts[{i}]")
    if spec.pool:
        pool_names = [catalog.concept(n, file=suite_file, field=f"base.pool[{i}]").name for i, n in enumerate(spec.pool)]
    else:  # every concept of the bank that the suite does not evaluate: targets stay unseen
        pool_names = [n for n in catalog.concept_names() if n not in suite.concepts]
    pool = [catalog.concept(n) for n in pool_names]
    encoder = CachedPromptEncoder(default_encoder(), cache_dir or Path.home() / ".cache" / "e2gan-bench")
    names = selector(spec, pool, encoder, spec.seed)
    concepts = tuple(catalog.concept(n, file=suite_file, field="base.concepts") for n in names)
    settings = tuple(DataSettings.for_concept(c, suite.data) for c in concepts)
    keys = tuple(dataset_key(c, s, file=catalog.concept_file(c.name)) for c, s in zip(concepts, settings, strict=True))
    mk = model_kwargs(suite, "e2gan")
    ndf = int(model_kwargs(suite, "discriminator")["ndf"])
    enc = encoder.info
    # the key depends on which concepts were chosen, not on how: same concepts, same base model
    key = content_key("base", spec.budget.model_dump(), spec.seed, keys, [c.prompt for c in concepts], mk, ndf,
                      enc.name, enc.weights, code_version("models", "training/trainer", "training/base"))
    return BasePlan(spec, concepts, settings, keys, mk, ndf, key)


def expand_suite(suite: Suite, catalog: Catalog, suite_file: str, cache_dir: Path | None = None) -> list[RunSpec]:
    """Every run of the suite, in (concept, method, seed) order."""
    recipes: list[tuple[str, MethodRecipe]] = []
    for i, entry in enumerate(suite.methods):
        base = catalog.recipe(entry.recipe_name, file=suite_file, field=f"methods[{i}]")
        merged = deep_merge(base.model_dump(), {"budget": dict(suite.budget)} if suite.budget else {})
        merged = deep_merge(merged, entry.overrides)
        merged["name"] = entry.name
        if base.reference:
            merged["budget"] = base.budget.model_dump()
        recipes.append((entry.name, validate(MethodRecipe, merged, file=suite_file, prefix=f"methods[{i}]")))
    names = [n for n, _ in recipes]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError("method listed twice", file=suite_file, field="methods", value=sorted(dup)[0])
    plans: dict[str, BasePlan] = {}

    def plan_for(recipe: MethodRecipe, i: int) -> BasePlan:
        """The suite's base spec, with the method's own ``base`` overrides (for base ablations)."""
        spec = validate(BaseSpec, deep_merge(suite.base.model_dump(), recipe.base or {}), file=suite_file,
                        prefix=f"methods[{i}].base")
        k = spec.model_dump_json()
        if k not in plans:
            plans[k] = _base_plan(suite, spec, catalog, suite_file, cache_dir)
        return plans[k]

    base_plans = {name: plan_for(r, i) for i, (name, r) in enumerate(recipes) if r.init == "base"}
    from e2gan_bench.models.text import default_encoder

    enc = default_encoder().info
    specs = []
    for j, cname in enumerate(suite.concepts):
        concept = catalog.concept(cname, file=suite_file, field=f"concepts[{j}]")
        cfile = catalog.concept_file(cname)
        settings = DataSettings.for_concept(concept, suite.data)
        dkey = dataset_key(concept, settings, file=cfile)
        for name, recipe in recipes:
            mk = model_kwargs(suite, recipe.arch)
            if recipe.init == "base" and recipe.arch != "e2gan":
                raise ConfigError("only the e2gan architecture has a base model", file=suite_file,
                                  field=f"methods.{name}.arch", value=recipe.arch)
            if recipe.init == "base":
                mk = base_plans[name].model_kwargs
            ndf = int(model_kwargs(suite, "discriminator")["ndf"])
            for seed in suite.seeds:
                recipe_desc = recipe.model_dump(exclude={"name", "description"})
                key = content_key(
                    "run", concept.model_dump(), dkey, recipe_desc, seed, mk, ndf, suite.eval.model_dump(),
                    base_plans[name].key if recipe.init == "base" else None, enc.name, enc.weights,
                    code_version("models", "training", "metrics", "data"),
                    n=20,
                )
                specs.append(RunSpec(suite.name, concept, cfile, name, recipe, seed, settings, dkey, mk, ndf,
                                     suite.eval, base_plans.get(name), key))
    return specs
