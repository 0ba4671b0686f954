"""The plugin contract shared by every kind of plugin.

A plugin is a registered class or function with a ``Params`` attribute: a pydantic model (subclass of
:class:`Params`) of the parameters it accepts. The parameters written in a concept, method or suite file are
validated against it before the plugin runs, so a wrong name or value is a one-line error naming the file and
the field. A plugin without parameters keeps the empty default and rejects any.

How each kind receives its parameters:

* classes (teachers, sources, metrics, feature extractors, prompt encoders, executors) are
  constructed with the validated ``Params`` instance (the built-in extractors and encoders with their defaults;
  an executor's ``Params`` are the command-line options it reads, ``--jobs``, ``--ray-address``);
* function plugins (rank searches, base selectors, data selectors) get one context object whose ``params`` is
  the validated instance;
* ops are image functions whose keyword arguments are their parameters: their ``Params`` model is derived
  from the signature (:mod:`e2gan_bench.data.ops`);
* generator architectures declare their sizes as ``Params`` (the built-ins' are the torch-free sizes models of
  :mod:`e2gan_bench.config.schemas`, with the settings of :class:`Params`, so suites are checked before torch is
  imported) and are constructed with the
  validated sizes as keyword arguments (:func:`e2gan_bench.models.generators.build_generator`; a generator is also
  built by hand, ``E2GANGenerator(ngf=8)``). Their parameters are a suite's ``model.<arch>``.

The kinds, their registries and entry-point groups are listed in docs/architecture.md and the README.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from e2gan_bench.errors import ConfigError
from e2gan_bench.yamlio import validate

T = TypeVar("T")


class Params(BaseModel):
    """Base of every plugin's parameters: unknown fields are errors, values are frozen (they enter keys)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # NaN and inf refused everywhere


def params_model(plugin: Any) -> type[BaseModel]:
    """The plugin's ``Params`` model (the empty :class:`Params` when it declares none)."""
    model = getattr(plugin, "Params", None)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else Params


def parse_params(plugin: Any, raw: dict[str, Any] | None, *, file: str | None = None, field: str = "params",
                 offered: dict[str, Any] | None = None, offered_field: str | None = None) -> Any:
    """Validate ``raw`` against the plugin's ``Params``; errors name ``file`` and ``field.<name>``.

    ``offered``: values of the enclosing spec's shared fields (``base.count``, ``data.features``), passed to the
    plugin only when its ``Params`` has a field of that name; errors in them name ``offered_field.<name>``.
    """
    model = params_model(plugin)
    raw = dict(raw or {})
    given = {k: v for k, v in (offered or {}).items() if k in model.model_fields and k not in raw}
    try:
        return validate(model, {**given, **raw}, file=file, prefix=field)
    except ConfigError as exc:
        key = (exc.field or "").removeprefix(field + ".")
        if offered_field is not None and key.split(".")[0].split("[")[0] in given:
            raise ConfigError(exc.message, file=exc.file, field=f"{offered_field}.{key}", value=exc.value,
                              allowed=exc.allowed) from None
        raise


def with_params(model: type[Params]) -> Callable[[T], T]:
    """Decorator for function plugins in user code: declare the ``Params`` model the function accepts."""

    def deco(fn: T) -> T:
        fn.Params = model  # type: ignore[attr-defined]
        return fn

    return deco
