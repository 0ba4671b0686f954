"""The procedural teacher's op bank: deterministic, resolution-independent image edits.

Every op is a function ``op(img, rng, *, param=default, ...) -> img`` registered in :data:`OPS`.
``img`` is float32 HxWx3 in [0, 1]; the result has the same shape, float32, clipped to [0, 1].
Spatial parameters are fractions of the image's short side (``sigma=0.01`` means 1% of it), so
a concept looks the same at 32x32 and at 512x512. Ops that draw random numbers (grain, snow,
rain, mosaic tiles) use only the ``rng`` they are given, so a concept is reproducible from
(image, params, seed).

A concept's teacher is a list of ``{op: name, param: value, ...}`` dicts; :func:`validate_ops`
checks and normalises such a list (every parameter filled in), :func:`apply_ops` runs it.

Ops follow the plugin contract (:mod:`e2gan_bench.plugins`): an op's keyword arguments are its parameters,
and its ``Params`` model is derived from its signature and the constraints it was registered with
(:func:`op_params`) — for user ops too (entry-point group ``e2gan_bench.op`` or ``package.module:function``).
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Callable
from typing import Annotated, Any

import numpy as np
from pydantic import BeforeValidator, Field, create_model
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage.color import hsv2rgb, rgb2hsv
from skimage.feature import canny
from skimage.transform import swirl as _sk_swirl

from e2gan_bench.config import validate
from e2gan_bench.errors import ConfigError
from e2gan_bench.plugins import Params
from e2gan_bench.registry import Registry

__all__ = ["OPS", "apply_ops", "describe_op", "op_params", "validate_ops"]

OPS: Registry = Registry("op")

_LUM = np.array([0.299, 0.587, 0.114], dtype=np.float32)


# --------------------------------------------------------------------------------------------
# registration with parameter constraints


class _Range:
    """Numeric bounds for a parameter (applied element-wise to lists)."""

    def __init__(self, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False):
        self.lo, self.hi, self.lo_open = lo, hi, lo_open

    def check(self, v: float) -> str | None:
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return f"must be {'>' if self.lo_open else '>='} {self.lo}"
        if self.hi is not None and v > self.hi:
            return f"must be <= {self.hi}"
        return None


# Every numeric parameter of a built-in op is bounded above as well as below, so no value can make an op
# allocate or compute without limit (a test checks that each has both bounds).
_UNIT = _Range(0.0, 1.0)
_COLOR = _Range(0.0, 1.0)
_SPAN = _Range(0.0, 1.0, lo_open=True)  # a length, Gaussian scale, radius or cell: fraction of the short side
_WIDE = _Range(0.0, 2.0, lo_open=True)  # a radius that may reach past the corners
_GAIN = _Range(0.0, 10.0)  # a non-negative factor or strength
_POS_GAIN = _Range(0.0, 10.0, lo_open=True)
_STRONG = _Range(0.0, 100.0, lo_open=True)  # a gain whose useful values reach tens
_ANGLE = _Range(-360.0, 360.0)  # degrees


def _op(op_name: str, /, **constraints: Any) -> Callable[[Callable], Callable]:
    """Register ``fn`` as op ``op_name``; wrap it so input and output are float32 HxWx3 in [0,1].

    ``constraints`` maps a parameter name to a :class:`_Range` or a tuple of allowed strings; they
    become part of the op's ``Params`` model, which :func:`validate_ops` enforces.
    """

    def deco(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(img: np.ndarray, rng: np.random.Generator | None = None, **params: Any):
            x = _as_float(img)
            if rng is None:
                rng = np.random.default_rng(0)
            out = np.asarray(fn(x, rng, **params), dtype=np.float32)
            if out.shape != x.shape:
                raise RuntimeError(f"op {op_name!r} changed the shape {x.shape} -> {out.shape}")
            out = np.nan_to_num(out, nan=0.0, posinf=1.0, neginf=0.0)
            return np.clip(out, 0.0, 1.0, out=out)

        wrapper.Params = _params_model(op_name, fn, constraints)  # type: ignore[attr-defined]
        OPS.register(op_name)(wrapper)
        return wrapper

    return deco


@functools.cache
def _params_of(fn: Callable) -> tuple[tuple[str, Any], ...]:
    """The op's keyword parameters and defaults (``inspect.Parameter.empty`` when required)."""
    sig = inspect.signature(fn)
    ps = list(sig.parameters.values())
    out = []
    for i, p in enumerate(ps):
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if i < 2 and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue  # img, rng
        out.append((p.name, p.default))
    return tuple(out)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _check_value(default: Any, constraint: Any, value: Any) -> Any:
    """Check one parameter value against the type of its default and its constraint; the checked value."""

    def bad(msg: str, allowed: str | None = None) -> ValueError:
        return ValueError(f"{msg} (allowed: {allowed})" if allowed else msg)

    if isinstance(default, bool):
        if not isinstance(value, (bool, np.bool_)):
            raise bad("expected true or false")
        v: Any = bool(value)
    elif isinstance(default, int):
        if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)):
            raise bad("expected an integer")
        v = int(value)
    elif isinstance(default, float):
        if not _is_real(value):
            raise bad("expected a number")
        v = float(value)
        if not math.isfinite(v):
            raise bad("expected a finite number")
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise bad("expected a string")
        v = value
    elif isinstance(default, (tuple, list)):
        if not isinstance(value, (list, tuple)) or not all(_is_real(e) for e in value):
            raise bad(f"expected a list of {len(default)} numbers")
        if len(value) != len(default):
            raise bad(f"expected a list of {len(default)} numbers, got {len(value)}")
        v = [float(e) for e in value]
        if not all(math.isfinite(e) for e in v):
            raise bad("expected finite numbers")
    elif default is None or default is inspect.Parameter.empty:
        v = value  # untyped parameter of a user-supplied op: passed through
    else:
        raise bad(f"unsupported parameter type {type(default).__name__}")

    if isinstance(constraint, tuple) and isinstance(v, str):
        if v not in constraint:
            raise bad("not a valid choice", ", ".join(constraint))
    elif isinstance(constraint, _Range):
        for e in v if isinstance(v, list) else [v]:
            if _is_real(e):
                why = constraint.check(e)
                if why:
                    raise bad(why)
    return v


def _params_model(op_name: str, fn: Callable, constraints: dict[str, Any]) -> type[Params]:
    """The op's ``Params``: one field per keyword parameter, checked by :func:`_check_value`."""
    fields: dict[str, Any] = {}
    for pname, default in _params_of(fn):
        ann = Annotated[Any, BeforeValidator(functools.partial(_check_value, default, constraints.get(pname)))]
        if default is inspect.Parameter.empty:
            fields[pname] = (ann, ...)
        else:
            fields[pname] = (ann, Field(list(default) if isinstance(default, tuple) else default))
    return create_model(f"{op_name}.Params", __base__=Params, **fields)


_user_params: dict[Callable, type[Params]] = {}


def op_params(fn: Callable) -> type[Params]:
    """An op's ``Params`` model: declared by registration, or derived from a user op's signature."""
    model = getattr(fn, "Params", None)
    if model is None:
        if fn not in _user_params:
            _user_params[fn] = _params_model(getattr(fn, "__name__", "op"), fn, {})
        model = _user_params[fn]
    return model


def _as_float(img: np.ndarray) -> np.ndarray:
    """uint8 / float / gray / RGBA -> float32 HxWx3 in [0, 1] (never the caller's array)."""
    a = np.asarray(img)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {a.shape}")
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:
        a = a[..., :3]
    elif a.shape[2] != 3:
        raise ValueError(f"expected 1, 3 or 4 channels, got {a.shape[2]}")
    if a.dtype == np.uint8:
        return a.astype(np.float32) / np.float32(255.0)
    if a.dtype == np.uint16:
        return a.astype(np.float32) / np.float32(65535.0)
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    out = np.array(a, dtype=np.float32, copy=True)
    np.nan_to_num(out, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(out, 0.0, 1.0, out=out)


# --------------------------------------------------------------------------------------------
# helpers


def _short(img: np.ndarray) -> int:
    return min(img.shape[0], img.shape[1])


def _px(frac: float, img: np.ndarray) -> float:
    """A fraction of the short side, in pixels."""
    return float(frac) * _short(img)


def _lum(img: np.ndarray) -> np.ndarray:
    return img @ _LUM


def _gray3(g: np.ndarray) -> np.ndarray:
    return np.repeat(g[..., None], 3, axis=2).astype(np.float32, copy=False)


def _mix(a: np.ndarray, b: np.ndarray, t: Any) -> np.ndarray:
    return a + (b - a) * t


def _blur(x: np.ndarray, sigma_px: float) -> np.ndarray:
    if sigma_px <= 0.05:
        return x
    sig = (sigma_px, sigma_px, 0.0) if x.ndim == 3 else sigma_px
    return ndimage.gaussian_filter(x, sig, mode="reflect", truncate=3.0)


def _grad(g: np.ndarray, sigma_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Scale-normalised gradient (sigma * d/dx of the Gaussian-smoothed image).

    A step edge of height h gives a peak of about 0.4*h whatever the resolution.
    """
    s = max(0.7, sigma_px)
    gy = ndimage.gaussian_filter(g, s, order=(1, 0), mode="reflect", truncate=3.0) * s
    gx = ndimage.gaussian_filter(g, s, order=(0, 1), mode="reflect", truncate=3.0) * s
    return gy, gx


def _grad_mag(g: np.ndarray, sigma_px: float) -> np.ndarray:
    gy, gx = _grad(g, sigma_px)
    return np.sqrt(gy * gy + gx * gx)


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / max(e1 - e0, 1e-6), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _fade(period_px: float, lo: float = 1.6, hi: float = 3.2) -> float:
    """How much of a periodic pattern survives at this period (0 below the Nyquist band).

    Patterns finer than a couple of pixels alias; they are blended toward their mean instead.
    """
    return float(np.clip((period_px - lo) / (hi - lo), 0.0, 1.0))


def _grid(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (y, x), in pixels, shape HxW each."""
    h, w = img.shape[:2]
    return np.mgrid[0:h, 0:w].astype(np.float32)


def _norm_grid(img: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Coordinates centred on the image, in units of half the short side; also that unit."""
    h, w = img.shape[:2]
    half = _short(img) / 2.0
    y, x = _grid(img)
    return (y - (h - 1) / 2.0) / half, (x - (w - 1) / 2.0) / half, half


def _remap(img: np.ndarray, ys: np.ndarray, xs: np.ndarray, mode: str = "reflect") -> np.ndarray:
    """Sample ``img`` at float pixel coordinates (bilinear)."""
    coords = np.stack([ys, xs])
    return np.stack(
        [ndimage.map_coordinates(img[..., c], coords, order=1, mode=mode) for c in range(3)],
        axis=-1,
    )


def _rgb2hsv(img: np.ndarray) -> np.ndarray:
    return rgb2hsv(img).astype(np.float32, copy=False)


def _hsv2rgb(hsv: np.ndarray) -> np.ndarray:
    return hsv2rgb(np.clip(hsv, 0.0, 1.0)).astype(np.float32, copy=False)


def _hue_bump(h: np.ndarray, lo: float, hi: float, soft: float = 0.05) -> np.ndarray:
    """1 inside the hue interval [lo, hi] (fractions of the circle), smooth fall-off outside."""
    return _smoothstep(lo - soft, lo, h) * (1.0 - _smoothstep(hi, hi + soft, h))


def _col(c: Any) -> np.ndarray:
    return np.asarray(c, dtype=np.float32).reshape(1, 1, 3)


def _edge_preserving(img: np.ndarray, sigma_px: float, sigma_r: float) -> np.ndarray:
    """Fast bilateral-style smoothing guided by luminance (piecewise-linear bilateral).

    The image is split into luminance bins; each bin's weighted colour is blurred on a grid
    subsampled by ~sigma/2 (the bilateral-grid trick, so the cost hardly grows with sigma) and
    every pixel interpolates between its two nearest bins.
    """
    if sigma_px <= 0.05:
        return img
    h, w = img.shape[:2]
    g = _lum(img)
    n = int(np.clip(math.ceil(1.0 / max(sigma_r, 1e-3)) + 1, 3, 12))
    centres = np.linspace(0.0, 1.0, n, dtype=np.float32)
    d = max(1, int(sigma_px // 2))
    hs, ws = -(-h // d), -(-w // d)

    wgt = np.exp(-((g[None] - centres[:, None, None]) ** 2) / (2.0 * sigma_r * sigma_r))
    both = np.empty((n, h, w, 4), np.float32)
    both[..., :3] = img[None] * wgt[..., None]
    both[..., 3] = wgt
    if d > 1:
        both = np.pad(both, ((0, 0), (0, hs * d - h), (0, ws * d - w), (0, 0)), mode="edge")
        both = both.reshape(n, hs, d, ws, d, 4).mean(axis=(2, 4), dtype=np.float32)
    sd = sigma_px / d
    both = ndimage.gaussian_filter(both, (0, sd, sd, 0), mode="reflect", truncate=3.0)
    stack = both[..., :3] / np.maximum(both[..., 3:], 1e-6)  # n x hs x ws x 3
    pos = g * (n - 1)
    i0 = np.clip(np.floor(pos).astype(np.int64), 0, n - 2)
    f = (pos - i0)[..., None]
    if d == 1:
        yy, xx = np.indices((h, w))
        return stack[i0, yy, xx] * (1.0 - f) + stack[i0 + 1, yy, xx] * f
    # bilinear upsampling of the grid: rows for all bins, then columns for the two bins needed
    yc = np.clip((np.arange(h) + 0.5) / d - 0.5, 0, hs - 1)
    y0 = np.minimum(np.floor(yc).astype(np.int64), max(hs - 2, 0))
    y1 = np.minimum(y0 + 1, hs - 1)
    fy = (yc - y0).astype(np.float32)[None, :, None, None]
    rows = stack[:, y0] * (1.0 - fy) + stack[:, y1] * fy  # n x h x ws x 3
    xc = np.clip((np.arange(w) + 0.5) / d - 0.5, 0, ws - 1)
    x0 = np.minimum(np.floor(xc).astype(np.int64), max(ws - 2, 0))
    x1 = np.minimum(x0 + 1, ws - 1)
    fx = (xc - x0).astype(np.float32)[None, :, None]
    yy = np.arange(h)[:, None]
    out = 0.0
    for b, wb in ((i0, 1.0 - f), (i0 + 1, f)):
        v = rows[b, yy, x0[None, :]] * (1.0 - fx) + rows[b, yy, x1[None, :]] * fx
        out = out + v * wb
    return out


def _integral(a: np.ndarray) -> np.ndarray:
    ii = np.zeros((a.shape[0] + 1, a.shape[1] + 1) + a.shape[2:], dtype=np.float64)
    ii[1:, 1:] = a.cumsum(0).cumsum(1)
    return ii


def _kuwahara(img: np.ndarray, r: int) -> np.ndarray:
    """Kuwahara filter: each pixel takes the mean of its least-varying quadrant."""
    if r < 1:
        return img
    h, w = img.shape[:2]
    g = _lum(img)
    feats = np.concatenate([img, g[..., None], (g * g)[..., None]], axis=2)
    pad = np.pad(feats, ((r, r), (r, r), (0, 0)), mode="reflect")
    ii = _integral(pad)
    n = float((r + 1) * (r + 1))
    means, variances = [], []
    for dy in (0, r):  # quadrant top-left corner offset in the padded image
        for dx in (0, r):
            y0, x0 = dy, dx
            s = (
                ii[y0 + r + 1 : y0 + r + 1 + h, x0 + r + 1 : x0 + r + 1 + w]
                - ii[y0 : y0 + h, x0 + r + 1 : x0 + r + 1 + w]
                - ii[y0 + r + 1 : y0 + r + 1 + h, x0 : x0 + w]
                + ii[y0 : y0 + h, x0 : x0 + w]
            ) / n
            means.append(s[..., :3])
            variances.append(s[..., 4] - s[..., 3] ** 2)
    best = np.argmin(np.stack(variances), axis=0)
    m = np.stack(means)
    yy, xx = np.indices((h, w))
    return m[best, yy, xx].astype(np.float32)


def _block_mean(img: np.ndarray, block: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Average over a grid of blocks ``block`` (fraction of the short side) wide.

    Returns (per-block colours, per-pixel block label, number of blocks); the grid has a
    fixed number of blocks per image, so it is the same at every resolution.
    """
    h, w = img.shape[:2]
    s = _short(img)
    ny = max(1, round(h / s / block))
    nx = max(1, round(w / s / block))
    iy = np.minimum((np.arange(h) * ny) // h, ny - 1)
    ix = np.minimum((np.arange(w) * nx) // w, nx - 1)
    lab = (iy[:, None] * nx + ix[None, :]).ravel()
    cnt = np.bincount(lab, minlength=ny * nx).astype(np.float64)
    cols = (
        np.stack([np.bincount(lab, weights=img[..., c].ravel(), minlength=ny * nx) for c in range(3)], 1)
        / np.maximum(cnt, 1)[:, None]
    )
    return cols.astype(np.float32), lab.reshape(h, w), ny * nx


# colormaps as evenly spaced RGB anchors (hex), interpolated linearly; the viridis family
# (inferno, magma, viridis, plasma, cividis) is CC0 (van der Walt & Smith), turbo is Apache-2.0
# (Google), ironbow is the classic thermal-camera palette
_CMAPS: dict[str, list[str]] = {
    "inferno": (
        "000004 0b0724 210c4a 3d0965 57106d 70196e 8a226a a32c61 bc3754 "
        "d24644 e45a31 f1721d f98e09 fcac11 f9cb35 f2ea69 fcfea4"
    ).split(),
    "magma": (
        "000004 0a0822 1d1147 36106b 51127c 6a1c81 832682 9d2e7f b73779 "
        "d0416f e75263 f56b5c fc8961 fea772 fec488 fde1a3 fcfdbf"
    ).split(),
    "viridis": (
        "440154 48186a 472d7b 424086 3b528b 33638e 2c728e 26828e 21918d "
        "1fa088 28ae80 3fbc73 5ec962 84d44b addc30 d8e21a fde725"
    ).split(),
    "plasma": (
        "0d0887 310596 4c03a1 6600a7 7e03a8 9512a1 aa2395 bc3587 cb4778 "
        "da5a6a e66c5c f0804e f89540 fdac32 fdc528 f8df25 f0f921"
    ).split(),
    "turbo": (
        "30123b 4040a2 466be3 4294ff 28bceb 18ddc2 32f298 6dfd62 a4fc3c "
        "cdec34 eecf3a fdac34 fb7e21 eb500e d02f05 a91501 7a0403"
    ).split(),
    "cividis": (
        "00224e 002e6a 1a386f 32436d 434f6c 535a6d 61656f 6f7073 7d7c78 "
        "8c8878 9b9476 aba072 bcae6c cdbb63 dec957 f0d846 fee838"
    ).split(),
    "ironbow": "000000 21005c 5c0094 9e008c d1294c ed5c12 fa9900 ffd633 ffffe6".split(),
}


_PALETTES: dict[str, list[str]] = {
    "pico8": (
        "000000 1D2B53 7E2553 008751 AB5236 5F574F C2C3C7 FFF1E8 FF004D "
        "FFA300 FFEC27 00E436 29ADFF 83769C FF77A8 FFCCAA"
    ).split(),
    "gameboy": "0F380F 306230 8BAC0F 9BBC0F".split(),
    "cga": "000000 55FFFF FF55FF FFFFFF".split(),
    "nes": (
        "000000 FCFCFC BCBCBC 7C7C7C A80020 F83800 FCA044 F8B800 00A800 "
        "58D854 0058F8 3CBCFC 6844FC D800CC AC7C00 F8D8F8"
    ).split(),
}


def _hex_colors(hexes: list[str]) -> np.ndarray:
    return np.array([[int(h[i : i + 2], 16) / 255.0 for i in (0, 2, 4)] for h in hexes], dtype=np.float32)


def _palette(name: str) -> np.ndarray:
    return _hex_colors(_PALETTES[name])


# --------------------------------------------------------------------------------------------
# colour and tone


@_op("grayscale", amount=_UNIT)
def grayscale(img, rng, *, amount: float = 1.0):
    """Remove colour (luminance only); amount < 1 keeps some colour."""
    return _mix(img, _gray3(_lum(img)), amount)


@_op("sepia", amount=_UNIT)
def sepia(img, rng, *, amount: float = 1.0):
    """Warm brown old-photo toning (classic sepia matrix)."""
    m = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], dtype=np.float32)
    return _mix(img, img @ m.T, amount)


@_op("hue_shift", degrees=_ANGLE)
def hue_shift(img, rng, *, degrees: float = 90.0):
    """Rotate every hue around the colour wheel by a number of degrees."""
    hsv = _rgb2hsv(img)
    hsv[..., 0] = np.mod(hsv[..., 0] + degrees / 360.0, 1.0)
    return _hsv2rgb(hsv)


@_op("saturation", factor=_GAIN)
def saturation(img, rng, *, factor: float = 1.6):
    """Scale colourfulness around the luminance (0 = gray, >1 = vivid)."""
    return _mix(_gray3(_lum(img)), img, factor)


@_op("contrast", factor=_GAIN, pivot=_UNIT)
def contrast(img, rng, *, factor: float = 1.5, pivot: float = 0.5):
    """Stretch (factor > 1) or flatten (< 1) tones around a pivot level."""
    return (img - pivot) * factor + pivot


@_op("gamma", gamma=_POS_GAIN)
def gamma(img, rng, *, gamma: float = 0.6):
    """Gamma curve: < 1 lifts shadows and midtones, > 1 deepens them."""
    return np.power(np.maximum(img, 0.0), gamma)


@_op("brightness", delta=_Range(-1.0, 1.0))
def brightness(img, rng, *, delta: float = 0.15):
    """Add a constant to every channel (negative darkens)."""
    return img + delta


@_op(
    "color_balance",
    shadows=_Range(-1.0, 1.0),
    midtones=_Range(-1.0, 1.0),
    highlights=_Range(-1.0, 1.0),
)
def color_balance(
    img,
    rng,
    *,
    shadows: tuple = (-0.04, 0.02, 0.08),
    midtones: tuple = (0.0, 0.0, 0.0),
    highlights: tuple = (0.08, 0.03, -0.06),
):
    """Shift RGB separately in shadows, midtones and highlights (default: teal and orange)."""
    g = _lum(img)[..., None]
    ws = (1.0 - g) ** 2
    wh = g**2
    wm = np.clip(1.0 - ws - wh, 0.0, 1.0)
    return img + ws * _col(shadows) + wm * _col(midtones) + wh * _col(highlights)


@_op("temperature", amount=_Range(-1.0, 1.0))
def temperature(img, rng, *, amount: float = 0.3):
    """White-balance shift: warmer (amber) for amount > 0, cooler (blue) for amount < 0."""
    gains = np.array([1.0 + 0.3 * amount, 1.0 + 0.05 * amount, 1.0 - 0.3 * amount], np.float32)
    return img * gains


@_op("invert")
def invert(img, rng):
    """Photographic negative (1 - value)."""
    return 1.0 - img


@_op("posterize", levels=_Range(2, 256))
def posterize(img, rng, *, levels: int = 4):
    """Quantise each channel to a few flat levels."""
    q = levels - 1
    return np.round(img * q) / q


@_op("threshold", level=_UNIT, softness=_Range(0.0, 0.5))
def threshold(img, rng, *, level: float = 0.5, softness: float = 0.02):
    """Black-and-white stencil: luminance above the level becomes white."""
    g = _lum(img)
    return _gray3(
        _smoothstep(level - softness, level + softness, g) if softness > 0 else (g >= level).astype(np.float32)
    )


@_op("colormap", name=tuple(_CMAPS))
def colormap(img, rng, *, name: str = "inferno", reverse: bool = False):
    """Map luminance through a false-colour palette (inferno = thermal camera)."""
    lut = _hex_colors(_CMAPS[name])
    if reverse:
        lut = lut[::-1]
    g = _lum(img)
    xs = np.linspace(0.0, 1.0, len(lut))
    return np.stack([np.interp(g, xs, lut[:, c]) for c in range(3)], axis=-1)


@_op("duotone", dark=_COLOR, light=_COLOR)
def duotone(img, rng, *, dark: tuple = (0.12, 0.05, 0.30), light: tuple = (1.0, 0.85, 0.45)):
    """Two-colour print: shadows take one ink colour, highlights the other."""
    g = _lum(img)[..., None]
    return _mix(_col(dark), _col(light), g)


# --------------------------------------------------------------------------------------------
# sketch and line


@_op("edges", method=("sobel", "canny", "dog"), sigma=_SPAN, gain=_STRONG)
def edges(img, rng, *, method: str = "sobel", sigma: float = 0.008, gain: float = 4.0, invert: bool = True):
    """Edge map (sobel gradient, canny lines or difference of Gaussians); dark lines on white."""
    g = _lum(img)
    s = _px(sigma, img)
    if method == "sobel":
        e = np.clip(_grad_mag(g, s) * gain, 0.0, 1.0)
    elif method == "dog":
        s = max(0.5, s)
        d = _blur(g, s) - _blur(g, 1.6 * s)
        e = np.clip(np.abs(d) * gain * 2.5, 0.0, 1.0)
    else:  # canny: one-pixel lines, thickened to a width proportional to sigma

        sc = max(0.7, s)
        # thresholds in scale-normalised units (a step of height h peaks at ~0.4 h); the Sobel
        # magnitude canny thresholds is ~8x the gradient, and the gradient ~ 1/sigma
        c = canny(g, sigma=sc, low_threshold=8.0 * 0.03 / sc, high_threshold=8.0 * 0.08 / sc)
        c = c.astype(np.float32)
        w = max(0.5, 0.5 * s)
        e = np.clip(_blur(c, w) * (2.5 * w) * min(1.0, gain / 4.0) * 1.6, 0.0, 1.0)
    if invert:
        e = 1.0 - e
    return _gray3(e)


@_op("pencil_sketch", sigma=_SPAN, darkness=_STRONG)
def pencil_sketch(img, rng, *, sigma: float = 0.03, darkness: float = 2.0, color: bool = False):
    """Pencil drawing (colour-dodge of the image by its blurred self); color = coloured pencil."""
    g = _lum(img)
    b = _blur(g, max(0.7, _px(sigma, img)))
    sk = np.clip(g / np.maximum(b, 1e-3), 0.0, 1.0) ** darkness
    if not color:
        return _gray3(sk)
    pale = 1.0 - (1.0 - _blur(img, max(0.7, _px(sigma, img) / 3))) * 0.55  # light pigment
    return pale * sk[..., None]


@_op("ink_outline", sigma=_SPAN, threshold=_POS_GAIN, color=_COLOR)
def ink_outline(img, rng, *, sigma: float = 0.008, threshold: float = 0.08, color: tuple = (0.0, 0.0, 0.0)):
    """Draw ink contours over the image where its edges are strong."""
    m = _grad_mag(_lum(img), _px(sigma, img))
    line = _smoothstep(threshold * 0.6, threshold * 1.4, m)[..., None]
    return _mix(img, _col(color), line)


@_op("xdog", sigma=_SPAN, k=_Range(1.0, 10.0, lo_open=True), p=_Range(0.0, 1000.0), eps=_Range(-10.0, 10.0),
     phi=_Range(0.0, 1000.0, lo_open=True))
def xdog(
    img,
    rng,
    *,
    sigma: float = 0.006,
    k: float = 1.6,
    p: float = 20.0,
    eps: float = 0.35,
    phi: float = 12.0,
):
    """Extended difference-of-Gaussians: crisp black-and-white ink drawing."""
    g = _lum(img)
    s = max(0.5, _px(sigma, img))
    d = (1.0 + p) * _blur(g, s) - p * _blur(g, k * s)
    out = np.where(d >= eps, 1.0, 1.0 + np.tanh(phi * (d - eps)))
    return _gray3(out.astype(np.float32))


# --------------------------------------------------------------------------------------------
# painterly and filters


@_op("bilateral", sigma=_SPAN, range_sigma=_POS_GAIN)
def bilateral(img, rng, *, sigma: float = 0.03, range_sigma: float = 0.1):
    """Edge-preserving smoothing: flattens texture, keeps contours."""
    return _edge_preserving(img, _px(sigma, img), range_sigma)


@_op(
    "cartoon",
    sigma=_SPAN,
    range_sigma=_POS_GAIN,
    levels=_Range(2, 64),
    edge_sigma=_SPAN,
    edge_threshold=_POS_GAIN,
    saturation=_GAIN,
)
def cartoon(
    img,
    rng,
    *,
    sigma: float = 0.025,
    range_sigma: float = 0.12,
    levels: int = 6,
    edge_sigma: float = 0.008,
    edge_threshold: float = 0.08,
    saturation: float = 1.3,
):
    """Cartoon: flat smoothed colour regions, quantised shading and black outlines."""
    s = _px(sigma, img)
    j1 = _edge_preserving(img, s, range_sigma)
    j = _edge_preserving(j1, s, range_sigma)
    g = _lum(j)
    q = (np.floor(g * levels) + 0.5) / levels  # flat shading bands, never pure black
    j = j * (q / np.maximum(g, 1e-3))[..., None]
    j = _mix(_gray3(_lum(j)), j, saturation)
    m = _grad_mag(_lum(j1), _px(edge_sigma, img))
    line = _smoothstep(edge_threshold * 0.6, edge_threshold * 1.4, m)[..., None]
    return j * (1.0 - line)


@_op("kuwahara", radius=_SPAN)
def kuwahara(img, rng, *, radius: float = 0.025):
    """Kuwahara filter: flat painterly patches with sharp boundaries."""
    return _kuwahara(img, round(_px(radius, img)))


@_op("oil_paint", radius=_SPAN, relief=_GAIN, saturation=_GAIN)
def oil_paint(img, rng, *, radius: float = 0.03, relief: float = 0.6, saturation: float = 1.25):
    """Oil painting: Kuwahara brush patches, richer colour and impasto relief lighting."""
    k = _kuwahara(img, round(_px(radius, img)))
    k = _mix(_gray3(_lum(k)), k, saturation)
    gy, gx = _grad(_lum(k), max(0.7, _px(radius, img) * 0.25))
    light = (-gx - gy) * 0.7071 * relief
    return k + light[..., None]


@_op("watercolor", sigma=_SPAN, bleed=_Range(0.0, 0.5), edge_darkening=_UNIT, levels=_Range(2, 256))
def watercolor(
    img,
    rng,
    *,
    sigma: float = 0.025,
    bleed: float = 0.006,
    edge_darkening: float = 0.4,
    levels: int = 8,
):
    """Watercolour wash: soft flat pigment, pale paper showing through, darker pooled edges."""
    j = _edge_preserving(img, _px(sigma, img), 0.1)
    j = _blur(j, _px(bleed, img))
    q = levels - 1
    j = _mix(j, np.round(j * q) / q, 0.5)
    j = _mix(_gray3(_lum(j)), j, 1.3)
    j = 1.0 - (1.0 - j) * 0.85  # transparent pigment on white paper
    e = np.clip(_grad_mag(_lum(j), max(0.7, _px(bleed, img))) * 5.0, 0.0, 1.0)
    return j * (1.0 - edge_darkening * e)[..., None]


@_op("emboss", angle=_ANGLE, sigma=_SPAN, strength=_Range(0.0, 100.0))
def emboss(img, rng, *, angle: float = 135.0, sigma: float = 0.006, strength: float = 2.0):
    """Gray embossed relief, lit from the given angle (degrees)."""
    gy, gx = _grad(_lum(img), _px(sigma, img))
    a = math.radians(angle)
    d = math.cos(a) * gx - math.sin(a) * gy
    return _gray3(0.5 + strength * d)


@_op("blur", sigma=_SPAN)
def blur(img, rng, *, sigma: float = 0.015):
    """Gaussian blur."""
    return _blur(img, _px(sigma, img))


@_op("sharpen", sigma=_SPAN, amount=_Range(0.0, 100.0))
def sharpen(img, rng, *, amount: float = 1.5, sigma: float = 0.015):
    """Unsharp mask: crisper detail and edges."""
    s = max(0.6, _px(sigma, img))
    return img + amount * (img - _blur(img, s))


@_op("vignette", strength=_UNIT, radius=_WIDE, softness=_WIDE)
def vignette(img, rng, *, strength: float = 0.6, radius: float = 0.7, softness: float = 0.5):
    """Darken the corners (radius 1 = the corners)."""
    h, w = img.shape[:2]
    y, x = _grid(img)
    r = np.sqrt(((y - (h - 1) / 2) / (h / 2)) ** 2 + ((x - (w - 1) / 2) / (w / 2)) ** 2) / 1.4142
    m = 1.0 - strength * _smoothstep(radius - softness / 2, radius + softness / 2, r)
    return img * m[..., None]


@_op("glow", sigma=_SPAN, threshold=_Range(0.0, 1.0), strength=_GAIN)
def glow(img, rng, *, sigma: float = 0.04, threshold: float = 0.55, strength: float = 0.9):
    """Bloom: bright areas bleed soft light around them."""
    bright = np.clip((img - threshold) / max(1.0 - threshold, 1e-3), 0.0, 1.0)
    b = np.clip(_blur(bright, _px(sigma, img)) * strength, 0.0, 1.0)
    return 1.0 - (1.0 - img) * (1.0 - b)


# --------------------------------------------------------------------------------------------
# texture and pattern


def _dot_screen(tone: np.ndarray, cell_px: float, angle_deg: float) -> np.ndarray:
    """Ink coverage (0..1) of a rotated halftone dot screen for a darkness map ``tone``."""
    h, w = tone.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    a = math.radians(angle_deg)
    ca, sa = math.cos(a), math.sin(a)
    u = (x * ca + y * sa) / cell_px
    v = (-x * sa + y * ca) / cell_px
    cu, cv = np.round(u), np.round(v)
    # darkness sampled at the dot's cell centre
    cx = (cu * ca - cv * sa) * cell_px
    cy = (cu * sa + cv * ca) * cell_px
    k = ndimage.map_coordinates(tone, [cy, cx], order=1, mode="nearest")
    d = np.sqrt((u - cu) ** 2 + (v - cv) ** 2)
    r = np.sqrt(np.clip(k, 0.0, 1.0) / math.pi)  # dot area = darkness
    ink = np.clip((r - d) * cell_px + 0.5, 0.0, 1.0)
    f = _fade(cell_px, 1.6, 3.5)
    return ink * f + tone * (1.0 - f)


@_op("halftone", cell=_SPAN, angle=_ANGLE)
def halftone(img, rng, *, cell: float = 0.05, angle: float = 45.0, color: bool = False):
    """Newspaper halftone: ink dots whose size follows the darkness (CMY screens if color)."""
    c = max(1.0, _px(cell, img))
    if not color:
        tone = 1.0 - _blur(_lum(img), c / 3.0)
        return _gray3(1.0 - _dot_screen(tone, c, angle))
    ink = 1.0 - _blur(img, c / 3.0)
    return np.stack(
        [1.0 - _dot_screen(ink[..., i], c, angle + off) for i, off in enumerate((15, 75, 0))],
        axis=-1,
    )


@_op("pixelate", block=_Range(0.0, 1.0, lo_open=True))
def pixelate(img, rng, *, block: float = 0.0625):
    """Big square pixels: average over a coarse grid (block = fraction of the short side)."""
    cols, lab, _ = _block_mean(img, block)
    return cols[lab]


@_op(
    "pixel_art",
    block=_Range(0.0, 1.0, lo_open=True),
    palette=tuple(_PALETTES) + ("none",),
    levels=_Range(2, 256),
    dither=_UNIT,
)
def pixel_art(img, rng, *, block: float = 0.04, palette: str = "pico8", levels: int = 5, dither: float = 0.5):
    """Retro pixel art: coarse pixels snapped to a console palette (pico8, gameboy, nes, cga).

    ``dither`` adds ordered (Bayer) dithering on the block grid before snapping.
    """
    cols, lab, nblocks = _block_mean(img, block)
    cols = np.clip(_mix(cols @ _LUM[:, None] * np.ones((1, 3), np.float32), cols, 1.3), 0, 1)
    if dither > 0:
        nx = max(1, round(img.shape[1] / _short(img) / block))
        b = np.arange(nblocks)
        bayer = np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]])
        t = (bayer[(b // nx) % 4, (b % nx) % 4] + 0.5) / 16.0 - 0.5
        # roughly one palette step of spread at dither=1
        step = {"none": 1.0 / (levels - 1), "gameboy": 1.0 / 3.0}.get(palette, 0.3)
        cols = np.clip(cols + (dither * step * t)[:, None].astype(np.float32), 0, 1)
    if palette == "none":
        q = levels - 1
        cols = np.round(cols * q) / q
    elif palette == "gameboy":
        pal = _palette(palette)  # a dark-to-light ramp: map by luminance
        idx = np.clip(np.round((cols @ _LUM) * (len(pal) - 1)), 0, len(pal) - 1).astype(int)
        cols = pal[idx]
    else:
        pal = _palette(palette)
        d = ((cols[:, None, :] - pal[None, :, :]) ** 2).sum(-1)
        cols = pal[np.argmin(d, axis=1)]
    return cols[lab]


@_op("scanlines", period=_SPAN, strength=_UNIT)
def scanlines(img, rng, *, period: float = 0.025, strength: float = 0.45):
    """CRT scanlines: dark horizontal lines every `period` of the height."""
    h = img.shape[0]
    p = period * h
    y0 = np.arange(h, dtype=np.float64)
    w = 2.0 * math.pi / p
    # cosine averaged over each pixel row (box-filtered: no aliasing at any resolution)
    avg = (np.sin(w * (y0 + 1.0)) - np.sin(w * y0)) / w
    m = 1.0 - strength * (0.5 + 0.5 * avg)
    return img * m.astype(np.float32)[:, None, None]


@_op("film_grain", amount=_UNIT, size=_Range(0.0, 0.5))
def film_grain(img, rng, *, amount: float = 0.06, size: float = 0.004, mono: bool = True):
    """Photographic film grain (random, from the seed), strongest in the midtones."""
    h, w = img.shape[:2]
    n = rng.standard_normal((h, w) if mono else (h, w, 3)).astype(np.float32)
    s = _px(size, img)
    if s > 0.3:
        n = _blur(n, s)
        n /= max(float(n.std()), 1e-6)
    if mono:
        n = n[..., None]
    g = _lum(img)[..., None]
    return img + amount * n * (0.35 + 2.6 * g * (1.0 - g))


@_op("crosshatch", spacing=_SPAN, width=_Range(0.0, 1.0, lo_open=True))
def crosshatch(img, rng, *, spacing: float = 0.05, width: float = 0.3):
    """Pen-and-ink crosshatching: more line directions where the image is darker."""
    sp = max(1.0, _px(spacing, img))
    g = _blur(_lum(img), sp / 2.0)
    y, x = _grid(img)
    f = _fade(sp, 1.6, 3.2)
    out = np.ones_like(g)
    for ang, level in ((45.0, 0.72), (-45.0, 0.5), (0.0, 0.32), (90.0, 0.16)):
        a = math.radians(ang)
        u = (x * math.cos(a) + y * math.sin(a)) / sp
        dist = np.abs(u - np.round(u)) * sp  # px from the nearest line
        line = np.clip(width * sp / 2.0 - dist + 0.5, 0.0, 1.0)
        line = line * f + width * (1.0 - f)
        on = 1.0 - _smoothstep(level - 0.08, level + 0.08, g)
        out *= 1.0 - line * on
    return _gray3(out * (0.75 + 0.25 * _smoothstep(0.0, 0.3, g)))


@_op(
    "mosaic",
    tile=_Range(0.0, 1.0, lo_open=True),
    grout=_Range(0.0, 1.0),
    jitter=_Range(0.0, 1.0),
    grout_color=_COLOR,
)
def mosaic(
    img,
    rng,
    *,
    tile: float = 0.08,
    grout: float = 0.1,
    jitter: float = 0.8,
    grout_color: tuple = (0.12, 0.12, 0.12),
):
    """Irregular (Voronoi) mosaic tiles of flat colour separated by grout (tile layout from rng)."""

    h, w = img.shape[:2]
    s = _short(img)
    ny = max(1, round(h / s / tile))
    nx = max(1, round(w / s / tile))
    jy = rng.random((ny, nx)) - 0.5
    jx = rng.random((ny, nx)) - 0.5
    gy, gx = np.mgrid[0:ny, 0:nx]
    sy = ((gy + 0.5 + jitter * jy) / ny * h).ravel()
    sx = ((gx + 0.5 + jitter * jx) / nx * w).ravel()
    y, x = _grid(img)
    pts = np.stack([y.ravel() + 0.5, x.ravel() + 0.5], 1)
    k = min(2, ny * nx)
    d, idx = cKDTree(np.stack([sy, sx], 1)).query(pts, k=k)
    lab = idx if k == 1 else idx[:, 0]
    cnt = np.bincount(lab, minlength=ny * nx).astype(np.float64)
    cols = (
        np.stack([np.bincount(lab, weights=img[..., c].ravel(), minlength=ny * nx) for c in range(3)], 1)
        / np.maximum(cnt, 1)[:, None]
    )
    out = cols[lab].reshape(h, w, 3).astype(np.float32)
    if k == 2 and grout > 0:
        tile_px = s * tile
        gap = (d[:, 1] - d[:, 0]).reshape(h, w)  # ~2x distance to the tile border
        gw = grout * tile_px
        cover = np.clip(gw - gap + 0.5, 0.0, 1.0) if gw >= 1.0 else np.clip(gw - gap + 0.5, 0, gw)
        out = _mix(out, _col(grout_color), cover[..., None])
    return out


# --------------------------------------------------------------------------------------------
# weather and time of day


@_op("night", darkness=_UNIT, blue=_UNIT, desaturate=_UNIT)
def night(img, rng, *, darkness: float = 0.6, blue: float = 0.5, desaturate: float = 0.6):
    """Day-for-night: dark, desaturated, moonlit blue."""
    x = _mix(img, _gray3(_lum(img)), desaturate)
    x = np.power(x, 1.0 + darkness) * (1.0 - 0.5 * darkness)
    tint = np.array([1.0 - 0.45 * blue, 1.0 - 0.12 * blue, 1.0 + 0.4 * blue], np.float32)
    return x * tint + np.array([0.0, 0.01, 0.04], np.float32) * blue


@_op("winter", strength=_Range(0.0, 1.5))
def winter(img, rng, *, strength: float = 1.0):
    """Winter: cold, pale, desaturated light; foliage turns snowy white."""
    hsv = _rgb2hsv(img)
    veg = _hue_bump(hsv[..., 0], 0.15, 0.45) * _smoothstep(0.12, 0.35, hsv[..., 1])
    x = _mix(img, _gray3(_lum(img)), 0.5 * strength)
    x = x * np.array([1.0 - 0.1 * strength, 1.0, 1.0 + 0.08 * strength], np.float32)
    x = 1.0 - (1.0 - x) * (1.0 - 0.2 * strength)
    snow = _col((0.93, 0.96, 1.0)) * (0.8 + 0.2 * hsv[..., 2:3])
    return _mix(x, snow, np.clip(0.75 * strength * veg, 0.0, 1.0)[..., None])


@_op("autumn", strength=_Range(0.0, 1.0))
def autumn(img, rng, *, strength: float = 1.0):
    """Autumn foliage: greens turn orange, red and gold; warmer light."""
    hsv = _rgb2hsv(img)
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    w = _hue_bump(h, 0.14, 0.48, 0.06) * _smoothstep(0.05, 0.25, s) * strength
    target = 0.01 + 0.11 * np.clip(v, 0.0, 1.0)  # dark leaves redder, bright ones golden
    hsv[..., 0] = _mix(h, target, w)
    hsv[..., 1] = np.clip(s * (1.0 + 0.35 * w), 0.0, 1.0)
    out = _hsv2rgb(hsv)
    return out * np.array([1.0 + 0.06 * strength, 1.0, 1.0 - 0.08 * strength], np.float32)


@_op("gradient_tint", top=_COLOR, bottom=_COLOR, strength=_UNIT)
def gradient_tint(
    img,
    rng,
    *,
    top: tuple = (1.0, 0.55, 0.3),
    bottom: tuple = (0.35, 0.25, 0.6),
    strength: float = 0.6,
):
    """Soft-light a vertical colour gradient over the image (sky-to-ground tint)."""
    h = img.shape[0]
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    c = _mix(_col(top), _col(bottom), t)
    soft = (1.0 - 2.0 * c) * img * img + 2.0 * c * img
    return _mix(img, soft, strength)


@_op("fog", density=_UNIT, color=_COLOR, falloff=_UNIT)
def fog(img, rng, *, density: float = 0.6, color: tuple = (0.82, 0.84, 0.87), falloff: float = 0.6):
    """Fog/haze: a veil of light that thickens towards the top (the distance) and softens detail."""
    h = img.shape[0]
    depth = np.linspace(1.0, 0.0, h, dtype=np.float32)[:, None, None]  # top = far
    t = density * (1.0 - falloff + falloff * depth)
    soft = _blur(img, _px(0.006, img))
    return _mix(soft, _col(color), t)


def _splat(h: int, w: int, ys: np.ndarray, xs: np.ndarray, wts: np.ndarray) -> np.ndarray:
    out = np.zeros((h, w), np.float32)
    iy = np.clip(np.round(ys).astype(int), 0, h - 1)
    ix = np.clip(np.round(xs).astype(int), 0, w - 1)
    np.add.at(out, (iy, ix), wts.astype(np.float32))
    return out


@_op("snow", density=_GAIN, size=_Range(0.0, 0.1, lo_open=True))
def snow(img, rng, *, density: float = 1.0, size: float = 0.008):
    """Falling snowflakes of two sizes (positions from rng, placed in image fractions)."""
    h, w = img.shape[:2]
    s = _short(img)
    area = (h / s) * (w / s)
    out = img
    for count, scale, alpha in ((400, 0.6, 0.75), (80, 1.6, 0.95)):
        n = round(count * density * area)
        fy, fx = rng.random(n), rng.random(n)
        amp = 0.6 + 0.4 * rng.random(n)
        sig = max(0.5, size * scale * s)
        m = _blur(_splat(h, w, fy * h, fx * w, amp), sig) * (2.0 * math.pi * sig * sig)
        m = np.clip(m * alpha, 0.0, 1.0)[..., None]
        out = _mix(out, _col((0.97, 0.98, 1.0)), m)
    return out


@_op("rain", amount=_GAIN, angle=_ANGLE, length=_SPAN)
def rain(img, rng, *, amount: float = 1.0, angle: float = 15.0, length: float = 0.08):
    """Rain: slanted bright streaks over a slightly darkened, cooler scene (streaks from rng)."""
    h, w = img.shape[:2]
    s = _short(img)
    n = round(250 * amount * (h / s) * (w / s))
    L = max(2.0, length * s)
    a = math.radians(angle)
    dy, dx = math.cos(a), math.sin(a)
    fy, fx = rng.random(n) * h, rng.random(n) * w
    lens = L * (0.5 + 0.5 * rng.random(n))
    steps = math.ceil(L) + 1
    t = np.linspace(0.0, 1.0, steps)[None, :]
    ys = (fy[:, None] + dy * lens[:, None] * t).ravel()
    xs = (fx[:, None] + dx * lens[:, None] * t).ravel()
    keep = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    streak = _splat(h, w, ys[keep], xs[keep], np.full(int(keep.sum()), 0.5))
    streak = np.clip(_blur(streak, 0.5) * 1.6, 0.0, 1.0)[..., None]
    base = img * np.array([0.82, 0.86, 0.92], np.float32)
    return _mix(base, _col((0.85, 0.88, 0.95)), 0.7 * streak)


# --------------------------------------------------------------------------------------------
# geometric warps


@_op("swirl", strength=_Range(-100.0, 100.0), radius=_WIDE)
def swirl(img, rng, *, strength: float = 4.0, radius: float = 0.7):
    """Whirlpool twist around the centre (radius = fraction of the short side)."""

    return _sk_swirl(img, strength=strength, radius=_px(radius, img), mode="reflect", order=1)


@_op("fisheye", strength=_Range(-1.0, 1.8))
def fisheye(img, rng, *, strength: float = 0.8):
    """Fisheye (barrel) lens bulge; negative strength pinches (pincushion)."""
    h, w = img.shape[:2]
    ny, nx, half = _norm_grid(img)
    r2 = ny * ny + nx * nx
    scale = 1.0 - 0.5 * strength * (1.0 - r2)
    return _remap(img, ny * scale * half + (h - 1) / 2, nx * scale * half + (w - 1) / 2)


@_op("wave", amplitude=_Range(0.0, 0.5), wavelength=_WIDE, axis=("x", "y", "both"))
def wave(img, rng, *, amplitude: float = 0.03, wavelength: float = 0.25, axis: str = "x"):
    """Sinusoidal ripple distortion (amplitude and wavelength are fractions of the short side)."""
    y, x = _grid(img)
    s = _short(img)
    a, lam = amplitude * s, wavelength * s
    ys, xs = y, x
    if axis in ("x", "both"):
        xs = x + a * np.sin(2 * math.pi * y / lam)
    if axis in ("y", "both"):
        ys = y + a * np.sin(2 * math.pi * x / lam)
    return _remap(img, ys, xs)


@_op("flip", axis=("horizontal", "vertical", "both"))
def flip(img, rng, *, axis: str = "horizontal"):
    """Mirror the whole image left-right, upside down, or both."""
    if axis == "horizontal":
        return img[:, ::-1]
    if axis == "vertical":
        return img[::-1]
    return img[::-1, ::-1]


@_op("mirror", side=("left", "right", "top", "bottom"))
def mirror(img, rng, *, side: str = "left"):
    """Symmetry: reflect one half of the image onto the other half."""
    h, w = img.shape[:2]
    out = img.copy()
    if side == "left":
        out[:, w - w // 2 :] = img[:, : w // 2][:, ::-1]
    elif side == "right":
        out[:, : w // 2] = img[:, w - w // 2 :][:, ::-1]
    elif side == "top":
        out[h - h // 2 :] = img[: h // 2][::-1]
    else:
        out[: h // 2] = img[h - h // 2 :][::-1]
    return out


@_op("rotate", angle=_ANGLE)
def rotate(img, rng, *, angle: float = 12.0, crop: bool = True):
    """Rotate about the centre by `angle` degrees; crop zooms in so no border shows."""
    h, w = img.shape[:2]
    a = math.radians(angle)
    ca, sa = math.cos(a), math.sin(a)
    z = 1.0
    if crop:
        z = max((w * abs(ca) + h * abs(sa)) / w, (w * abs(sa) + h * abs(ca)) / h)
    y, x = _grid(img)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    yy, xx = (y - cy) / z, (x - cx) / z
    return _remap(img, ca * yy - sa * xx + cy, sa * yy + ca * xx + cx)


@_op("kaleidoscope", segments=_Range(2, 64), angle=_ANGLE)
def kaleidoscope(img, rng, *, segments: int = 6, angle: float = 0.0):
    """Kaleidoscope: one wedge around the centre, mirrored into `segments` slices."""
    h, w = img.shape[:2]
    ny, nx, half = _norm_grid(img)
    r = np.sqrt(ny * ny + nx * nx)
    th = np.arctan2(ny, nx) - math.radians(angle)
    wedge = 2 * math.pi / segments
    t = np.mod(th, 2 * wedge)
    t = np.where(t > wedge, 2 * wedge - t, t) + math.radians(angle)
    return _remap(img, r * np.sin(t) * half + (h - 1) / 2, r * np.cos(t) * half + (w - 1) / 2)


# --------------------------------------------------------------------------------------------
# validation and application


def validate_ops(ops: list, *, file: str | None = None, field: str = "teacher.ops") -> list[dict]:
    """Check a teacher's op list and return it normalised (every parameter filled in).

    Each item is ``{"op": name, **params}``; unknown ops, unknown parameters, missing required
    parameters, values of the wrong type and out-of-range values raise :class:`ConfigError`
    naming the field (e.g. ``teacher.ops[1].sigma``).
    """
    if not isinstance(ops, (list, tuple)):
        raise ConfigError("expected a list of ops", file=file, field=field, value=ops)
    out: list[dict] = []
    for i, item in enumerate(ops):
        f_item = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(
                "each op must be a mapping like {op: name, param: value}",
                file=file,
                field=f_item,
                value=item,
            )
        name = item.get("op")
        if not isinstance(name, str) or not name:
            raise ConfigError(
                "missing op name",
                file=file,
                field=f"{f_item}.op",
                value=name,
                allowed=", ".join(OPS.names()),
            )
        fn = OPS.get(name, file=file, field=f"{f_item}.op")
        params = validate(op_params(fn), {k: v for k, v in item.items() if k != "op"}, file=file, prefix=f_item)
        norm: dict[str, Any] = {"op": name, **params.model_dump()}
        out.append(norm)
    return out


def apply_ops(img: np.ndarray, ops: list[dict], seed: int) -> np.ndarray:
    """Apply the ops in order to ``img`` (uint8 or float) with ``default_rng(seed)``.

    Returns float32 HxWx3 in [0, 1]. The input array is never modified.
    """
    norm = validate_ops(ops)
    rng = np.random.default_rng(seed)
    x = _as_float(img)
    for spec in norm:
        fn = OPS.get(spec["op"])
        params = {k: v for k, v in spec.items() if k != "op"}
        x = _as_float(fn(x, rng, **params))
    return x


def describe_op(name: str) -> str:
    """First line of the op's docstring."""
    fn = OPS.get(name)
    doc = inspect.getdoc(fn) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""
