"""Sources, teachers, the paired-dataset cache and minimal-data selection."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from e2gan_bench.config import ComponentSpec, Concept, DataSpec  # noqa: E402
from e2gan_bench.data.dataset import DataSettings, build_dataset, dataset_key  # noqa: E402
from e2gan_bench.data.sources import BUILTIN_PHOTOS, build_source, make_crops  # noqa: E402
from e2gan_bench.data.teachers import ProceduralTeacher, build_teacher  # noqa: E402
from e2gan_bench.errors import ConfigError  # noqa: E402
from e2gan_bench.resources import Catalog  # noqa: E402
from e2gan_bench.training.selection import select  # noqa: E402

SETTINGS = DataSettings(16, 6, 4)


def _write_pngs(folder: Path, n: int, size: int = 16, seed: int = 0, names: list[str] | None = None) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for name in names or [f"img{i:02d}.png" for i in range(n)]:
        p = folder / name
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


# ----------------------------------------------------------------------------- builtin photos


def test_builtin_split_is_by_photo_and_seeded() -> None:
    a = build_source("builtin-photos", {}, 0)
    train, test = a.photos()
    tr, te = {p.name for p in train}, {p.name for p in test}
    assert tr and te and not tr & te
    assert tr | te == set(BUILTIN_PHOTOS)
    assert len(te) == 4
    assert sum(not BUILTIN_PHOTOS[n][1] for n in te) == 1  # one greyscale photo among 4 test photos
    again = build_source("builtin-photos", {}, 0)
    assert again.test_names == a.test_names and again.train_names == a.train_names
    assert build_source("builtin-photos", {}, 1).test_names != a.test_names


def test_builtin_explicit_test_photos() -> None:
    src = build_source("builtin-photos", {"photos": ["astronaut", "chelsea", "coffee"], "test_photos": ["coffee"]}, 0)
    assert src.train_names == ["astronaut", "chelsea"] and src.test_names == ["coffee"]


def test_make_crops_shapes_and_determinism() -> None:
    src = build_source(
        "builtin-photos", {"photos": ["astronaut", "chelsea", "coffee", "rocket"], "test_photos": ["rocket"]}, 0
    )
    c = make_crops(src, 16, 5, 3, seed=0)
    assert c.train.shape == (5, 16, 16, 3) and c.test.shape == (3, 16, 16, 3)
    assert c.train.dtype == np.uint8 and c.test.dtype == np.uint8
    assert c.train_photos == ["astronaut", "chelsea", "coffee"] and c.test_photos == ["rocket"]
    assert c.train_ids.tolist() == [0, 1, 2, 0, 1] and c.test_ids.tolist() == [0, 0, 0]
    assert len({im.tobytes() for im in c.train}) == 5  # distinct crops
    assert c.train.std() > 5
    d = make_crops(src, 16, 5, 3, seed=0)
    assert np.array_equal(c.train, d.train) and np.array_equal(c.test, d.test)
    assert not np.array_equal(make_crops(src, 16, 5, 3, seed=1).train, c.train)


def test_validation_photos_are_neither_train_nor_test() -> None:
    src = build_source("builtin-photos", {}, 0)
    c = make_crops(src, 16, 14, 4, seed=0, n_val=6)
    assert c.val is not None and c.val.shape == (6, 16, 16, 3)
    train, test, val = set(c.train_photos), set(c.test_photos), set(c.val_photos)
    assert val and not val & train and not val & test and not train & test
    assert len(train) + len(test) + len(val) == len(BUILTIN_PHOTOS)
    without = make_crops(src, 16, 14, 4, seed=0)  # no validation split: those photographs train
    assert without.val is None and set(without.train_photos) == train | val
    one = build_source("builtin-photos", {"photos": ["astronaut", "rocket"], "test_photos": ["rocket"]}, 0)
    with pytest.raises(ConfigError, match="validation split needs at least 2 training photographs"):
        make_crops(one, 16, 2, 2, seed=0, n_val=2)


def test_unknown_photo_names_field() -> None:
    with pytest.raises(ConfigError) as exc:
        build_source("builtin-photos", {"photos": ["astronaut", "no-such-photo"]}, 0)
    assert exc.value.field == "source.photos" and exc.value.value == "no-such-photo"
    assert "source.photos" in str(exc.value)


def test_unknown_test_photo_names_its_field() -> None:
    with pytest.raises(ConfigError) as exc:
        build_source("builtin-photos", {"test_photos": ["no-such-photo"]}, 0)
    assert exc.value.field == "source.test_photos"


# ----------------------------------------------------------------------------- paired dataset cache


@pytest.fixture(scope="module")
def sepia() -> Concept:
    return Catalog().concept("sepia")


def test_build_dataset_writes_cache_and_pairs_match_teacher(sepia: Concept, tmp_path: Path) -> None:
    ds = build_dataset(sepia, SETTINGS, tmp_path)
    path = tmp_path / "data" / f"{ds.key}.npz"
    assert path.is_file()
    assert ds.key == dataset_key(sepia, SETTINGS)
    assert ds.src_train.shape == ds.tgt_train.shape == (6, 16, 16, 3)
    assert ds.src_test.shape == ds.tgt_test.shape == (4, 16, 16, 3)
    assert all(getattr(ds, k).dtype == np.uint8 for k in ("src_train", "tgt_train", "src_test", "tgt_test"))
    assert ds.resolution == 16 and ds.concept == "sepia" and ds.prompt == sepia.prompt
    # the sources are the concept's crops, the targets the teacher's edit of them
    source = build_source(sepia.source.kind, sepia.source.params, sepia.split_seed)
    crops = make_crops(source, 16, 6, 4, sepia.split_seed)
    assert np.array_equal(ds.src_train, crops.train) and np.array_equal(ds.src_test, crops.test)
    teacher = build_teacher(sepia.teacher.kind, sepia.teacher.params)
    assert np.array_equal(ds.tgt_train, teacher.edit(crops.train, sepia.prompt, seed=sepia.split_seed * 2 + 1))
    assert not np.array_equal(ds.tgt_train, ds.src_train)
    # sepia: red >= blue on average
    assert ds.tgt_train[..., 0].mean() > ds.tgt_train[..., 2].mean()


def test_build_dataset_second_call_is_cached(sepia: Concept, tmp_path: Path, monkeypatch) -> None:
    first = build_dataset(sepia, SETTINGS, tmp_path)

    def boom(*a, **k):
        raise AssertionError("teacher called on a cache hit")

    monkeypatch.setattr(ProceduralTeacher, "edit", boom)
    second = build_dataset(sepia, SETTINGS, tmp_path)
    for k in ("src_train", "tgt_train", "src_test", "tgt_test"):
        assert np.array_equal(getattr(first, k), getattr(second, k)), k
    assert second.key == first.key
    # a different resolution is a different dataset: computed, so the teacher is called
    with pytest.raises(AssertionError, match="teacher called"):
        build_dataset(sepia, DataSettings(24, 6, 4), tmp_path)


def test_build_dataset_truncated_cache_is_recomputed(sepia: Concept, tmp_path: Path) -> None:
    first = build_dataset(sepia, SETTINGS, tmp_path)
    path = tmp_path / "data" / f"{first.key}.npz"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    again = build_dataset(sepia, SETTINGS, tmp_path)
    for k in ("src_train", "tgt_train", "src_test", "tgt_test"):
        assert np.array_equal(getattr(first, k), getattr(again, k)), k
    assert path.stat().st_size == len(raw)  # rewritten whole
    with np.load(path) as z:
        assert np.array_equal(z["tgt_test"], first.tgt_test)


def test_dataset_key_dependencies(sepia: Concept) -> None:
    key = dataset_key(sepia, SETTINGS)
    other_ops = sepia.model_copy(update={"teacher": ComponentSpec(kind="procedural", ops=[{"op": "sepia"}])})
    other_factor = sepia.model_copy(
        update={"teacher": ComponentSpec(kind="procedural", ops=[{"op": "sepia"}, {"op": "contrast", "factor": 0.8}])}
    )
    assert dataset_key(other_ops, SETTINGS) != key
    assert dataset_key(other_factor, SETTINGS) != key
    assert dataset_key(sepia, DataSettings(32, 6, 4)) != key
    assert dataset_key(sepia, DataSettings(16, 7, 4)) != key
    assert dataset_key(sepia.model_copy(update={"split_seed": 1}), SETTINGS) != key
    # the procedural teacher ignores the prompt
    assert dataset_key(sepia.model_copy(update={"prompt": "a completely different prompt"}), SETTINGS) == key
    assert dataset_key(sepia, SETTINGS) == key


# ----------------------------------------------------------------------------- folder sources and pairs


def test_folder_source_splits_by_file(tmp_path: Path) -> None:
    files = _write_pngs(tmp_path / "imgs", 5, size=24)
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    src = build_source("folder", {"path": str(tmp_path / "imgs")}, 0)
    assert set(src.train_files) | set(src.test_files) == set(files)
    assert not set(src.train_files) & set(src.test_files)
    assert len(src.test_files) == 1  # round(5 * 0.2)
    crops = make_crops(src, 16, 4, 2, seed=0)
    assert crops.train.shape == (4, 16, 16, 3) and crops.test.shape == (2, 16, 16, 3)
    assert crops.test_photos == [src.test_files[0].name]
    assert build_source("folder", {"path": str(tmp_path / "imgs")}, 0).test_files == src.test_files


def test_folder_source_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        build_source("folder", {"path": str(tmp_path / "missing")}, 0)
    assert exc.value.field == "source.path"
    _write_pngs(tmp_path / "one", 1)
    with pytest.raises(ConfigError) as exc:
        build_source("folder", {"path": str(tmp_path / "one")}, 0)
    assert exc.value.field == "source.path"


def _pairs_root(tmp_path: Path, n: int = 5) -> Path:
    root = tmp_path / "pairs"
    for p in _write_pngs(root / "A", n, size=16):
        (root / "B").mkdir(parents=True, exist_ok=True)
        Image.fromarray(255 - np.asarray(Image.open(p))).save(root / "B" / p.name)
    return root


def test_folder_pairs_teacher(tmp_path: Path) -> None:
    root = _pairs_root(tmp_path)
    teacher = build_teacher("folder-pairs", {"path": str(root)})
    assert teacher.provides_pairs
    src_tr, tgt_tr, src_te, tgt_te = teacher.pairs(16, 0)
    assert src_tr.shape == (4, 16, 16, 3) and src_te.shape == (1, 16, 16, 3)
    assert np.array_equal(tgt_tr, 255 - src_tr) and np.array_equal(tgt_te, 255 - src_te)
    inputs = {np.asarray(Image.open(p)).tobytes() for p in (root / "A").iterdir()}
    assert {im.tobytes() for im in np.concatenate([src_tr, src_te])} == inputs  # each input once

    concept = Concept(
        name="pairs", prompt="invert the colours", teacher=ComponentSpec(kind="folder-pairs", path=str(root))
    )
    ds = build_dataset(concept, SETTINGS, tmp_path / "cache")
    assert (tmp_path / "cache" / "data" / f"{ds.key}.npz").is_file()
    assert np.array_equal(ds.src_train, src_tr) and np.array_equal(ds.tgt_test, tgt_te)


def test_folder_pairs_16_bit_images_are_rescaled_not_clipped(tmp_path: Path) -> None:
    """A 16-bit grey pair (the mid-grey 32768 and 8192) comes out as 128 and 32 on every channel — as `folder`
    sources read them — where decoding through an 8-bit RGB conversion would clip both to 255."""
    root = tmp_path / "pairs16"
    for d, value in (("A", 32768), ("B", 8192)):
        (root / d).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((16, 16), value, dtype=np.uint16)).save(root / d / f"p{i}.png")
    assert Image.open(root / "A" / "p0.png").mode.startswith("I")  # really 16-bit on disk
    src_tr, tgt_tr, src_te, tgt_te = build_teacher("folder-pairs", {"path": str(root)}).pairs(16, 0)
    assert set(np.unique(np.concatenate([src_tr, src_te]))) == {128}
    assert set(np.unique(np.concatenate([tgt_tr, tgt_te]))) == {32}


def test_folder_pairs_missing_target(tmp_path: Path) -> None:
    root = _pairs_root(tmp_path)
    (root / "B" / "img02.png").unlink()
    with pytest.raises(ConfigError) as exc:
        build_teacher("folder-pairs", {"path": str(root)})
    assert exc.value.field == "teacher.targets" and exc.value.value == "img02.png"
    with pytest.raises(ConfigError) as exc:
        build_teacher("folder-pairs", {"path": str(root), "targets": "C"})
    assert exc.value.field == "teacher.targets"


# ----------------------------------------------------------------------------- synthetic source


def test_synthetic_scenes_are_distinct() -> None:
    src = build_source("synthetic", {"n_scenes": 6, "n_test_scenes": 2, "size": 32}, 0)
    train, test = src.photos()
    assert len(train) == 4 and len(test) == 2
    assert not {p.name for p in train} & {p.name for p in test}
    scenes = [p.load() for p in train + test]
    assert all(s.shape == (32, 32, 3) and s.dtype == np.uint8 for s in scenes)
    for i in range(len(scenes)):
        for j in range(i + 1, len(scenes)):
            assert np.abs(scenes[i].astype(int) - scenes[j].astype(int)).mean() > 5, (i, j)
    assert np.array_equal(train[0].load(), scenes[0])  # deterministic
    with pytest.raises(ConfigError) as exc:
        build_source("synthetic", {"n_scenes": 3, "n_test_scenes": 3}, 0)
    assert exc.value.field == "source.n_test_scenes"


# ----------------------------------------------------------------------------- selection


def _clustered(n_clusters: int = 5, per: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images in well-separated colour clusters (flat colour + small noise); returns images, labels."""
    rng = np.random.default_rng(seed)
    colours = [(230, 30, 30), (30, 230, 30), (30, 30, 230), (230, 230, 30), (128, 128, 128)][:n_clusters]
    images, labels = [], []
    for k, c in enumerate(colours):
        for _ in range(per):
            im = np.clip(np.array(c)[None, None] + rng.normal(0, 6, (16, 16, 3)), 0, 255).astype(np.uint8)
            images.append(im)
            labels.append(k)
    order = rng.permutation(len(images))
    return np.stack(images)[order], np.array(labels)[order]


def test_kmeans_selection() -> None:
    images, labels = _clustered()
    idx, info = select(DataSpec(selector="kmeans", count=5), images, 0)
    assert len(idx) == 5 and len(set(idx.tolist())) == 5
    assert idx.tolist() == sorted(idx.tolist())
    assert sorted(labels[idx].tolist()) == [0, 1, 2, 3, 4]  # one per cluster
    assert info["selector"] == "kmeans" and info["kept"] == 5 and info["of"] == 20 and info["features"] == "thumb"
    again, _ = select(DataSpec(selector="kmeans", count=5), images, 0)
    assert np.array_equal(idx, again)
    rnd, rinfo = select(DataSpec(selector="random", count=5), images, 0)
    assert len(set(rnd.tolist())) == 5 and rinfo["selector"] == "random"
    assert set(rnd.tolist()) != set(idx.tolist())


def test_fraction_all_and_unknown_selector() -> None:
    images, _ = _clustered()
    for sel in ("random", "kmeans"):
        idx, info = select(DataSpec(selector=sel, fraction=0.5), images, 1)
        assert len(idx) == 10 and len(set(idx.tolist())) == 10 and info["kept"] == 10
    idx, info = select(DataSpec(selector="all"), images, 0)
    assert idx.tolist() == list(range(20)) and info["kept"] == 20
    idx, info = select(DataSpec(selector="kmeans", count=50), images, 0)  # more than there are
    assert idx.tolist() == list(range(20))
    with pytest.raises(ConfigError) as exc:
        select(DataSpec(selector="no-such-selector"), images, 0)
    assert exc.value.field == "data.selector"
