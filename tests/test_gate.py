"""`e2gan-bench gate`: reference and candidate run on a gate suite (shared runs reused), compared concept by
concept with the suite's tolerances, level and calibration. The real pipeline at 16 px."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import cli, one_error_line, write_suite

from e2gan_bench.resources import builtin_dir

GATE_SUITE = """name: gate-tiny
concepts: [sepia, negative, night, vivid-colors]
methods: [{name: ref, method: scratch}]
data: {resolution: 16, n_train: 8, n_test: 4, n_val: 4}
model: {e2gan: {ngf: 4}, discriminator: {ndf: 4}}
budget: {steps: 40, batch: 2}
curve: {points: 2, first: 2, max_images: 4}
eval: {kid_subsets: 2, kid_subset_size: 3, lpips: false, latency: false, samples_in_grid: 0}
gate:
  reference: ref
  tolerances: ["psnr:abs=0.2", "kid:off", "fid:off"]
  alpha: 0.05
  calibration: {false_alarm_rate: 0.04, false_alarm_comparisons: 28, mde_psnr_db: 0.5, measured: "a test"}
"""

# the reference's resolved recipe (methods/scratch.yaml with the suite's budget) under another name
_scratch = yaml.safe_load((builtin_dir("baselines") / "scratch" / "scratch.yaml").read_text())
SAME = yaml.safe_dump({"name": "same", "arch": _scratch["arch"], "init": _scratch["init"],
                       "trainable": _scratch["trainable"], "budget": {**_scratch["budget"], "steps": 40, "batch": 2}})
UNTRAINED = "name: untrained\narch: e2gan\ninit: scratch\ntrainable: all\nbudget: {steps: 0}\n"


@pytest.mark.slow  # a whole suite through the CLI: the slow tier (CI runs both)
def test_gate_end_to_end_reuses_the_reference_and_prints_the_calibration(tmp_path, capsys):
    mdir = tmp_path / "methods"
    mdir.mkdir()
    (mdir / "same.yaml").write_text(SAME)
    (mdir / "untrained.yaml").write_text(UNTRAINED)
    suite = write_suite(tmp_path, GATE_SUITE)
    out = tmp_path / "out"
    capsys.readouterr()
    # the reference's own settings under another name: the same training, identical numbers — a pass
    rc = cli("gate", "--suite", suite, "--candidate", "same", "--methods-dir", mdir, "--out", out,
             "--json", tmp_path / "same.json")
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "4 run(s) computed, 4 already in the store" in text  # one training serves both names
    same = json.loads((tmp_path / "same.json").read_text())
    psnr = next(m for m in same["metrics"] if m["metric"] == "psnr")
    assert same["verdict"] == "PASS" and psnr["diff"] == 0.0 and psnr["n"] == 4 and psnr["level"] == "concept"
    assert same["calibration"]["false_alarm_rate"] == 0.04 and same["alpha"] == 0.05
    assert same["reference"]["role"] == "REFERENCE" and same["reference"]["method"] == "ref"
    flat = " ".join(text.split())  # the terminal wraps long lines wherever their length puts a break
    assert "false alarms 4.0% in A/A replicates" in flat and "0.5 dB with 80 % power" in flat
    # an untrained candidate: the reference's runs are found in the store, only the candidate is computed
    rc = cli("gate", "--suite", suite, "--candidate", "untrained", "--methods-dir", mdir, "--out", out,
             "--markdown", tmp_path / "v.md", "--json", tmp_path / "u.json")
    text = capsys.readouterr().out
    assert "4 run(s) computed, 4 already in the store" in text
    u = json.loads((tmp_path / "u.json").read_text())
    psnr = next(m for m in u["metrics"] if m["metric"] == "psnr")
    assert psnr["diff"] < -0.2 and (rc == 1) == (psnr["status"] == "regressed") and rc in (0, 1)
    md = (tmp_path / "v.md").read_text()
    assert "Gate calibration of this suite" in md and "Holm" in md


def test_gate_bad_inputs_are_one_line(tmp_path, capsys):
    suite = write_suite(tmp_path, GATE_SUITE)
    capsys.readouterr()
    assert cli("gate", "--suite", suite, "--out", tmp_path / "o") == 2
    one_error_line(capsys, "--candidate")
    assert cli("gate", "--suite", suite, "--candidate", "ref", "--out", tmp_path / "o") == 2
    one_error_line(capsys, "unknown method", "ref")
    nogate = write_suite(tmp_path, GATE_SUITE.split("gate:\n")[0], name="nogate.yaml")
    assert cli("gate", "--suite", nogate, "--candidate", "scratch", "--out", tmp_path / "o") == 2
    one_error_line(capsys, "gate.reference")
    assert not (tmp_path / "o").exists()
