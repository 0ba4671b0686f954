"""The plugin registry (decorator, module:attr, entry points) and the peak-memory probe."""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pytest

from e2gan_bench.errors import ConfigError
from e2gan_bench.metrics.cost import PeakRSS
from e2gan_bench.registry import Registry


def test_registry_three_ways(monkeypatch):
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


def test_peak_rss_sees_a_large_allocation():
    with PeakRSS(interval=0.005) as mem:
        big = np.ones(50_000_000, dtype=np.float32)  # 200 MB, touched
        big += 1
        import time

        time.sleep(0.05)
    del big
    assert mem.delta_bytes > 150e6
    with PeakRSS() as small:
        pass
    assert small.delta_bytes < 50e6
