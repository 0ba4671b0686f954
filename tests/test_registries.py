"""Every registry follows the plugin contract (e2gan_bench/plugins.py): each entry is a class or a function with a
``Params`` pydantic model, and takes its parameters in its kind's form — architectures as keyword arguments, the
other classes as the validated ``Params`` instance, function plugins as one context. A user-registered architecture
gets its sizes from a suite's ``model:``; executors are chosen and checked from the command-line options."""

from __future__ import annotations

import inspect
import sys
from typing import Any

import pytest
import torch
from conftest import TINY_SUITE, cli, one_error_line, write_suite
from pydantic import BaseModel, Field
from torch import nn

from e2gan_bench import plugins
from e2gan_bench.config import load_suite
from e2gan_bench.data.ops import OPS, op_params
from e2gan_bench.data.sources import SOURCES
from e2gan_bench.data.teachers import TEACHERS
from e2gan_bench.errors import ConfigError, UserError
from e2gan_bench.features.extractors import EXTRACTORS
from e2gan_bench.harness.executors import EXECUTORS, LocalExecutor, ProcessExecutor, make_executor
from e2gan_bench.harness.spec import expand_suite
from e2gan_bench.methods.contract import TRAINABLES
from e2gan_bench.methods.e2gan.rank_search import RANK_SEARCHES
from e2gan_bench.metrics import METRICS
from e2gan_bench.models.generators import ARCHS, Generator, build_generator
from e2gan_bench.models.text import TEXT_DIM, TEXT_ENCODERS, HashEncoder, build_encoder
from e2gan_bench.registry import Registry
from e2gan_bench.resources import Catalog
from e2gan_bench.training.base import BASE_SELECTORS
from e2gan_bench.training.selection import DATA_SELECTORS

#: kind -> (registry, how an entry takes its parameters)
REGISTRIES: dict[str, tuple[Registry, str]] = {
    "teacher": (TEACHERS, "instance"),
    "source": (SOURCES, "instance"),
    "metric": (METRICS, "instance"),
    "feature_extractor": (EXTRACTORS, "instance"),
    "text_encoder": (TEXT_ENCODERS, "instance"),
    "executor": (EXECUTORS, "instance"),
    "trainable": (TRAINABLES, "class"),
    "rank_search": (RANK_SEARCHES, "context"),
    "base_selector": (BASE_SELECTORS, "context"),
    "data_selector": (DATA_SELECTORS, "context"),
    "op": (OPS, "signature"),
    "arch": (ARCHS, "keywords"),
}
#: what some classes take besides their Params instance
EXTRA_ARGS: dict[str, dict[str, Any]] = {"source": {"split_seed": 0}, "teacher": {"file": None}}


def test_every_registry_of_the_package_is_walked():
    found = {obj.kind for name, mod in list(sys.modules.items()) if name.startswith("e2gan_bench")
             for obj in vars(mod).values() if isinstance(obj, Registry)}
    assert found == set(REGISTRIES)


@pytest.mark.parametrize("kind", list(REGISTRIES))
def test_every_entry_has_a_params_model_and_takes_it_in_its_kinds_form(kind):
    reg, form = REGISTRIES[kind]
    assert reg.kind == kind and reg.group == f"e2gan_bench.{kind}"
    entries = reg.entries()
    assert entries, kind
    for name, obj in entries:
        where = (kind, name)
        assert inspect.isclass(obj) or inspect.isfunction(obj), where
        model = op_params(obj) if form == "signature" else plugins.params_model(obj)
        # a declared Params is the model the contract uses (params_model falls back silently on anything else)
        assert form == "signature" or plugins.params_model(obj) is getattr(obj, "Params", plugins.Params), where
        assert isinstance(model, type) and issubclass(model, BaseModel), where
        assert model.model_config.get("extra") == "forbid" and model.model_config.get("frozen"), where
        fields = dict.fromkeys(model.model_fields)  # the parameters by name (their values do not matter here)
        sig = inspect.signature(obj)
        if form == "instance":
            assert inspect.isclass(obj), where
            sig.bind(model.model_construct(), **EXTRA_ARGS.get(kind, {}))
        elif form == "class":
            assert inspect.isclass(obj), where
            sig.bind()
        elif form == "context":
            assert inspect.isfunction(obj), where
            sig.bind(object())
        elif form == "signature":
            assert inspect.isfunction(obj), where
            sig.bind(object(), object(), **fields)
        else:  # keywords: the sizes, and the prompt width when text-conditioned
            if getattr(obj, "text_conditioned", False):
                fields["text_dim"] = TEXT_DIM
            sig.bind(**fields)


@pytest.mark.parametrize("arch", ["e2gan", "pix2pix-resnet", "identity"])
def test_builtin_architectures_params_defaults_are_their_constructors(arch):
    """build_generator passes every size (Params defaults included), so they must be the defaults of a generator
    built by hand: the same weights either way."""
    cls = ARCHS.get(arch)
    sig = inspect.signature(cls)
    for name, f in cls.Params.model_fields.items():
        assert sig.parameters[name].default == f.default, (arch, name)
    torch.manual_seed(0)
    a = build_generator(arch, {"ngf": 4} if arch != "identity" else {})
    torch.manual_seed(0)
    b = cls(**({"ngf": 4} if arch != "identity" else {}))
    assert type(a) is cls
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_build_generator_names_model_fields():
    with pytest.raises(ConfigError) as e:
        build_generator("e2gan", {"ngf": 0}, file="s.yaml")
    assert "field 'model.e2gan.ngf'" in e.value.line() and "s.yaml" in e.value.line()
    with pytest.raises(ConfigError) as e:
        build_generator("unet", {}, field="arch")
    assert "field 'arch'" in e.value.line() and "e2gan" in e.value.line()


def test_encoders_and_extractors_are_built_with_their_params():
    assert isinstance(build_encoder("hash"), HashEncoder)
    for cls in (dict(EXTRACTORS.entries()).values()):
        assert cls.Params().batch == 32  # the batch get_extractor always used


# ------------------------------------------------------------------------------------ a user-registered architecture

ARCH = "tiny-test-arch"


class TinyArch(Generator):
    """A one-layer generator whose only size is its width."""

    class Params(plugins.Params):
        width: int = Field(4, ge=1, le=64)

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.width = width
        self.body = nn.Sequential(nn.Conv2d(3, width, 1), nn.ReLU(), nn.Conv2d(width, 3, 1))

    def forward(self, x, text=None, text_mask=None):
        return x + self.body(x)


@pytest.fixture
def tiny_arch():
    ARCHS.register(ARCH)(TinyArch)
    yield
    ARCHS._items.pop(ARCH)


def _suite(model: str) -> str:
    return (TINY_SUITE.replace("methods: [identity, {scratch: {budget: {steps: 3}}}]",
                               f"methods: [{{scratch: {{arch: {ARCH}}}}}]")
            .replace("model: {e2gan: {ngf: 4}, pix2pix-resnet: {ngf: 4, n_blocks: 1}, discriminator: {ndf: 4}}",
                     f"model: {model}"))


def test_a_registered_architecture_takes_its_sizes_from_the_suite(tiny_arch, tmp_path):
    path = write_suite(tmp_path, _suite(f"{{e2gan: {{ngf: 4}}, {ARCH}: {{width: 3}}, discriminator: {{ndf: 4}}}}"))
    suite = load_suite(path)
    assert suite.model.kwargs("e2gan") == {"ngf": 4}  # the built-ins' keys as before: the sizes written
    (spec,) = expand_suite(suite, Catalog(), str(path), tmp_path / "cache")
    assert spec.method.arch == ARCH and spec.model_kwargs == {"width": 3}
    G = build_generator(spec.method.arch, spec.model_kwargs)
    assert isinstance(G, TinyArch) and G.width == 3
    assert G(torch.zeros(1, 3, 8, 8)).shape == (1, 3, 8, 8)
    # no sizes written: its Params defaults
    path = write_suite(tmp_path, _suite("{discriminator: {ndf: 4}}"), name="d.yaml")
    (spec,) = expand_suite(load_suite(path), Catalog(), str(path), tmp_path / "cache")
    assert spec.model_kwargs == {} and build_generator(ARCH, spec.model_kwargs).width == 4


@pytest.mark.parametrize("sizes, needles", [
    ("{width: 0}", [f"model.{ARCH}.width", "0"]),
    ("{widht: 3}", [f"model.{ARCH}.widht", "unknown field", "width"]),
    ("5", [f"model.{ARCH}", "5"]),
])
def test_a_bad_size_of_a_registered_architecture_is_one_line(tiny_arch, tmp_path, capsys, sizes, needles):
    path = write_suite(tmp_path, _suite(f"{{{ARCH}: {sizes}}}"))
    out = tmp_path / "out"
    assert cli("run", "--suite", path, "--out", out) == 2
    one_error_line(capsys, "s.yaml", *needles)
    assert not out.exists()


# ------------------------------------------------------------------------------------ executors from the CLI options

@pytest.mark.parametrize("kind, jobs, address, needles", [
    ("threads", None, None, ["field '--executor'", "'threads'", "(allowed: local, process, ray)"]),
    (None, 0, None, ["field '--jobs'", "value 0", "must be from 1 to 256"]),
    ("process", 257, None, ["field '--jobs'", "257"]),
    ("local", 3, None, ["field '--jobs'", "value 3", "the local executor runs one run at a time"]),
    (None, None, "auto", ["field '--ray-address'", "'auto'", "only with --executor ray"]),
    ("process", None, "auto", ["field '--ray-address'", "only with --executor ray"]),
    ("ray", None, " ", ["field '--ray-address'", "empty address"]),
    # the options every executor reads come first
    ("ray", 0, "", ["field '--jobs'", "must be from 1"]),
    (None, 0, "auto", ["field '--jobs'", "must be from 1"]),
])
def test_bad_executor_options_name_the_option(kind, jobs, address, needles):
    with pytest.raises(UserError) as e:
        make_executor(kind, jobs, address)
    line = e.value.line()
    assert "\n" not in line and all(n in line for n in needles), line


def test_executors_are_built_with_their_validated_options():
    ex = make_executor(None, None, None)
    assert type(ex) is LocalExecutor and ex.params == LocalExecutor.Params()
    ex = make_executor(None, 3, None)
    assert type(ex) is ProcessExecutor and ex.jobs == ex.slots == 3 and ex.params.jobs == 3
    assert type(make_executor("local", 1, None)) is LocalExecutor
    assert EXECUTORS.names() == ["local", "process", "ray"]
    assert EXECUTORS.get("ray").Params(jobs=2, ray_address="auto").ray_address == "auto"
