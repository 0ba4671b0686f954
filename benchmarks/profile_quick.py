"""Where a quick run's time goes: the real ``e2gan-bench run`` under cProfile, split into its phases.

    .venv/bin/python benchmarks/profile_quick.py [--concepts 1] [--json F] [--markdown F]

Runs the ``quick`` suite (its first ``--concepts`` concepts; default 1, about a third of the suite's runs; the base
model is trained in full) into a fresh temporary store and folds the profile into phases, each the cumulative time
of the function that does it, split by caller where one function serves two phases (the trainer runs the base
model and the students):

* set-up: start-up and suite expansion (everything before the runner starts);
* base model: its training (``training.base.load_or_train_base``), of which its data;
* students: data (teacher + crops), the optimisation loop (generator forward, discriminator forward, backward of
  both, Adam steps; the LoRA-wrapped layers' forward, base convolution included), the validation curve (off the
  training clock), rank search;
* evaluation per metric (``Metric.compute`` / ``compute_images``) and ONNX latency;
* reports (tables, page, plots, grids).

cProfile adds overhead to every Python call (most in the training loop's module calls), so the absolute seconds are
inflated; the shares are what the profile is for. One process, one machine: the CPU is named in the output.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from peak_fraction import cpu_name  # noqa: E402

from e2gan_bench.cli import main as cli_main  # noqa: E402
from e2gan_bench.resources import builtin_dir  # noqa: E402


def _suite(tmp: Path, n: int) -> Path:
    text = (builtin_dir("suites") / "quick.yaml").read_text()
    import yaml

    d = yaml.safe_load(text)
    d["concepts"] = d["concepts"][:n]
    d["name"] = "quick-profile"
    path = tmp / "quick-profile.yaml"
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path


class Profile:
    def __init__(self, stats: pstats.Stats) -> None:
        self.stats = stats.stats  # type: ignore[attr-defined]

    def find(self, file_end: str, name: str) -> list[tuple]:
        return [k for k in self.stats if k[0].replace(os.sep, "/").endswith(file_end) and k[2] == name]

    def cum(self, file_end: str, name: str, caller: tuple[str, str] | None = None) -> float:
        """Cumulative seconds of the function(s); with ``caller`` (file end, name) only the calls from there."""
        total = 0.0
        for k in self.find(file_end, name):
            if caller is None:
                total += self.stats[k][3]
            else:
                for ck, v in self.stats[k][4].items():
                    if ck[0].replace(os.sep, "/").endswith(caller[0]) and ck[2] == caller[1]:
                        total += v[3]
        return total

    def code(self, fn) -> float:
        c = fn.__code__
        k = (c.co_filename, c.co_firstlineno, c.co_name)
        return self.stats[k][3] if k in self.stats else 0.0


def run(n: int, stats_file: Path) -> dict:
    """Profile the run into ``stats_file`` (pstats format: `python -m pstats FILE` browses it) and fold it."""
    tmp = Path(tempfile.mkdtemp(prefix="profile-quick-"))
    suite = _suite(tmp, n)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    rc = cli_main(["run", "--suite", str(suite), "--out", str(tmp / "out")])
    prof.disable()
    wall = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"the run failed (exit {rc})")
    stats_file.parent.mkdir(parents=True, exist_ok=True)
    prof.dump_stats(str(stats_file))
    return fold(stats_file, wall, n)


def fold(stats_file: Path, wall: float, n: int) -> dict:
    """The phases of a profile dumped by :func:`run`."""
    import torch

    from e2gan_bench.metrics import all_metrics
    from e2gan_bench.models import generators

    p = Profile(pstats.Stats(str(stats_file)))
    runner = p.cum("harness/runner.py", "run_specs")
    base = p.cum("training/base.py", "load_or_train_base")
    base_train = p.cum("training/trainer.py", "train_gan", caller=("training/base.py", "load_or_train_base"))
    student_train = p.cum("training/trainer.py", "train_gan", caller=("methods/run.py", "run_method"))
    validation = p.cum("training/validation.py", "__call__")
    data_students = p.cum("data/dataset.py", "build_dataset", caller=("harness/compute.py", "run_one"))
    g_fwd = sum(p.code(c.forward) for c in vars(generators).values()
                if isinstance(c, type) and issubclass(c, generators.Generator) and "forward" in c.__dict__)
    d_fwd = p.code(generators.PatchDiscriminator.forward)
    backward = p.code(torch.autograd.backward)
    adam = p.cum("torch/optim/adam.py", "step")
    lora = p.cum("peft/tuners/lora/layer.py", "forward")
    search = sum(p.cum("methods/e2gan/rank_search.py", f) for f in ("e2gan_search", "grad_spectrum", "random_allocation"))
    evaluate = p.cum("metrics/evaluate.py", "evaluate")
    metrics = {}
    for cls in all_metrics():
        m = cls
        secs = sum(p.code(getattr(cls, h)) for h in ("compute", "compute_images")
                   if h in cls.__dict__)
        if secs:
            metrics[m.name] = secs
    latency = p.cum("metrics/latency.py", "measure_latency")
    reports = p.cum("cli/run.py", "_suite_report")
    phases = {
        "set-up (imports, suite expansion)": wall - runner - reports,
        "base model: training loop": base_train,
        "base model: data and the rest": base - base_train,
        "students: data (teacher + crops)": data_students,
        "students: training loop (validation excluded)": student_train - validation,
        "students: validation curve": validation,
        "students: rank search": search,
        "evaluation (metrics + ONNX latency)": evaluate,
        "reports": reports,
    }
    phases["other (store, grids, commits)"] = wall - sum(phases.values())
    loop = {"generator forward": g_fwd, "discriminator forward": d_fwd, "backward (G and D)": backward,
            "Adam steps": adam, "LoRA-wrapped layers' forward (base conv included)": lora}
    return {"cpu": cpu_name(), "threads": torch.get_num_threads(), "concepts": n, "wall_seconds": wall,
            "phases": phases, "training_loop": loop, "loop_total": base_train + student_train - validation,
            "evaluation": {**metrics, "ONNX latency": latency}}


def markdown(r: dict) -> str:
    lines = [f"Quick suite, {r['concepts']} concept(s), under cProfile: {r['wall_seconds']:.0f} s on {r['cpu']} "
             f"({r['threads']} threads).", "", "| phase | seconds | share |", "|---|---:|---:|"]
    for k, v in r["phases"].items():
        lines.append(f"| {k} | {v:.1f} | {100 * v / r['wall_seconds']:.0f} % |")
    lines += ["", "Inside the training loops (base + students, validation excluded: "
              f"{r['loop_total']:.1f} s):", "", "| part | seconds | share of the loops |", "|---|---:|---:|"]
    for k, v in r["training_loop"].items():
        lines.append(f"| {k} | {v:.1f} | {100 * v / max(r['loop_total'], 1e-9):.0f} % |")
    lines += ["", "Evaluation by metric:", "", "| metric | seconds |", "|---|---:|"]
    for k, v in sorted(r["evaluation"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {k} | {v:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concepts", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--markdown", type=Path, default=None)
    ap.add_argument("--stats", type=Path, default=Path(tempfile.gettempdir()) / "profile_quick.pstats",
                    help="where the raw profile goes (pstats format)")
    ap.add_argument("--fold", type=float, default=None, metavar="WALL_SECONDS",
                    help="fold an existing --stats file (its run's wall seconds) instead of running")
    a = ap.parse_args()
    r = fold(a.stats, a.fold, a.concepts) if a.fold is not None else run(a.concepts, a.stats)
    md = markdown(r)
    print(md)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(r, indent=1))
    if a.markdown:
        a.markdown.parent.mkdir(parents=True, exist_ok=True)
        a.markdown.write_text(md)


if __name__ == "__main__":
    main()
