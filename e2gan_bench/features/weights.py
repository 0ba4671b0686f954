"""Local registry of pretrained metric weights (paths + SHA-256). Nothing here ever downloads.

Known weights:

* ``inception``: clean-fid's Inception-v3 TorchScript ``inception-2015-12-05.pt`` (the StyleGAN2-ADA
  translation of TensorFlow's 2015-12-05 Inception graph), used by the ``inception-clean`` FID/KID extractor.
* ``alexnet``: torchvision's ImageNet AlexNet ``alexnet-owt-7be5be79.pth``, the LPIPS backbone.
* ``clip``: a local folder of a Hugging Face CLIP model (e.g. ``openai/clip-vit-base-patch32``), for CLIP score.
* ``instruct-pix2pix``: a local diffusers InstructPix2Pix folder (``timbrooks/instruct-pix2pix``), the weights of the
  ``diffusers`` teacher (the data key holds the whole folder's content hash, :mod:`e2gan_bench.data.teachers`).

The registry is ``weights.json`` in ``$E2GAN_BENCH_HOME`` (default ``$XDG_CACHE_HOME/e2gan-bench``, else
``~/.cache/e2gan-bench``), filled by
``e2gan-bench weights add NAME PATH``. :func:`resolve` looks there first, then in the usual library caches
(``$E2GAN_BENCH_INCEPTION`` or clean-fid's download folder when ``$E2GAN_BENCH_CLEANFID_DIR`` names one that others
cannot write into — never ``/tmp`` by default —, the torch hub checkpoints folder, the Hugging Face cache — local
files only). Inception has no published reference hash (clean-fid and StyleGAN2-ADA give only its URL): its hash is
recorded as observed and its structure checked (2048 features from a 299×299 image); AlexNet's hash prefix is
pinned.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from e2gan_bench.cache import atomic_write_text, default_home
from e2gan_bench.errors import UserError
from e2gan_bench.features.known_weights import CLIP_REPOS, IP2P_REPOS, KNOWN, KnownWeights, WeightRef
from e2gan_bench.keys import sha256_file

# ---------------------------------------------------------------------------------------------- registry file


def home() -> Path:
    return default_home()


def registry_path() -> Path:
    return home() / "weights.json"


def _known(name: str) -> KnownWeights:
    if name not in KNOWN:
        raise UserError("unknown weights name", field="NAME", value=name, allowed=", ".join(KNOWN))
    return KNOWN[name]


def load_registry() -> dict[str, dict[str, Any]]:
    p = registry_path()
    if not p.is_file():
        return {}
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"weight registry is not valid JSON ({exc}); fix or delete it", file=str(p)) from None
    if not isinstance(data, dict):
        raise UserError("weight registry must be a JSON object; fix or delete it", file=str(p))
    return data


def _save_registry(data: dict[str, dict[str, Any]]) -> None:
    atomic_write_text(registry_path(), json.dumps(data, indent=2, sort_keys=True) + "\n")


@functools.lru_cache(maxsize=32)
def _hash_cached(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(Path(path))


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, memoised in-process on (path, size, mtime)."""
    st = Path(path).stat()
    return _hash_cached(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def _check_pin(kw: KnownWeights, file: Path, actual: str) -> None:
    if kw.sha256 and actual != kw.sha256:
        raise UserError(f"sha256 mismatch for '{kw.name}': expected {kw.sha256}, got {actual} "
                        "(truncated, corrupt or a different file)", file=str(file))
    if kw.sha256_prefix and not actual.startswith(kw.sha256_prefix):
        raise UserError(f"sha256 mismatch for '{kw.name}': expected {kw.sha256_prefix}… (prefix), got {actual} "
                        "(truncated, corrupt or a different file)", file=str(file))


def clip_weights_file(folder: Path) -> Path:
    """Validate a Hugging Face CLIP folder (config + safetensors weights); returns the weights file."""
    folder = Path(folder)
    cfg = folder / "config.json"
    if not cfg.is_file():
        raise UserError("not a Hugging Face model folder: config.json missing", file=str(folder))
    try:
        conf = json.loads(cfg.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"config.json is not valid JSON ({exc})", file=str(cfg)) from None
    if conf.get("model_type") != "clip":
        raise UserError("config.json is not a CLIP model", file=str(cfg), field="model_type",
                        value=conf.get("model_type"), allowed="clip")
    for group in (("preprocessor_config.json", "processor_config.json"), ("tokenizer.json", "vocab.json")):
        if not any((folder / g).is_file() for g in group):
            raise UserError(f"CLIP folder lacks {' or '.join(group)} (save the processor with the model)", file=str(folder))
    w = folder / "model.safetensors"
    if not w.is_file():
        raise UserError("model.safetensors missing (only safetensors CLIP weights are accepted; nothing is unpickled)",
                        file=str(folder))
    try:
        with safe_open(str(w), framework="pt") as f:
            keys = set(f.keys())
    except Exception as exc:  # truncated / not a safetensors file
        raise UserError(f"cannot read CLIP weights ({type(exc).__name__}: {exc})".replace("\n", " "), file=str(w)) from None
    missing = [k for k in ("text_projection.weight", "visual_projection.weight") if k not in keys]
    if missing:
        raise UserError(f"not CLIP weights: tensors {missing} missing", file=str(w))
    return w


#: Weight files that are pickles (loading one can execute code): refused in model folders.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def ip2p_weights_file(folder: Path) -> Path:
    """Validate a diffusers InstructPix2Pix folder (model_index.json naming the pipeline, its components, a UNet with
    8 input channels and safetensors weights); returns the UNet's weights file (the part InstructPix2Pix trained)."""
    folder = Path(folder)
    index = folder / "model_index.json"
    try:
        conf = json.loads(index.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"not a diffusers pipeline folder (model_index.json: {type(exc).__name__})", file=str(folder)) \
            from None
    if not isinstance(conf, dict) or conf.get("_class_name") != "StableDiffusionInstructPix2PixPipeline":
        raise UserError("model_index.json does not name an InstructPix2Pix pipeline", file=str(index),
                        field="_class_name", value=conf.get("_class_name") if isinstance(conf, dict) else None,
                        allowed="StableDiffusionInstructPix2PixPipeline")
    for part in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        if not (folder / part).is_dir():
            raise UserError(f"InstructPix2Pix folder lacks its {part}/ component", file=str(folder))
    try:
        unet = json.loads((folder / "unet" / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"unet/config.json unreadable ({type(exc).__name__})", file=str(folder)) from None
    if unet.get("in_channels") != 8:
        raise UserError("not an InstructPix2Pix UNet (it takes 8 input channels: latents + image latents)",
                        file=str(folder / "unet" / "config.json"), field="in_channels", value=unet.get("in_channels"))
    for part in ("unet", "vae", "text_encoder"):  # every weights file safetensors: a pickle file can run code
        pickled = sorted(p.name for p in (folder / part).iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickled:
            raise UserError(f"pickle-format weights in {part}/ (only safetensors weights are accepted: a pickle file "
                            f"can run code when loaded)", file=str(folder / part / pickled[0]))
        if not any(p.suffix == ".safetensors" for p in (folder / part).iterdir()):
            raise UserError(f"{part}/ has no safetensors weights", file=str(folder / part))
    w = next((folder / "unet" / n for n in ("diffusion_pytorch_model.safetensors",
                                              "diffusion_pytorch_model.fp16.safetensors")
              if (folder / "unet" / n).is_file()), None)
    if w is None:
        raise UserError("unet/diffusion_pytorch_model.safetensors missing (only safetensors weights are accepted)",
                        file=str(folder))
    try:
        with safe_open(str(w), framework="pt") as f:
            next(iter(f.keys()))
    except Exception as exc:  # truncated / not a safetensors file / empty
        raise UserError(f"cannot read UNet weights ({type(exc).__name__}: {exc})".replace("\n", " "), file=str(w)) \
            from None
    return w


def _folder_file(kw: KnownWeights, folder: Path) -> Path:
    return ip2p_weights_file(folder) if kw.name == "instruct-pix2pix" else clip_weights_file(folder)


def _target_file(kw: KnownWeights, path: Path) -> Path:
    if kw.folder:
        if not path.is_dir():
            raise UserError(f"'{kw.name}' weights must be a model folder", file=str(path))
        return _folder_file(kw, path)
    if not path.is_file():
        raise UserError(f"'{kw.name}' weights must be a file ({kw.filename})", file=str(path))
    return path


def _check_loads(kw: KnownWeights, file: Path) -> None:
    """The file loads as the model it claims to be (nothing is unpickled: TorchScript and ``weights_only`` state
    dicts). Raises UserError naming the file."""
    import warnings

    def bad(what: str, exc: BaseException | None = None) -> UserError:
        why = f" ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})" if exc else ""
        return UserError(f"not {what}{why}", file=str(file))

    if kw.name == "inception":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = torch.jit.load(str(file), map_location="cpu")
        except Exception as exc:  # any unreadable file: junk, truncated, another format
            raise bad("clean-fid's Inception TorchScript", exc) from None
        if not hasattr(model, "layers"):
            raise bad("clean-fid's Inception TorchScript (no `layers` module)")
        try:  # what the extractor calls: a 299×299 image in, 2048 pool features out
            with torch.no_grad():
                n = int(model.layers(torch.zeros(1, 3, 299, 299)).numel())
        except Exception as exc:
            raise bad("clean-fid's Inception TorchScript (its `layers` do not run on a 299×299 image)", exc) from None
        if n != 2048:
            raise bad(f"clean-fid's Inception TorchScript (its `layers` give {n} features per image, not 2048)")
    elif kw.name == "alexnet":
        import torchvision

        try:
            sd = torch.load(str(file), map_location="cpu", weights_only=True)
            if not isinstance(sd, dict):
                raise TypeError(f"a {type(sd).__name__}, not a state dict")
            torchvision.models.alexnet(weights=None).load_state_dict(sd)
        except Exception as exc:  # junk, truncated, or another network's weights
            raise bad("a torchvision AlexNet state dict", exc) from None
    # clip, instruct-pix2pix: the folder and its safetensors weights were checked by _folder_file


def add(name: str, path: str | Path) -> WeightRef:
    """Register local weights: checks the path, hashes it, compares with the pinned hash, checks the file loads as
    the expected model, writes the registry.

    Raises:
        UserError: unknown name, missing path, wrong kind of path, invalid CLIP folder, hash mismatch, a file that
        does not load as the expected model.
    """
    kw = _known(name)
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError("weights path not found", file=str(path))
    path = path.resolve()
    file = _target_file(kw, path)
    st = file.stat()
    actual = sha256_file(file)
    _check_pin(kw, file, actual)
    _check_loads(kw, file)
    data = load_registry()
    data[name] = {
        "path": str(path),
        "file": str(file),
        "sha256": actual,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "added": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "pinned": kw.pin is not None,
    }
    _save_registry(data)
    return WeightRef(name, path, file, actual, st.st_size, "registry", kw.pin is not None)


def remove(name: str) -> bool:
    _known(name)
    data = load_registry()
    if name not in data:
        return False
    del data[name]
    _save_registry(data)
    return True


# ---------------------------------------------------------------------------------------------- resolution


def _from_registry(name: str, kw: KnownWeights) -> tuple[WeightRef | None, str]:
    entry = load_registry().get(name)
    if not entry:
        return None, "not registered"
    file = Path(entry.get("file") or entry.get("path", ""))
    path = Path(entry.get("path", file))
    if not file.is_file():
        return None, f"registered file is gone: {file}"
    st = file.stat()
    if st.st_size != entry.get("size"):
        return None, f"registered file changed (size {st.st_size} != {entry.get('size')}): {file}"
    sha = entry.get("sha256", "")
    if st.st_mtime_ns != entry.get("mtime_ns"):  # touched: re-hash (memoised) before trusting it
        actual = file_sha256(file)
        if actual != sha:
            return None, f"registered file changed (sha256 {actual[:12]}… != {sha[:12]}…): {file}"
    return WeightRef(name, path, file, sha, st.st_size, "registry", kw.pin is not None), "ok"


def _world_writable(folder: Path) -> bool:
    """Another user could place (or replace) a file there: writable by others (a missing folder counts as not)."""
    try:
        return bool(folder.stat().st_mode & 0o002)
    except OSError:
        return False


def _cache_candidates(name: str) -> list[tuple[Path, str]]:
    out: list[tuple[Path, str]] = []
    if name == "inception":
        env = os.environ.get("E2GAN_BENCH_INCEPTION")
        if env:
            out.append((Path(env), "env E2GAN_BENCH_INCEPTION"))
        # clean-fid downloads to /tmp, a folder anyone may write into: never looked in unless named; a named folder
        # that others may write into is not trusted either (`e2gan-bench weights add inception FILE` registers a copy)
        d = os.environ.get("E2GAN_BENCH_CLEANFID_DIR")
        if d and not _world_writable(Path(d)):
            out.append((Path(d) / KNOWN["inception"].filename, "clean-fid cache"))
    elif name == "alexnet":
        out.append((Path(torch.hub.get_dir()) / "checkpoints" / KNOWN["alexnet"].filename, "torch hub cache"))
    elif name in ("clip", "instruct-pix2pix"):
        try:  # huggingface_hub comes with transformers, which the core does not need: optional
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return out
        repos, marker = (CLIP_REPOS, "config.json") if name == "clip" else (IP2P_REPOS, "model_index.json")
        for repo in repos:
            try:
                p = try_to_load_from_cache(repo, marker)
            except Exception:
                continue
            if isinstance(p, str) and Path(p).is_file():
                out.append((Path(p).parent, f"hf cache {repo}"))
    return out


def _from_caches(name: str, kw: KnownWeights) -> tuple[WeightRef | None, list[str]]:
    notes = []
    for p, source in _cache_candidates(name):
        try:
            file = _folder_file(kw, p) if kw.folder else p
        except UserError as exc:
            notes.append(f"{source}: {exc.line()}")
            continue
        if not file.is_file():
            continue
        sha = file_sha256(file)
        try:
            _check_pin(kw, file, sha)
        except UserError as exc:
            notes.append(f"{source}: {exc.line()}")
            continue
        return WeightRef(name, p.resolve(), file.resolve(), sha, file.stat().st_size, source, kw.pin is not None), notes
    return None, notes


def resolve_with_reason(name: str) -> tuple[WeightRef | None, str]:
    """Like :func:`resolve`, plus a one-line reason when nothing usable was found."""
    kw = _known(name)
    ref, why = _from_registry(name, kw)
    if ref is not None:
        return ref, "ok"
    ref, notes = _from_caches(name, kw)
    if ref is not None:
        return ref, "ok"
    reasons = [why] + notes
    if not notes:
        reasons.append("not in the usual caches")
    return None, "; ".join(reasons) + f" (e2gan-bench weights add {name} PATH)"


def resolve(name: str) -> WeightRef | None:
    """The registered path if still intact (size, and sha256 when the mtime changed), else the usual caches,
    else ``None``. Never downloads."""
    return resolve_with_reason(name)[0]


def listing() -> list[dict[str, Any]]:
    """One row per known weights name: what it is, pin, and what :func:`resolve` finds."""
    rows = []
    reg = load_registry()
    for name, kw in KNOWN.items():
        ref, why = resolve_with_reason(name)
        rows.append({
            "name": name,
            "what": kw.what,
            "pin": kw.pin_note(),
            "registered": reg.get(name, {}).get("path"),
            "resolved": None if ref is None else str(ref.path),
            "source": None if ref is None else ref.source,
            "sha256": None if ref is None else ref.sha256,
            "status": "ok" if ref is not None else why,
        })
    return rows
