"""Quality metrics (KID, FID, PSNR, SSIM), feature extractors and their cache, LPIPS."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import re  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from scipy import linalg  # noqa: E402
from scipy.ndimage import correlate1d, gaussian_filter  # noqa: E402

from e2gan_bench.config import EvalSpec  # noqa: E402
from e2gan_bench.features.extractors import FeatureCache, FeatureExtractor, ResNet18RandomInit, get_extractor  # noqa: E402
from e2gan_bench.features.weights import resolve  # noqa: E402
from e2gan_bench.metrics import EvalContext, metric  # noqa: E402
from e2gan_bench.metrics.perceptual import LPIPSMetric, _load_alexnet  # noqa: E402
from e2gan_bench.metrics.quality import fid_from_features, kid_from_features, psnr, ssim  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _smooth_images(n: int, size: int, seed: int) -> np.ndarray:
    """Photo-like uint8 images: smoothed noise with full dynamic range."""
    rng = np.random.default_rng(seed)
    x = gaussian_filter(rng.integers(0, 256, (n, size, size, 3)).astype(float), (0, 2, 2, 0))
    return np.clip((x - 127.5) * 3 + 127.5, 0, 255).astype(np.uint8)


def _noisy(images: np.ndarray, amp: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(images.astype(int) + rng.integers(-amp, amp + 1, images.shape), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- KID / FID


def test_kid_equals_clean_fid_on_full_sets() -> None:
    from cleanfid.fid import kernel_distance

    rng = np.random.default_rng(0)
    n = 40
    f1 = rng.normal(0.3, 0.2, (n, 16))
    f2 = rng.normal(0.4, 0.25, (n, 16))
    kid, std = kid_from_features(f1, f2, subsets=1, subset_size=n)
    ref = kernel_distance(f1, f2, num_subsets=1, max_subset_size=n)
    assert kid == pytest.approx(ref, abs=1e-9, rel=0)
    assert abs(ref) > 1e-3  # a non-trivial value was compared
    assert std == 0.0
    # subsets of the full set are permutations of it: every subset gives the same value
    kid5, std5 = kid_from_features(f1, f2, subsets=5, subset_size=10 * n)
    assert kid5 == pytest.approx(ref, abs=1e-9, rel=0) and std5 < 1e-9


def test_kid_same_distribution_near_zero() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(0.3, 0.2, (400, 32))
    b = rng.normal(0.3, 0.2, (400, 32))
    shifted = rng.normal(0.45, 0.2, (400, 32))
    same, same_std = kid_from_features(a, b, subsets=10, subset_size=100)
    diff, _ = kid_from_features(a, shifted, subsets=10, subset_size=100)
    assert diff > 0
    assert abs(same) < 0.05 * diff
    assert same_std > 0  # random subsets of 100 out of 400 differ
    # seeded: the same call gives the same numbers
    assert kid_from_features(a, b, subsets=10, subset_size=100) == (same, same_std)


def _fid_sqrtm(f1: np.ndarray, f2: np.ndarray) -> float:
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fid_of_shifted_gaussians() -> None:
    rng = np.random.default_rng(2)
    mu = np.array([1.0, -1.0, 0.5, 0.0, 0.0, 1.5, 0.0, 0.0])  # |mu|^2 = 4.5
    f1 = rng.normal(size=(20000, 8))
    f2 = rng.normal(size=(20000, 8)) + mu
    fid = fid_from_features(f1, f2)
    # the population FID is |mu|^2 (equal covariances); 20,000 samples estimate it to about 1 % (4.455 here)
    assert fid == pytest.approx(float(mu @ mu), rel=0.03)
    assert fid == pytest.approx(_fid_sqrtm(f1, f2), rel=1e-9, abs=1e-9)
    same = fid_from_features(f1, rng.normal(size=(20000, 8)))
    assert 0 <= same < 0.05 * fid


def test_fid_matches_sqrtm_on_correlated_features() -> None:
    rng = np.random.default_rng(3)
    f1 = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6))
    f2 = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) + 0.3
    assert fid_from_features(f1, f2) == pytest.approx(_fid_sqrtm(f1, f2), rel=1e-7)


# ----------------------------------------------------------------------------- PSNR / SSIM


def test_psnr_matches_skimage_per_image_mean() -> None:
    from skimage.metrics import peak_signal_noise_ratio

    target = _smooth_images(3, 32, seed=0)
    # different noise per image, so a pooled-MSE PSNR would differ from the per-image mean
    pred = np.stack([_noisy(target[i : i + 1], amp, seed=i)[0] for i, amp in enumerate((5, 20, 60))])
    ref = [peak_signal_noise_ratio(t / 255.0, p / 255.0, data_range=1.0) for p, t in zip(pred, target, strict=True)]
    # both in float64 from the same uint8 data: agreement to float rounding (observed ~1e-6 dB)
    assert psnr(pred, target) == pytest.approx(np.mean(ref), abs=1e-4)
    pooled = 10 * np.log10(1 / np.mean((pred / 255.0 - target / 255.0) ** 2))
    assert abs(psnr(pred, target) - pooled) > 0.5


def test_psnr_identical_is_capped() -> None:
    a = _smooth_images(2, 16, seed=1)
    assert psnr(a, a) == 100.0
    b = a.copy()
    b[1] = _noisy(a[1:2], 20, seed=2)[0]
    one = psnr(b[1:], a[1:])
    assert 10 < one < 60
    assert psnr(b, a) == pytest.approx((100.0 + one) / 2, abs=1e-9)


def _framed(images: np.ndarray, width: int = 12) -> np.ndarray:
    out = images.copy()
    out[:, :width], out[:, -width:], out[:, :, :width], out[:, :, -width:] = 128, 128, 128, 128
    return out


def test_ssim_matches_skimage() -> None:
    """Same window (11-tap Gaussian, sigma 1.5), channel_axis=-1, data_range=1, population covariance.

    torchmetrics averages the SSIM map over every pixel (windows near the edge are reflect-padded),
    skimage averages over the interior (5-px border cropped). With an identical constant 12-px frame
    on both images every border window sees a constant patch in both libraries (SSIM exactly 1), so
    the package value must equal the mean of skimage's *full* SSIM map to float rounding (1e-9).
    On general images only the border rows differ: agreement with skimage's cropped mean within 0.01
    at 128 px (border = 15 % of the pixels; observed gap ~0.003).
    """
    from skimage.metrics import structural_similarity

    kw = dict(
        win_size=11, channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    target = _framed(_smooth_images(3, 64, seed=4))
    pred = _framed(_noisy(target, 40, seed=5))
    full_means = [
        structural_similarity(t / 255.0, p / 255.0, full=True, **kw)[1].mean()
        for p, t in zip(pred, target, strict=True)
    ]
    value = ssim(pred, target, dtype=torch.float64)
    assert 0.5 < value < 0.999
    assert value == pytest.approx(np.mean(full_means), abs=1e-9)
    # the default (float32, what the test metric and the curves use) within float32 rounding of it
    assert ssim(pred, target) == pytest.approx(value, abs=2e-5)

    target = _smooth_images(2, 128, seed=6)
    pred = _noisy(target, 40, seed=7)
    ref = np.mean([structural_similarity(t / 255.0, p / 255.0, **kw) for p, t in zip(pred, target, strict=True)])
    assert ssim(pred, target) == pytest.approx(ref, abs=0.01)
    assert ssim(target, target) == pytest.approx(1.0, abs=1e-6)


def _ssim_reference(pred: np.ndarray, target: np.ndarray, taps: int, sigma: float = 1.5) -> float:
    """SSIM (Wang et al. 2004) with a ``taps``-tap Gaussian window, whole-sample-mirror padding and the
    map averaged over every pixel (torchmetrics' conventions), written from the definition."""
    d = np.arange(taps) - (taps - 1) / 2
    w = np.exp(-0.5 * (d / sigma) ** 2)
    w /= w.sum()

    def filt(z: np.ndarray) -> np.ndarray:
        return correlate1d(correlate1d(z, w, axis=0, mode="mirror"), w, axis=1, mode="mirror")

    c1, c2 = 0.01**2, 0.03**2
    per_image = []
    for p, t in zip(pred / 255.0, target / 255.0, strict=True):
        chans = []
        for c in range(3):
            x, y = p[..., c], t[..., c]
            mx, my = filt(x), filt(y)
            vx = np.maximum(filt(x * x) - mx**2, 0)
            vy = np.maximum(filt(y * y) - my**2, 0)
            cxy = filt(x * y) - mx * my
            chans.append((((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))).mean())
        per_image.append(np.mean(chans))
    return float(np.mean(per_image))


def test_ssim_reference_implementation_at_64px() -> None:
    target = _smooth_images(2, 64, seed=8)
    pred = _noisy(target, 30, seed=9)
    ref = _ssim_reference(pred, target, 11)
    assert ssim(pred, target, dtype=torch.float64) == pytest.approx(ref, abs=1e-9)
    assert ssim(pred, target) == pytest.approx(ref, abs=2e-5)  # the default: float32


def test_ssim_uses_11_tap_window_at_small_sizes() -> None:
    target = _smooth_images(2, 32, seed=8)
    pred = _noisy(target, 30, seed=9)
    assert abs(_ssim_reference(pred, target, 7) - _ssim_reference(pred, target, 11)) > 1e-3  # sizes matter
    assert ssim(pred, target, dtype=torch.float64) == pytest.approx(_ssim_reference(pred, target, 11), abs=1e-9)


def test_quality_metric_objects_keys_and_values() -> None:
    """The registered kid/fid/psnr/ssim objects compute the quality functions, on the context's features."""
    rng = np.random.default_rng(10)
    target = _smooth_images(6, 16, seed=10)
    pred = _noisy(target, 20, seed=11)
    ft, fp = rng.normal(0.3, 0.1, (6, 8)), rng.normal(0.35, 0.1, (6, 8))
    ctx = EvalContext(EvalSpec(kid_subsets=4, kid_subset_size=4), pred, target, target, "a prompt", None, "e2gan", {},
                      16, None, {}, _features=(fp, ft))
    q: dict = {}
    for name in ("kid", "fid", "psnr", "ssim"):
        v = metric(name)().compute(ctx)
        q.update(v if isinstance(v, dict) else {name: v})
    assert set(q) == {"kid", "kid_std", "fid", "psnr", "ssim"}
    assert all(isinstance(v, float) and np.isfinite(v) for v in q.values())
    assert q["psnr"] == pytest.approx(psnr(pred, target))
    assert q["ssim"] == pytest.approx(ssim(pred, target))
    assert q["fid"] == pytest.approx(fid_from_features(fp, ft))
    assert (q["kid"], q["kid_std"]) == kid_from_features(fp, ft, 4, 4)
    assert q["kid_std"] > 0


# ----------------------------------------------------------------------------- feature extractors


def test_auto_extractor_is_labelled_resnet_fallback() -> None:
    ex = get_extractor("auto")
    assert isinstance(ex, ResNet18RandomInit)
    assert ex.info.fallback and ex.info.name == "resnet18-random-init"
    assert re.fullmatch(r"random-init:[0-9a-f]{16}", ex.info.weights)
    assert get_extractor("auto") is ex


def test_fallback_extractor_is_deterministic() -> None:
    images = _smooth_images(3, 32, seed=12)
    torch.manual_seed(123)  # global RNG state must not matter
    a = ResNet18RandomInit()
    torch.manual_seed(456)
    b = ResNet18RandomInit()
    assert a.info == b.info
    fa, fb = a(images), b(images)
    assert fa.shape == (3, 512) and fa.dtype == np.float64
    assert np.array_equal(fa, fb)
    assert np.abs(fa[0] - fa[1]).max() > 1e-3  # different images, different features
    # batching does not change the features
    assert np.allclose(ResNet18RandomInit(ResNet18RandomInit.Params(batch=2))(images), fa, atol=1e-6)


class _Counting(FeatureExtractor):
    def __init__(self, ex: FeatureExtractor) -> None:
        self.ex, self.info, self.calls = ex, ex.info, 0

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.ex(images)


def test_feature_cache(tmp_path: Path) -> None:
    ex = _Counting(get_extractor("auto"))
    images = _smooth_images(2, 16, seed=13)
    cache = FeatureCache(ex, tmp_path)
    f1 = cache(images)
    assert ex.calls == 1
    files = list((tmp_path / "features" / ex.info.name).glob("*.npy"))
    assert len(files) == 1
    f2 = FeatureCache(ex, tmp_path)(images)
    assert ex.calls == 1 and np.array_equal(f1, f2)
    cache(images[::-1].copy())  # other images: computed
    assert ex.calls == 2
    files[0].write_bytes(b"garbage")  # corrupt entry: recomputed
    assert np.array_equal(cache(images), f1) and ex.calls == 3
    FeatureCache(ex, None)(images)  # no cache dir: always computed
    assert ex.calls == 4


# ----------------------------------------------------------------------------- LPIPS


@pytest.mark.skipif(resolve("alexnet") is not None, reason="a real AlexNet checkpoint is available")
def test_lpips_random_backbone() -> None:
    lp = LPIPSMetric()
    assert lp.backend == "lpips-alex-random-backbone" and lp.fallback
    a = _smooth_images(3, 32, seed=14)
    b = _smooth_images(3, 32, seed=15)
    assert lp(a, a) == pytest.approx(0.0, abs=1e-6)
    d_far = lp(a, b)
    d_near = lp(_noisy(a, 10, seed=16), a)
    assert d_far > d_near > 0
    assert LPIPSMetric()(a, b) == pytest.approx(d_far, abs=1e-6)  # seeded backbone: reproducible


def test_lpips_loads_a_torchvision_alexnet_into_its_backbone(tmp_path) -> None:
    """The registered-weights path: torchvision AlexNet features end up in lpips' sliced backbone."""
    import torchvision

    torch.manual_seed(3)
    tv = torchvision.models.alexnet(weights=None)
    path = tmp_path / "alexnet.pth"
    torch.save(tv.state_dict(), path)
    lp = LPIPSMetric()
    _load_alexnet(lp.model.net, path)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        ours = lp.model.net.slice2(lp.model.net.slice1(x))
        ref = tv.features[:5](x)
    assert torch.allclose(ours, ref)
