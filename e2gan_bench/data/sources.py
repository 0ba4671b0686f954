"""Sources of input images, cut into square crops and split into train / test by photograph.

* ``builtin-photos``: natural photographs that ship inside installed packages (scikit-image,
  scikit-learn, matplotlib) — no download.
* ``folder``: any folder of images; each file is one photograph.
* ``synthetic``: procedurally generated scenes (sky gradient, ground, sun, shapes), unlimited.

The split is by photograph, never by crop, so test crops come from scenes never seen in training.

A source is a plugin (:mod:`e2gan_bench.plugins`): a :class:`Source` subclass with a nested ``Params`` model,
constructed with its validated parameters and the concept's split seed, registered in :data:`SOURCES`
(entry-point group ``e2gan_bench.source``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import skimage.data
from PIL import Image
from pydantic import Field
from skimage.draw import disk, polygon

from e2gan_bench import plugins
from e2gan_bench.errors import ConfigError
from e2gan_bench.plugins import parse_params
from e2gan_bench.registry import Registry

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass
class Photo:
    name: str
    load: Callable[[], np.ndarray]  # -> uint8 HxWx3


@dataclass
class SourceCrops:
    """Crops (uint8, N×H×W×3) and the photograph each came from."""

    train: np.ndarray
    test: np.ndarray
    train_photos: list[str]
    test_photos: list[str]
    train_ids: np.ndarray  # index into train_photos per crop
    test_ids: np.ndarray
    val: np.ndarray | None = None  # validation crops: from photographs in neither train nor test
    val_photos: list[str] | None = None


class Source:
    """Base of every source. Hooks: :meth:`photos` (train and test photographs), :meth:`describe`.

    ``Params`` must have ``min_crop`` / ``max_crop`` (fractions of a photograph's short side)."""

    Params: ClassVar[type[plugins.Params]] = plugins.Params

    def __init__(self, params: plugins.Params, split_seed: int = 0) -> None:
        self.p = params

    def photos(self) -> tuple[list[Photo], list[Photo]]:  # (train, test)
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return self.p.model_dump()


SOURCES: Registry[type[Source]] = Registry("source")


def _rgb(im: np.ndarray) -> np.ndarray:
    """Any image array as uint8 HxWx3. Integer images are rescaled from the full range of their bit depth
    (16-bit: 0..65535 → 0..255, never clipped); float images are taken as [0, 1] (or [0, 255] when above 1)."""
    im = np.asarray(im)
    if im.dtype == bool:
        im = im.astype(np.uint8) * 255
    elif im.dtype.kind == "u" and im.dtype.itemsize == 2:
        im = np.round(im.astype(np.float64) / 257.0).astype(np.uint8)
    elif im.dtype.kind in "iu" and im.dtype.itemsize > 1:  # 32-bit integer images (PIL mode "I")
        top = float(im.max()) if im.size else 0.0
        scale = 1.0 if top <= 255 else 257.0 if top <= 65535 else (2.0**32 - 1) / 255.0
        im = np.clip(np.round(im.astype(np.float64) / scale), 0, 255).astype(np.uint8)
    elif im.dtype != np.uint8:
        im = np.nan_to_num(im.astype(np.float64))
        im = np.clip(im * (255 if im.max() <= 1.0 else 1), 0, 255).astype(np.uint8)
    if im.ndim == 2:
        im = np.stack([im] * 3, -1)
    return np.ascontiguousarray(im[..., :3])


def _image_error(path: Path, exc: BaseException, field: str = "source.path", file: str | None = None) -> ConfigError:
    msg = " ".join(str(exc).split())[:160]
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"{type(exc).__name__}: {msg}" if msg \
        else type(exc).__name__
    return ConfigError(f"unreadable image ({why})", file=file, field=field, value=str(path))


_checked: dict[tuple[str, int, int], None] = {}


def check_image(path: Path, *, field: str = "source.path", file: str | None = None) -> None:
    """Fail now, with one line naming the file, on an image that cannot be decoded (empty, truncated, corrupt,
    not an image, a broken link, unreadable, too many pixels) — before anything runs. PNGs are checked whole
    (every chunk's CRC), JPEGs decoded at 1/8 scale (to the last byte), other formats decoded."""
    path = Path(path)
    try:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key in _checked:
            return
        if st.st_size == 0:
            raise ValueError("empty file")
        with Image.open(path) as im:
            if im.format == "PNG":
                im.verify()
            else:
                if im.format == "JPEG":
                    im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
                im.load()
    except Exception as exc:  # any decoding failure of any format is the same user error
        raise _image_error(path, exc, field, file) from None
    _checked[key] = None


def load_image(path: Path, *, field: str = "source.path", file: str | None = None) -> np.ndarray:
    """An image file as uint8 HxWx3 (16-bit images rescaled, palette / alpha / CMYK / grey converted); a file that
    cannot be decoded is a one-line error naming it."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode.startswith("I") or im.mode == "F":  # 16/32-bit grey and float: keep the full range
                return _rgb(np.asarray(im))
            return _rgb(np.asarray(im.convert("RGB")))
    except Exception as exc:  # any decoding failure of any format is the same user error
        raise _image_error(path, exc, field, file) from None


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        im = getattr(skimage.data, name)()
        if isinstance(im, tuple):  # stereo pairs
            im = im[0]
        return _rgb(im)

    return load


# scikit-learn and matplotlib take about a second to import; their photographs are loaded (and the packages
# imported) only when crops are cut, which a warm cache never does.
def _sklearn(index: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_images

        return _rgb(load_sample_images().images[index])

    return load


def _grace_hopper() -> np.ndarray:
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        return _rgb(np.asarray(Image.open(f).convert("RGB")))


#: name -> (loader, is colour). Natural photographs only (no charts, text or synthetic tiles).
BUILTIN_PHOTOS: dict[str, tuple[Callable[[], np.ndarray], bool]] = {
    "astronaut": (_skimage("astronaut"), True),
    "chelsea": (_skimage("chelsea"), True),
    "coffee": (_skimage("coffee"), True),
    "rocket": (_skimage("rocket"), True),
    "hubble_deep_field": (_skimage("hubble_deep_field"), True),
    "immunohistochemistry": (_skimage("immunohistochemistry"), True),
    "retina": (_skimage("retina"), True),
    "motorcycle": (_skimage("stereo_motorcycle"), True),
    "china": (_sklearn(0), True),
    "flower": (_sklearn(1), True),
    "grace_hopper": (_grace_hopper, True),
    "camera": (_skimage("camera"), False),
    "coins": (_skimage("coins"), False),
    "moon": (_skimage("moon"), False),
    "grass": (_skimage("grass"), False),
    "gravel": (_skimage("gravel"), False),
    "brick": (_skimage("brick"), False),
    "clock": (_skimage("clock"), False),
}


@SOURCES.register("builtin-photos")
class BuiltinPhotos(Source):
    class Params(plugins.Params):
        photos: tuple[str, ...] | None = None  # default: all
        test_photos: tuple[str, ...] | None = None  # default: drawn with the split seed
        n_test_photos: int = Field(4, ge=1, le=1000)
        min_crop: float = Field(0.25, gt=0, le=1)
        max_crop: float = Field(0.6, gt=0, le=1)

    def __init__(self, params: plugins.Params, split_seed: int = 0) -> None:
        super().__init__(params)
        p = self.p
        names = list(p.photos or BUILTIN_PHOTOS)
        for fld, values in (("source.photos", names), ("source.test_photos", list(p.test_photos or ()))):
            for n in values:
                if n not in BUILTIN_PHOTOS:
                    raise ConfigError("unknown built-in photo", field=fld, value=n, allowed=", ".join(BUILTIN_PHOTOS))
        if p.test_photos is not None:
            test = [n for n in names if n in p.test_photos]
        else:
            rng = np.random.default_rng(split_seed)
            colour = [n for n in names if BUILTIN_PHOTOS[n][1]]
            grey = [n for n in names if not BUILTIN_PHOTOS[n][1]]
            n_grey = min(len(grey), p.n_test_photos // 4)
            test = list(rng.permutation(colour)[: p.n_test_photos - n_grey]) + list(rng.permutation(grey)[:n_grey])
        train = [n for n in names if n not in test]
        if not train or not test:
            raise ConfigError("need at least one train and one test photograph", field="source.test_photos",
                              value=list(test))
        self.train_names, self.test_names = train, sorted(test)

    def photos(self) -> tuple[list[Photo], list[Photo]]:
        mk = lambda n: Photo(n, BUILTIN_PHOTOS[n][0])  # noqa: E731
        return [mk(n) for n in self.train_names], [mk(n) for n in self.test_names]


@SOURCES.register("folder")
class FolderSource(Source):
    class Params(plugins.Params):
        path: str
        test_fraction: float = Field(0.2, gt=0, lt=1)
        min_crop: float = Field(0.5, gt=0, le=1)
        max_crop: float = Field(1.0, gt=0, le=1)

    def __init__(self, params: plugins.Params, split_seed: int = 0) -> None:
        super().__init__(params)
        root = Path(self.p.path).expanduser()
        if not root.is_dir():
            raise ConfigError("image folder not found", field="source.path", value=str(root))
        # a broken link named like an image is an error below, a folder named like one is not an image
        files = sorted(f for f in root.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES
                       and (f.is_symlink() or not f.is_dir()))
        if len(files) < 2:
            raise ConfigError("folder needs at least 2 images", field="source.path", value=str(root))
        for f in files:
            check_image(f)
        rng = np.random.default_rng(split_seed)
        order = rng.permutation(len(files))
        n_test = max(1, int(round(len(files) * self.p.test_fraction)))
        self.test_files = sorted(files[i] for i in order[:n_test])
        self.train_files = sorted(files[i] for i in order[n_test:])

    def photos(self) -> tuple[list[Photo], list[Photo]]:
        def mk(f: Path) -> Photo:
            return Photo(f.name, lambda: load_image(f))

        return [mk(f) for f in self.train_files], [mk(f) for f in self.test_files]

    def describe(self) -> dict[str, Any]:
        # the key depends on the files' names and sizes, not only the path
        d = self.p.model_dump()
        d["files"] = [(f.name, f.stat().st_size) for f in self.train_files + self.test_files]
        return d


@SOURCES.register("synthetic")
class SyntheticSource(Source):
    """Procedural landscapes: sky gradient, hills, sun, trees and blocks with random colours."""

    class Params(plugins.Params):
        n_scenes: int = Field(24, ge=2, le=10_000)
        n_test_scenes: int = Field(6, ge=1, le=10_000)
        size: int = Field(256, ge=32, le=4096)  # each scene is size² × 3 bytes, drawn in memory
        min_crop: float = Field(0.5, gt=0, le=1)
        max_crop: float = Field(1.0, gt=0, le=1)

    def __init__(self, params: plugins.Params, split_seed: int = 0) -> None:
        super().__init__(params)
        if self.p.n_test_scenes >= self.p.n_scenes:
            raise ConfigError("n_test_scenes must be below n_scenes", field="source.n_test_scenes",
                              value=self.p.n_test_scenes)
        self.split_seed = split_seed

    def _scene(self, i: int) -> np.ndarray:
        s = self.p.size
        rng = np.random.default_rng(10_000 + i)
        y = np.linspace(0, 1, s)[:, None, None]
        top, bottom = rng.uniform(0.2, 1.0, 3), rng.uniform(0.3, 1.0, 3)
        img = np.broadcast_to(top * (1 - y) + bottom * y, (s, s, 3)).copy()
        cy, cx = rng.uniform(0.1, 0.4) * s, rng.uniform(0.1, 0.9) * s
        rr, cc = disk((cy, cx), rng.uniform(0.04, 0.12) * s, shape=(s, s))
        img[rr, cc] = rng.uniform(0.7, 1.0, 3)
        for _ in range(rng.integers(1, 4)):  # hills
            xs = np.linspace(0, s - 1, 12)
            ys = s * rng.uniform(0.45, 0.8) + rng.normal(0, s * 0.05, 12)
            rr, cc = polygon(np.r_[ys, s - 1, s - 1], np.r_[xs, s - 1, 0], shape=(s, s))
            img[rr, cc] = rng.uniform(0.0, 0.7, 3)
        for _ in range(rng.integers(2, 9)):  # trees and blocks
            x0, base = rng.uniform(0, s), rng.uniform(0.6, 1.0) * s
            h, w = rng.uniform(0.08, 0.3) * s, rng.uniform(0.03, 0.1) * s
            rr, cc = polygon([base, base - h, base], [x0 - w, x0, x0 + w], shape=(s, s))
            img[rr, cc] = rng.uniform(0.0, 0.6, 3)
        img += rng.normal(0, 0.02, img.shape)
        return (np.clip(img, 0, 1) * 255).astype(np.uint8)

    def photos(self) -> tuple[list[Photo], list[Photo]]:
        order = np.random.default_rng(self.split_seed).permutation(self.p.n_scenes)
        mk = lambda i: Photo(f"scene{i:04d}", lambda: self._scene(int(i)))  # noqa: E731
        test = sorted(order[: self.p.n_test_scenes])
        train = sorted(order[self.p.n_test_scenes:])
        return [mk(i) for i in train], [mk(i) for i in test]


def build_source(kind: str, params: dict[str, Any], split_seed: int, *, file: str | None = None) -> Source:
    cls = SOURCES.get(kind, file=file, field="source.kind")
    p = parse_params(cls, params, file=file, field="source")
    try:
        return cls(p, split_seed=split_seed)
    except ConfigError as exc:  # the source knows the field, the caller knows the file
        raise exc.in_file(file) from None


def _crops(photos: list[Photo], n: int, size: int, lo: float, hi: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    out = np.zeros((n, size, size, 3), np.uint8)
    ids = np.zeros(n, np.int64)
    cache: dict[int, np.ndarray] = {}
    rng = np.random.default_rng(seed)
    for k in range(n):
        i = k % len(photos)  # round-robin: every photograph contributes equally
        if i not in cache:
            cache[i] = photos[i].load()
        im = cache[i]
        h, w = im.shape[:2]
        side = int(min(h, w) * rng.uniform(lo, hi))
        side = max(side, min(8, min(h, w)))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crop = Image.fromarray(im[y : y + side, x : x + side]).resize((size, size), Image.Resampling.LANCZOS)
        out[k], ids[k] = np.asarray(crop), i
    return out, ids


def split_validation(train: list[Photo], seed: int) -> tuple[list[Photo], list[Photo]]:
    """(train, validation): about one training photograph in seven (at least one) set aside for validation,
    drawn with the split seed — so validation, training and test photographs are three disjoint sets."""
    if len(train) < 2:
        raise ConfigError("a validation split needs at least 2 training photographs (or set data.n_val: 0)",
                          field="n_val", value=len(train))
    k = max(1, round(len(train) / 7))
    chosen = set(np.random.default_rng(seed + 7_777).permutation(len(train))[:k].tolist())
    return [p for i, p in enumerate(train) if i not in chosen], [p for i, p in enumerate(train) if i in chosen]


def make_crops(source: Source, resolution: int, n_train: int, n_test: int, seed: int, n_val: int = 0) -> SourceCrops:
    train_p, test_p = source.photos()
    val_p: list[Photo] = []
    if n_val:
        train_p, val_p = split_validation(train_p, seed)
    lo, hi = source.p.min_crop, max(source.p.max_crop, source.p.min_crop)
    tr, tr_ids = _crops(train_p, n_train, resolution, lo, hi, seed * 2 + 1)
    te, te_ids = _crops(test_p, n_test, resolution, lo, hi, seed * 2 + 2)
    va = _crops(val_p, n_val, resolution, lo, hi, seed * 2 + 3)[0] if n_val else None
    return SourceCrops(tr, te, [p.name for p in train_p], [p.name for p in test_p], tr_ids, te_ids, va,
                       [p.name for p in val_p] if n_val else None)
