"""One disk cache: atomic writes, and one policy for unreadable entries (a miss: deleted, logged, recomputed) —
for every cache that uses it."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from e2gan_bench.cache import DiskCache, atomic_dir, atomic_write, read_json, read_npz
from e2gan_bench.config import EvalSpec
from e2gan_bench.data.dataset import DataSettings, build_dataset
from e2gan_bench.metrics import EvalContext, MetricUnavailable, metric
from e2gan_bench.metrics import latency as latency_module
from e2gan_bench.resources import Catalog


def test_corrupt_entry_is_a_logged_miss(tmp_path, caplog):
    cache = DiskCache(tmp_path, "things", ".json")
    calls = []

    def compute():
        calls.append(1)
        return {"x": len(calls)}

    dump = lambda d: (str(d).replace("'", '"')).encode()  # noqa: E731
    assert cache.get_or_compute("k", compute, read_json, dump) == {"x": 1}
    assert cache.get_or_compute("k", compute, read_json, dump) == {"x": 1} and len(calls) == 1
    cache.path("k").write_text("{truncated")
    with caplog.at_level(logging.WARNING, logger="e2gan_bench.cache"):
        assert cache.get("k", read_json) is None
    assert not cache.path("k").exists()  # deleted
    assert len(caplog.records) == 1 and "unreadable" in caplog.text and str(cache.path("k")) in caplog.text
    assert cache.get_or_compute("k", compute, read_json, dump) == {"x": 2}  # recomputed and rewritten
    assert read_json(cache.path("k")) == {"x": 2}
    off = DiskCache(None, "things", ".json")  # no folder: always a miss, never written
    assert off.get_or_compute("k", compute, read_json, dump) == {"x": 3}


def test_atomic_writes_leave_nothing_half_written(tmp_path):
    target = tmp_path / "a" / "file.bin"
    atomic_write(target, lambda f: f.write(b"old"))

    def fails(f):
        f.write(b"half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        atomic_write(target, fails)
    assert target.read_bytes() == b"old" and [p.name for p in target.parent.iterdir()] == ["file.bin"]
    folder = tmp_path / "dir"
    with atomic_dir(folder) as tmp:
        (tmp / "x").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(folder) as tmp:
        (tmp / "x").write_text("2")
        raise RuntimeError("interrupted")
    assert (folder / "x").read_text() == "1" and sorted(p.name for p in tmp_path.iterdir()) == ["a", "dir"]


def test_dataset_and_crop_caches_recover_from_corrupt_entries(tmp_path):
    c = Catalog().concept("sepia")
    s = DataSettings(16, 4, 2)
    first = build_dataset(c, s, tmp_path)
    crops = next((tmp_path / "data").glob("crops-*.npz"))
    pairs = tmp_path / "data" / f"{first.key}.npz"
    crops.write_bytes(crops.read_bytes()[:50])
    pairs.unlink()  # the pairs must be rebuilt, from the (corrupt) crops cache
    again = build_dataset(c, s, tmp_path)
    assert np.array_equal(again.src_train, first.src_train) and np.array_equal(again.tgt_test, first.tgt_test)
    assert set(read_npz(("train", "test"))(crops)) == {"train", "test"}  # rewritten whole


def test_latency_cache_policy(tmp_path, monkeypatch):
    """The latency metric measures once per architecture and settings; an unreadable entry is measured again."""
    calls = []

    class Result:
        def to_dict(self):
            calls.append(1)
            return {"median_ms": 1.5, "p90_ms": 2.0, "threads": 1, "opt_level": "all"}

    monkeypatch.setattr(latency_module, "measure_latency", lambda *a, **k: Result())  # builtin imports it at use
    ctx = lambda: EvalContext(EvalSpec(), np.zeros((1, 16, 16, 3), np.uint8), np.zeros((1, 16, 16, 3), np.uint8),  # noqa: E731
                              np.zeros((1, 16, 16, 3), np.uint8), "p", torch.nn.Identity(), "e2gan", {"ngf": 4}, 16,
                              tmp_path, {})
    lat = metric("latency_ms")()
    assert lat.compute(ctx()) == 1.5 and lat.compute(ctx()) == 1.5 and len(calls) == 1
    entry: Path = next((tmp_path / "latency").glob("*.json"))
    entry.write_text("not json")
    c = ctx()
    assert lat.compute(c) == 1.5 and len(calls) == 2 and c.details["latency"]["p90_ms"] == 2.0
    assert lat.compute(ctx()) == 1.5 and len(calls) == 2
    with pytest.raises(MetricUnavailable, match="nothing to time"):  # recorded as n/a with the reason
        lat.compute(EvalContext(**{**ctx().__dict__, "arch": "identity"}))
