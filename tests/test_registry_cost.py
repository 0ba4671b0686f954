"""The plugin registry (decorator, module:attr, entry points) and the peak-memory probe."""

from __future__ import annotations

from importlib import metadata

import pytest

from e2gan_bench.errors import ConfigError
from e2gan_bench.metrics.cost import step_peak_tensor_bytes
from e2gan_bench.registry import Registry


def test_registry_three_ways(monkeypatch, allow_code):
    reg: Registry = Registry("demo")

    @reg.register("a")
    def a():
        return "a"

    assert reg.get("a") is a
    assert reg.get("json:dumps")({"x": 1}) == '{"x": 1}'  # module:attr
    ep = metadata.EntryPoint(name="from-ep", value="json:loads", group="e2gan_bench.demo")
    monkeypatch.setattr(metadata, "entry_points", lambda group: [ep] if group == "e2gan_bench.demo" else [])
    assert reg.get("from-ep")("[1]") == [1]
    assert "from-ep" in reg.names() and "a" in reg.names("a*")
    with pytest.raises(ConfigError) as e:
        reg.get("nope", file="f.yaml", field="x")
    assert "from-ep" in e.value.line() and "f.yaml" in e.value.line()
    with pytest.raises(ConfigError, match="cannot import"):
        reg.get("no_such_module_xyz:thing")


def test_code_named_in_a_file_needs_the_opt_in(monkeypatch):
    """The trust boundary: without $E2GAN_BENCH_ALLOW_CODE a module:attr is refused (naming the module it would
    import) and nothing is imported; a name trusted from the command line, or the opt-in, imports it; registered
    names need neither."""
    import sys

    from e2gan_bench.registry import trust

    reg: Registry = Registry("demo")
    reg.register("builtin")(lambda: 1)
    sys.modules.pop("plugins.my_search", None)
    with pytest.raises(ConfigError) as e:
        reg.get("plugins.my_search:out_heavy", file="s.yaml", field="lora.search")
    line = e.value.line()
    assert "names code" in line and "'plugins.my_search'" in line and "E2GAN_BENCH_ALLOW_CODE=1" in line
    assert "s.yaml" in line and "lora.search" in line
    assert "plugins.my_search" not in sys.modules  # refused before importing anything
    assert reg.get("builtin")() == 1  # registered names need no opt-in
    trust("plugins.my_search:out_heavy")  # what `--rank-search plugins.my_search:out_heavy` does
    assert callable(reg.get("plugins.my_search:out_heavy"))
    with pytest.raises(ConfigError, match="names code"):
        reg.get("plugins.my_search:rank_one_everywhere")  # trusting one name trusts no other
    monkeypatch.setenv("E2GAN_BENCH_ALLOW_CODE", "1")
    assert callable(reg.get("plugins.my_search:rank_one_everywhere"))


def test_step_peak_sees_a_large_allocation_and_not_what_came_before():
    import torch

    lin = torch.nn.Linear(1000, 1000)  # 4 MB of parameters
    keep = torch.ones(10_000_000)  # 40 MB allocated before the step: not the step's memory
    peaks = step_peak_tensor_bytes(lambda: torch.ones(25_000_000).sum(), [lin], [])  # a 100 MB temporary
    assert 100e6 <= peaks["total"] < 106e6
    assert 3.9e6 < peaks["parameters"] < 4.1e6

    def one_at_a_time():  # five 40 MB tensors, each freed before the next: the peak is 40 MB, not 200
        for _ in range(5):
            a = torch.ones(10_000_000)
            del a

    assert 40e6 <= step_peak_tensor_bytes(one_at_a_time, [], [])["step_peak"] < 41e6

    def views_share():  # a view of a storage is not counted again
        a = torch.ones(10_000_000)
        return a[:5], a.view(100, -1)

    assert 40e6 <= step_peak_tensor_bytes(views_share, [], [])["step_peak"] < 41e6
    small = step_peak_tensor_bytes(lambda: torch.ones(10).sum(), [lin], [])
    assert small["total"] < 5e6
    del keep
