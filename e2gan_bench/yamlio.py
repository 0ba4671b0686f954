"""Safe YAML loading and one-line validation errors, for every file a user writes (concepts, methods, suites,
targets) and every plugin's parameters.

:func:`load_yaml` refuses what could exhaust memory or time before parsing it (size, alias bombs, nesting);
:func:`validate` turns the first pydantic error into a :class:`ConfigError` that names the file, the field and the
offending value (or the allowed fields), so the CLI prints one line and exits 2.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from e2gan_bench.errors import ConfigError

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


