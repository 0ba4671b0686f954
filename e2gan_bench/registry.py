"""One registry type for every kind of plugin (teachers, sources, ops, rank searches, selectors, metrics, …).

Entries are added three ways: the ``@REG.register("name")`` decorator, a ``"package.module:attr"`` string passed
wherever a name is accepted, or an entry point in the group ``e2gan_bench.<kind>`` of an installed package. A
``module:attr`` written in a file is imported only with ``$E2GAN_BENCH_ALLOW_CODE=1`` (a file that names code is code);
one typed on the command line is trusted (:func:`trust`); registered names and entry points need neither.
A name belongs to one object: registering another object under a taken name is an error, and an unknown name is
answered with the close names that do exist.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import os
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any, Generic, TypeVar

from e2gan_bench.errors import ConfigError

T = TypeVar("T")

#: ``1``: a ``module:attr`` named in a file (suite, concept, method, a store's run configuration) may be imported.
#: Without it such a name is refused: a file that names code is code, and is run only when its user says so.
CODE_ENV = "E2GAN_BENCH_ALLOW_CODE"
#: ``module:attr`` names the user typed on the command line (``--rank-search``): trusted without :data:`CODE_ENV`;
#: kept in the environment so that worker processes (process and Ray executors) trust them too.
TRUSTED_ENV = "E2GAN_BENCH_TRUSTED_CODE"


def trust(name: str) -> None:
    """Trust one ``module:attr`` the user gave on the command line (no effect on a registered name)."""
    if ":" in name:
        names = [n for n in os.environ.get(TRUSTED_ENV, "").split(",") if n]
        if name not in names:
            os.environ[TRUSTED_ENV] = ",".join([*names, name])


def code_allowed(name: str) -> bool:
    return os.environ.get(CODE_ENV) == "1" or name in os.environ.get(TRUSTED_ENV, "").split(",")


def _where(obj: Any) -> str:
    mod = getattr(obj, "__module__", None) or type(obj).__module__
    return f"{mod}:{getattr(obj, '__qualname__', type(obj).__qualname__)}"


class Registry(Generic[T]):
    """A name -> object map with lazy ``module:attr`` and entry-point lookup; names are unique."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._entry_points_loaded = False

    @property
    def group(self) -> str:
        """The entry-point group of this kind of plugin."""
        return f"e2gan_bench.{self.kind}"

    def register(self, name: str | None = None, *, params: type | None = None) -> Callable[[T], T]:
        """Decorator: register under ``name`` (default: the object's ``__name__``); ``params`` sets the plugin's
        ``Params`` model (for function plugins)."""

        def deco(obj: T) -> T:
            key = name or getattr(obj, "__name__", None)
            if not key:
                raise ValueError("registry entries need a name")
            if params is not None:
                obj.Params = params  # type: ignore[attr-defined]
            self.add(key, obj)
            return obj

        return deco

    def add(self, name: str, obj: T, *, origin: str | None = None) -> None:
        """Register ``obj`` under ``name``; the same object again is a no-op, another object is an error."""
        old = self._items.get(name)
        if old is not None and old is not obj:
            raise ConfigError(f"duplicate {self.kind} name: already registered by {_where(old)}, so "
                              f"{origin or _where(obj)} cannot take it; choose another name", value=name)
        self._items[name] = obj

    def _load_entry_points(self) -> None:
        """Add the installed plugins of this kind, all or none (a broken or clashing one is an error every time)."""
        if self._entry_points_loaded:
            return
        before = dict(self._items)
        try:
            for ep in metadata.entry_points(group=self.group):
                try:
                    obj = ep.load()
                except Exception as exc:  # a broken installed plugin: name it, do not crash with a traceback
                    raise ConfigError(f"cannot load {self.kind} plugin ({type(exc).__name__}: {exc})",
                                      field=f"entry point {self.group}", value=f"{ep.name} = {ep.value}") from None
                self.add(ep.name, obj, origin=f"entry point {ep.name} = {ep.value}")
        except ConfigError:
            self._items = before
            raise
        self._entry_points_loaded = True

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names (built-in and entry points), sorted."""
        self._load_entry_points()
        return sorted(n for n in self._items if ":" not in n and fnmatch.fnmatch(n, pattern))

    def entries(self) -> list[tuple[str, T]]:
        """(name, object) in registration order (built-ins first, then entry points)."""
        self._load_entry_points()
        return [(n, o) for n, o in self._items.items() if ":" not in n]

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
            if not code_allowed(name):
                raise ConfigError(f"names code: {self.kind} '{name}' would import and run module '{mod}'; a suite, "
                                  f"concept, method or results store that names code is code — if you trust this "
                                  f"one, set {CODE_ENV}=1 (a name typed as --rank-search needs nothing)",
                                  file=file, field=field, value=name)
            try:
                obj: Any = importlib.import_module(mod)
                for part in attr.split("."):
                    obj = getattr(obj, part)
            except (ImportError, AttributeError) as exc:
                raise ConfigError(
                    f"cannot import {self.kind} '{name}': {exc}", file=file, field=field, value=name
                ) from None
            except Exception as exc:  # the module itself fails at import (a syntax error, an exception)
                first = " ".join(str(exc).split())[:160]
                raise ConfigError(f"cannot import {self.kind} '{name}': its module fails to import "
                                  f"({type(exc).__name__}: {first})", file=file, field=field, value=name) from None
            if not callable(obj):  # every kind of plugin is a class or a function
                raise ConfigError(f"{self.kind} '{name}' is a {type(obj).__name__}, not a class or function",
                                  file=file, field=field, value=name)
            self._items[name] = obj
            return obj
        self._load_entry_points()
        if name in self._items:
            return self._items[name]
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.6)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        raise ConfigError(
            f"unknown {self.kind}{hint}",
            file=file,
            field=field,
            value=name,
            allowed=", ".join(self.names()) + ", or package.module:attr",
        )
