"""Executors (``e2gan-bench run --executor local|process|ray``): the same suite gives the same run keys and metric
values whichever executor ran it; a failing run in a worker is recorded as failed and the suite goes on; a re-run
resumes; bad options are one line and exit code 2.

Metric values depend on the torch thread count (oneDNN and BLAS reductions split differently), so the comparisons
fix it: the smoke reference (``smoke_out``) ran with one torch thread, and here the driver has one torch thread, so
``--jobs 2`` gives each worker ``max(1, 1 // 2) = 1`` thread — and the values are compared exactly."""

from __future__ import annotations

import sqlite3
import sys
import time
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
import torch
from conftest import DIVERGING, assert_no_results, cli, one_error_line, write_suite
from test_crash import assert_same_results, check_store

from e2gan_bench.harness.store import ResultsStore

pytestmark = pytest.mark.slow  # the slow tier (tox -e slow; CI runs both)


@contextmanager
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run_keys(out: Path) -> set[tuple[str, str]]:
    with closing(sqlite3.connect(f"file:{out / 'results.sqlite'}?mode=ro", uri=True)) as con:
        return set(con.execute("SELECT key, status FROM runs").fetchall())


def run_smoke(out: Path, *args: str) -> float:
    t0 = time.perf_counter()
    with one_torch_thread():
        rc = cli("run", "--suite", "smoke", "--out", out, *args)
    assert rc == 0
    return time.perf_counter() - t0


# ------------------------------------------------------------------------------------------ bad options


@pytest.mark.parametrize("args, needles", [
    (["--executor", "threads"], ["--executor", "threads", "local, process, ray"]),
    (["--jobs", "0"], ["--jobs", "0"]),
    (["--executor", "local", "--jobs", "3"], ["--jobs", "3"]),
    (["--ray-address", "auto"], ["--ray-address", "auto", "--executor ray"]),
    (["--executor", "process", "--ray-address", "auto"], ["--ray-address", "only with --executor ray"]),
])
def test_bad_executor_options_are_one_line(tmp_path, capsys, args, needles):
    out = tmp_path / "out"
    assert cli("run", "--suite", "smoke", "--out", out, *args) == 2
    one_error_line(capsys, *needles)
    assert_no_results(out)


def test_ray_executor_without_ray_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as where it is not installed
    out = tmp_path / "out"
    assert cli("run", "--suite", "smoke", "--out", out, "--executor", "ray") == 2
    one_error_line(capsys, "--executor", "e2gan-bench[ray]")
    assert_no_results(out)


# ------------------------------------------------------------------------------------------ failures and resume


def test_process_workers_record_a_failing_run_and_resume(tmp_path, capsys):
    suite, out = write_suite(tmp_path, DIVERGING), tmp_path / "out"
    assert cli("run", "--suite", suite, "--out", out, "--executor", "process", "--jobs", "2") == 1  # one failed
    text = capsys.readouterr().out
    assert "executor: process: 2 worker processes" in text
    assert "run failed" in text and "training diverged: non-finite generator loss" in text
    assert "2 run(s) computed, 0 already in the store, 1 failed" in text
    assert "sepia × pix2pix × seed 0: psnr" in text  # a run finished by a worker shows up in the driver
    recs = {m: r for m, r in ResultsStore(out).records()}
    assert recs["boom"].status == "failed" and "non-finite" in recs["boom"].error
    assert recs["pix2pix"].status == "ok" and recs["identity"].status == "ok"
    check_store(out, final=True)  # no temporaries, no leases left, every row whole
    # resume: the finished runs are skipped, the failed one retried (and fails again)
    assert cli("run", "--suite", suite, "--out", out, "--jobs", "2") == 1
    assert "0 run(s) computed, 2 already in the store, 1 failed" in capsys.readouterr().out


def test_a_killed_worker_stops_the_command_in_one_line_and_a_rerun_finishes(tmp_path, capsys, monkeypatch):
    """A worker killed with SIGKILL in the middle of a training (the crash hook, inherited by the spawned workers;
    the driver computes no run here): one line, exit 2, nothing half-written kept; the next run finishes the suite."""
    suite, out = write_suite(tmp_path), tmp_path / "out"
    monkeypatch.setenv("E2GAN_BENCH_FAULT", "train-step:1")
    assert cli("run", "--suite", suite, "--out", out, "--jobs", "2") == 2
    one_error_line(capsys, "worker process stopped", "run the same command again")
    monkeypatch.delenv("E2GAN_BENCH_FAULT")
    assert cli("run", "--suite", suite, "--out", out, "--jobs", "2") == 0
    assert "already in the store, 0 failed" in capsys.readouterr().out
    assert check_store(out, final=True) == 2


# ------------------------------------------------------------------------------------------ same results


@pytest.mark.slow
def test_process_executor_gives_the_local_results(smoke_out, tmp_path, capsys):
    out = tmp_path / "out"
    wall = run_smoke(out, "--executor", "process", "--jobs", "2")
    text = capsys.readouterr().out
    assert "executor: process: 2 worker processes × 1 torch thread(s)" in text
    assert text.count("base model (") == 1  # trained once, in the driver, before any run was dispatched
    print(f"smoke, process --jobs 2: {wall:.1f} s wall")
    assert run_keys(out) == run_keys(smoke_out)
    assert check_store(out, final=True) == 10
    assert_same_results(out, smoke_out)


@pytest.mark.slow
def test_ray_executor_gives_the_local_results(smoke_out, tmp_path, capsys):
    pytest.importorskip("ray")
    out = tmp_path / "out"
    wall = run_smoke(out, "--executor", "ray", "--jobs", "2")
    text = capsys.readouterr().out
    assert "executor: ray on a local instance: 2 concurrent task(s) × 1 CPU / torch thread(s)" in text
    print(f"smoke, ray --jobs 2 (local instance started and stopped): {wall:.1f} s wall")
    assert run_keys(out) == run_keys(smoke_out)
    assert check_store(out, final=True) == 10
    assert_same_results(out, smoke_out)
