"""The product contract, through the real CLI: bad input exits 2 with one line; the smoke suite runs
end to end, writes its reports, resumes, and survives interruption without half-written results."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest
from conftest import cli, one_error_line

from e2gan_bench.harness.store import ResultsStore

REQUIRED = ["concept", "method", "seed", "kid", "fid", "psnr", "ssim", "lpips", "train_seconds", "train_flops",
            "trainable_params", "stored_bytes"]


def test_unknown_suite(capsys, tmp_path):
    assert cli("run", "--suite", "nope", "--out", tmp_path) == 2
    one_error_line(capsys, "nope", "quick")


def test_malformed_suite_file(capsys, tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("name: s\nconcepts: [sepia\n")
    assert cli("run", "--suite", p, "--out", tmp_path / "o") == 2
    one_error_line(capsys, p)
    assert not (tmp_path / "o" / "runs").exists()


def test_unknown_concept_in_suite(capsys, tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("name: s\nconcepts: [sepia, no-such-concept]\nmethods: [identity]\n")
    assert cli("run", "--suite", p, "--out", tmp_path / "o") == 2
    one_error_line(capsys, p, "concepts[1]", "no-such-concept")


def test_unknown_method_and_bad_override(capsys, tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("name: s\nconcepts: [sepia]\nmethods: [identity, magic]\n")
    assert cli("run", "--suite", p, "--out", tmp_path / "o") == 2
    one_error_line(capsys, "magic", "methods[1]", "e2gan")
    p.write_text("name: s\nconcepts: [sepia]\nmethods: [{scratch: {budget: {steps: -1}}}]\n")
    assert cli("run", "--suite", p, "--out", tmp_path / "o") == 2
    one_error_line(capsys, "budget.steps", "-1")


def test_bad_concept_op_param(capsys, tmp_path):
    d = tmp_path / "concepts"
    d.mkdir()
    (d / "redder.yaml").write_text("name: redder\nprompt: make it redder\n"
                                   "teacher: {kind: procedural, ops: [{op: saturation, factor: lots}]}\n")
    s = tmp_path / "s.yaml"
    s.write_text("name: s\nconcepts: [redder]\nmethods: [identity]\n")
    assert cli("run", "--suite", s, "--out", tmp_path / "o", "--concepts-dir", d) == 2
    one_error_line(capsys, "redder.yaml", "teacher.ops[0]", "lots")


def test_missing_folder_and_store(capsys, tmp_path):
    assert cli("concepts", "list", "--concepts-dir", tmp_path / "missing") == 2
    one_error_line(capsys, "missing")
    assert cli("report", "--out", tmp_path / "nothing") == 2
    one_error_line(capsys, "nothing")


def test_console_script_exit_code(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    r = subprocess.run([sys.executable, "-m", "e2gan_bench", "run", "--suite", "nope", "--out", str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "nope" in r.stderr


def test_concepts_list_and_preview(capsys, tmp_path):
    assert cli("concepts", "list") == 0
    out = capsys.readouterr().out
    assert "pencil-sketch" in out and "concepts" in out
    dest = tmp_path / "p.png"
    assert cli("concepts", "preview", "pencil-sketch", "--dest", dest, "--n", 3, "--resolution", 32) == 0
    from PIL import Image

    im = Image.open(dest)
    assert im.size == (3 * 32, 2 * 32)
    assert cli("concepts", "preview", "no-such", "--dest", dest) == 2


def test_smoke_suite_end_to_end(smoke_out):
    rep = smoke_out / "reports" / "smoke"
    runs = pd.read_csv(rep / "runs.csv")
    assert set(REQUIRED) <= set(runs.columns)
    assert len(runs) == 2 * 5  # 2 concepts × 5 methods × 1 seed
    lb = pd.read_csv(rep / "leaderboard.csv")
    assert list(lb["method"]) == ["identity", "e2gan", "full-finetune", "scratch", "pix2pix"]
    by = lb.set_index("method")
    assert by.loc["identity", "stored_bytes"] == 0 and by.loc["identity", "train_seconds"] == 0
    assert by.loc["e2gan", "stored_bytes"] * 5 < by.loc["full-finetune", "stored_bytes"]
    assert by.loc["e2gan", "trainable_params"] < by.loc["scratch", "trainable_params"]
    assert (runs.loc[runs.method != "identity", "train_flops"] > 0).all()
    md = (rep / "leaderboard.md").read_text()
    assert "random-init" in md and "offline fallback" in md and "Base model" in md
    store = ResultsStore(smoke_out)
    rec = store.records("smoke")[0][1]
    assert rec.provenance["versions"]["torch"] and rec.backends["kid"].startswith("resnet18-random-init@random-init:")
    run_dir = store.run_dir(rec.key)
    assert (run_dir / "record.json").is_file() and (run_dir / "config.json").is_file()
    e2 = [r for m, r in store.records("smoke") if m == "e2gan"][0]
    art = store.artifact_dir(e2.train_key)
    assert (art / "adapter.safetensors").stat().st_size == e2.stored_bytes
    assert (art / "training.json").is_file() and (art / "curve.csv").is_file()
    assert e2.details["rank_pattern"] and e2.details["data"]["selector"] == "kmeans"


def test_rerun_is_cached_and_report_matches(smoke_out, capsys, tmp_path):
    before = pd.read_csv(smoke_out / "reports" / "smoke" / "runs.csv")
    assert cli("run", "--suite", "smoke", "--out", smoke_out) == 0
    assert "0 run(s) computed, 10 already in the store" in capsys.readouterr().out
    assert cli("report", "--out", smoke_out, "--suite", "smoke", "--dest", tmp_path / "rep") == 0
    again = pd.read_csv(tmp_path / "rep" / "runs.csv")
    pd.testing.assert_frame_equal(before.drop(columns=["eval_seconds"]), again.drop(columns=["eval_seconds"]))


def test_interrupt_then_resume(tmp_path, monkeypatch, capsys):
    suite = tmp_path / "mini.yaml"
    suite.write_text(
        "name: mini\nconcepts: [sepia]\nmethods: [identity, scratch, {pix2pix: {budget: {steps: 3}}}]\n"
        "data: {resolution: 16, n_train: 8, n_test: 6}\nmodel: {e2gan: {ngf: 4}, pix2pix-resnet: {ngf: 4, n_blocks: 1},"
        " discriminator: {ndf: 4}}\nbudget: {steps: 4, batch: 2}\neval: {kid_subsets: 2, kid_subset_size: 4, "
        "lpips: false}\n")
    out = tmp_path / "o"
    import e2gan_bench.harness.runner as runner

    real = runner.run_one
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(runner, "run_one", flaky)
    assert cli("run", "--suite", suite, "--out", out) == 130
    assert "resume" in capsys.readouterr().err
    store = ResultsStore(out)
    assert len(store.records("mini")) == 1
    assert not [p for p in (out / "runs").iterdir() if p.name.startswith(".")]  # nothing half-written
    monkeypatch.setattr(runner, "run_one", real)
    assert cli("run", "--suite", suite, "--out", out) == 0
    assert "2 run(s) computed, 1 already in the store" in capsys.readouterr().out
    assert len(store.records("mini")) == 3


def test_corrupt_base_checkpoint(smoke_out, capsys, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(smoke_out / "cache", out / "cache")
    base = next((out / "cache" / "base").iterdir())
    (base / "generator.safetensors").write_bytes(b"garbage")
    assert cli("run", "--suite", "smoke", "--out", out) == 2
    one_error_line(capsys, "generator.safetensors", "corrupt")


@pytest.mark.parametrize("cmd", [["suites", "list"], ["methods", "list"], ["suites", "show", "quick"]])
def test_listing_commands(cmd, capsys):
    assert cli(*cmd) == 0
    assert capsys.readouterr().out.strip()


#: report modules that need torch by their nature (the layer analysis loads generators); every other report and
#: CLI module must start without it — heavy imports live inside the functions that need them
TORCH_AT_IMPORT = {"e2gan_bench.report.layers"}


def test_report_and_cli_modules_start_without_torch():
    """Importing every report and CLI module (the statistics, tables, page, claims, every command) loads no torch:
    `--help`, listings, reports and verdicts start in about a second. Checked by what a fresh process imported."""
    import pkgutil

    import e2gan_bench.cli
    import e2gan_bench.report

    mods = sorted(m.name for pkg in (e2gan_bench.report, e2gan_bench.cli)
                  for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".") if m.name not in TORCH_AT_IMPORT)
    assert len(mods) > 30 and "e2gan_bench.report.stats" in mods and "e2gan_bench.cli.app" in mods
    code = ("import importlib, sys\n"
            f"for m in {mods!r}:\n"
            "    importlib.import_module(m)\n"
            "    if 'torch' in sys.modules:\n"
            "        print('torch after', m); break\n"
            "else:\n"
            "    print('clean')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "clean", (out.stdout, out.stderr[-500:])


def test_an_unknown_suite_is_answered_before_torch_is_imported(tmp_path):
    """Names are checked before the heavy libraries load (the answer then takes well under a second); checked by
    what the process imported, not by a clock."""
    import subprocess
    import sys

    for args in (["run", "--suite", "no-such-suite"], ["gate", "--suite", "no-such", "--candidate", "x"],
                 ["tune", "--suite", "no-such"], ["report", "--suite", "no-such", "--out", str(tmp_path)],
                 ["targets", "make", "--suite", "no-such", "--dest", str(tmp_path / "t.yaml")]):
        code = (f"import sys; from e2gan_bench.cli import main; rc = main({args!r}); "
                "print(rc, 'torch' in sys.modules)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
        assert out.stdout.split() == ["2", "False"], (args, out.stdout, out.stderr[-300:])
        assert "unknown suite" in out.stderr
    # a misspelt architecture in a suite's model: section, too
    (tmp_path / "typo.yaml").write_text("name: typo\nconcepts: [pencil-sketch]\nmethods: [e2gan]\nseeds: [0]\n"
                                        "model: {e2gna: {ngf: 16}}\n")
    code = ("import sys; from e2gan_bench.cli import main; "
            "rc = main(['run', '--suite', 'typo.yaml', '--out', 'o']); print(rc, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.split() == ["2", "False"], (out.stdout, out.stderr[-300:])
    assert "model.e2gna" in out.stderr and "unknown architecture (did you mean 'e2gan'?)" in out.stderr
