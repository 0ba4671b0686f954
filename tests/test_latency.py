"""Latency: real ONNX export + ONNX Runtime (no mocks), LoRA unwrapping, the `latency` command. Tiny sizes."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import copy  # noqa: E402
import json  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from peft.tuners.tuners_utils import BaseTunerLayer  # noqa: E402

from e2gan_bench.cli import main  # noqa: E402
from e2gan_bench.errors import UserError  # noqa: E402
from e2gan_bench.metrics.latency import PROXY_LABEL, LatencyCheckError, latency_key, measure_latency  # noqa: E402
from e2gan_bench.metrics.onnx import example_inputs, export_onnx  # noqa: E402
from e2gan_bench.models.generators import (  # noqa: E402
    CRUCIAL_GROUPS,
    E2GANGenerator,
    IdentityGenerator,
    ResnetGenerator,
    count_params,
)
from e2gan_bench.models.lora import add_lora, lora_targets, unwrap_lora  # noqa: E402

RES = 32
FAST = dict(runs=5, warmup=1)


def _e2gan() -> E2GANGenerator:
    """A tiny E2GAN generator with every weight non-zero, as after training (the prompt's scale/shift and the
    colour path start at zero; an exporter would fold them away and the graphs would not be comparable)."""
    torch.manual_seed(0)
    G = E2GANGenerator(ngf=4)
    with torch.no_grad():
        for p in G.parameters():
            if not p.any():
                p.normal_(0.0, 0.05)
    return G


def _lora(G: E2GANGenerator) -> E2GANGenerator:
    G = add_lora(copy.deepcopy(G), {n: 2 for n in lora_targets(G, CRUCIAL_GROUPS)})
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, BaseTunerLayer):
                for b in m.lora_B.values():  # peft starts B at zero: make the adapter matter
                    b.weight.copy_(0.3 * torch.randn(b.weight.shape, generator=g))
    return G.eval()


def _run(G, *feeds):
    with torch.no_grad():
        return G(*[torch.from_numpy(v) for v in feeds])


@pytest.fixture(scope="module")
def e2gan_result(tmp_path_factory):
    """One e2gan measurement with int8, shared by several tests (exports are the slow part)."""
    wd = tmp_path_factory.mktemp("lat")
    r = measure_latency(_e2gan(), RES, threads=1, int8=True, workdir=wd, arch="e2gan", **FAST)
    return r, wd


def test_e2gan_ort_matches_torch_and_timings(e2gan_result):
    r, wd = e2gan_result
    assert r.inputs == ["image", "text", "text_mask"]
    assert r.max_abs_diff <= 1e-4
    for f in ("median_ms", "p90_ms", "mean_ms", "min_ms", "torch_median_ms"):
        assert getattr(r, f) > 0, f
    assert r.p90_ms >= r.median_ms >= r.min_ms
    assert r.macs > 0 and r.params == count_params(_e2gan())
    assert r.onnx_bytes == (wd / "e2gan-32.onnx").stat().st_size
    p = r.provenance
    assert p["label"] == PROXY_LABEL and p["threads"] == 1 and p["inter_op_num_threads"] == 1
    assert p["providers"] == ["CPUExecutionProvider"] and p["opt_level"] == "all" and p["opset"] >= 17
    assert p["onnxruntime"] and p["cpu"]
    json.dumps(r.to_dict())  # serialisable


@pytest.mark.slow
def test_int8_reports_accuracy_cost(e2gan_result):
    r, wd = e2gan_result
    assert r.int8_median_ms > 0 and r.int8_p90_ms >= r.int8_median_ms
    # int8 costs accuracy, within bounds: measured max 0.100 / mean 0.014 (outputs in [-1, 1]) on the AMD EPYC; the
    # bounds leave 5× / 3.5× for other CPUs' int8 kernels (the former bound, 2.0, was the whole output range)
    assert 0 < r.int8_mean_abs_diff <= r.int8_max_abs_diff < 0.5
    assert r.int8_mean_abs_diff < 0.05
    assert r.int8_onnx_bytes < r.onnx_bytes
    assert any(n.op_type == "QuantizeLinear" for n in onnx.load(str(wd / "e2gan-32.int8.onnx")).graph.node)


def test_pix2pix_ort_matches_torch_threads_honoured_and_restored():
    before = torch.get_num_threads()
    threads = 2 if before != 2 else 1
    torch.manual_seed(0)
    r = measure_latency(ResnetGenerator(ngf=4, n_blocks=2), RES, threads=threads, opt_level="basic", **FAST)
    assert r.inputs == ["image"]
    assert r.max_abs_diff <= 1e-4
    assert r.p90_ms >= r.median_ms > 0 and r.torch_median_ms > 0
    assert r.threads == threads and r.provenance["intra_op_num_threads"] == threads
    assert r.provenance["opt_level"] == "basic"
    assert r.int8_median_ms is None
    assert torch.get_num_threads() == before  # torch's thread count restored


def test_unwrap_lora_equals_unmerged_and_removes_peft():
    base = _e2gan().eval()
    G = _lora(base)
    feeds = example_inputs(G, RES, seed=3)
    y_adapted = _run(G, *feeds.values())
    assert (y_adapted - _run(base, *feeds.values())).abs().max() > 1e-3  # the adapter matters
    U = unwrap_lora(copy.deepcopy(G))
    assert not any(isinstance(m, BaseTunerLayer) for m in U.modules())
    assert not any("lora" in n or "base_layer" in n for n, _ in U.named_parameters())
    assert count_params(U) == count_params(base)
    torch.testing.assert_close(_run(U, *feeds.values()), y_adapted, atol=1e-5, rtol=0)
    assert any(isinstance(m, BaseTunerLayer) for m in G.modules())  # the deep-copied original is untouched


def test_lora_export_is_plain_base_architecture(tmp_path, e2gan_result):
    _, wd = e2gan_result
    G = _lora(_e2gan())
    before = {k: v.clone() for k, v in G.state_dict().items()}
    path = export_onnx(G, RES, tmp_path / "lora.onnx")
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())  # the caller's model is not mutated
    assert any(isinstance(m, BaseTunerLayer) for m in G.modules())
    lora_inits = onnx.load(str(path)).graph.initializer
    base_inits = onnx.load(str(wd / "e2gan-32.onnx")).graph.initializer
    assert not [i.name for i in lora_inits if "lora" in i.name.lower()]
    assert sorted(i.name for i in lora_inits) == sorted(i.name for i in base_inits)
    numel = lambda inits: sum(int(np.prod(i.dims)) for i in inits)
    assert numel(lora_inits) == numel(base_inits)  # the exporter folds and de-duplicates constants: compare exports
    assert abs(numel(base_inits) - count_params(_e2gan())) < 0.01 * count_params(_e2gan())
    # and the exported LoRA graph computes the adapted model
    import onnxruntime as ort

    feeds = example_inputs(G, RES, seed=5)
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    np.testing.assert_allclose(out, _run(G, *feeds.values()).numpy(), atol=1e-4, rtol=0)


def test_settings_validation():
    G = ResnetGenerator(ngf=4, n_blocks=1)
    with pytest.raises(UserError, match="opt_level.*fast.*allowed: disable, basic, extended, all"):
        measure_latency(G, 16, opt_level="fast")
    with pytest.raises(UserError, match="threads"):
        measure_latency(G, 16, threads=0)
    assert issubclass(LatencyCheckError, RuntimeError) and not issubclass(LatencyCheckError, UserError)


def test_check_error_when_outputs_differ():
    with pytest.raises(LatencyCheckError, match="differs from PyTorch"):
        measure_latency(IdentityGenerator(), 16, atol=-1.0, runs=1, warmup=0)  # identity: diff 0 > -1


def test_latency_key_depends_on_architecture_not_weights():
    k = latency_key("e2gan", {"ngf": 64}, 256, 1, "all")
    assert k == latency_key("e2gan", {"ngf": 64}, 256, 1, "all") and len(k) == 16
    others = [
        latency_key("pix2pix-resnet", {"ngf": 64}, 256, 1, "all"),
        latency_key("e2gan", {"ngf": 32}, 256, 1, "all"),
        latency_key("e2gan", {"ngf": 64}, 128, 1, "all"),
        latency_key("e2gan", {"ngf": 64}, 256, 2, "all"),
        latency_key("e2gan", {"ngf": 64}, 256, 1, "basic"),
        latency_key("e2gan", {"ngf": 64}, 256, 1, "all", int8=True),
    ]
    assert k not in others and len(set(others)) == len(others)


def test_cli_compares_both(tmp_path, capsys):
    out = tmp_path / "lat.json"
    rc = main(["latency", "--resolution", "16", "--ngf", "4", "--n-blocks", "1", "--runs", "3", "--warmup", "1",
               "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "median latency ratio e2gan / pix2pix-resnet:" in text and "not a phone measurement" in text
    data = json.loads(out.read_text())
    assert [r["arch"] for r in data["results"]] == ["e2gan", "pix2pix-resnet"]
    assert data["ratio_e2gan_over_pix2pix"]["ort"] > 0 and data["results"][0]["max_abs_diff"] <= 1e-4


@pytest.mark.parametrize("args, needle", [
    (["--opt-level", "fast"], "'--opt-level', value 'fast'"),
    (["--arch", "unet"], "'--arch', value 'unet'"),
    (["--resolution", "30"], "'--resolution', value 30"),
    (["--threads", "0"], "'--threads', value 0"),
])
def test_cli_bad_values_exit_2_one_line(capsys, args, needle):
    assert main(["latency", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and err.startswith("e2gan-bench: error:")
