"""FID / KID parity with clean-fid: same folders, same extractor → the same numbers.

Real Inception weights are not on this machine, so parity is checked (a) with a custom feature extractor
(our ResNet-18 random-init network under clean-fid's protocol) through ``cleanfid.fid.compute_fid`` itself, and
(b) for the ``inception-clean`` code path with a tiny TorchScript stand-in that has the real file's interface
(a ``layers`` sub-module mapping N×3×299×299 in [-1, 1] to N×2048), run by clean-fid's own ``InceptionV3W``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cleanfid import fid as cfid
from PIL import Image

from e2gan_bench.features import extractors as F
from e2gan_bench.features import weights
from e2gan_bench.metrics.quality import fid_from_features, kid_from_features

CPU = torch.device("cpu")
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit deprecation


def _crops(n: int = 10, size: int = 48) -> np.ndarray:
    from skimage import data

    photos = [data.astronaut(), data.chelsea(), data.coffee()]
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        p = photos[i % len(photos)]
        y, x = rng.integers(0, p.shape[0] - size), rng.integers(0, p.shape[1] - size)
        out.append(p[y : y + size, x : x + size, :3])
    return np.stack(out).astype(np.uint8)


def _edit(images: np.ndarray) -> np.ndarray:  # a warm, contrasty grade
    x = images.astype(np.float32)[..., [0, 1, 2]] * np.array([1.15, 0.95, 0.7]) * 1.2 - 20
    return np.clip(x, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("fidpar")
    real = _crops()
    edited = _edit(real)
    for name, imgs in (("real", real), ("edited", edited)):
        (root / name).mkdir()
        for i, im in enumerate(imgs):
            Image.fromarray(im).save(root / name / f"{i:03d}.png")
    return root / "real", root / "edited", real, edited


@pytest.fixture(scope="module")
def resnet_fn():
    ex = F.ResNet18RandomInit()

    def fn(x: torch.Tensor) -> torch.Tensor:  # clean-fid custom extractor: float N×3×299×299 in [0, 255]
        f = ex.model((x / 255.0 - ex.mean) / ex.std) * F.FALLBACK_SCALE
        # 512 -> 8 dims (mean of channel groups): full-rank covariances with 10 images, and a fast sqrtm
        return f.view(len(f), 8, 64).mean(-1)

    return fn


def _ours(fn) -> F.CleanFidExtractor:
    return F.CleanFidExtractor(fn, F.ExtractorInfo("resnet18-clean", "random-init", "clean-fid clean", True), batch=16)


@pytest.fixture(scope="module")
def our_feats(folders, resnet_fn):
    d_real, d_edit, *_ = folders
    ex = _ours(resnet_fn)
    return F.folder_features(d_real, ex), F.folder_features(d_edit, ex)


def test_fid_equals_cleanfid_compute_fid(folders, resnet_fn, our_feats):
    d_real, d_edit, *_ = folders
    with torch.no_grad():
        ref = cfid.compute_fid(str(d_real), str(d_edit), mode="clean", custom_feat_extractor=resnet_fn, device=CPU,
                               num_workers=0, batch_size=16, verbose=False)
    f_real, f_edit = our_feats
    ours = fid_from_features(f_real, f_edit)
    assert ref > 1e-3  # the two folders really differ
    assert ours == pytest.approx(ref, rel=1e-6, abs=1e-9)
    # identical folders: FID ~ 0
    assert fid_from_features(f_real, f_real) == pytest.approx(0.0, abs=1e-8)


def test_features_equal_cleanfid_folder_features(folders, resnet_fn, our_feats):
    d_real, _, real, _ = folders
    ref = cfid.get_folder_features(str(d_real), resnet_fn, num_workers=0, batch_size=16, device=CPU, mode="clean",
                                   verbose=False)
    np.testing.assert_array_equal(our_feats[0], ref.astype(np.float64))
    # the in-memory path (what `evaluate` uses on arrays) gives the very same features as the folder path
    np.testing.assert_array_equal(_ours(resnet_fn)(real), our_feats[0])


def test_kid_equals_cleanfid_kernel_distance():
    rng = np.random.default_rng(1)
    f1 = rng.normal(0.3, 0.2, (40, 64))
    f2 = rng.normal(0.35, 0.25, (40, 64))
    # subsets as large as the sets: every subset is the whole set, so the RNGs (ours vs np.random) do not matter
    ours, std = kid_from_features(f1, f2, subsets=3, subset_size=1000)
    ref = cfid.kernel_distance(f1, f2, num_subsets=3, max_subset_size=1000)
    assert ours == pytest.approx(ref, rel=1e-9, abs=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)
    # random subsets: same estimator, so the means over many subsets agree closely
    ours_sub, _ = kid_from_features(f1, f2, subsets=400, subset_size=20)
    np.random.seed(0)
    ref_sub = cfid.kernel_distance(f1, f2, num_subsets=400, max_subset_size=20)
    assert ours_sub == pytest.approx(ref_sub, rel=0.1)


class _FakeLayers(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 13, stride=13)
        self.pool = torch.nn.AdaptiveAvgPool2d(4)
        self.fc = torch.nn.Linear(128, 2048)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))


class _FakeInception(torch.nn.Module):
    """Same interface as ``inception-2015-12-05.pt`` for the clean mode: ``.layers`` on normalised input."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = _FakeLayers()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers((x - 128) / 128)


def test_inception_clean_matches_cleanfid_inception_wrapper(folders, tmp_path, monkeypatch):
    from cleanfid.inception_torchscript import InceptionV3W

    d_real, _, real, _ = folders
    monkeypatch.setenv("E2GAN_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("E2GAN_BENCH_INCEPTION", raising=False)
    wdir = tmp_path / "w"
    wdir.mkdir()
    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(_FakeInception().eval()), str(wdir / "inception-2015-12-05.pt"))
    weights.add("inception", wdir / "inception-2015-12-05.pt")

    ex = F.InceptionClean()
    assert ex.info.name == "inception-clean" and not ex.info.fallback
    assert ex.info.weights == "sha256:" + weights.file_sha256(wdir / "inception-2015-12-05.pt")
    assert ex.info.resize == "clean-fid clean (PIL bicubic 299)"

    cf_model = InceptionV3W(str(wdir), download=False).eval()  # clean-fid's own wrapper of the same file
    with torch.no_grad():
        ref = cfid.get_folder_features(str(d_real), cf_model, num_workers=0, batch_size=16, device=CPU, mode="clean",
                                       verbose=False)
    ours = F.folder_features(d_real, ex)
    assert ours.shape == (len(real), 2048)
    np.testing.assert_allclose(ours, ref.astype(np.float64), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(ex(real), ours)

    monkeypatch.setattr(F, "_loaded", {})
    assert F.get_extractor("auto").info.name == "inception-clean"


def test_inception_clean_absent_falls_back(tmp_path, monkeypatch):
    monkeypatch.setenv("E2GAN_BENCH_HOME", str(tmp_path))
    monkeypatch.delenv("E2GAN_BENCH_INCEPTION", raising=False)
    if weights.resolve("inception") is not None:
        pytest.skip("real clean-fid Inception weights are cached on this machine")
    with pytest.raises(FileNotFoundError, match="e2gan-bench weights add inception"):
        F.InceptionClean()
    monkeypatch.setattr(F, "_loaded", {})
    ex = F.get_extractor("auto")
    assert ex.info.fallback and ex.info.name == "resnet18-random-init"


def test_fid_survives_a_scipy_without_sqrtm_disp(monkeypatch):
    """clean-fid 0.1.35 calls sqrtm(..., disp=False), which newer SciPy rejects (seen on the GPU machine: every run
    failed at evaluation): the same formula is then computed with sqrtm as newer SciPy takes it — same number."""
    import cleanfid.fid as cf
    import scipy.linalg

    from e2gan_bench.metrics import quality

    rng = np.random.default_rng(0)
    f1, f2 = rng.normal(size=(40, 8)), rng.normal(0.3, 1.2, size=(40, 8))
    expected = quality.fid_from_features(f1, f2)
    real = scipy.linalg.sqrtm

    def strict(a, **kw):
        if "disp" in kw:
            raise TypeError("sqrtm() got an unexpected keyword argument 'disp'")
        out = real(a, disp=False)[0] if "disp" in real.__code__.co_varnames else real(a)
        return out

    monkeypatch.setattr(cf.linalg, "sqrtm", strict)
    with pytest.raises(TypeError, match="disp"):
        cf.frechet_distance(f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False))
    assert quality.fid_from_features(f1, f2) == pytest.approx(expected, rel=1e-9)
