"""pytest-benchmark: generator forward passes at the quick suite's size, in PyTorch and in ONNX Runtime.

* ``test_forward``: one batch of 8 test images (48 px) through the E2GAN generator (ngf 16) and the pix2pix
  ResNet-9 generator (ngf 16, stem skip), as the quick suite builds them, in eval mode without gradients —
  the cost of evaluation and of the validation curves.
* ``test_ort``: the same generators exported to ONNX (``metrics/onnx.py``), one image through an ONNX Runtime
  session with 1 thread and full graph optimisation — what the latency metric times (a desktop CPU proxy for
  mobile latency, not a phone measurement); ``bench_latency.py`` does the same at 64 px.

Run with ``tox -e bench`` (README "Benchmarks").
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import Quick, machine_info

from e2gan_bench.metrics.latency import PROXY_LABEL
from e2gan_bench.metrics.onnx import count_macs, example_inputs, export_onnx, make_session
from e2gan_bench.models.generators import ARCHS, count_params
from e2gan_bench.models.tensors import to_tensor

BATCH = 8
#: method of the quick suite -> the generator it trains
METHODS = {"e2gan": "e2gan", "pix2pix": "pix2pix-resnet"}


def _generator(quick: Quick, method: str) -> tuple[torch.nn.Module, dict]:
    spec = quick.spec(method)
    torch.manual_seed(0)
    return ARCHS.get(spec.method.arch)(**spec.model_kwargs).eval(), spec.model_kwargs


@pytest.mark.parametrize("method", sorted(METHODS))
def test_forward(benchmark, quick: Quick, method: str) -> None:
    G, kwargs = _generator(quick, method)
    x = to_tensor(quick.pairs.src_test[:BATCH])
    text = quick.prompt.tokens[None].expand(len(x), -1, -1)
    mask = quick.prompt.mask[None].expand(len(x), -1)

    def forward() -> torch.Tensor:
        with torch.no_grad():
            return G(x, text, mask)

    out = forward()
    assert out.shape == x.shape and torch.isfinite(out).all()
    benchmark.group = f"forward-{x.shape[-1]}px-batch{len(x)}"
    benchmark.extra_info.update(arch=METHODS[method], model=kwargs, params=count_params(G), batch=len(x),
                                resolution=int(x.shape[-1]), **machine_info())
    benchmark.pedantic(forward, rounds=10, iterations=1, warmup_rounds=2)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_ort(benchmark, quick: Quick, method: str, tmp_path) -> None:
    G, kwargs = _generator(quick, method)
    res = quick.pairs.resolution
    path = export_onnx(G, res, tmp_path / f"{method}.onnx")
    feeds = example_inputs(G, res, seed=0)
    sess = make_session(path, threads=1, opt_level="all")
    out = sess.run(None, feeds)[0]
    with torch.no_grad():
        ref = G(*[torch.from_numpy(v) for v in feeds.values()]).numpy()
    assert float(np.abs(out - ref).max()) <= 1e-4  # the same check the latency metric makes
    benchmark.group = f"ort-{res}px-batch1-1thread"
    benchmark.extra_info.update(arch=METHODS[method], model=kwargs, params=count_params(G), macs=count_macs(G, feeds),
                                threads=1, opt_level="all", label=PROXY_LABEL, **machine_info())
    benchmark.pedantic(sess.run, args=(None, feeds), rounds=30, iterations=1, warmup_rounds=5)
