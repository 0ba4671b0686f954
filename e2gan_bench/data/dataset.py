"""Paired datasets: (source crop, teacher output) for train, validation and test, cached by content key.

Train, validation and test crops come from three disjoint sets of photographs: test measures the final
result, validation the training curves (time-to-quality), so choosing checkpoints never sees the test set.

Two caches (:class:`e2gan_bench.cache.DiskCache`): ``cache_dir/data/<data key>.npz`` (the pairs) and
``cache_dir/data/crops-<source key>.npz`` (source crops, shared by every concept cut from the same photographs).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from e2gan_bench.cache import DiskCache, npz_bytes, read_npz
from e2gan_bench.config import Concept, DataOverrides
from e2gan_bench.data.sources import build_source, make_crops
from e2gan_bench.data.teachers import Teacher, build_teacher
from e2gan_bench.errors import ConfigError
from e2gan_bench.keys import canonical_json, code_version, content_key

ARRAYS = ("src_train", "tgt_train", "src_test", "tgt_test", "src_val", "tgt_val")


@dataclass
class PairedDataset:
    concept: str
    prompt: str
    key: str
    src_train: np.ndarray  # uint8 N×H×W×3
    tgt_train: np.ndarray
    src_test: np.ndarray
    tgt_test: np.ndarray
    src_val: np.ndarray  # may hold 0 images (no validation split)
    tgt_val: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def resolution(self) -> int:
        return int(self.src_train.shape[1])


@dataclass(frozen=True)
class DataSettings:
    resolution: int
    n_train: int
    n_test: int
    n_val: int = 0

    @staticmethod
    def for_concept(concept: Concept, overrides: DataOverrides | None = None) -> DataSettings:
        o = overrides
        return DataSettings(
            resolution=(o and o.resolution) or concept.resolution,
            n_train=(o and o.n_train) or concept.n_train,
            n_test=(o and o.n_test) or concept.n_test,
            n_val=o.n_val if o is not None and o.n_val is not None else concept.n_val,
        )


def dataset_key(concept: Concept, settings: DataSettings, *, file: str | None = None) -> str:
    teacher = build_teacher(concept.teacher.kind, concept.teacher.params, file=file)
    return _keys(concept, settings, teacher, file)[1]


def _keys(concept: Concept, settings: DataSettings, teacher: Teacher, file: str | None) -> tuple[str, str, Any]:
    source = None
    if not teacher.provides_pairs:
        source = build_source(concept.source.kind, concept.source.params, concept.split_seed, file=file)
        src_desc = {"kind": concept.source.kind, **source.describe()}
    else:
        src_desc = {"kind": "teacher-pairs"}
    source_key = content_key("source", src_desc, concept.split_seed, settings.__dict__, code_version("data/sources"))
    data_key = content_key(
        "pairs", source_key, concept.teacher.kind, teacher.describe(),
        concept.prompt if teacher.uses_prompt else None, concept.split_seed,
        code_version("data/teachers", "data/ops"),
    )
    return source_key, data_key, source


def _read_pairs(settings: DataSettings, from_teacher: bool) -> Callable[[Path], dict[str, Any]]:
    """A reader of a pairs entry that also checks the shapes its key promises (an entry that does not match is
    corrupt: the cache's one policy deletes, logs and recomputes it)."""
    read = read_npz(ARRAYS, dtype=np.uint8, optional=("provenance",))  # what made the pairs (older entries: none)
    r = settings.resolution

    def checked(path: Path) -> dict[str, Any]:
        a: dict[str, Any] = read(path)
        made = a.pop("provenance", None)
        ok = all(x.ndim == 4 and x.shape[1:] == (r, r, 3) for x in a.values())
        ok = ok and all(len(a[f"src_{s}"]) == len(a[f"tgt_{s}"]) for s in ("train", "test", "val"))
        if not from_teacher:  # cut from a source: exactly the sizes asked (a teacher's pairs may hold fewer)
            ok = ok and [len(a[f"src_{s}"]) for s in ("train", "test", "val")] == [
                settings.n_train, settings.n_test, settings.n_val]
        if not ok:
            raise ValueError(f"arrays of shapes {[x.shape for x in a.values()]} do not match this key's settings")
        if made is not None:
            a["provenance"] = json.loads(str(made))
        return a

    return checked


def build_dataset(concept: Concept, settings: DataSettings, cache_dir: Path, *, file: str | None = None) -> PairedDataset:
    """Load from ``cache_dir/data/<key>.npz`` or compute (source crops are shared across concepts)."""
    teacher = build_teacher(concept.teacher.kind, concept.teacher.params, file=file)
    source_key, key, source = _keys(concept, settings, teacher, file)
    cache = DiskCache(cache_dir, "data", ".npz")
    prov = {"teacher": concept.teacher.kind, "source": concept.source.kind, "data_key": key,
            "resolution": settings.resolution, "n_train": settings.n_train, "n_test": settings.n_test,
            "n_val": settings.n_val}
    arrays = cache.get(key, _read_pairs(settings, teacher.provides_pairs))
    if arrays is not None:  # the teacher is not run: what made the pairs is read back with them
        made = arrays.pop("provenance", None)
        return PairedDataset(concept.name, concept.prompt, key, **arrays,
                             provenance={**prov, "pairs": "cache", **({"made_by": made} if made else {})})
    made = {"teacher_params": teacher.provenance(),
            "made_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    r = settings.resolution
    if teacher.provides_pairs:  # the teacher's own pairs: validation is the last n_val training pairs
        src_tr, tgt_tr, src_te, tgt_te = teacher.pairs(settings.resolution, concept.split_seed)
        n_val = min(settings.n_val, max(0, len(src_tr) - 1))
        src_va, tgt_va = src_tr[len(src_tr) - n_val:], tgt_tr[len(tgt_tr) - n_val:]
        src_tr, tgt_tr = src_tr[: len(src_tr) - n_val][: settings.n_train], tgt_tr[: len(tgt_tr) - n_val][: settings.n_train]
        src_te, tgt_te = src_te[: settings.n_test], tgt_te[: settings.n_test]
    else:
        crops = cache.get(f"crops-{source_key}", read_npz(("train", "test", "val"), {
            "train": (settings.n_train, r, r, 3), "test": (settings.n_test, r, r, 3),
            "val": (settings.n_val, r, r, 3)}, np.uint8))
        if crops is None:
            try:
                cut = make_crops(source, settings.resolution, settings.n_train, settings.n_test, concept.split_seed,
                                 n_val=settings.n_val)
            except ConfigError as exc:  # an image that cannot be decoded: name the concept file too
                raise exc.in_file(file) from None
            crops = {"train": cut.train, "test": cut.test,
                     "val": cut.val if cut.val is not None else np.zeros((0, r, r, 3), np.uint8)}
            cache.put(f"crops-{source_key}", npz_bytes(**crops))
        src_tr, src_te, src_va = crops["train"], crops["test"], crops["val"]
        tgt_tr = teacher.edit(src_tr, concept.prompt, seed=concept.split_seed * 2 + 1)
        tgt_te = teacher.edit(src_te, concept.prompt, seed=concept.split_seed * 2 + 2)
        tgt_va = teacher.edit(src_va, concept.prompt, seed=concept.split_seed * 2 + 3) if len(src_va) else src_va.copy()
    ds = PairedDataset(concept.name, concept.prompt, key, src_tr, tgt_tr, src_te, tgt_te, src_va, tgt_va,
                       provenance={**prov, "pairs": "computed", "made_by": made})
    cache.put(key, npz_bytes(**{k: getattr(ds, k) for k in ARRAYS}, provenance=np.array(canonical_json(made))))
    return ds
