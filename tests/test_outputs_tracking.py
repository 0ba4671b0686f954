"""`run --save-outputs DIR` (PNG folders of the test split's outputs and targets) and `run --mlflow` (one MLflow
run per run key), on a tiny suite with a base model, a LoRA method (its adapter loaded onto the base) and the
identity reference, run for real."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import cli, one_error_line, write_suite
from PIL import Image

pytestmark = pytest.mark.slow  # the slow tier (tox -e slow; CI runs both)

SUITE = """name: export-tiny
concepts: [sepia]
methods: [identity, e2gan]
base:
  concepts: [sepia]
  budget: {steps: 2, batch: 2}
data: {resolution: 16, n_train: 4, n_test: 5, n_val: 2}
model: {e2gan: {ngf: 4}, discriminator: {ndf: 4}}
budget: {steps: 2, batch: 2}
curve: {points: 2, first: 1, max_images: 2, lpips: false}
eval: {kid_subsets: 2, kid_subset_size: 3, lpips: false, latency: false, samples_in_grid: 2}
"""
METHODS = ("identity", "e2gan")


def _files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.png"))}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path, Path, dict[str, str]]:
    """The suite run once with both options: (suite file, results folder, export folder, PNG hashes)."""
    tmp = tmp_path_factory.mktemp("export")
    suite = write_suite(tmp, SUITE)
    out, dest = tmp / "out", tmp / "outputs"
    assert cli("run", "--suite", suite, "--out", out, "--save-outputs", dest, "--mlflow") == 0
    return suite, out, dest, _files(dest)


def _store_specs(suite: Path, out: Path):
    from e2gan_bench.harness.spec import expand_suite
    from e2gan_bench.harness.store import ResultsStore
    from e2gan_bench.resources import Catalog, find_suite

    catalog = Catalog()
    s, path = find_suite(str(suite))
    return ResultsStore(out, readonly=True), expand_suite(s, catalog, str(path), out / "cache")


def test_save_outputs_layout_and_teacher_targets(exported):
    suite, out, dest, files = exported
    store, specs = _store_specs(suite, out)
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["suite"] == "export-tiny" and manifest["skipped"] == []
    names = [f"{i:04d}.png" for i in range(5)]
    folders = ["sepia/seed0/source", "sepia/seed0/teacher"] + [f"sepia/seed0/{m}" for m in METHODS]
    assert sorted(files) == sorted(f"{d}/{n}" for d in folders for n in names)  # same names in every folder
    from e2gan_bench.data.dataset import build_dataset

    s = specs[0]
    ds = build_dataset(s.concept, s.data, out / "cache")
    read = lambda d: np.stack([np.asarray(Image.open(dest / d / n)) for n in names])
    assert np.array_equal(read("sepia/seed0/teacher"), ds.tgt_test)
    assert np.array_equal(read("sepia/seed0/source"), ds.src_test)
    assert np.array_equal(read("sepia/seed0/identity"), ds.src_test)  # the identity reference's output is its input
    assert not np.array_equal(read("sepia/seed0/e2gan"), ds.src_test)
    by_method = {r["method"]: r for r in manifest["runs"]}
    assert sorted(by_method) == sorted(METHODS)
    for sp in specs:
        rec, r = store.get(sp.key), by_method[sp.method.name]
        assert r["run_key"] == sp.key and r["n_images"] == rec.n_test == 5
        assert r["commit"] == rec.provenance["git"] and r["backends"] == rec.backends and r["eval_key"] == rec.eval_key


def test_exported_outputs_are_the_evaluated_ones(exported):
    """The regenerated outputs score exactly the PSNR stored in the record (the metric's own function)."""
    from e2gan_bench.metrics.quality import psnr

    suite, out, dest, _ = exported
    store, specs = _store_specs(suite, out)
    read = lambda d: np.stack([np.asarray(Image.open(p)) for p in sorted((dest / "sepia/seed0" / d).glob("*.png"))])
    for sp in specs:
        assert psnr(read(sp.method.name), read("teacher")) == pytest.approx(store.get(sp.key).psnr,
                                                                                       rel=1e-9), sp.method.name


def test_rerun_exports_identical_files_and_logs_nothing_new(exported, capsys):
    suite, out, dest, files = exported
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(out / "mlruns").resolve().as_uri())
    before = {r.info.run_id for r in client.search_runs([client.get_experiment_by_name("e2gan-bench/export-tiny")
                                                         .experiment_id])}
    capsys.readouterr()
    assert cli("run", "--suite", suite, "--out", out, "--save-outputs", dest, "--mlflow") == 0
    text = capsys.readouterr().out
    assert "0 run(s) computed, 2 already in the store" in text and "2 unchanged" in text
    assert _files(dest) == files
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")]  # no temporaries left
    exp = client.get_experiment_by_name("e2gan-bench/export-tiny").experiment_id
    assert {r.info.run_id for r in client.search_runs([exp])} == before and len(before) == 2


def test_mlflow_params_metrics_curve_artifacts(exported):
    suite, out, _, _ = exported
    from mlflow.tracking import MlflowClient

    store, specs = _store_specs(suite, out)
    client = MlflowClient(tracking_uri=(out / "mlruns").resolve().as_uri())
    exp = client.get_experiment_by_name("e2gan-bench/export-tiny").experiment_id
    for sp in specs:
        rec = store.get(sp.key)
        (run,) = client.search_runs([exp], filter_string=f"tags.`e2gan_bench.run_key` = '{sp.key}'")
        p, m, tags = run.data.params, run.data.metrics, run.data.tags
        assert (p["concept"], p["method"], p["seed"], p["run_key"], p["suite"]) == (
            "sepia", sp.method.name, "0", sp.key, "export-tiny")
        assert p["config.train_key"] == sp.train_key and p["config.method.arch"] == sp.method.arch
        assert {k[len("config.model."):]: json.loads(v) for k, v in p.items() if k.startswith("config.model.")} == \
            sp.model_kwargs
        assert m["psnr"] == pytest.approx(rec.psnr) and m["ssim"] == pytest.approx(rec.ssim)
        assert m["n_test"] == 5 and "kid" in m and m["trainable_params"] == rec.value("trainable_params")
        assert tags["e2gan_bench.commit"] == str(rec.provenance["git"])
        assert tags["e2gan_bench.backend.psnr"] == rec.backends["psnr"]
        assert run.info.status == "FINISHED" and tags["e2gan_bench.complete"] == "1"
        assert "samples.png" in {a.path for a in client.list_artifacts(run.info.run_id)}
        points = (rec.val_curve or {}).get("points", [])
        hist = client.get_metric_history(run.info.run_id, "val_psnr")
        assert len(points) >= (1 if sp.method.name == "identity" else 2)  # identity: its quality at step 0
        # the validation curve: one value per checkpoint, at its step
        assert sorted((h.step, h.value) for h in hist) == sorted((pt["step"], pytest.approx(pt["psnr"])) for pt in points)


def test_mlflow_replaces_a_run_whose_record_changed(exported, capsys):
    """A re-evaluated record (here: evaluate --force) replaces its MLflow run; still one per run key."""
    suite, out, _, _ = exported
    from mlflow.tracking import MlflowClient

    assert cli("evaluate", "--out", out, "--suite", suite, "--force") == 0
    capsys.readouterr()
    assert cli("run", "--suite", suite, "--out", out, "--mlflow") == 0
    assert "2 replaced" in capsys.readouterr().out
    client = MlflowClient(tracking_uri=(out / "mlruns").resolve().as_uri())
    exp = client.get_experiment_by_name("e2gan-bench/export-tiny").experiment_id
    store, specs = _store_specs(suite, out)
    runs = client.search_runs([exp])
    assert sorted(r.data.tags["e2gan_bench.run_key"] for r in runs) == sorted(s.key for s in specs)
    for r in runs:
        assert r.data.tags["e2gan_bench.record"].endswith(store.get(r.data.tags["e2gan_bench.run_key"]).created)


def test_bad_options_fail_before_anything_runs(tmp_path, capsys, monkeypatch):
    suite = write_suite(tmp_path, SUITE)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("not an export")
    assert cli("run", "--suite", suite, "--out", tmp_path / "o1", "--save-outputs", busy) == 2
    one_error_line(capsys, "--save-outputs", "busy")
    assert (busy / "mine.txt").read_text() == "not an export" and not (tmp_path / "o1" / "runs").exists()
    import builtins

    real_import = builtins.__import__

    def no_mlflow(name, *a, **k):
        if name == "mlflow" or name.startswith("mlflow."):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_mlflow)  # as if the extra were not installed
    assert cli("run", "--suite", suite, "--out", tmp_path / "o2", "--mlflow") == 2
    one_error_line(capsys, "e2gan-bench[mlflow]", "--mlflow")
    assert not (tmp_path / "o2" / "runs").exists()


def test_failed_export_leaves_the_previous_one_whole(exported, tmp_path, capsys):
    """An export that fails half-way (an artifact that cannot be read, after the teacher folder was written) leaves
    the earlier export as it was — or no folder at all — and no temporaries."""
    import shutil

    suite, out, dest, files = exported
    out2, dest2 = tmp_path / "out", tmp_path / "outputs"
    shutil.copytree(out, out2)
    shutil.copytree(dest, dest2)
    _, specs = _store_specs(suite, out2)
    (adapter,) = (out2 / "artifacts" / next(s.train_key for s in specs if s.method.name == "e2gan")).glob("*.safetensors")
    adapter.write_bytes(adapter.read_bytes()[:64])  # truncated
    capsys.readouterr()
    assert cli("run", "--suite", suite, "--out", out2, "--save-outputs", dest2) == 2
    one_error_line(capsys, adapter.name)
    assert _files(dest2) == files
    assert (dest2 / "manifest.json").read_bytes() == (dest / "manifest.json").read_bytes()
    assert cli("run", "--suite", suite, "--out", out2, "--save-outputs", tmp_path / "fresh") == 2
    assert not (tmp_path / "fresh").exists()  # not half-written: absent
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
