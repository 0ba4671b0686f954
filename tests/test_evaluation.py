"""Training apart from evaluation: training and evaluation keys, code fingerprints blind to docstrings,
re-scoring stored artifacts (`e2gan-bench evaluate`) without retraining."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cli, one_error_line

import e2gan_bench
from e2gan_bench import keys as keys_module
from e2gan_bench.config import BaseSpec, Method, load_suite
from e2gan_bench.data.dataset import DataSettings, build_dataset
from e2gan_bench.features import extractors
from e2gan_bench.features.extractors import ExtractorInfo, FeatureExtractor
from e2gan_bench.harness import spec as spec_module
from e2gan_bench.harness.spec import expand_suite
from e2gan_bench.harness.store import ResultsStore
from e2gan_bench.keys import code_fingerprint, code_version
from e2gan_bench.methods.artifacts import load_generator, training_summary
from e2gan_bench.methods.run import run_method
from e2gan_bench.models.generators import ARCHS
from e2gan_bench.models.tensors import generate
from e2gan_bench.models.text import HashEncoder
from e2gan_bench.resources import Catalog

PKG = Path(e2gan_bench.__file__).resolve().parent

SOURCE = '''"""Module docstring."""

import math


def area(r):
    """Area of a disk."""
    # pi r squared
    return math.pi * r ** 2


class Disk:
    """A disk."""

    def __init__(self, r):
        self.r = r
'''


def test_code_fingerprint_is_blind_to_docstrings_comments_and_formatting():
    same = [
        SOURCE.replace("Module docstring.", "Another module docstring, longer."),
        SOURCE.replace('"""Area of a disk."""', '"""Area of a disk.\n\n    Args: r, the radius.\n    """'),
        SOURCE.replace("    # pi r squared\n", "").replace("return math.pi * r ** 2", "return math.pi*r**2  # area"),
        SOURCE.replace('    """A disk."""\n\n', ""),
        SOURCE.replace("def area(r):", "def area(\n    r,\n):"),
    ]
    ref = code_fingerprint(SOURCE)
    for variant in same:
        assert code_fingerprint(variant) == ref, variant
    different = [
        SOURCE.replace("r ** 2", "r ** 3"),
        SOURCE.replace("import math", "import math as m").replace("math.pi", "m.pi"),
        SOURCE.replace('"""A disk."""', '"""A disk."""\n    kind = "disk"'),
        SOURCE + "\nX = 'not a docstring'\n",
    ]
    assert len({code_fingerprint(v) for v in different} | {ref}) == len(different) + 1


TINY = """name: tiny
concepts: [sepia]
methods:
  - {name: e2gan, overrides: {budget: {steps: 2, batch: 2}, data: {selector: all}}}
  - {name: part, method: full-finetune, overrides: {groups: [out], budget: {steps: 2, batch: 2}}}
  - {name: scratch, overrides: {budget: {steps: 2, batch: 2}}}
  - identity
base: {selector: list, concepts: [night], budget: {steps: 2, batch: 2}}
data: {resolution: 16, n_train: 6, n_test: 4}
model: {e2gan: {ngf: 4}, discriminator: {ndf: 4}}
eval: {kid_subsets: 2, kid_subset_size: 3, lpips: false, latency: false, samples_in_grid: 2}
"""


def test_docstring_edit_keeps_every_key_code_edit_changes_training_keys(tmp_path, monkeypatch):
    """The policy end to end, on a copy of the package: a docstring/comment edit in training code leaves the
    training keys (and so every stored result) as they were; a code edit changes them."""
    root = tmp_path / "pkg"
    shutil.copytree(PKG, root, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(spec_module, "code_version", lambda *parts: code_version(*parts, root=root))
    suite_file = tmp_path / "tiny.yaml"
    suite_file.write_text(TINY)

    def keys() -> list[tuple[str, str]]:
        keys_module._code_cache.clear()
        specs = expand_suite(load_suite(suite_file), Catalog(), str(suite_file), tmp_path / "cache")
        return [(s.train_key, s.key) for s in specs]

    before = keys()
    f = root / "methods" / "run.py"
    text = f.read_text()
    f.write_text(text.replace('"""Execute one method', '"""(Edited.) Execute one method', 1)
                 .replace("torch.manual_seed(seed)", "torch.manual_seed(seed)  # a new comment", 1))
    assert f.read_text() != text
    assert keys() == before
    f.write_text(text + "\n_EDITED = True\n")
    after = keys()
    assert all(a[0] != b[0] and a[1] != b[1] for a, b in zip(after, before, strict=True))
    f.write_text(text)
    assert keys() == before
    search = root / "methods" / "e2gan" / "rank_search.py"  # a method folder's code is in the fingerprint too
    search.write_text(search.read_text() + "\n_EDITED = True\n")
    assert all(a[0] != b[0] for a, b in zip(keys(), before, strict=True))


def test_run_key_is_training_key_plus_evaluation_settings(tmp_path):
    suite_file = tmp_path / "tiny.yaml"
    suite_file.write_text(TINY)
    a = expand_suite(load_suite(suite_file), Catalog(), str(suite_file), tmp_path / "cache")
    suite_file.write_text(TINY.replace("kid_subsets: 2", "kid_subsets: 3"))
    b = expand_suite(load_suite(suite_file), Catalog(), str(suite_file), tmp_path / "cache")
    assert [s.train_key for s in a] == [s.train_key for s in b]  # the trained artifacts are shared
    assert not {s.key for s in a} & {s.key for s in b}  # each evaluation has its own record


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    c = Catalog().concept("sepia")
    return build_dataset(c, DataSettings(16, 6, 4), cache), HashEncoder().encode(c.prompt)


@pytest.mark.parametrize("overrides", [
    {"init": "base", "trainable": "lora-crucial", "lora": {"rank": 2}},
    {"init": "base", "trainable": "all", "groups": ("out", "up")},
    {"init": "scratch", "trainable": "all"},
    {"init": "scratch", "trainable": "none"},
])
def test_load_generator_rebuilds_the_trained_generator(tiny_data, tmp_path, overrides):
    """What evaluation loads from the artifact folder computes exactly what training produced."""
    ds, emb = tiny_data
    mk = {"ngf": 4}
    torch.manual_seed(5)
    base_state = {k: v.clone() for k, v in ARCHS.get("e2gan")(**mk).state_dict().items()}
    method = Method(name="m", budget={"steps": 3, "batch": 2}, **overrides)
    outcome = run_method(method, ds, emb, 1, mk, 4, tmp_path, base_state=base_state)
    summary = training_summary(outcome)
    G = load_generator(method, mk, 1, tmp_path, summary, base_state)
    trained = generate(outcome.G, ds.src_test, emb.tokens[None], emb.mask[None])
    loaded = generate(G, ds.src_test, emb.tokens[None], emb.mask[None])
    assert np.array_equal(trained, loaded)
    if method.init == "base":  # without the base weights the stored delta means nothing
        with pytest.raises(e2gan_bench.errors.CheckpointError, match="base model"):
            load_generator(method, mk, 1, tmp_path, summary, None)


class _OtherWeights(FeatureExtractor):
    """Stands for another FID/KID extractor (what `weights add inception` switches to)."""

    def __init__(self) -> None:
        self.inner = extractors.ResNet18RandomInit()
        self.info = ExtractorInfo("resnet18-random-init", "random-init:other-weights", "PIL-bicubic-224", True)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.inner(images) * 2.0


@pytest.mark.slow  # a whole suite through the CLI: the slow tier (CI runs both)
def test_evaluate_rescores_stored_artifacts_without_retraining(tmp_path, capsys, monkeypatch):
    suite_file = tmp_path / "tiny.yaml"
    suite_file.write_text(TINY)
    out = tmp_path / "o"
    assert cli("evaluate", "--out", out) == 2  # nothing stored yet
    one_error_line(capsys, "--out", "run")
    assert cli("run", "--suite", suite_file, "--out", out) == 0
    store = ResultsStore(out)
    first = {r.key: r for _, r in store.records("tiny")}
    assert len(first) == 4
    art = {k: sorted((p.name, p.stat().st_mtime_ns) for p in store.artifact_dir(r.train_key).iterdir())
           for k, r in first.items()}
    capsys.readouterr()

    # nothing changed: nothing to do
    assert cli("evaluate", "--out", out, "--suite", suite_file) == 0
    assert "0 run(s) computed, 4 already in the store" in capsys.readouterr().out

    # new FID/KID weights: every run is re-scored from its artifact, nothing is trained
    monkeypatch.setitem(extractors._loaded, ("resnet18-random-init", 32), _OtherWeights())
    assert cli("evaluate", "--out", out) == 0  # every run in the store, from its stored configuration
    assert "4 re-evaluated from stored artifacts (not retrained)" in capsys.readouterr().out
    again = {r.key: r for _, r in store.records("tiny")}
    assert set(again) == set(first)
    for k, r in again.items():
        old = first[k]
        assert r.train_key == old.train_key and r.eval_key != old.eval_key
        assert r.backends["kid"] == "resnet18-random-init@random-init:other-weights" != old.backends["kid"]
        assert r.value("fid") != old.value("fid")
        for m in ("psnr", "ssim", "train_seconds", "train_flops", "stored_bytes", "trainable_params"):
            assert r.value(m) == old.value(m), (r.method, m)  # same artifact, same images, same cost
        assert sorted((p.name, p.stat().st_mtime_ns) for p in store.artifact_dir(r.train_key).iterdir()) == art[k]
        assert (store.run_dir(k) / "samples.png").is_file()
    # and the suite's report follows the new backend
    assert cli("run", "--suite", suite_file, "--out", out) == 0
    assert "0 run(s) computed, 4 already in the store" in capsys.readouterr().out
    md = (out / "reports" / "tiny" / "leaderboard.md").read_text()
    assert "other-weights" in md

    # --force re-scores current evaluations too; the base model must still be there
    assert cli("evaluate", "--out", out, "--suite", suite_file, "--force") == 0
    assert "4 re-evaluated" in capsys.readouterr().out
    (store.run_dir(next(iter(first))) / "config.json").unlink()  # as a run folder of an older version
    assert cli("evaluate", "--out", out, "--force") == 0
    text = capsys.readouterr().out
    assert "1 run(s) written by an older version" in text and "3 re-evaluated" in text
    shutil.rmtree(out / "cache" / "base")
    assert cli("evaluate", "--out", out, "--force") == 2
    one_error_line(capsys, "base model", "not stored")


def test_evaluate_counts_untrained_runs(tmp_path, capsys):
    suite_file = tmp_path / "tiny.yaml"
    suite_file.write_text(TINY.replace("  - identity\n", ""))
    out = tmp_path / "o"
    ResultsStore(out)
    assert cli("evaluate", "--out", out, "--suite", suite_file) == 0
    assert "3 not trained yet" in capsys.readouterr().out
    assert not (out / "artifacts").exists()


def test_base_selectors_share_one_random_draw():
    from e2gan_bench.training.base import select_base_concepts
    from e2gan_bench.training.selection import random_subset

    cat = Catalog()
    pool = [cat.concept(n) for n in cat.concept_names()[:10]]
    chosen = select_base_concepts(BaseSpec(selector="random", count=3, seed=4), pool, None)
    assert chosen == sorted(pool[i].name for i in random_subset(len(pool), 3, 4))
