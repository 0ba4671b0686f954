"""Find the built-in concepts, baseline recipes and suites — from a checkout or an installed wheel."""

from __future__ import annotations

from pathlib import Path

from e2gan_bench.config import Concept, MethodRecipe, Suite, load_concept, load_recipe, load_suite
from e2gan_bench.errors import ConfigError

KINDS = ("concepts", "baselines", "suites")


def builtin_dir(kind: str) -> Path:
    """``e2gan_bench/_resources/<kind>`` in a wheel, ``<checkout>/<kind>`` in a checkout."""
    pkg = Path(__file__).resolve().parent
    inside = pkg / "_resources" / kind
    return inside if inside.is_dir() else pkg.parent / kind


def _yaml_files(dirs: list[Path]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in dirs:
        if not d.is_dir():
            raise ConfigError("folder not found", value=str(d))
        for f in sorted(d.glob("*.yaml")):
            if f.stem in found and found[f.stem].resolve() != f.resolve():
                raise ConfigError(f"duplicate name, also defined in {found[f.stem]}", file=str(f), field="name",
                                  value=f.stem)
            found[f.stem] = f
    return found


class Catalog:
    """All concepts and recipes visible to a run: the built-in ones plus user folders."""

    def __init__(self, concept_dirs: list[Path] | None = None, recipe_dirs: list[Path] | None = None) -> None:
        self.concept_files = _yaml_files([builtin_dir("concepts"), *(concept_dirs or [])])
        self.recipe_files = _yaml_files([builtin_dir("baselines"), *(recipe_dirs or [])])
        self._concepts: dict[str, Concept] = {}
        self._recipes: dict[str, MethodRecipe] = {}

    def concept_names(self) -> list[str]:
        return sorted(self.concept_files)

    def concept(self, name: str, *, file: str | None = None, field: str | None = None) -> Concept:
        if name not in self._concepts:
            if name not in self.concept_files:
                raise ConfigError("unknown concept", file=file, field=field, value=name,
                                  allowed="see `e2gan-bench concepts list`")
            self._concepts[name] = load_concept(self.concept_files[name])
        return self._concepts[name]

    def concept_file(self, name: str) -> str:
        return str(self.concept_files[name])

    def recipe_names(self) -> list[str]:
        return sorted(self.recipe_files)

    def recipe_file(self, name: str) -> str:
        return str(self.recipe_files[name])

    def recipe(self, name: str, *, file: str | None = None, field: str | None = None) -> MethodRecipe:
        if name not in self._recipes:
            if name not in self.recipe_files:
                raise ConfigError("unknown method", file=file, field=field, value=name,
                                  allowed=", ".join(self.recipe_names()))
            self._recipes[name] = load_recipe(self.recipe_files[name])
        return self._recipes[name]


def suite_names() -> list[str]:
    return sorted(_yaml_files([builtin_dir("suites")]))


def find_suite(name_or_path: str) -> tuple[Suite, Path]:
    """A built-in suite name or a path to a suite YAML file."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return load_suite(p), p
    files = _yaml_files([builtin_dir("suites")])
    if name_or_path not in files:
        raise ConfigError("unknown suite", field="--suite", value=name_or_path, allowed=", ".join(sorted(files)))
    return load_suite(files[name_or_path]), files[name_or_path]
