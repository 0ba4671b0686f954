"""Teachers turn source images into edited targets (the paired training data).

* ``procedural``: a deterministic composition of ops from :mod:`e2gan_bench.data.ops` — the
  offline default, with exact ground truth.
* ``folder-pairs``: paired data the user already has (``A/`` inputs and ``B/`` targets with the
  same file names); it provides its own inputs, so the concept's source is not used.
* ``diffusers``: InstructPix2Pix (the paper's setting) from a local model folder or the local
  Hugging Face cache — never downloaded inside a run.

A teacher is a plugin (:mod:`e2gan_bench.plugins`): a :class:`Teacher` subclass with a nested ``Params``
model, registered in :data:`TEACHERS` (entry-point group ``e2gan_bench.teacher``).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image
from pydantic import Field

from e2gan_bench import plugins
from e2gan_bench.data.ops import apply_ops, validate_ops
from e2gan_bench.data.sources import IMAGE_SUFFIXES, check_image, load_image
from e2gan_bench.errors import ConfigError
from e2gan_bench.keys import sha256_file
from e2gan_bench.plugins import parse_params
from e2gan_bench.registry import Registry


class Teacher:
    """Base of every teacher. Hooks: :meth:`edit` (or :meth:`pairs` with ``provides_pairs``),
    :meth:`describe`."""

    Params: ClassVar[type[plugins.Params]] = plugins.Params
    #: the teacher brings its own (input, target) pairs (:meth:`pairs`); the concept's source is not used
    provides_pairs: ClassVar[bool] = False
    #: the output depends on the concept's prompt, which then enters the data key
    uses_prompt: ClassVar[bool] = False

    def __init__(self, params: plugins.Params, *, file: str | None = None) -> None:
        self.p = params
        self.file = file

    def edit(self, images: np.ndarray, prompt: str, seed: int) -> np.ndarray:
        """uint8 N×H×W×3 -> uint8 N×H×W×3."""
        raise NotImplementedError

    def pairs(self, resolution: int, split_seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(train inputs, train targets, test inputs, test targets), uint8, for ``provides_pairs`` teachers."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Everything that determines the output (goes into the data key)."""
        return self.p.model_dump()

    def provenance(self) -> dict[str, Any]:
        return {"teacher": type(self).__name__, **self.describe()}


TEACHERS: Registry[type[Teacher]] = Registry("teacher")


@TEACHERS.register("procedural")
class ProceduralTeacher(Teacher):
    class Params(plugins.Params):
        ops: list[dict[str, Any]] = Field(min_length=1)

    def __init__(self, params: plugins.Params, *, file: str | None = None) -> None:
        super().__init__(params, file=file)
        self.ops = validate_ops(list(params.ops), file=file, field="teacher.ops")

    def edit(self, images: np.ndarray, prompt: str, seed: int) -> np.ndarray:
        out = np.empty_like(images)
        for i, im in enumerate(images):
            y = apply_ops(im, self.ops, seed=seed * 1_000_003 + i)
            out[i] = np.clip(np.rint(y * 255.0), 0, 255).astype(np.uint8)
        return out

    def describe(self) -> dict[str, Any]:
        return {"ops": self.ops}


@TEACHERS.register("folder-pairs")
class FolderPairsTeacher(Teacher):
    class Params(plugins.Params):
        path: str
        inputs: str = "A"
        targets: str = "B"
        test_fraction: float = Field(0.2, gt=0, lt=1)

    provides_pairs = True

    def __init__(self, params: plugins.Params, *, file: str | None = None) -> None:
        super().__init__(params, file=file)
        root = Path(params.path).expanduser()
        a, b = root / params.inputs, root / params.targets
        for d, fld in ((a, "teacher.inputs"), (b, "teacher.targets")):
            if not d.is_dir():
                raise ConfigError("folder not found", file=file, field=fld, value=str(d))
        names = sorted(f.name for f in a.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        missing = [n for n in names if not (b / n).is_file()]
        if missing:
            raise ConfigError("input without a target of the same name", file=file, field="teacher.targets",
                              value=missing[0])
        if len(names) < 2:
            raise ConfigError("need at least 2 pairs", file=file, field="teacher.path", value=str(root))
        for n in names:  # every pair decodable, checked as `folder` sources are: one line naming the file, now
            check_image(a / n, field="teacher.inputs", file=file)
            check_image(b / n, field="teacher.targets", file=file)
        self.a, self.b, self.names, self.file = a, b, names, file

    def pairs(self, resolution: int, split_seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        order = np.random.default_rng(split_seed).permutation(len(self.names))
        n_test = max(1, int(round(len(self.names) * self.p.test_fraction)))

        def load(d: Path, idx: np.ndarray) -> np.ndarray:  # 16-bit and float images rescaled, never clipped
            fld = "teacher.inputs" if d == self.a else "teacher.targets"
            return np.stack([
                np.asarray(Image.fromarray(load_image(d / self.names[i], field=fld, file=self.file)).resize(
                    (resolution, resolution), Image.Resampling.LANCZOS)) for i in sorted(idx)])

        te, tr = order[:n_test], order[n_test:]
        return load(self.a, tr), load(self.b, tr), load(self.a, te), load(self.b, te)

    def describe(self) -> dict[str, Any]:
        d = self.p.model_dump()
        d["files"] = [(n, (self.a / n).stat().st_size, (self.b / n).stat().st_size) for n in self.names]
        return d


#: The pipeline class an InstructPix2Pix folder's ``model_index.json`` names.
IP2P_PIPELINE = "StableDiffusionInstructPix2PixPipeline"


@functools.lru_cache(maxsize=4096)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(Path(path))


def folder_digest(folder: Path) -> str:
    """SHA-256 over every file of a model folder (relative path and content; hidden entries skipped), each file's
    hash memoised in-process on (path, size, mtime): the teacher's weights enter the data key by content."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(folder).rglob("*") if p.is_file()
                    and not any(part.startswith(".") for part in p.relative_to(folder).parts)):
        st = f.stat()
        h.update(f"{f.relative_to(folder).as_posix()}\0{_file_sha256(str(f.resolve()), st.st_size, st.st_mtime_ns)}\n"
                 .encode())
    return h.hexdigest()


def find_ip2p_folder(model: str) -> tuple[Path | None, str]:
    """The local InstructPix2Pix folder ``model`` names — a folder, or a hub id already in the local Hugging Face
    cache (never downloaded) — or ``None`` and why not."""
    p = Path(model).expanduser()
    if p.is_dir():
        folder = p.resolve()
    elif p.is_absolute() or model.startswith((".", "~")) or model.count("/") != 1:
        return None, f"folder not found: {p}"
    else:
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(model, local_files_only=True))
        except Exception as exc:  # not cached (or huggingface_hub missing): the same answer, never a download
            return None, f"'{model}' is neither a folder nor in the local Hugging Face cache ({type(exc).__name__})"
    index = folder / "model_index.json"
    try:
        name = json.loads(index.read_text()).get("_class_name")
    except (OSError, ValueError, AttributeError):
        return None, f"not a diffusers pipeline folder (no readable model_index.json): {folder}"
    if name != IP2P_PIPELINE:
        return None, f"model_index.json names {name!r}, not {IP2P_PIPELINE}: {folder}"
    return folder, "ok"


@TEACHERS.register("diffusers")
class DiffusersTeacher(Teacher):
    """StableDiffusionInstructPix2PixPipeline from local weights (``model`` = folder or cached hub id).

    The data key holds the weights' content hash (not their path), the steps, guidance scales, batch, working
    resolution and dtype; :meth:`provenance` adds the folder."""

    uses_prompt = True

    class Params(plugins.Params):
        model: str = "timbrooks/instruct-pix2pix"
        steps: int = Field(20, ge=1, le=1000)
        guidance_scale: float = Field(7.5, ge=0, le=100)
        image_guidance_scale: float = Field(1.5, ge=0, le=100)
        batch: int = Field(4, ge=1, le=1024)
        work_resolution: int = Field(512, ge=64, le=4096)
        device: str = "auto"
        dtype: str = "auto"

    def __init__(self, params: plugins.Params, *, file: str | None = None) -> None:
        super().__init__(params, file=file)
        self._folder: Path | None = None
        self._pipe: Any = None

    def folder(self) -> Path:
        """The local weights folder (ConfigError naming the concept file when there is none)."""
        if self._folder is None:
            folder, why = find_ip2p_folder(self.p.model)
            if folder is None:
                raise ConfigError(f"InstructPix2Pix weights not found locally ({why}); register them with `e2gan-bench "
                                  "weights add instruct-pix2pix DIR`, pass --teacher-weights DIR, or point 'model' at a "
                                  "folder (`e2gan-bench doctor --suite SUITE` lists what is missing)",
                                  file=self.file, field="teacher.model", value=self.p.model)
            self._folder = folder
        return self._folder

    def describe(self) -> dict[str, Any]:
        d = self.p.model_dump(exclude={"model"})
        d["weights_sha256"] = folder_digest(self.folder())
        return d

    def provenance(self) -> dict[str, Any]:
        return {"teacher": type(self).__name__, "model": self.p.model, "folder": str(self.folder()), **self.describe()}

    # torch and diffusers are imported when a diffusion teacher runs: diffusers is an optional extra and the
    # procedural data path needs neither.
    def _pipeline(self):
        if self._pipe is not None:  # loaded once per teacher: train, test and validation edits share it
            return self._pipe
        try:
            import torch
            from diffusers import StableDiffusionInstructPix2PixPipeline
        except ImportError:
            raise ConfigError("the diffusers teacher needs the 'diffusers' package (pip install diffusers)",
                              file=self.file, field="teacher.kind", value="diffusers") from None
        device = self.p.device if self.p.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = {"auto": torch.float16 if device == "cuda" else torch.float32, "float16": torch.float16,
                 "bfloat16": torch.bfloat16, "float32": torch.float32}[self.p.dtype]
        try:
            pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(
                str(self.folder()), torch_dtype=dtype, local_files_only=True, safety_checker=None,
                use_safetensors=True)  # never a pickle (ip2p_weights_file refused any in the folder)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"diffusion weights not found locally ({str(exc).splitlines()[0]}); "
                              "download them once with huggingface-cli or point 'model' at a folder",
                              file=self.file, field="teacher.model", value=self.p.model) from None
        pipe.set_progress_bar_config(disable=True)
        self._pipe = pipe.to(device), device
        return self._pipe

    def edit(self, images: np.ndarray, prompt: str, seed: int) -> np.ndarray:
        import torch

        pipe, device = self._pipeline()
        out = np.empty_like(images)
        res, wr = images.shape[1], self.p.work_resolution
        for s in range(0, len(images), self.p.batch):
            chunk = [Image.fromarray(im).resize((wr, wr), Image.Resampling.LANCZOS) for im in images[s : s + self.p.batch]]
            gen = torch.Generator(device="cpu").manual_seed(seed * 100_003 + s)
            res_imgs = pipe(prompt=[prompt] * len(chunk), image=chunk, num_inference_steps=self.p.steps,
                            guidance_scale=self.p.guidance_scale, image_guidance_scale=self.p.image_guidance_scale,
                            generator=gen).images
            for j, im in enumerate(res_imgs):
                out[s + j] = np.asarray(im.convert("RGB").resize((res, res), Image.Resampling.LANCZOS))
        return out


def build_teacher(kind: str, params: dict[str, Any], *, file: str | None = None) -> Teacher:
    cls = TEACHERS.get(kind, file=file, field="teacher.kind")
    return cls(parse_params(cls, params, file=file, field="teacher"), file=file)
