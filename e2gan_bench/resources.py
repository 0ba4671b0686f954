"""Find the built-in concepts, methods and suites — from a checkout or an installed wheel.

Methods are folders: E2GAN's is ``e2gan_bench/methods/e2gan/`` (inside the package), the baselines' are
``baselines/<name>/`` (a top-level folder of the checkout; ``_resources/baselines`` in a wheel); each holds its
preset ``<name>.yaml`` and its card. Method folders are searched recursively, built-in and ``--methods-dir`` alike."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path

from e2gan_bench.config import (
    Concept,
    Method,
    Suite,
    TargetFile,
    load_concept,
    load_method,
    load_suite,
    load_targets,
)
from e2gan_bench.errors import ConfigError

#: Folder of each kind in a checkout; a wheel installs them as ``_resources/<kind>``.
CHECKOUT_FOLDERS = {"concepts": "concepts", "baselines": "baselines", "suites": "suites", "targets": "targets"}


def builtin_dir(kind: str) -> Path:
    """``e2gan_bench/_resources/<kind>`` in a wheel, ``<checkout>/<folder of kind>`` in a checkout."""
    pkg = Path(__file__).resolve().parent
    inside = pkg / "_resources" / kind
    return inside if inside.is_dir() else pkg.parent / CHECKOUT_FOLDERS[kind]


def builtin_method_dirs() -> list[Path]:
    """The built-in method folders: E2GAN's (inside the package) and the baselines' (``baselines/<name>/``)."""
    return [Path(__file__).resolve().parent / "methods", builtin_dir("baselines")]


def _walk_yaml(root: Path) -> list[Path]:
    """The YAML files below ``root``, never entering a hidden folder (``.venv``, ``.git``: pruned, not walked)."""
    out: list[Path] = []
    for here, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        out += [Path(here) / f for f in files if f.endswith(".yaml") and not f.startswith(".")]
    return out


def _yaml_files(dirs: list[Path], recursive: tuple[Path, ...] = ()) -> dict[str, Path]:
    """``name -> file`` of the YAML files in ``dirs`` (and in the subfolders of those listed in ``recursive``; hidden
    files and folders — ``.venv``, ``.git`` — are skipped)."""
    found: dict[str, Path] = {}
    for d in dirs:
        if not d.is_dir():
            raise ConfigError("folder not found", value=str(d))
        for f in sorted(_walk_yaml(d) if d in recursive else d.glob("*.yaml")):
            if f.stem in found and found[f.stem].resolve() != f.resolve():
                raise ConfigError(f"duplicate name, also defined in {found[f.stem]}", file=str(f), field="name",
                                  value=f.stem)
            found[f.stem] = f
    return found


class Catalog:
    """All concepts and methods visible to a run: the built-in ones plus user folders."""

    def __init__(self, concept_dirs: list[Path] | None = None, method_dirs: list[Path] | None = None) -> None:
        # the built-in concepts include their subfolders (concepts/paper/: the paper's concept sets)
        builtin = builtin_dir("concepts")
        self.concept_files = _yaml_files([builtin, *(concept_dirs or [])], recursive=(builtin,))
        # a method is a folder (its preset, its card, perhaps its code): every method folder is searched recursively
        mdirs = [*builtin_method_dirs(), *(method_dirs or [])]
        self.method_files = _yaml_files(mdirs, recursive=tuple(mdirs))
        self._concepts: dict[str, Concept] = {}
        self._methods: dict[str, Method] = {}
        self._bind: Callable[[Concept, str], Concept] | None = None

    def bound(self, bind: Callable[[Concept, str], Concept]) -> Catalog:
        """The same catalog whose concepts pass through ``bind(concept, file)`` once loaded (a suite's machine-specific
        inputs: data root, teacher weights)."""
        out = copy.copy(self)
        out._concepts, out._bind = {}, bind
        return out

    def concept_names(self) -> list[str]:
        return sorted(self.concept_files)

    def bank_names(self) -> list[str]:
        """The concept bank a base selector draws from by default: every concept except the built-in subfolders'
        sets (concepts/paper/: the paper's suites name theirs)."""
        builtin = builtin_dir("concepts").resolve()
        return sorted(n for n, f in self.concept_files.items()
                      if f.resolve().parent == builtin or not f.resolve().is_relative_to(builtin))

    def concept(self, name: str, *, file: str | None = None, field: str | None = None) -> Concept:
        if name not in self._concepts:
            if name not in self.concept_files:
                raise ConfigError("unknown concept", file=file, field=field, value=name,
                                  allowed="see `e2gan-bench concepts list`")
            c = load_concept(self.concept_files[name])
            self._concepts[name] = self._bind(c, str(self.concept_files[name])) if self._bind else c
        return self._concepts[name]

    def concept_file(self, name: str) -> str:
        return str(self.concept_files[name])

    def method_names(self) -> list[str]:
        return sorted(self.method_files)

    def method(self, name: str, *, file: str | None = None, field: str | None = None) -> Method:
        if name not in self._methods:
            if name not in self.method_files:
                raise ConfigError("unknown method", file=file, field=field, value=name,
                                  allowed=", ".join(self.method_names()))
            self._methods[name] = load_method(self.method_files[name])
        return self._methods[name]


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


def target_names() -> list[str]:
    d = builtin_dir("targets")
    return sorted(_yaml_files([d])) if d.is_dir() else []


def find_targets(name_or_path: str, *, file: str | None = None, field: str | None = "target.file"
                 ) -> tuple[TargetFile, Path]:
    """A built-in targets file (``targets/<name>.yaml``, made by ``e2gan-bench targets make``) or a path to one."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise ConfigError("targets file not found", file=file, field=field, value=name_or_path)
        return load_targets(p), p
    d = builtin_dir("targets")
    files = _yaml_files([d]) if d.is_dir() else {}
    if name_or_path not in files:
        raise ConfigError("unknown targets file", file=file, field=field, value=name_or_path,
                          allowed=", ".join(sorted(files)) or "none built in (e2gan-bench targets make)")
    return load_targets(files[name_or_path]), files[name_or_path]
