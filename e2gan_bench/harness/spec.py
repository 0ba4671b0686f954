"""Suite expansion: a suite YAML becomes a grid of RunSpec (concept × method × seed), each keyed
by the hash of everything that determines its result."""

from __future__ import annotations

from dataclasses import dataclass, field
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


def _base_plan(suite: Suite, catalog: Catalog, suite_file: str) -> BasePlan:
    spec = suite.base
    if spec.selector != "list":
        raise ConfigError("only the 'list' base selector exists so far", file=suite_file, field="base.selector",
                          value=spec.selector, allowed="list")
    if not spec.concepts:
        raise ConfigError("a suite with a base-initialised method needs base.concepts", file=suite_file,
                          field="base.concepts")
    concepts = tuple(catalog.concept(n, file=suite_file, field="base.concepts") for n in spec.concepts)
    settings = tuple(DataSettings.for_concept(c, suite.data) for c in concepts)
    keys = tuple(dataset_key(c, s, file=catalog.concept_file(c.name)) for c, s in zip(concepts, settings, strict=True))
    mk = model_kwargs(suite, "e2gan")
    ndf = int(model_kwargs(suite, "discriminator")["ndf"])
    from e2gan_bench.models.text import default_encoder

    enc = default_encoder().info
    key = content_key("base", spec.model_dump(), keys, [c.prompt for c in concepts], mk, ndf, enc.name, enc.weights,
                      code_version("models", "training"))
    return BasePlan(spec, concepts, settings, keys, mk, ndf, key)


def expand_suite(suite: Suite, catalog: Catalog, suite_file: str) -> list[RunSpec]:
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
    base_plan = _base_plan(suite, catalog, suite_file) if any(r.init == "base" for _, r in recipes) else None
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
                mk = base_plan.model_kwargs
            ndf = int(model_kwargs(suite, "discriminator")["ndf"])
            for seed in suite.seeds:
                recipe_desc = recipe.model_dump(exclude={"name", "description"})
                key = content_key(
                    "run", concept.model_dump(), dkey, recipe_desc, seed, mk, ndf, suite.eval.model_dump(),
                    base_plan.key if recipe.init == "base" else None, enc.name, enc.weights,
                    code_version("models", "training", "metrics", "data"),
                    n=20,
                )
                specs.append(RunSpec(suite.name, concept, cfile, name, recipe, seed, settings, dkey, mk, ndf,
                                     suite.eval, base_plan if recipe.init == "base" else None, key))
    return specs
