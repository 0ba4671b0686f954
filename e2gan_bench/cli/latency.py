"""`latency`: E2GAN vs pix2pix generator latency on ONNX Runtime (a desktop CPU proxy for mobile)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from e2gan_bench.cache import atomic_write_text
from e2gan_bench.cli.app import app, console, err_console
from e2gan_bench.errors import UserError

LATENCY_ARCHS = ("e2gan", "pix2pix-resnet")


def _positive(value: int, option: str, minimum: int = 1, maximum: int = 100_000) -> None:
    if value < minimum:
        raise UserError(f"must be at least {minimum}", field=option, value=value)
    if value > maximum:  # no option may make a run allocate or loop without limit
        raise UserError(f"must be at most {maximum}", field=option, value=value)


def _validate(archs: list[str], resolution: int, ngf: int, n_blocks: int, threads: int, runs: int, warmup: int,
              opt_level: str, seed: int = 0) -> None:
    from e2gan_bench.metrics.onnx import OPT_LEVELS

    for a in archs:
        if a not in LATENCY_ARCHS:
            raise UserError("unknown architecture", field="--arch", value=a, allowed=", ".join(LATENCY_ARCHS))
    if opt_level not in OPT_LEVELS:
        raise UserError("unknown graph optimisation level", field="--opt-level", value=opt_level,
                        allowed=", ".join(OPT_LEVELS))
    if resolution < 16 or resolution % 8 or resolution > 2048:
        raise UserError("must be a multiple of 8 from 16 to 2048 (the E2GAN generator downsamples 8×)",
                        field="--resolution", value=resolution)
    _positive(ngf, "--ngf", maximum=256)
    _positive(n_blocks, "--n-blocks", maximum=64)
    _positive(threads, "--threads", maximum=256)
    _positive(runs, "--runs")
    _positive(warmup, "--warmup", 0)
    _positive(seed, "--seed", 0, 2**31 - 1)


def _model_kwargs(arch: str, ngf: int, n_blocks: int) -> dict:
    return {"ngf": ngf, "n_blocks": n_blocks} if arch == "pix2pix-resnet" else {"ngf": ngf}


def _fmt_count(n: int) -> str:
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(n)


@app.command()
def latency(
    arch: Annotated[Optional[list[str]], typer.Option(
        "--arch", help="Generator to time (repeatable): e2gan, pix2pix-resnet [default: both, compared].")] = None,
    resolution: Annotated[int, typer.Option(help="Square input side in pixels.")] = 256,
    ngf: Annotated[int, typer.Option(help="Base width of both generators (64 = paper-sized).")] = 64,
    n_blocks: Annotated[int, typer.Option("--n-blocks", help="ResNet blocks of pix2pix-resnet.")] = 9,
    threads: Annotated[int, typer.Option(help="Intra-op threads (ONNX Runtime and torch).")] = 1,
    runs: Annotated[int, typer.Option(help="Timed runs.")] = 50,
    warmup: Annotated[int, typer.Option(help="Untimed warm-up runs.")] = 10,
    opt_level: Annotated[str, typer.Option(
        "--opt-level", help="ONNX Runtime graph optimisation: disable, basic, extended, all.")] = "all",
    int8: Annotated[bool, typer.Option("--int8/--no-int8", help="Also time a static int8 (QDQ) model.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the weights and the random input.")] = 0,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the results as JSON here.")] = None,
) -> None:
    """Time generators on ONNX Runtime: export, check against PyTorch, median/p90 latency, MACs, params."""
    archs = list(dict.fromkeys(arch)) if arch else list(LATENCY_ARCHS)
    _validate(archs, resolution, ngf, n_blocks, threads, runs, warmup, opt_level, seed)
    if json_path is not None and not json_path.parent.is_dir():
        raise UserError("folder not found", field="--json", value=str(json_path))

    import torch

    from e2gan_bench.metrics.latency import PROXY_LABEL, LatencyError, latency_key, measure_latency
    from e2gan_bench.models.generators import build_generator

    results = []
    for a in archs:
        kwargs = _model_kwargs(a, ngf, n_blocks)
        torch.manual_seed(seed)
        G = build_generator(a, kwargs, field="--arch")
        console.print(f"measuring [bold]{a}[/bold] ({', '.join(f'{k}={v}' for k, v in kwargs.items())}) at "
                      f"{resolution}² — export, check, {warmup} warm-up + {runs} timed runs …")
        try:
            r = measure_latency(G, resolution, threads=threads, warmup=warmup, runs=runs, opt_level=opt_level,
                                int8=int8, seed=seed, arch=a)
        except LatencyError as exc:
            err_console.print(f"e2gan-bench: latency: {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        d = r.to_dict()
        d["model_kwargs"] = kwargs
        d["key"] = latency_key(a, kwargs, resolution, threads, opt_level, int8=int8)
        results.append(d)

    t = Table(title=f"generator latency, {resolution}×{resolution}, batch 1, {threads} thread(s), ORT opt {opt_level}")
    cols = ["arch", "params", "MACs", "ORT median ms", "ORT p90 ms", "ORT min ms", "torch median ms", "max|Δ| torch"]
    if int8:
        cols += ["int8 median ms", "int8 p90 ms", "int8 max|Δ|", "int8 mean|Δ|"]
    for c in cols:
        t.add_column(c, justify="left" if c == "arch" else "right", no_wrap=c == "arch")
    for d in results:
        row = [d["arch"], _fmt_count(d["params"]), _fmt_count(d["macs"]), f"{d['median_ms']:.2f}", f"{d['p90_ms']:.2f}",
               f"{d['min_ms']:.2f}", f"{d['torch_median_ms']:.2f}", f"{d['max_abs_diff']:.1e}"]
        if int8:
            row += [f"{d['int8_median_ms']:.2f}", f"{d['int8_p90_ms']:.2f}", f"{d['int8_max_abs_diff']:.3f}",
                    f"{d['int8_mean_abs_diff']:.4f}"]
        t.add_row(*row)
    console.print(t)

    by_arch = {d["arch"]: d for d in results}
    ratio = None
    if "e2gan" in by_arch and "pix2pix-resnet" in by_arch:
        e, p = by_arch["e2gan"], by_arch["pix2pix-resnet"]
        ratio = {"ort": e["median_ms"] / p["median_ms"], "torch": e["torch_median_ms"] / p["torch_median_ms"],
                 "macs": e["macs"] / p["macs"] if p["macs"] else None}
        if int8:
            ratio["int8"] = e["int8_median_ms"] / p["int8_median_ms"]
        extra = f", int8 {ratio['int8']:.2f}" if int8 else ""
        console.print(f"median latency ratio e2gan / pix2pix-resnet: {ratio['ort']:.2f} (ORT), "
                      f"{ratio['torch']:.2f} (torch eager){extra}; MACs ratio {ratio['macs']:.2f} "
                      "(paper, iPhone: 15.5 / 21.0 ms = 0.74)", highlight=False)
    prov = results[0]["provenance"]
    console.print(f"{PROXY_LABEL} — onnxruntime {prov['onnxruntime']}, opset {prov['opset']}, "
                  f"{', '.join(prov['providers'])}, CPU {prov['cpu']} ({prov['logical_cpus']} logical)",
                  highlight=False, markup=False)

    if json_path is not None:
        payload = {"label": PROXY_LABEL, "ratio_e2gan_over_pix2pix": ratio, "results": results}
        atomic_write_text(json_path, json.dumps(payload, indent=2))
        console.print(f"results: {json_path}")
