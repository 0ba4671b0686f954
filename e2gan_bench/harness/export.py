"""``run --save-outputs DIR``: the student outputs and teacher targets on the test split as plain PNG folders, so
other tools (clean-fid's CLI, torch-fidelity, pyiqa) can score them::

    DIR/manifest.json                         which suite, run keys, commits and backends made each folder
    DIR/<concept>/seed<k>/source/0000.png …   the test inputs of seed k (each seed has its own split)
    DIR/<concept>/seed<k>/teacher/0000.png …  the teacher targets (what every metric compares against)
    DIR/<concept>/seed<k>/<method>/0000.png … the student's outputs, same file names

Every output is generated again from the stored artifact (the generator, or the LoRA adapter on its base model)
with the code evaluation uses — runs found in the store are exported like the ones just computed, and nothing is
retrained. The folder is built under a temporary name and renamed into place when complete, replacing an earlier
export: a crash leaves the previous export whole (or none), never a half-written one."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from e2gan_bench.cache import atomic_dir, atomic_write_bytes, remove_temporaries, write_json
from e2gan_bench.data.dataset import PairedDataset, build_dataset
from e2gan_bench.errors import CheckpointError, UserError
from e2gan_bench.harness.spec import RunSpec
from e2gan_bench.harness.store import ResultsStore
from e2gan_bench.methods.artifacts import load_generator
from e2gan_bench.metrics.provenance import environment
from e2gan_bench.models.tensors import generate
from e2gan_bench.models.text import CachedPromptEncoder, default_encoder
from e2gan_bench.training.base import BaseCheckpoint, load_base

MANIFEST = "manifest.json"
FORMAT = "e2gan-bench outputs v1"  # marks a folder this module wrote (and may therefore replace)
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def _part(name: str) -> str:
    """A path component from a concept or method name (names are already file-safe; this is a guard)."""
    return _SAFE.sub("_", name).lstrip(".") or "_"


def check_dest(dest: Path) -> None:
    """Refuse a destination that is a file, or a non-empty folder that is not an earlier export (it would be
    replaced whole) — checked before anything runs."""
    if dest.exists() and not dest.is_dir():
        raise UserError("not a folder", field="--save-outputs", value=str(dest))
    if dest.is_dir() and any(dest.iterdir()):
        try:
            fmt = json.loads((dest / MANIFEST).read_text()).get("format")
        except (OSError, ValueError, AttributeError):
            fmt = None
        if fmt != FORMAT:
            raise UserError("folder is not empty and holds no earlier e2gan-bench export (it would be replaced); "
                            "choose an empty or new folder", field="--save-outputs", value=str(dest))


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def _write_images(folder: Path, images: np.ndarray, names: list[str]) -> None:
    for name, img in zip(names, images, strict=True):
        atomic_write_bytes(folder / name, _png(img))


def export_outputs(specs: list[RunSpec], store: ResultsStore, cache_dir: Path, dest: Path, *, suite: str) -> dict[str, Any]:
    """Write the export of ``specs`` (runs with an ``ok`` record in ``store``) to ``dest``; return its manifest.
    Runs without a record, or whose record says they failed, are listed under ``skipped``."""
    check_dest(dest)
    remove_temporaries(dest.parent, legacy=False)  # what an interrupted export left (its process is gone)
    encoder = CachedPromptEncoder(default_encoder(), cache_dir)
    bases: dict[str, BaseCheckpoint | None] = {}
    # one dataset per (concept, data key), built once: every method of a concept and seed shares it (keyed by the
    # concept too — a data key does not cover a concept's name, nor its prompt where the teacher ignores it)
    datasets: dict[tuple[str, str], PairedDataset] = {}
    concepts: dict[str, dict[str, Any]] = {}
    runs: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    with atomic_dir(dest) as tmp:
        for s in specs:
            rec = store.get(s.key)
            ident = {"concept": s.concept.name, "method": s.method.name, "seed": s.seed, "run_key": s.key}
            if rec is None or rec.status != "ok":
                skipped.append({**ident, "reason": "not in the store" if rec is None else f"failed: {rec.error}"})
                continue
            ds = datasets.get((s.concept.name, s.data_key))
            if ds is None:
                ds = datasets[(s.concept.name, s.data_key)] = build_dataset(s.concept, s.data, cache_dir,
                                                                             file=s.concept_file)
            cdir = f"{_part(s.concept.name)}/seed{s.seed}"
            names = [f"{i:04d}.png" for i in range(len(ds.src_test))]
            seen = concepts.get(cdir)
            if seen is None:
                _write_images(tmp / cdir / "source", ds.src_test, names)
                _write_images(tmp / cdir / "teacher", ds.tgt_test, names)
                concepts[cdir] = {
                    "concept": s.concept.name, "seed": s.seed, "prompt": ds.prompt, "data_key": ds.key,
                    "n_test": len(names), "source": f"{cdir}/source", "teacher": f"{cdir}/teacher",
                    "data": ds.provenance}
            elif seen["data_key"] != s.data_key:  # one teacher folder per concept and seed: one test split
                raise UserError("runs of one concept and seed use different test data; export one suite at a time",
                                field="--save-outputs", value=cdir)
            if s.base_key is not None and s.base_key not in bases:
                bases[s.base_key] = load_base(cache_dir, s.base_key)
            base = bases.get(s.base_key) if s.base_key is not None else None
            if s.base_key is not None and base is None:
                raise CheckpointError("the base model this run was trained from is not stored; `e2gan-bench run` "
                                      "its suite to rebuild it", file=str(cache_dir / "base" / s.base_key))
            summary = store.training(s.train_key)
            G = load_generator(s.method, s.model_kwargs, s.seed, store.artifact_dir(s.train_key), summary,
                               base.state if base is not None else None).to(s.device)  # where it was evaluated
            emb = encoder.encode(s.concept.prompt)
            out = generate(G, ds.src_test, emb.tokens[None], emb.mask[None])
            folder = f"{cdir}/{_part(s.method.name)}"
            _write_images(tmp / folder, out, names)
            runs.append({**ident, "folder": folder, "train_key": s.train_key, "eval_key": rec.eval_key,
                         "record_created": rec.created, "commit": rec.provenance.get("git"), "device": s.device,
                         "backends": rec.backends, "n_images": len(out)})
        manifest = {
            "format": FORMAT, "suite": suite,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "exported_by": environment(),
            "how": "student outputs regenerated from each run's stored artifact (methods/artifacts.load_generator, "
                   "models/tensors.generate) on the test split; teacher = the dataset's test targets; file names "
                   "are the same in every folder of a concept and seed (each seed has its own test split)",
            "concepts": concepts, "runs": runs, "skipped": skipped,
        }
        write_json(tmp / MANIFEST, manifest)
    return manifest
