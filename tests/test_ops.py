"""The procedural op bank and the built-in procedural concepts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from skimage import data, transform

from e2gan_bench.data.ops import OPS, apply_ops, describe_op, validate_ops
from e2gan_bench.errors import ConfigError

CONCEPTS_DIR = Path(__file__).resolve().parent.parent / "concepts"
CATEGORIES = {
    "color-tone",
    "sketch-line",
    "painterly-filter",
    "texture-pattern",
    "weather-time",
    "geometric-warp",
}
CONCEPT_KEYS = {"name", "prompt", "category", "tags", "teacher", "source"}

# Ops for which "apply at 128 px then downscale == apply at 32 px" is inherently false:
RESOLUTION_DEPENDENT = {
    "film_grain": "per-pixel random noise: the noise field is drawn on the pixel grid",
    "snow": "random flakes have a minimum size of ~1 px, so they are relatively bigger when small",
    "rain": "random streaks have a minimum width of ~1 px",
    "xdog": "thresholded 1-px lines turn gray when downscaled but stay black when drawn small",
}


def _square(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[:2]
    m = min(h, w)
    return a[(h - m) // 2 : (h - m) // 2 + m, (w - m) // 2 : (w - m) // 2 + m]


def _resize(a: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    shape = (size, size) if isinstance(size, int) else size
    return transform.resize(a, shape, anti_aliasing=True).astype(np.float32)


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    astro = _square(data.astronaut())
    coffee = _square(data.coffee())
    rng = np.random.default_rng(123)
    return {
        "astro16": _resize(astro, 16),
        "astro32": _resize(astro, 32),
        "astro64": _resize(astro, 64),
        "astro128": _resize(astro, 128),
        "coffee128": _resize(coffee, 128),
        "wide": _resize(data.chelsea(), (24, 40)),
        "random32": rng.random((32, 32, 3), dtype=np.float32),
    }


def _check_image(out: np.ndarray, shape: tuple[int, ...]) -> None:
    assert out.shape == shape
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_bank_is_rich():
    assert len(OPS.names()) >= 30


@pytest.mark.parametrize("name", OPS.names())
def test_op_contract(name, photos):
    fn = OPS.get(name)
    for key in ("astro16", "astro32", "astro64", "wide", "random32"):
        img = photos[key]
        before = img.copy()
        out = fn(img, np.random.default_rng(7))
        _check_image(out, img.shape)
        np.testing.assert_array_equal(img, before, err_msg=f"{name} modified its input")
        again = fn(img, np.random.default_rng(7))
        np.testing.assert_array_equal(out, again, err_msg=f"{name} is not deterministic")
    for key in ("astro64", "random32"):
        diff = np.abs(fn(photos[key], np.random.default_rng(0)) - photos[key]).mean()
        assert diff > 2e-3, f"{name} is (nearly) the identity at default params on {key}: {diff}"
    assert describe_op(name), f"{name} has no docstring"


@pytest.mark.parametrize("name", sorted(set(OPS.names()) - set(RESOLUTION_DEPENDENT)))
def test_op_resolution_independent(name, photos):
    fn = OPS.get(name)
    for key in ("astro128", "coffee128"):
        big = photos[key]
        small = _resize(big, 32)
        a = _resize(fn(big, np.random.default_rng(0)), 32)
        b = fn(small, np.random.default_rng(0))
        diff = float(np.abs(a - b).mean())
        assert diff < 0.15, f"{name} looks different at 128 px and 32 px on {key}: {diff:.3f}"


def test_resolution_skip_list_names_real_ops():
    assert set(RESOLUTION_DEPENDENT) <= set(OPS.names())


def test_validate_fills_defaults_and_is_canonical():
    norm = validate_ops([{"op": "grayscale"}, {"op": "blur", "sigma": 1}])
    assert norm[0] == {"op": "grayscale", "amount": 1.0}
    assert norm[1] == {"op": "blur", "sigma": 1.0}
    assert isinstance(norm[1]["sigma"], float)  # int accepted for a float, stored as float
    # the same config, however written, normalises to the same JSON (cache keys)
    a = validate_ops([{"op": "color_balance", "shadows": (0, 0, 0.1)}])
    b = validate_ops([{"shadows": [0.0, 0.0, 0.1], "op": "color_balance"}])
    assert json.dumps(a) == json.dumps(b)
    assert validate_ops(a) == a  # idempotent


def test_validate_unknown_op():
    with pytest.raises(ConfigError) as ei:
        validate_ops([{"op": "grayscale"}, {"op": "no_such_op"}], file="c.yaml")
    msg = str(ei.value)
    assert "teacher.ops[1].op" in msg and "no_such_op" in msg and "c.yaml" in msg
    assert "pencil_sketch" in msg  # the allowed names are listed


def test_validate_unknown_param():
    with pytest.raises(ConfigError) as ei:
        validate_ops([{"op": "grayscale"}, {"op": "posterize", "sigma": 0.1}])
    assert "teacher.ops[1].sigma" in str(ei.value)
    assert "levels" in str(ei.value)  # the op's parameters are listed


@pytest.mark.parametrize(
    "item, field",
    [
        ({"op": "blur", "sigma": "wide"}, "sigma"),
        ({"op": "blur", "sigma": True}, "sigma"),
        ({"op": "blur", "sigma": float("nan")}, "sigma"),
        ({"op": "posterize", "levels": 4.5}, "levels"),
        ({"op": "posterize", "levels": 1}, "levels"),
        ({"op": "halftone", "color": "yes"}, "color"),
        ({"op": "colormap", "name": 3}, "name"),
        ({"op": "colormap", "name": "rainbow"}, "name"),
        ({"op": "duotone", "dark": [0.1, 0.2]}, "dark"),
        ({"op": "duotone", "dark": "black"}, "dark"),
        ({"op": "duotone", "dark": [0.1, "a", 0.2]}, "dark"),
        ({"op": "blur", "sigma": -0.1}, "sigma"),
    ],
)
def test_validate_wrong_values(item, field):
    with pytest.raises(ConfigError) as ei:
        validate_ops([{"op": "invert"}, {"op": "grayscale"}, item], field="teacher.ops")
    assert f"teacher.ops[2].{field}" in str(ei.value)


@pytest.mark.parametrize(
    "ops, field",
    [
        ("grayscale", "teacher.ops"),  # not a list
        (["grayscale"], "teacher.ops[0]"),  # item not a mapping
        ([["op", "blur"]], "teacher.ops[0]"),
        ([{"sigma": 0.1}], "teacher.ops[0].op"),  # no op name
    ],
)
def test_validate_malformed(ops, field):
    with pytest.raises(ConfigError) as ei:
        validate_ops(ops)
    assert f"field '{field}'" in str(ei.value)


def test_apply_ops_dtypes_and_seed(photos):
    u8 = (photos["astro32"] * 255).round().astype(np.uint8)
    ops = [{"op": "sepia"}, {"op": "film_grain", "amount": 0.1}]
    a = apply_ops(u8, ops, seed=1)
    b = apply_ops(u8.astype(np.float32) / 255.0, ops, seed=1)
    _check_image(a, u8.shape)
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_array_equal(a, apply_ops(u8, ops, seed=1))
    assert np.abs(a - apply_ops(u8, ops, seed=2)).mean() > 1e-3
    with pytest.raises(ConfigError):
        apply_ops(u8, [{"op": "nope"}], seed=0)


# ------------------------------------------------------------------------------ concepts


def _concept_files() -> list[Path]:
    return sorted(CONCEPTS_DIR.glob("*.yaml"))


def _procedural() -> list[tuple[Path, dict]]:
    out = []
    for f in _concept_files():
        c = yaml.safe_load(f.read_text())
        if isinstance(c, dict) and c.get("teacher", {}).get("kind") == "procedural":
            out.append((f, c))
    return out


def test_enough_concepts_and_categories():
    concepts = _procedural()
    assert len(concepts) >= 30
    assert len({c["category"] for _, c in concepts}) >= 6


@pytest.mark.parametrize("path", _concept_files(), ids=lambda p: p.stem)
def test_concept_file(path, photos):
    c = yaml.safe_load(path.read_text())
    assert isinstance(c, dict)
    assert c["name"] == path.stem
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", c["name"])
    if c["teacher"]["kind"] != "procedural":
        pytest.skip("not a procedural concept")
    assert set(c) <= CONCEPT_KEYS and {"name", "prompt", "category", "teacher", "source"} <= set(c)
    assert isinstance(c["prompt"], str) and c["prompt"].strip()
    assert c["category"] in CATEGORIES
    assert set(c["teacher"]) == {"kind", "ops"}
    assert c["source"] == {"kind": "builtin-photos"}
    assert isinstance(c.get("tags", []), list)
    ops = validate_ops(c["teacher"]["ops"], file=str(path))
    img = photos["astro32"]
    out = apply_ops(img, ops, seed=0)
    _check_image(out, img.shape)
    assert np.abs(out - img).mean() > 0.01
