"""One plugin contract: unique names, close-name suggestions, a Params model per plugin of every kind, hooks
declared on the base classes — and a metric added in one file shows up in a run, a report and a gate."""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import cli, one_error_line
from pydantic import BaseModel

from e2gan_bench.config import Concept
from e2gan_bench.data.dataset import DataSettings, dataset_key
from e2gan_bench.data.ops import OPS, op_params
from e2gan_bench.data.sources import SOURCES
from e2gan_bench.data.teachers import TEACHERS, DiffusersTeacher, ProceduralTeacher, Teacher
from e2gan_bench.errors import ConfigError
from e2gan_bench.harness.store import ResultsStore
from e2gan_bench.methods.contract import TRAINABLES
from e2gan_bench.methods.e2gan.rank_search import RANK_SEARCHES
from e2gan_bench.metrics import METRICS, all_metrics
from e2gan_bench.plugins import params_model
from e2gan_bench.registry import Registry
from e2gan_bench.report.compare.gates import metric_table
from e2gan_bench.training.base import BASE_SELECTORS
from e2gan_bench.training.selection import DATA_SELECTORS

pytestmark = pytest.mark.usefixtures("allow_code")  # these tests name their plugins as module:attr in files

README = Path(__file__).resolve().parents[1] / "README.md"
KINDS = {"teacher": TEACHERS, "source": SOURCES, "op": OPS, "rank_search": RANK_SEARCHES,
         "base_selector": BASE_SELECTORS, "data_selector": DATA_SELECTORS, "metric": METRICS,
         "trainable": TRAINABLES}


def test_registry_refuses_duplicates_and_suggests_close_names(monkeypatch):
    reg: Registry = Registry("demo")

    @reg.register("a")
    def a():
        return "a"

    reg.add("a", a)  # the same object again: fine
    with pytest.raises(ConfigError, match="duplicate demo name") as e:
        reg.register("a")(lambda: "b")
    assert "test_plugins" in e.value.line()  # names who holds the name
    ep = metadata.EntryPoint(name="a", value="json:loads", group="e2gan_bench.demo")
    monkeypatch.setattr(metadata, "entry_points", lambda group: [ep] if group == "e2gan_bench.demo" else [])
    with pytest.raises(ConfigError, match="entry point a = json:loads"):
        reg.names()
    with pytest.raises(ConfigError) as e:
        TEACHERS.get("procedurl", file="c.yaml", field="teacher.kind")
    assert "did you mean 'procedural'?" in e.value.line() and "c.yaml" in e.value.line()


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_takes_a_params_model(kind):
    reg = KINDS[kind]
    assert reg.group == f"e2gan_bench.{kind}"
    for name, plugin in reg.entries():
        model = op_params(plugin) if kind == "op" else params_model(plugin)
        assert issubclass(model, BaseModel) and model.model_config.get("extra") == "forbid", (kind, name)
    assert f"`e2gan_bench.{kind}`" in README.read_text()  # the README shows how to add one


def test_hooks_are_declared_on_the_base_classes():
    assert Teacher.uses_prompt is False and Teacher.provides_pairs is False
    assert DiffusersTeacher.uses_prompt and not ProceduralTeacher.uses_prompt

    class PromptedSepia(ProceduralTeacher):
        uses_prompt = True

    c = Concept(name="x", prompt="make it sepia", teacher={"kind": "procedural", "ops": [{"op": "sepia"}]})
    other = c.model_copy(update={"prompt": "make it brown"})
    s = DataSettings(16, 4, 2)
    assert dataset_key(c, s) == dataset_key(other, s)  # the procedural teacher ignores the prompt
    TEACHERS.add("prompted-sepia-test", PromptedSepia)
    try:
        cp = Concept.model_validate({**c.model_dump(), "teacher": {"kind": "prompted-sepia-test", "ops": [{"op": "sepia"}]}})
        op = cp.model_copy(update={"prompt": "make it brown"})
        assert dataset_key(cp, s) != dataset_key(op, s)  # a teacher that uses the prompt: it enters the key
    finally:
        TEACHERS._items.pop("prompted-sepia-test")


SUITE = """name: tiny
concepts: [sepia]
methods: [{name: e2gan, overrides: {budget: {steps: 2, batch: 2}, data: {selector: all}}}]
base:
  selector: list
  concepts: [night]
  budget: {steps: 2, batch: 2}
data: {resolution: 16, n_train: 6, n_test: 4}
model: {e2gan: {ngf: 4}, discriminator: {ndf: 4}}
eval: {kid_subsets: 2, kid_subset_size: 3, lpips: false, latency: false, samples_in_grid: 0%s}
"""


@pytest.mark.parametrize("override, needles", [
    ("{lora: {search: e2gan, search_params: {trial_step: 3}}}", ["methods[0].lora.search_params.trial_step",
                                                                  "trial_steps"]),
    ("{lora: {search: e2gan, search_params: {probe: zero}}}", ["methods[0].lora.search_params.probe", "zero"]),
    ("{data: {selector: kmeans, features: clipz}}", ["methods[0].data.features", "clipz"]),
    ("{data: {selector: random, params: {k: 3}}}", ["methods[0].data.params.k"]),
    ("{lora: {search: unifrom}}", ["methods[0].lora.search", "did you mean 'uniform'"]),
])
def test_plugin_parameters_fail_before_training(tmp_path, capsys, override, needles):
    s = tmp_path / "s.yaml"
    s.write_text(f"name: s\nconcepts: [sepia]\nmethods: [{{name: e2gan, overrides: {override}}}]\n"
                 "base: {concepts: [night]}\n")
    assert cli("run", "--suite", s, "--out", tmp_path / "o") == 2
    one_error_line(capsys, "s.yaml", *needles)
    assert not (tmp_path / "o" / "artifacts").exists()


def test_metric_parameters_are_checked(tmp_path, capsys):
    s = tmp_path / "s.yaml"
    s.write_text(SUITE % ", params: {kid: {subsets: 3}}")
    assert cli("run", "--suite", s, "--out", tmp_path / "o") == 2
    one_error_line(capsys, "s.yaml", "eval.params.kid.subsets")
    s.write_text(SUITE % ", params: {nope: {}}")
    assert cli("run", "--suite", s, "--out", tmp_path / "o") == 2
    one_error_line(capsys, "s.yaml", "eval.params", "nope", "unknown metric")


def install_mae_plugin(monkeypatch) -> None:
    """tests/plugins/my_metric.py installed as the entry point ``mae`` of group ``e2gan_bench.metric``."""
    ep = metadata.EntryPoint(name="mae", value="plugins.my_metric:MeanAbsError", group="e2gan_bench.metric")
    real = metadata.entry_points
    monkeypatch.setattr(metadata, "entry_points",
                        lambda group=None, **kw: [ep] if group == "e2gan_bench.metric" else real(group=group, **kw))
    monkeypatch.setattr(METRICS, "_items", dict(METRICS._items))  # forgotten again after the test
    monkeypatch.setattr(METRICS, "_entry_points_loaded", False)


def test_a_metric_in_one_file_reaches_run_report_and_gate(tmp_path, capsys, monkeypatch):
    suite = tmp_path / "tiny.yaml"
    suite.write_text(SUITE % "")
    out = tmp_path / "o"
    assert cli("run", "--suite", suite, "--out", out) == 0
    store = ResultsStore(out)
    (_, before), = store.records("tiny")
    assert before.value("mae") is None and "mae" not in [m.name for m in all_metrics()]
    trained = (store.artifact_dir(before.train_key) / "training.json").stat().st_mtime_ns
    capsys.readouterr()

    install_mae_plugin(monkeypatch)
    assert "mae" in [m.name for m in all_metrics()]
    # a run: the new metric changes the evaluation key, so the stored run is re-evaluated — not retrained
    assert cli("run", "--suite", suite, "--out", out) == 0
    text = capsys.readouterr().out
    assert "0 run(s) computed" in text and "1 re-evaluated from stored artifacts" in text
    (_, rec), = store.records("tiny")
    assert rec.train_key == before.train_key and rec.eval_key != before.eval_key
    assert (store.artifact_dir(rec.train_key) / "training.json").stat().st_mtime_ns == trained
    assert rec.value("train_seconds") == before.value("train_seconds") and rec.value("psnr") == before.value("psnr")
    assert rec.value("mae") > 0 and rec.backends["mae"] == "numpy"
    # a report: its column, its format, its direction
    rep = out / "reports" / "tiny"
    assert "mae" in pd.read_csv(rep / "runs.csv").columns and "mae" in pd.read_csv(rep / "leaderboard.csv").columns
    md = (rep / "leaderboard.md").read_text()
    assert re.search(r"Lower is better for [a-z_, ]*\bmae\b", md)
    assert "| mae |" in metric_table().replace("`", "")
    # its display, as the metric declares it (label, headline, by_concept): the page's main table puts it in the
    # quality group under its header, the page has its per-concept table, the terminal's table shows it
    page = json.loads((rep / "leaderboard.json").read_text())["leaderboard_main"]
    quality = next(g["columns"] for g in page["groups"] if g["label"].startswith("Quality"))
    assert quality[-1] == "mae" and "MAE (grey levels)" in page["headers"]
    assert "test MAE (grey levels) vs teacher" in (rep / "leaderboard.html").read_text()
    assert re.search(r"\bmae\b", text.split("re-evaluated")[-1])
    assert cli("metrics", "list") == 0 and "mae" in capsys.readouterr().out
    assert cli("doctor", "--json") == 0 and '"mae"' in capsys.readouterr().out
    # a gate: its default tolerance (abs 2) fails a candidate 5 grey levels worse
    worse = rec.model_copy(update={"key": rec.key + "-worse", "method": "e2gan-worse", "mae": rec.mae + 5.0})
    store.commit(worse, store.staging(worse.key), "tiny")
    md_path = tmp_path / "verdict.md"
    assert cli("compare", out, out, "--suite", "tiny", "--reference-method", "e2gan", "--candidate-method",
               "e2gan-worse", "--markdown", md_path) == 1
    verdict = md_path.read_text()
    assert verdict.startswith("# compare: REGRESSED") and "worse beyond tolerance on mae" in verdict
    assert "`mae` abs 2" in verdict and "two grey levels" in verdict
    assert cli("compare", out, out, "--suite", "tiny", "--reference-method", "e2gan", "--candidate-method",
               "e2gan-worse", "--gate", "mae:off") == 0
    # and its parameters, like every plugin's, come from the suite (eval.params.<name>)
    suite.write_text(SUITE % ", params: {mae: {channel: 0}}")
    assert cli("run", "--suite", suite, "--out", out) == 0
    one_channel = [r for m, r in ResultsStore(out).records("tiny") if m == "e2gan" and r.key != rec.key]
    assert one_channel and one_channel[0].train_key == rec.train_key and one_channel[0].mae != rec.mae


@pytest.mark.slow
def test_a_method_in_one_folder_runs_end_to_end(tmp_path, capsys):
    """A new method is one folder (tests/plugins/bitfit/: the trainable-set plugin — only the biases train, only they
    are kept —, the preset naming it and its card): added with --methods-dir, it trains from the base model, its
    artifact is what it chose to keep, `evaluate --force` rebuilds the generator through its own `load`, and nothing
    in the package names it."""
    import e2gan_bench

    mdir = Path(__file__).parent / "plugins" / "bitfit"
    assert sorted(p.name for p in mdir.iterdir() if not p.name.startswith("__pycache__")) == [
        "README.md", "__init__.py", "bitfit.yaml"]
    suite = tmp_path / "tiny.yaml"
    suite.write_text((SUITE % "").replace(
        "methods: [{name: e2gan, overrides: {budget: {steps: 2, batch: 2}, data: {selector: all}}}]",
        "methods: [bitfit, {name: e2gan, overrides: {budget: {steps: 2, batch: 2}, data: {selector: all}}}]"))
    out = tmp_path / "o"
    assert cli("run", "--suite", suite, "--out", out, "--methods-dir", mdir) == 0
    store = ResultsStore(out)
    recs = dict(store.records("tiny"))
    rec = recs["bitfit"]
    summary = store.training(rec.train_key)
    assert summary["artifacts"] == ["biases.safetensors"] and summary["details"]["bias_only"]
    from e2gan_bench.models.generators import ARCHS

    G = ARCHS.get("e2gan")(ngf=4)
    n_bias = sum(p.numel() for n, p in G.named_parameters() if n.endswith(".bias"))
    assert rec.value("trainable_params") == n_bias
    assert 0 < rec.value("stored_bytes") < recs["e2gan"].value("stored_bytes") * 10
    assert cli("evaluate", "--out", out, "--suite", suite, "--force", "--methods-dir", mdir) == 0
    again = dict(ResultsStore(out).records("tiny"))["bitfit"]
    assert again.value("psnr") == rec.value("psnr") and again.value("kid") == rec.value("kid")
    package = Path(e2gan_bench.__file__).parent
    assert not [p for p in package.rglob("*.py") if "BiasOnly" in p.read_text()]


def test_readme_metric_table_is_generated_from_the_registry(capsys):
    """The README's table is `e2gan-bench metrics list --markdown` (regenerate it when a metric changes)."""
    text = README.read_text()
    start, end = "<!-- metric-table: generated by `e2gan-bench metrics list --markdown` -->", "<!-- /metric-table -->"
    assert start in text and end in text
    assert text.split(start)[1].split(end)[0].strip() == metric_table()
    assert cli("metrics", "list", "--markdown") == 0
    assert capsys.readouterr().out.strip() == metric_table()


def test_gate_help_and_defaults_come_from_the_registry():
    from e2gan_bench.report.compare.gates import default_gates

    gated = {m.name for m in all_metrics() if m.gate.gated}
    assert set(default_gates()) == gated and {"psnr", "kid", "stored_bytes"} <= gated
    assert all(m.gate.reason for m in all_metrics())  # every tolerance (or its absence) says why
    assert not np.isnan(sum(g.abs or g.rel for g in default_gates().values()))
