"""Early stop on reaching the target (``target: {reference: M, early_stop: true}``): the real pipeline at tiny size.

The stopped run here is the reference's twin (same method and seed, another label), so up to where it stops its
validation curve must equal the reference's point for point; the tolerance is chosen from the reference's own
curve so that the target lies strictly inside its training, and the twin must stop exactly at the first checkpoint
that reaches it."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import cli, one_error_line, write_suite

from e2gan_bench.harness.store import ResultsStore

BASE = """name: {name}
concepts: [negative]
methods: {methods}
data: {{resolution: 16, n_train: 12, n_test: 4}}
model: {{e2gan: {{ngf: 4}}, pix2pix-resnet: {{ngf: 4, n_blocks: 1}}, discriminator: {{ndf: 4}}}}
budget: {{steps: 24, batch: 2, lr: 0.004}}
curve: {{points: 6, first: 2, max_images: 4}}
eval: {{kid_subsets: 2, kid_subset_size: 3, lpips: false, latency: false, samples_in_grid: 2}}
"""
REF = "{name: ref, method: scratch}"
TWIN = "{name: twin, method: scratch}"


def _records(out) -> dict[str, dict]:
    store = ResultsStore(out)
    recs = {}
    for _, r in store.records():
        recs[r.method] = {"rec": r, "training": store.training(r.train_key), "train_key": r.train_key}
    return recs


def test_a_run_stops_at_the_first_checkpoint_that_reaches_its_reference_target(tmp_path):
    out = tmp_path / "out"
    # 1. the reference alone: its curve decides the tolerance
    assert cli("run", "--suite", write_suite(tmp_path, BASE.format(name="es-ref", methods=f"[{REF}]"), "a.yaml"),
               "--out", out) == 0
    ref_pts = _records(out)["ref"]["training"]["val_curve"]["points"]
    final = ref_pts[-1]["psnr"]
    inner = [p for p in ref_pts[1:-1] if ref_pts[0]["psnr"] < p["psnr"] <= final]
    assert inner, f"the tiny reference did not improve on its starting point: {ref_pts}"
    aim = inner[0]  # a quality the reference reached strictly inside its budget
    tol = final - aim["psnr"] + 1e-9
    expected = next(p["step"] for p in ref_pts if p["psnr"] >= final - tol)
    assert 0 < expected <= aim["step"] < 24

    # 2. the twin listed first, early stop on: the reference (already stored) sets its target
    suite = BASE.format(name="es", methods=f"[{TWIN}, {REF}]") + (
        f"target: {{metric: psnr, reference: ref, tolerance: {tol!r}, early_stop: true}}\n")
    assert cli("run", "--suite", write_suite(tmp_path, suite, "b.yaml"), "--out", out) == 0
    recs = _records(out)
    twin, ref = recs["twin"], recs["ref"]
    assert ref["training"]["steps"] == 24 and "early_stop" not in ref["training"]["details"]
    stop = twin["training"]["details"]["early_stop"]
    assert stop["target"] == pytest.approx(final - tol) and stop["budget"] == 24
    assert stop["stopped_at"] == expected and twin["training"]["steps"] == expected
    twin_pts = twin["training"]["val_curve"]["points"]
    assert twin_pts[-1]["step"] == expected
    def _q(points):  # everything but the wall-clock seconds
        return [{k: v for k, v in p.items() if k != "seconds"} for p in points]

    assert _q(twin_pts) == _q(ref_pts[:len(twin_pts)])  # the same training up to the stop, point for point
    # costs count the steps trained: FLOPs per step times the steps, a fraction of the reference's
    assert twin["rec"].train_flops == pytest.approx(ref["rec"].train_flops * expected / 24)
    assert twin["train_key"] != ref["train_key"]

    runs = pd.read_csv(out / "reports" / "es" / "runs.csv").set_index("method")
    assert runs.loc["twin", "stopped_at"] == expected and pd.isna(runs.loc["ref", "stopped_at"])
    assert runs.loc["twin", "steps_to_target"] == expected and bool(runs.loc["twin", "reached"])
    assert runs.loc["twin", "target"] == pytest.approx(final - tol)
    config = json.loads((ResultsStore(out).run_dir(twin["rec"].key) / "config.json").read_text())
    assert config["stop"]["reference"] == "ref" and config["stop"]["reference_train_key"] == ref["train_key"]

    # 3. run again: nothing is recomputed
    assert cli("run", "--suite", tmp_path / "b.yaml", "--out", out) == 0
    assert _records(out)["twin"]["rec"].created == twin["rec"].created

    # 4. a target already met by the starting point: no step is trained
    suite0 = suite.replace("name: es\n", "name: es0\n").replace(f"tolerance: {tol!r}", "tolerance: 1000.0")
    assert cli("run", "--suite", write_suite(tmp_path, suite0, "c.yaml"), "--out", out) == 0
    es0 = pd.read_csv(out / "reports" / "es0" / "runs.csv").set_index("method")
    assert es0.loc["twin", "stopped_at"] == 0 and es0.loc["twin", "train_flops"] == 0
    assert es0.loc["twin", "steps_to_target"] == 0


def test_without_early_stop_keys_are_unchanged_and_only_stopped_runs_change(tmp_path):
    from e2gan_bench.harness.spec import expand_suite
    from e2gan_bench.resources import Catalog, find_suite

    plain = BASE.format(name="k", methods=f"[{TWIN}, {REF}]") + "target: {metric: psnr, reference: ref}\n"
    stopped = plain.replace("reference: ref}", "reference: ref, early_stop: true}")
    keys = {}
    for label, text in (("plain", plain), ("stopped", stopped)):
        suite, path = find_suite(str(write_suite(tmp_path, text, f"{label}.yaml")))
        keys[label] = {s.method.name: s for s in expand_suite(suite, Catalog(), str(path), tmp_path / "cache")}
    assert keys["plain"]["ref"].train_key == keys["stopped"]["ref"].train_key
    assert keys["plain"]["twin"].train_key == keys["plain"]["ref"].train_key  # labels do not enter keys
    assert keys["stopped"]["twin"].train_key != keys["plain"]["twin"].train_key
    assert keys["plain"]["twin"].stop is None and keys["stopped"]["twin"].stop["metric"] == "psnr"


@pytest.mark.parametrize("target, field, value", [
    ("{metric: psnr, early_stop: true}", "target.early_stop", "True"),
    ("{metric: psnr, reference: identity, early_stop: true}", "target.reference", "identity"),
])
def test_early_stop_needs_a_trained_reference(tmp_path, capsys, target, field, value):
    suite = BASE.format(name="bad", methods=f"[identity, {REF}]") + f"target: {target}\n"
    path = write_suite(tmp_path, suite)
    assert cli("run", "--suite", path, "--out", tmp_path / "out") == 2
    one_error_line(capsys, path.name, field, value)
    assert not (tmp_path / "out" / "runs").exists()


@pytest.mark.slow
def test_worker_processes_wait_for_the_reference_run(tmp_path):
    """Two workers, the stopped run listed first: it must wait for its reference's training, never fail for lack of
    a target (a huge tolerance: the target is met by its starting point)."""
    suite = BASE.format(name="es-proc", methods=f"[{TWIN}, {REF}]") + (
        "target: {metric: psnr, reference: ref, tolerance: 1000.0, early_stop: true}\n")
    out = tmp_path / "out"
    assert cli("run", "--suite", write_suite(tmp_path, suite), "--out", out, "--executor", "process",
               "--jobs", "2") == 0
    runs = pd.read_csv(out / "reports" / "es-proc" / "runs.csv").set_index("method")
    assert (runs["status"] == "ok").all()
    assert runs.loc["twin", "stopped_at"] == 0 and runs.loc["twin", "train_flops"] == 0
    assert pd.isna(runs.loc["ref", "stopped_at"]) and runs.loc["ref", "train_flops"] > 0
