"""Shared fixtures. Tests run offline (HF_HUB_OFFLINE=1) and hermetic: every cache and registry a run could read
(e2gan-bench's home with its weight registry, clean-fid's download folder, the torch hub, the Hugging Face cache,
XDG's cache) points at a temporary folder, so a machine with registered weights or filled caches runs the same
tests the same way."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import tempfile
from contextlib import closing

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# One BLAS thread (numpy's and scipy's OpenBLAS, set before either loads): the crash, concurrency and
# determinism tests compare this process's results with single-threaded subprocesses, exactly; a BLAS
# reduction (FID's sqrtm) split over two threads differs in the last bits. The tensors here are tiny.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# The fast tier runs in pytest-xdist workers, one per core: each worker (and every process it starts) keeps to one
# torch thread, or two workers of two threads each on two cores would slow every step many times over.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"

#: Environment variables that point at a cache or registry, and the sub-folder each gets in the hermetic home.
HERMETIC_VARS = {
    "E2GAN_BENCH_HOME": "e2gan-bench",
    "E2GAN_BENCH_CLEANFID_DIR": "cleanfid",
    "TORCH_HOME": "torch",
    "HF_HOME": "hf",
    "HF_HUB_CACHE": "hf/hub",
    "XDG_CACHE_HOME": "xdg-cache",
}
#: Variables that point at one file or at a service (a Ray cluster, cached text embeddings): unset.
UNSET_VARS = ("E2GAN_BENCH_INCEPTION", "TRANSFORMERS_CACHE", "HUGGINGFACE_HUB_CACHE", "E2GAN_BENCH_FAULT", "RAY_ADDRESS",
              "E2GAN_BENCH_TEXT_ENCODER_CACHED", "E2GAN_BENCH_ALLOW_LARGE", "E2GAN_BENCH_ALLOW_CODE",
              "E2GAN_BENCH_TRUSTED_CODE")


def _hermetic_home() -> str:
    """Set before anything is imported: some libraries read their cache folders once, at import."""
    home = tempfile.mkdtemp(prefix="e2gan-bench-tests-")
    for var, sub in HERMETIC_VARS.items():
        os.makedirs(os.path.join(home, sub), exist_ok=True)
        os.environ[var] = os.path.join(home, sub)
    for var in UNSET_VARS:
        os.environ.pop(var, None)
    return home


HERMETIC_HOME = _hermetic_home()

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from e2gan_bench.cli import main  # noqa: E402


def cli(*args: str) -> int:
    return main([str(a) for a in args])


#: A suite that runs in a few seconds: two runs (a reference and a real training) at 16 px.
TINY_SUITE = """name: tiny
concepts: [sepia]
methods: [identity, {scratch: {budget: {steps: 3}}}]
data: {resolution: 16, n_train: 6, n_test: 4}
model: {e2gan: {ngf: 4}, pix2pix-resnet: {ngf: 4, n_blocks: 1}, discriminator: {ndf: 4}}
budget: {steps: 3, batch: 2}
eval: {kid_subsets: 2, kid_subset_size: 3, lpips: false, latency: false, samples_in_grid: 2}
"""

#: TINY_SUITE with a run whose learning rate makes it diverge (a failed run between two that finish)
DIVERGING = TINY_SUITE.replace(
    "methods: [identity, {scratch: {budget: {steps: 3}}}]",
    "methods: [identity, {name: boom, method: scratch, overrides: {budget: {lr: 1.0e+12}}}, "
    "{pix2pix: {budget: {steps: 2}}}]")


def write_suite(folder: Path, text: str = TINY_SUITE, name: str = "s.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def snapshot(folder: Path) -> dict[str, str]:
    """What a folder holds: every file's hash, and the results database's content (not its bytes: SQLite's own
    journal files come and go without changing it)."""
    out: dict[str, str] = {}
    for f in sorted(Path(folder).rglob("*")):
        rel = f.relative_to(folder).as_posix()
        if f.is_dir() or rel.endswith(("results.sqlite-wal", "results.sqlite-shm")):
            continue
        out[rel] = hashlib.sha256(f.read_bytes()).hexdigest()
        if rel == "results.sqlite":
            try:
                with closing(sqlite3.connect(f"file:{f}?mode=ro", uri=True)) as con:
                    out[rel] = "\n".join(con.iterdump())
            except sqlite3.DatabaseError:  # not a database (a broken store): its bytes
                pass
    return out


def temporaries(folder: Path) -> list[Path]:
    """Dot-named leftovers of interrupted writes anywhere under ``folder`` (SQLite's journal files aside)."""
    return [p for p in Path(folder).rglob(".*") if p.name not in (".gitignore",)]


def assert_no_results(out: Path) -> None:
    """Nothing of a run was written: no record, no run folder, no artifact, no temporary (caches may exist)."""
    if not out.exists():
        return
    db = out / "results.sqlite"
    if db.exists():
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
    for sub in ("runs", "artifacts", "reports"):
        assert not (out / sub).exists() or not any((out / sub).iterdir()), sub
    assert temporaries(out) == []


def one_error_line(capsys, *needles) -> str:
    """The contract for bad input: exactly one line on stderr, no traceback, naming each needle."""
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert str(n) in err, (n, err)
    return err


@pytest.fixture(scope="session", autouse=True)
def hermetic_caches():
    """Every cache and registry under one temporary folder for the whole session (session-scoped, so the smoke
    store below is built once under it); removed at the end."""
    yield Path(HERMETIC_HOME)
    shutil.rmtree(HERMETIC_HOME, ignore_errors=True)


@pytest.fixture(autouse=True)
def hermetic_environment(monkeypatch, hermetic_caches):
    """Each test starts from the hermetic variables (a test that changes one gets it back afterwards)."""
    for var, sub in HERMETIC_VARS.items():
        monkeypatch.setenv(var, str(hermetic_caches / sub))
    for var in UNSET_VARS:
        monkeypatch.delenv(var, raising=False)
    # `--rank-search` trusts its module:attr by writing it here; set (empty) through monkeypatch so that the test's
    # trust is undone at its end (a delenv of an absent variable would restore nothing)
    monkeypatch.setenv("E2GAN_BENCH_TRUSTED_CODE", "")


@pytest.fixture
def allow_code(monkeypatch):
    """The user's opt-in to code named in files (``module:attr`` in a suite, concept or method)."""
    monkeypatch.setenv("E2GAN_BENCH_ALLOW_CODE", "1")


@pytest.fixture(scope="session")
def smoke_out(tmp_path_factory) -> Path:
    """The smoke suite run once end to end (real data, training, metrics, reports), with one torch thread: the
    crash, concurrency and determinism tests compare their subprocess runs (one thread each) with it."""
    import torch

    out = tmp_path_factory.mktemp("smoke")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert cli("run", "--suite", "smoke", "--out", out) == 0
    finally:
        torch.set_num_threads(threads)
    return out
