"""Training-step speed and quality: fp32 vs bf16 autocast vs channels_last, on this machine.

    .venv/bin/python benchmarks/step_speed.py [--steps 150] [--json reports/regime/step_speed.json]

For each setting and size: seconds per step of the real trainer (G + PatchGAN D, batch 8, 2 threads by
default) and the validation PSNR the E2GAN generator reaches from scratch on one concept after ``--steps``
steps — a faster setting is worth enabling only if quality is unchanged within noise. Measured on one machine
in one process, so only the ratios between settings mean anything; bf16 speed depends on the CPU (oneDNN uses
AMX where present).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from e2gan_bench.config import Budget  # noqa: E402
from e2gan_bench.metrics.provenance import environment  # noqa: E402
from e2gan_bench.metrics.quality import psnr  # noqa: E402
from e2gan_bench.models.generators import ARCHS  # noqa: E402
from e2gan_bench.models.tensors import generate, to_tensor  # noqa: E402
from e2gan_bench.training.trainer import TrainData, train_gan  # noqa: E402

SIZES = [(48, 16), (64, 32)]


def _data(resolution: int, cache: Path, n: int = 96) -> tuple[TrainData, torch.Tensor, torch.Tensor]:
    """Pencil-sketch pairs from the built-in photographs (the procedural teacher), with its prompt embedding."""
    from e2gan_bench.data.dataset import DataSettings, build_dataset
    from e2gan_bench.models.text import HashEncoder
    from e2gan_bench.resources import Catalog

    concept = Catalog().concept("pencil-sketch")
    ds = build_dataset(concept, DataSettings(resolution, n, 32), cache)
    emb = HashEncoder().encode(concept.prompt)
    data = TrainData(to_tensor(ds.src_train), to_tensor(ds.tgt_train), torch.zeros(n, dtype=torch.long),
                     emb.tokens[None], emb.mask[None])
    return data, ds.src_test, ds.tgt_test


def run(steps: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    rows = []
    for res, ngf in SIZES:
        data, src_te, tgt_te = _data(res, Path(tempfile.mkdtemp()))
        for setting in ("fp32", "bf16", "channels_last"):
            torch.manual_seed(0)
            G = ARCHS.get("e2gan")(ngf=ngf)
            budget = Budget(steps=steps, batch=8, lr=4e-3, schedule="cosine", warmup=20,
                            precision="bf16" if setting == "bf16" else "fp32")
            d = data
            if setting == "channels_last":
                G = G.to(memory_format=torch.channels_last)
                d = TrainData(data.src.contiguous(memory_format=torch.channels_last),
                              data.tgt.contiguous(memory_format=torch.channels_last), data.text_idx, data.texts,
                              data.masks)
            # a few untimed steps first: one-time costs (oneDNN kernel selection, allocator growth) would
            # otherwise land on whichever setting runs first
            train_gan(copy.deepcopy(G), d, budget.model_copy(update={"steps": 10}), seed=1, ndf=32)
            t0 = time.perf_counter()
            r = train_gan(G, d, budget, seed=0, ndf=32)
            wall = time.perf_counter() - t0
            out = generate(G, src_te, data.texts[:1], data.masks[:1])
            rows.append({"resolution": res, "ngf": ngf, "setting": setting, "steps": steps,
                         "seconds_per_step": r.seconds / steps, "wall_seconds": wall,
                         "test_psnr": psnr(out, tgt_te)})
            print(json.dumps(rows[-1]), flush=True)
    for row in rows:
        ref = next(x for x in rows if x["resolution"] == row["resolution"] and x["setting"] == "fp32")
        row["speedup_vs_fp32"] = ref["seconds_per_step"] / row["seconds_per_step"]
        row["psnr_change_db"] = row["test_psnr"] - ref["test_psnr"]
    return {"rows": rows, "threads": threads, "cpu": platform.processor() or platform.machine(),
            "environment": environment()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    result = run(a.steps, a.threads)
    for r in result["rows"]:
        print(f"{r['resolution']}²/ngf{r['ngf']:<3} {r['setting']:<14} {1000 * r['seconds_per_step']:7.1f} ms/step "
              f"×{r['speedup_vs_fp32']:.2f}  test PSNR {r['test_psnr']:.2f} dB ({r['psnr_change_db']:+.2f})")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
