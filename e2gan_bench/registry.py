"""One small registry used for teachers, sources, ops, rank searches, selectors, metrics, executors.

Entries are added three ways: the ``@REG.register("name")`` decorator, a ``"package.module:attr"``
string passed wherever a name is accepted, or a setuptools entry point in the group
``e2gan_bench.<kind>``.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any, Generic, TypeVar

from e2gan_bench.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object map with lazy ``module:attr`` and entry-point lookup."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._entry_points_loaded = False

    def register(self, name: str | None = None) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            key = name or getattr(obj, "__name__", None)
            if not key:
                raise ValueError("registry entries need a name")
            self._items[key] = obj
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        self._items[name] = obj

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in metadata.entry_points(group=f"e2gan_bench.{self.kind}"):
            if ep.name not in self._items:
                self._items[ep.name] = ep.load()

    def names(self, pattern: str = "*") -> list[str]:
        self._load_entry_points()
        return sorted(n for n in self._items if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: str) -> bool:
        try:
            self.get(name)
        except ConfigError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str, *, file: str | None = None, field: str | None = None) -> T:
        if name in self._items:
            return self._items[name]
        if ":" in name:
            mod, _, attr = name.partition(":")
            try:
                obj: Any = importlib.import_module(mod)
                for part in attr.split("."):
                    obj = getattr(obj, part)
            except (ImportError, AttributeError) as exc:
                raise ConfigError(
                    f"cannot import {self.kind} '{name}': {exc}", file=file, field=field, value=name
                ) from None
            self._items[name] = obj
            return obj
        self._load_entry_points()
        if name in self._items:
            return self._items[name]
        raise ConfigError(
            f"unknown {self.kind}",
            file=file,
            field=field,
            value=name,
            allowed=", ".join(self.names()) + ", or package.module:attr",
        )
