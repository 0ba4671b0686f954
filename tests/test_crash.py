"""Crash safety, concurrency and determinism, with real processes on the smoke suite (one torch thread each).

* A run killed with SIGKILL at random moments — while training (base model and runs), while evaluating, while
  committing (artifact rename, run folder rename, database insert) and at a random time — leaves nothing that
  looks complete but is half-written, and re-running ends with the leaderboard of an uninterrupted run.
* A failing disk write loses nothing already committed.
* Two ``run`` commands on one output folder finish the suite together without training any run twice.
* The same suite and seed give identical metrics in two fresh output folders.

The kills use the crash-test hook ``E2GAN_BENCH_FAULT=POINT:N`` (:func:`e2gan_bench.faults.fault_point`): the N-th
time the process reaches that point it sends itself SIGKILL — no cleanup runs, as with ``kill -9``.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_SUITE, cli, one_error_line, temporaries, write_suite
from safetensors import safe_open

from e2gan_bench.record import RunRecord

#: Metric columns compared between runs: every value that does not depend on the clock or the process.
VALUES = ["kid", "kid_std", "fid", "psnr", "ssim", "lpips", "train_flops", "trainable_params", "stored_bytes",
          "n_train_used", "n_test"]
#: Leaderboard columns that are times or process-dependent (not compared): these, and every "...seconds..." column.
CLOCK = ("train_seconds", "peak_memory_bytes", "latency_ms")

IS_POSIX = hasattr(signal, "SIGKILL")


def _env(**extra: str) -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1",
                **extra)


def _start(out: Path, *, fault: str | None = None, log: Path | None = None) -> subprocess.Popen:
    env = _env(E2GAN_BENCH_FAULT=fault) if fault else _env()
    stdout = open(log, "w") if log else subprocess.PIPE  # noqa: SIM115 - closed by the caller's wait
    return subprocess.Popen([sys.executable, "-m", "e2gan_bench", "run", "--suite", "smoke", "--out", str(out)],
                            stdout=stdout, stderr=subprocess.STDOUT, text=True, env=env)


def run_values(out: Path) -> pd.DataFrame:
    df = pd.read_csv(out / "reports" / "smoke" / "runs.csv")
    return df.set_index(["concept", "method", "seed"]).sort_index()[VALUES]


def leaderboard_values(out: Path) -> pd.DataFrame:
    lb = pd.read_csv(out / "reports" / "smoke" / "leaderboard.csv").set_index("method")
    return lb[[c for c in lb.columns if c not in CLOCK and "seconds" not in c]]


def assert_same_results(out: Path, reference: Path) -> None:
    pd.testing.assert_frame_equal(run_values(out), run_values(reference), check_exact=True)
    pd.testing.assert_frame_equal(leaderboard_values(out), leaderboard_values(reference), check_exact=True)


def _readable(path: Path) -> None:
    """A file written by the store or a cache reads whole (raises otherwise)."""
    if path.suffix == ".json":
        json.loads(path.read_text())
    elif path.suffix == ".npz":
        with np.load(path) as z:
            [z[k] for k in z.files]
    elif path.suffix == ".safetensors":
        with safe_open(str(path), framework="pt") as f:
            [f.get_tensor(k) for k in f.keys()]
    elif path.suffix == ".csv":
        pd.read_csv(path)


def check_store(out: Path, *, final: bool = False) -> int:
    """Nothing that looks complete is half-written; returns the number of committed records."""
    if not (out / "results.sqlite").exists():
        return 0
    with closing(sqlite3.connect(out / "results.sqlite")) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = con.execute("SELECT key, record FROM runs").fetchall()
        leases = con.execute("SELECT count(*) FROM leases").fetchone()[0]
    keys = set()
    for key, text in rows:  # a row is a commit: its folder and its artifact are whole
        rec = RunRecord.model_validate_json(text)
        keys.add(key)
        folder = out / "runs" / key
        assert RunRecord.model_validate_json((folder / "record.json").read_text()) == rec
        json.loads((folder / "config.json").read_text())
        if rec.status == "ok":
            art = out / "artifacts" / rec.train_key
            summary = json.loads((art / "training.json").read_text())
            for name in summary["artifacts"]:
                _readable(art / name)
            assert rec.value("psnr") is not None and np.isfinite(rec.value("kid"))
    for d in (out / "runs").glob("[!.]*"):  # a run folder in place is whole (with or without its row)
        RunRecord.model_validate_json((d / "record.json").read_text())
        json.loads((d / "config.json").read_text())
    for d in (out / "artifacts").glob("[!.]*"):  # an artifact in place is whole
        summary = json.loads((d / "training.json").read_text())
        for name in summary["artifacts"]:
            _readable(d / name)
    for f in (out / "cache").rglob("[!.]*"):  # caches and the base model: whole files only
        if f.is_file() and not any(p.name.startswith(".") for p in f.relative_to(out).parents):
            _readable(f)
    if final:
        assert temporaries(out) == [], temporaries(out)
        assert {d.name for d in (out / "runs").iterdir()} == keys  # no folder without its row
        assert leases == 0
    return len(rows)


# ------------------------------------------------------------------------------------------ SIGKILL


@pytest.mark.slow
@pytest.mark.skipif(not IS_POSIX, reason="SIGKILL is POSIX")
def test_sigkill_at_random_moments_then_resume(smoke_out, tmp_path):
    """SIGKILL at 10 moments (training, evaluation, every commit step, a random time, and the swap of a
    re-evaluation); after each kill nothing is half-written, and the end is the uninterrupted run's leaderboard.
    The moments are drawn from a seed that every failure message names; E2GAN_BENCH_CRASH_SEED replays one."""
    seed = int(os.environ.get("E2GAN_BENCH_CRASH_SEED", random.SystemRandom().randrange(10**6)))
    rng = random.Random(seed)
    # (point, hit): the N-th time the process reaches that point it is killed. Each process resumes where the
    # previous one was killed, so the hit numbers stay within the work left (base: 20 steps; runs: 8 trainings of
    # 12 steps; 10 artifacts, evaluations and commits).
    moments = [("base-step", rng.randint(1, 20)), ("train-step", rng.randint(1, 36)),
               ("artifact-commit", rng.randint(1, 3)), ("evaluate", rng.randint(1, 3)),
               ("commit-rename", rng.randint(1, 3)), ("commit-db", rng.randint(1, 3)),
               ("train-step", rng.randint(1, 12)), ("evaluate", rng.randint(1, 2)),
               ("time", round(rng.uniform(8.0, 20.0), 1))]
    out = tmp_path / "out"
    kills, committed = [], []
    for point, hit in moments:
        log = tmp_path / f"{point}.log"
        proc = _start(out, fault=None if point == "time" else f"{point}:{hit}", log=log)
        if point == "time":
            try:
                proc.wait(timeout=hit)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
        rc = proc.wait(timeout=600)
        assert rc in (0, -signal.SIGKILL), (f"crash seed {seed}", point, hit, rc, log.read_text()[-3000:])
        if rc == -signal.SIGKILL:
            kills.append(f"{point}:{hit}")
        committed.append(check_store(out))  # after every kill: nothing half-written
    note = f"crash seed {seed}: kills {kills}, records after each {committed}"
    print(note)
    assert len(kills) >= 5, note
    assert {"base-step", "train-step"} & {k.split(":")[0] for k in kills}, note  # during training
    assert "evaluate" in {k.split(":")[0] for k in kills}, note  # during evaluation
    assert {"artifact-commit", "commit-rename", "commit-db"} & {k.split(":")[0] for k in kills}, note  # commit
    proc = _start(out, log=tmp_path / "final.log")
    assert proc.wait(timeout=600) == 0, (note, (tmp_path / "final.log").read_text()[-3000:])
    assert check_store(out, final=True) == 10, note
    assert_same_results(out, smoke_out)  # the leaderboard of an uninterrupted run
    # the 10th moment: a re-evaluation killed while it swaps a committed run's folder, then resumed
    hit = rng.randint(1, 10)
    cmd = [sys.executable, "-m", "e2gan_bench", "evaluate", "--out", str(out), "--suite", "smoke"]
    proc = subprocess.run([*cmd, "--force"], capture_output=True, text=True, timeout=600,
                          env=_env(E2GAN_BENCH_FAULT=f"commit-swap:{hit}"))
    assert proc.returncode == -signal.SIGKILL, (note, hit, proc.stdout[-2000:], proc.stderr[-2000:])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=_env())
    assert proc.returncode == 0, (note, hit, proc.stdout[-2000:], proc.stderr[-2000:])
    assert check_store(out, final=True) == 10, (note, f"commit-swap:{hit}")
    assert_same_results(out, smoke_out)


@pytest.mark.slow
@pytest.mark.skipif(not IS_POSIX, reason="SIGKILL is POSIX")
def test_kill_between_the_renames_of_a_reevaluation_puts_the_previous_folder_back(smoke_out, tmp_path):
    """Re-evaluation replaces a run folder that has a database row: the old folder is renamed away, then the new one
    into place. A kill between the two leaves the row without its folder — the next command that opens the store
    renames the old one back (the row's own record), and a later re-evaluation ends as if nothing happened."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(smoke_out, out)
    env = _env(E2GAN_BENCH_FAULT="commit-swap:1")
    proc = subprocess.run([sys.executable, "-m", "e2gan_bench", "evaluate", "--out", str(out), "--force"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stdout[-2000:] + proc.stderr[-2000:]
    with closing(sqlite3.connect(out / "results.sqlite")) as con:
        rows = dict(con.execute("SELECT key, record FROM runs").fetchall())
    absent = [k for k in rows if not (out / "runs" / k).exists()]
    assert len(absent) == 1, absent  # the crash window is real: one row without its folder …
    assert list((out / "runs").glob(f".{absent[0]}.*"))  # … and the previous folder waiting beside it
    proc = subprocess.run([sys.executable, "-m", "e2gan_bench", "evaluate", "--out", str(out)],
                          capture_output=True, text=True, env=_env(), timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert check_store(out, final=True) == 10  # every row has its whole folder again, nothing left over
    rec = RunRecord.model_validate_json((out / "runs" / absent[0] / "record.json").read_text())
    assert rec == RunRecord.model_validate_json(rows[absent[0]])  # the previous evaluation, put back
    proc = subprocess.run([sys.executable, "-m", "e2gan_bench", "evaluate", "--out", str(out), "--force"],
                          capture_output=True, text=True, env=_env(), timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert check_store(out, final=True) == 10


# ------------------------------------------------------------------------------------------ failing disk


THREE_RUNS = TINY_SUITE.replace("methods: [identity, {scratch: {budget: {steps: 3}}}]",
                                "methods: [identity, {scratch: {budget: {steps: 3}}}, {pix2pix: {budget: {steps: 2}}}]")


@pytest.fixture(scope="module")
def three_runs_reference(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("three")
    assert cli("run", "--suite", write_suite(d, THREE_RUNS), "--out", d / "out") == 0
    return d / "out"


def _tiny_values(out: Path) -> pd.DataFrame:
    df = pd.read_csv(out / "reports" / "tiny" / "runs.csv")
    return df.set_index(["concept", "method", "seed"]).sort_index()[["kid", "fid", "psnr", "ssim", "train_flops"]]


@pytest.mark.parametrize("failing, nth, committed", [
    ("record.json", 2, 1),  # committing the second run's record
    ("training.json", 2, 1),  # storing the second run's artifact
    ("samples.png", 3, 2),  # writing the third run's folder
    ("leaderboard.md", 1, 3),  # the report, after every run
])
def test_failing_disk_write_loses_nothing_committed(three_runs_reference, tmp_path, monkeypatch, capsys, failing,
                                                    nth, committed):
    from e2gan_bench import cache

    real, seen = cache.atomic_write, {"n": 0}

    def atomic_write(path, write):
        if Path(path).name == failing:
            seen["n"] += 1
            if seen["n"] == nth:  # the disk fills up half way through this file
                def half(f):
                    f.write(b"half a file")
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
                return real(path, half)
        return real(path, write)

    monkeypatch.setattr(cache, "atomic_write", atomic_write)
    suite, out = write_suite(tmp_path, THREE_RUNS), tmp_path / "out"
    assert cli("run", "--suite", suite, "--out", out) == 2
    one_error_line(capsys, failing, "No space left on device")
    with closing(sqlite3.connect(out / "results.sqlite")) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert check_store(out) == committed and temporaries(out) == []
    before = {r: (out / "runs" / r / "record.json").read_text() for r in os.listdir(out / "runs")}
    monkeypatch.undo()
    assert cli("run", "--suite", suite, "--out", out) == 0
    assert f", {committed} already in the store, 0 failed" in capsys.readouterr().out  # kept, not recomputed
    for key, text in before.items():  # what was committed is still there, untouched
        assert (out / "runs" / key / "record.json").read_text() == text
    check_store(out, final=False)
    pd.testing.assert_frame_equal(_tiny_values(out), _tiny_values(three_runs_reference), check_exact=True)


# ------------------------------------------------------------------------------------------ two processes


COUNTS = re.compile(r"(\d+) run\(s\) computed, (\d+) already in the store, (\d+) failed")


@pytest.mark.slow
def test_two_runs_on_one_folder_split_the_work(smoke_out, tmp_path):
    out = tmp_path / "out"
    t0 = time.perf_counter()
    procs = [_start(out, log=tmp_path / f"p{i}.log") for i in range(2)]
    rcs = [p.wait(timeout=600) for p in procs]
    wall = time.perf_counter() - t0
    logs = [(tmp_path / f"p{i}.log").read_text() for i in range(2)]
    assert rcs == [0, 0], [lg[-3000:] for lg in logs]
    counts = [tuple(map(int, COUNTS.search(lg).groups())) for lg in logs]
    computed = sum(c[0] for c in counts)
    duplicated = computed - 10
    print(f"two concurrent runs: {wall:.1f} s wall, computed {[c[0] for c in counts]}, duplicated {duplicated}")
    assert duplicated == 0 and all(c[0] + c[1] == 10 and c[2] == 0 for c in counts), counts
    assert sum("base model (" in lg for lg in logs) == 1  # the base model trained once, the other process waited
    assert check_store(out, final=True) == 10
    assert_same_results(out, smoke_out)


# ------------------------------------------------------------------------------------------ determinism


@pytest.mark.slow
def test_same_suite_and_seed_give_identical_metrics(smoke_out, tmp_path):
    """A fresh process, fresh output and cache folders: the same numbers as the smoke run of this session."""
    out = tmp_path / "out"
    proc = _start(out, log=tmp_path / "log")
    assert proc.wait(timeout=600) == 0, (tmp_path / "log").read_text()[-3000:]
    assert_same_results(out, smoke_out)
