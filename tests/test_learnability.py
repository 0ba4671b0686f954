"""Learnability: each generator, from scratch at tiny size, learns simple edits.

The real pipeline at tiny size: built-in photographs cut into 32-px crops (train and test split by
photograph), the procedural teacher, the package's generators and trainer. L1 only (no
discriminator) keeps the test fast and the target unambiguous; the suites add the GAN loss.

The thresholds were measured on the 2-core CI machine class (docs/generators.md lists the values
these tests reached) and set with a margin below them. The paper's form of the generator
(InstanceNorm, tanh head, no skips, no colour path) fails them at the same budget (last test).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from e2gan_bench.config import Budget, Concept  # noqa: E402
from e2gan_bench.data.dataset import DataSettings, build_dataset  # noqa: E402
from e2gan_bench.models.generators import ARCHS  # noqa: E402
from e2gan_bench.models.tensors import to_tensor  # noqa: E402
from e2gan_bench.models.text import HashEncoder  # noqa: E402
from e2gan_bench.training.trainer import TrainData, train_gan  # noqa: E402

pytestmark = pytest.mark.slow  # the slow tier (tox -e slow; CI runs both)

RES, N_TRAIN, N_TEST = 32, 96, 32
STEPS = 200
BUDGET = Budget(steps=STEPS, batch=8, lr=4e-3, schedule="cosine", warmup=10, gan_mode="none")
MODELS = {"e2gan": {"ngf": 8}, "pix2pix-resnet": {"ngf": 8, "n_blocks": 3}}

#: edit -> (ops, minimum PSNR (dB) and SSIM vs the teacher on held-out photographs after STEPS steps)
EDITS: dict[str, tuple[list[dict], float, float]] = {
    "identity": ([{"op": "brightness", "delta": 0.0}], 40.0, 0.99),
    "grayscale": ([{"op": "grayscale"}], 35.0, 0.98),
    "inversion": ([{"op": "invert"}], 21.0, 0.90),
    "warm-tint": ([{"op": "temperature", "amount": 0.6}, {"op": "contrast", "factor": 1.2}], 38.0, 0.98),
    "edge-map": ([{"op": "grayscale"}, {"op": "edges", "method": "sobel", "sigma": 0.02, "gain": 4.0}], 14.5, 0.20),
}
#: E2GAN's mean squared error may be at most this many times pix2pix's on each edit
E2GAN_VS_PIX2PIX_MSE = 2.0


def _psnr_ssim(out: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    from torchmetrics.functional.image import structural_similarity_index_measure as ssim

    mse = float(((out - ref) ** 2).mean())
    return 10 * float(np.log10(4.0 / max(mse, 1e-12))), float(ssim((out + 1) / 2, (ref + 1) / 2, data_range=1.0))


@pytest.fixture(scope="module")
def learned(tmp_path_factory) -> dict[tuple[str, str], dict[str, float]]:
    """Train every architecture on every edit once; PSNR / SSIM / MSE on the test crops."""
    cache = tmp_path_factory.mktemp("learn-cache")
    enc = HashEncoder()
    results: dict[tuple[str, str], dict[str, float]] = {}
    for edit, (ops, _, _) in EDITS.items():
        concept = Concept(name=f"learn-{edit}", prompt=f"apply {edit}", teacher={"kind": "procedural", "ops": ops})
        ds = build_dataset(concept, DataSettings(RES, N_TRAIN, N_TEST), cache)
        emb = enc.encode(concept.prompt)
        data = TrainData(to_tensor(ds.src_train), to_tensor(ds.tgt_train), torch.zeros(N_TRAIN, dtype=torch.long),
                         emb.tokens[None], emb.mask[None])
        x, y = to_tensor(ds.src_test), to_tensor(ds.tgt_test)
        for arch, kw in MODELS.items():
            torch.manual_seed(0)
            G = ARCHS.get(arch)(**kw)
            train_gan(G, data, BUDGET, seed=0)
            with torch.no_grad():
                out = G(x, emb.tokens[None].expand(len(x), -1, -1), emb.mask[None].expand(len(x), -1))
            p, s = _psnr_ssim(out, y)
            results[(arch, edit)] = {"psnr": p, "ssim": s, "mse": float(((out - y) ** 2).mean()),
                                     "identity_psnr": _psnr_ssim(x, y)[0]}
    return results


@pytest.mark.parametrize("arch", list(MODELS))
@pytest.mark.parametrize("edit", list(EDITS))
def test_learns_edit(learned, arch, edit):
    _, min_psnr, min_ssim = EDITS[edit]
    r = learned[(arch, edit)]
    assert r["psnr"] >= min_psnr, (arch, edit, r)
    assert r["ssim"] >= min_ssim, (arch, edit, r)
    if edit != "identity":  # learning means beating "do nothing"
        assert r["psnr"] > r["identity_psnr"] + 3.0, (arch, edit, r)


@pytest.mark.parametrize("edit", list(EDITS))
def test_e2gan_within_factor_of_pix2pix(learned, edit):
    e2, p2 = learned[("e2gan", edit)], learned[("pix2pix-resnet", edit)]
    assert e2["mse"] <= E2GAN_VS_PIX2PIX_MSE * p2["mse"], (edit, e2, p2)


def test_paper_form_generator_fails_inversion(tmp_path):
    """The check can fail: the paper's form (InstanceNorm, tanh head, no skips, no colour path) at the
    same budget does not reach the inversion threshold — what the regime's departures fix."""
    enc = HashEncoder()
    concept = Concept(name="learn-inversion", prompt="invert", teacher={"kind": "procedural", "ops": [{"op": "invert"}]})
    ds = build_dataset(concept, DataSettings(RES, N_TRAIN, N_TEST), tmp_path)
    emb = enc.encode(concept.prompt)
    data = TrainData(to_tensor(ds.src_train), to_tensor(ds.tgt_train), torch.zeros(N_TRAIN, dtype=torch.long),
                     emb.tokens[None], emb.mask[None])
    torch.manual_seed(0)
    G = ARCHS.get("e2gan")(ngf=8, norm="instance", head="tanh", skips=False, color_path=False)
    train_gan(G, data, BUDGET, seed=0)
    x, y = to_tensor(ds.src_test), to_tensor(ds.tgt_test)
    with torch.no_grad():
        out = G(x, emb.tokens[None].expand(len(x), -1, -1), emb.mask[None].expand(len(x), -1))
    assert _psnr_ssim(out, y)[0] < EDITS["inversion"][1]
