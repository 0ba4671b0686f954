"""pytest-benchmark: ONNX Runtime latency of the E2GAN vs pix2pix ResNet generators (64², ngf 16, 1 thread).

Not collected by the default test run (``testpaths = tests``; ``--benchmark-disable`` in addopts). Run with::

    HF_HUB_OFFLINE=1 .venv/bin/python -m pytest benchmarks/bench_latency.py --benchmark-enable -p no:cacheprovider

A desktop CPU proxy for mobile latency (ONNX Runtime); not a phone measurement.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from e2gan_bench.metrics.latency import PROXY_LABEL  # noqa: E402
from e2gan_bench.metrics.onnx import count_macs, example_inputs, export_onnx, make_session  # noqa: E402
from e2gan_bench.models.generators import ARCHS, count_params  # noqa: E402

RESOLUTION = 64
NGF = 16
THREADS = 1
CONFIGS = {"e2gan": {"ngf": NGF}, "pix2pix-resnet": {"ngf": NGF, "n_blocks": 9}}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def exported(request, tmp_path_factory):
    arch = request.param
    torch.manual_seed(0)
    G = ARCHS.get(arch)(**CONFIGS[arch]).eval()
    path = export_onnx(G, RESOLUTION, tmp_path_factory.mktemp("bench") / f"{arch}.onnx")
    feeds = example_inputs(G, RESOLUTION, seed=0)
    return arch, G, path, feeds


def test_ort_latency(benchmark, exported):
    arch, G, path, feeds = exported
    sess = make_session(path, threads=THREADS, opt_level="all")
    out = sess.run(None, feeds)[0]
    with torch.no_grad():
        ref = G(*[torch.from_numpy(v) for v in feeds.values()]).numpy()
    assert float(np.abs(out - ref).max()) <= 1e-4
    benchmark.group = f"ort-{RESOLUTION}px-ngf{NGF}"
    benchmark.extra_info.update(arch=arch, params=count_params(G), macs=count_macs(G, feeds), threads=THREADS,
                                label=PROXY_LABEL)
    benchmark.pedantic(sess.run, args=(None, feeds), rounds=30, iterations=1, warmup_rounds=5)
