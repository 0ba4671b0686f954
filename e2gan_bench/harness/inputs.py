"""A suite's machine-specific inputs — the data root, the diffusion teacher's weights, a GPU — resolved into its
concepts, and checked before anything runs (``e2gan-bench doctor --suite``, and ``run``, which stops with the same
list).

Where each comes from, first found wins:

* teacher weights: ``--teacher-weights DIR``, the suite's ``paths.teacher_weights``, the concept's own ``model``,
  the weights registry (``e2gan-bench weights add instruct-pix2pix DIR``), the local Hugging Face cache
  (``timbrooks/instruct-pix2pix``);
* data: a ``folder`` source's relative ``path`` is taken inside ``--data-root DIR`` or the suite's
  ``paths.data_root`` (otherwise inside the working folder);
* device: ``--device`` or the suite's ``device:``; ``cuda`` needs a GPU torch can see.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from e2gan_bench.config import ComponentSpec, Concept, Suite, SuitePaths
from e2gan_bench.data.sources import IMAGE_SUFFIXES
from e2gan_bench.data.teachers import DiffusersTeacher, find_ip2p_folder
from e2gan_bench.devices import cuda_unavailable_reason
from e2gan_bench.errors import UserError
from e2gan_bench.features import weights as W
from e2gan_bench.resources import Catalog

#: the weights-registry name of the InstructPix2Pix teacher
TEACHER_WEIGHTS = "instruct-pix2pix"
#: the model a ``diffusers`` teacher that names none loads (its ``Params`` default)
_DEFAULT_TEACHER_MODEL = DiffusersTeacher.Params.model_fields["model"].default


def suite_paths(suite: Suite, data_root: Path | str | None = None, teacher_weights: Path | str | None = None) -> SuitePaths:
    """The suite's ``paths:`` with the command-line options in place of what they set."""
    return SuitePaths(data_root=str(data_root) if data_root else suite.paths.data_root,
                      teacher_weights=str(teacher_weights) if teacher_weights else suite.paths.teacher_weights)


def _abs(p: str) -> str:
    q = Path(p).expanduser()
    return str(q.resolve()) if q.exists() else p


def binder(paths: SuitePaths) -> Callable[[Concept, str], Concept]:
    """``bind(concept, file)``: the concept with the suite's data root and teacher weights filled in (what a run
    records in its configuration, so it can be evaluated again without the options)."""
    @functools.cache
    def registry_folder() -> str | None:
        ref = W.resolve(TEACHER_WEIGHTS)
        return None if ref is None else str(ref.path)

    def bind(c: Concept, file: str) -> Concept:
        teacher, source = c.teacher, c.source
        if teacher.kind == "diffusers":
            model = paths.teacher_weights or teacher.params.get("model") or registry_folder()
            if model:
                teacher = ComponentSpec(kind=teacher.kind, **{**teacher.params, "model": _abs(str(model))})
        if source.kind == "folder" and paths.data_root and isinstance(source.params.get("path"), str):
            rel = Path(source.params["path"]).expanduser()
            if not rel.is_absolute():
                source = ComponentSpec(kind=source.kind, **{**source.params,
                                                            "path": str(Path(paths.data_root).expanduser() / rel)})
        if teacher is c.teacher and source is c.source:
            return c
        return c.model_copy(update={"teacher": teacher, "source": source})

    return bind


@dataclass(frozen=True)
class Need:
    """One input a suite needs: whether it is here, what was found (or why not), and how to provide it."""

    what: str  # "teacher weights" | "package" | "data" | "GPU"
    name: str
    ok: bool
    detail: str
    fix: str
    used_by: tuple[str, ...] = ()
    where: str = ""  # the field and the file that ask for it (the first concept that does)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _named_concepts(suite: Suite, catalog: Catalog, suite_file: str) -> list[Concept]:
    """The concepts the suite names (evaluated, base list, base pool), loaded and bound (unknown names: ConfigError)."""
    fields = [("concepts", suite.concepts), ("base.concepts", suite.base.concepts), ("base.pool", suite.base.pool)]
    seen: dict[str, Concept] = {}
    for fld, names in fields:
        for i, n in enumerate(names):
            if n not in seen:
                seen[n] = catalog.concept(n, file=suite_file, field=f"{fld}[{i}]")
    return list(seen.values())


def _count_images(folder: Path, limit: int) -> int:
    n = 0
    for f in folder.rglob("*"):
        if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file():
            n += 1
            if n >= limit:
                break
    return n


def check_inputs(suite: Suite, catalog: Catalog, suite_file: str, paths: SuitePaths,
                 device: str | None = None) -> list[Need]:
    """Every input the suite needs, found or missing (``catalog`` already bound with :func:`binder`)."""
    concepts = _named_concepts(suite, catalog, suite_file)
    needs: list[Need] = []
    teachers: dict[str, list[str]] = {}
    folders: dict[tuple[str, str], list[str]] = {}
    for c in concepts:
        if c.teacher.kind == "diffusers":
            teachers.setdefault(str(c.teacher.params.get("model", _DEFAULT_TEACHER_MODEL)), []).append(c.name)
        if c.source.kind == "folder" and c.teacher.kind != "folder-pairs":
            folders.setdefault((str(c.source.params.get("path", "")), "source.path"), []).append(c.name)
        if c.teacher.kind == "folder-pairs":
            folders.setdefault((str(c.teacher.params.get("path", "")), "teacher.path"), []).append(c.name)
    if teachers:
        ok = importlib.util.find_spec("diffusers") is not None
        needs.append(Need("package", "diffusers", ok, "installed" if ok else "not installed",
                          "pip install 'e2gan-bench[diffusion]' (diffusers)", tuple(sorted({n for v in teachers.values()
                                                                                             for n in v}))))
    def where(field: str, users: list[str]) -> str:
        more = f" and {len(users) - 1} more concept(s)" if len(users) > 1 else ""
        return f"field '{field}' of {catalog.concept_file(users[0])}{more}"

    for model, users in teachers.items():
        folder, why = find_ip2p_folder(model)
        needs.append(Need(
            "teacher weights", model, folder is not None, f"InstructPix2Pix folder {folder}" if folder else why,
            "download timbrooks/instruct-pix2pix once (e.g. `huggingface-cli download timbrooks/instruct-pix2pix "
            f"--local-dir DIR`), then `e2gan-bench weights add {TEACHER_WEIGHTS} DIR`, or pass --teacher-weights DIR, "
            "or set paths.teacher_weights in the suite", tuple(users), where("teacher.model", users)))
    root = f" (data root {paths.data_root})" if paths.data_root else " (no data root: relative to the working folder)"
    for (path, field), users in folders.items():
        p = Path(path).expanduser()
        n = _count_images(p, 2) if p.is_dir() else 0
        detail = (f"folder not found: {p}{root}" if not p.is_dir() else
                  f"{p}: fewer than 2 images (a folder needs at least 2 images)" if n < 2 else f"{p}: images found")
        needs.append(Need("data", path, n >= 2, detail,
                          "put the images in that folder (for the paper suites: DIR/ffhq and DIR/scenery, about 1,000 "
                          "images each, 256² or larger) and pass --data-root DIR, or set paths.data_root in the suite",
                          tuple(users), where(field, users)))
    dev = device or suite.device
    no_gpu = cuda_unavailable_reason("torch {torch} sees no CUDA GPU (built for CUDA {cuda})")  # imports torch
    gpu = no_gpu is None
    if dev == "cuda":
        needs.append(Need("GPU", "cuda", gpu, no_gpu or "torch sees a CUDA GPU",
                          "run on a machine with a CUDA GPU, or pass --device cpu (the same runs, far slower)"))
    else:
        needs.append(Need("GPU", dev, True, f"not required (device {dev}; GPU {'present' if gpu else 'absent'})", ""))
    return needs


def missing_line(needs: list[Need], suite_name: str) -> str | None:
    """The missing inputs as one line (None when nothing is missing)."""
    missing = [n for n in needs if not n.ok]
    if not missing:
        return None
    parts = [f"{i}) {n.what} '{n.name}'{f' ({n.where})' if n.where else ''}: {n.detail} — {n.fix}"
             for i, n in enumerate(missing, 1)]
    return (f"cannot run suite '{suite_name}', {len(missing)} input(s) missing: " + "; ".join(parts)
            + f" (`e2gan-bench doctor --suite {suite_name}` lists them)")


def require_inputs(suite: Suite, catalog: Catalog, suite_file: str, paths: SuitePaths,
                   device: str | None = None) -> None:
    """Raise a one-line UserError (exit 2) listing every missing input, before anything is computed or written."""
    line = missing_line(check_inputs(suite, catalog, suite_file, paths, device), suite.name)
    if line:
        raise UserError(line, file=suite_file)


# ------------------------------------------------------------------------------------------ memory

#: Set to 1 to run a suite whose data the estimate says will not fit (the refusal names it).
ALLOW_LARGE_ENV = "E2GAN_BENCH_ALLOW_LARGE"


def _data_bytes(n_train: int, n_test: int, n_val: int, resolution: int) -> int:
    """One concept's pairs held at once: source and target crops as uint8 (every split), and the training pairs
    again as float32 tensors (the trainer's copy)."""
    px = resolution * resolution * 3
    return (n_train + n_test + n_val) * px * 2 + n_train * px * 4 * 2


def memory_estimate(suite: Suite, catalog: Catalog, suite_file: str) -> tuple[int, str]:
    """The most memory the suite's data needs at once, and what needs it: the largest concept, or the base model's
    concepts (trained on together). Models and activations come on top; at the sizes the data can reach they are
    small beside it."""
    from e2gan_bench.data.dataset import DataSettings

    def one(name: str, field: str) -> tuple[int, str]:
        st = DataSettings.for_concept(catalog.concept(name, file=suite_file, field=field), suite.data)
        return (_data_bytes(st.n_train, st.n_test, st.n_val, st.resolution),
                f"resolution {st.resolution}, n_train {st.n_train}, n_test {st.n_test}, n_val {st.n_val}")

    worst, what = 0, ""
    for j, name in enumerate(suite.concepts):
        b, how = one(name, f"concepts[{j}]")
        if b > worst:
            worst, what = b, f"concept {name}: {how}"
    uses_base = any(m.overrides.get("init", catalog.method(m.starts_from, file=suite_file, field=f"methods[{i}]").init)
                    == "base" for i, m in enumerate(suite.methods))
    if not uses_base:
        return worst, what
    if suite.base.selector == "list":
        total = sum(one(n, f"base.concepts[{i}]")[0] for i, n in enumerate(suite.base.concepts))
        n = len(suite.base.concepts)
    else:  # a selector picks ``count`` concepts: each counted at the size of the suite's largest
        n = suite.base.count
        total = n * worst
    if total > worst:
        worst, what = total, f"the base model's {n} concepts together"
    return worst, what


def check_memory(suite: Suite, catalog: Catalog, suite_file: str) -> None:
    """Refuse (one line, exit 2) a suite whose data alone would take more than half of this machine's memory —
    before anything is allocated; ``$E2GAN_BENCH_ALLOW_LARGE=1`` runs it anyway."""
    import os

    need, what = memory_estimate(suite, catalog, suite_file)
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: nothing to compare with
        return
    if need > total // 2 and os.environ.get(ALLOW_LARGE_ENV) != "1":
        raise UserError(f"the data alone would need about {need / 2**30:,.1f} GiB of memory ({what}), more than half "
                        f"of this machine's {total / 2**30:,.1f} GiB; lower data.resolution or data.n_train, or set "
                        f"{ALLOW_LARGE_ENV}=1 to run it anyway", file=suite_file, field="data")
