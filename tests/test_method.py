"""The E2GAN method's pieces: rank-search plugins, base-concept selection, layer analysis, recipes as data."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from conftest import cli  # noqa: E402

from e2gan_bench.config import BaseSpec, Method  # noqa: E402
from e2gan_bench.data.dataset import DataSettings, build_dataset  # noqa: E402
from e2gan_bench.errors import ConfigError  # noqa: E402
from e2gan_bench.harness.store import ResultsStore  # noqa: E402
from e2gan_bench.methods.e2gan.rank_search import RANK_SEARCHES, RankSearchContext  # noqa: E402
from e2gan_bench.methods.run import run_method  # noqa: E402
from e2gan_bench.models.generators import ARCHS, CRUCIAL_GROUPS  # noqa: E402
from e2gan_bench.models.lora import full_ranks, lora_param_count, lora_targets  # noqa: E402
from e2gan_bench.models.text import CachedPromptEncoder, HashEncoder  # noqa: E402
from e2gan_bench.plugins import parse_params  # noqa: E402
from e2gan_bench.resources import Catalog  # noqa: E402
from e2gan_bench.training.base import concept_embedding, select_base_concepts  # noqa: E402

TINY = {"ngf": 4}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    c = Catalog().concept("sepia")
    ds = build_dataset(c, DataSettings(16, 10, 4), cache)
    emb = HashEncoder().encode(c.prompt)
    return ds, emb


def _ctx(name, params=None, trial=None):
    G = ARCHS.get("e2gan")(**TINY)
    targets = lora_targets(G, CRUCIAL_GROUPS)
    groups = {g: [n for n in names if n in targets] for g, names in G.layer_groups().items()}
    calls = []

    def fake_trial(pattern, steps):  # deterministic stand-in: only rank on 'out' helps
        calls.append((dict(pattern), steps))
        return 1.0 - 0.01 * sum(r for t, r in pattern.items() if t.startswith("out"))

    typed = parse_params(RANK_SEARCHES.get(name), params, field="lora.search_params")
    ctx = RankSearchContext(targets, groups, 2, typed, 0, trial or fake_trial, lambda p: lora_param_count(G, p),
                            full_rank=full_ranks(G, targets))
    return ctx, calls


@pytest.mark.parametrize("name", ["fixed", "uniform", "random", "e2gan"])
def test_builtin_searches_return_valid_patterns(name):
    ctx, calls = _ctx(name, {"scale": 2} if name != "fixed" else {})
    pattern = RANK_SEARCHES.get(name)(ctx)
    assert set(pattern) == set(ctx.targets) and all(isinstance(r, int) and r >= 1 for r in pattern.values())
    if name in ("random", "e2gan"):
        assert ctx.param_count(pattern) <= ctx.budget(ctx.params.scale)
        assert ctx.param_count(pattern) > ctx.param_count(ctx.uniform(ctx.rank)) * 0.9
    if name == "e2gan":  # one reference trial + one per group with targets, then budget follows the gains
        assert len(calls) == 1 + sum(1 for v in ctx.groups.values() if v)
        # the budget goes where the trials found gains, up to each layer's full rank
        assert all(pattern[t] == ctx.full_rank[t] > ctx.rank for t in ctx.groups["out"])
        assert all(r <= ctx.full_rank[t] for t, r in pattern.items())  # never beyond a layer's full rank
    if name == "uniform":
        assert set(pattern.values()) == {4}


def test_random_is_seeded():
    a, _ = _ctx("random", {"scale": 2})
    b, _ = _ctx("random", {"scale": 2})
    assert RANK_SEARCHES.get("random")(a) == RANK_SEARCHES.get("random")(b)


def test_grad_spectrum_runs_on_real_gradients(tiny_data, tmp_path):
    ds, emb = tiny_data
    r = Method(name="x", arch="e2gan", init="scratch", trainable="lora-crucial",
                     lora={"rank": 2, "search": "grad-spectrum", "search_params": {"batches": 2}},
                     budget={"steps": 2, "batch": 2})
    o = run_method(r, ds, emb, 0, TINY, 4, tmp_path)
    pat = o.details["rank_pattern"]
    assert set(pat) == set(lora_targets(ARCHS.get("e2gan")(**TINY), CRUCIAL_GROUPS))
    assert len(set(pat.values())) > 1  # not uniform: allocation follows the gradients
    assert o.search_flops > 0 and o.details["search_log"] and all("effective_rank" in e for e in o.details["search_log"])
    again = run_method(r, ds, emb, 0, TINY, 4, tmp_path / "b")
    assert again.details["rank_pattern"] == pat


def test_e2gan_search_cost_counts_in_training(tiny_data, tmp_path):
    ds, emb = tiny_data
    r = Method(name="x", arch="e2gan", trainable="lora-crucial",
                     lora={"rank": 1, "search": "e2gan", "search_params": {"trial_steps": 2}},
                     budget={"steps": 2, "batch": 2})
    o = run_method(r, ds, emb, 0, TINY, 4, tmp_path)
    assert o.search_seconds > 0 and o.search_flops > 0
    assert len(o.details["search_log"]) == 1 + len(CRUCIAL_GROUPS)


def test_plugin_from_user_code(tiny_data, tmp_path, allow_code):
    ds, emb = tiny_data
    r = Method(name="x", arch="e2gan", trainable="lora-crucial",
                     lora={"rank": 2, "search": "plugins.my_search:out_heavy"}, budget={"steps": 1, "batch": 2})
    o = run_method(r, ds, emb, 0, TINY, 4, tmp_path)
    assert o.details["rank_pattern"]["out.conv"] == 8 and o.details["search_log"] == [{"note": "out-heavy"}]
    r6 = r.model_copy(update={"lora": r.lora.model_copy(update={"search_params": {"rank": 6}})})
    assert run_method(r6, ds, emb, 0, TINY, 4, tmp_path / "b").details["rank_pattern"]["out.conv"] == 6  # its Params


def test_partial_full_finetune_stores_only_its_groups(tiny_data, tmp_path):
    ds, emb = tiny_data
    G = ARCHS.get("e2gan")(**TINY)
    base_state = G.state_dict()
    r = Method(name="x", arch="e2gan", init="base", trainable="all", groups=("out",), budget={"steps": 2, "batch": 2})
    o = run_method(r, ds, emb, 0, TINY, 4, tmp_path, base_state=base_state)
    assert o.train.trainable_params == sum(p.numel() for p in G.out.parameters())
    assert o.artifacts == ["groups.safetensors"] and o.stored_bytes < 4 * sum(p.numel() for p in G.parameters()) / 4
    for k, v in o.G.state_dict().items():  # only the chosen group moved
        if not k.startswith("out"):
            assert torch.equal(v, base_state[k]), k


def test_search_params_are_typed(tiny_data, tmp_path):
    """A search's parameters are its Params model: unknown names and bad values fail before training, naming the
    field; the typed values reach the search."""
    with pytest.raises(ConfigError) as e:
        _ctx("e2gan", {"scale": 2, "trial_step": 5})
    assert e.value.field == "lora.search_params.trial_step" and "trial_steps" in e.value.line()
    with pytest.raises(ConfigError) as e:
        _ctx("uniform", {"scale": -1})
    assert e.value.field == "lora.search_params.scale"
    ctx, _ = _ctx("grad-spectrum", {"energy": 0.5})
    assert (ctx.params.energy, ctx.params.batches, ctx.params.scale) == (0.5, 4, 2.0)
    with pytest.raises(ConfigError, match="lora.search_params"):  # fixed takes no parameters
        _ctx("fixed", {"scale": 2})


def test_unknown_layer_group(tiny_data, tmp_path):
    ds, emb = tiny_data
    r = Method(name="x", arch="e2gan", trainable="lora-crucial", groups=("nope",), budget={"steps": 1})
    with pytest.raises(ConfigError, match="layer group"):
        run_method(r, ds, emb, 0, TINY, 4, tmp_path)


def test_base_selectors(tmp_path):
    cat = Catalog()
    pool = [cat.concept(n) for n in cat.concept_names()[:14]]
    enc = CachedPromptEncoder(HashEncoder(), tmp_path)
    spec = BaseSpec(selector="representative", count=4)
    rep = select_base_concepts(spec, pool, enc)
    assert len(rep) == 4 == len(set(rep)) and set(rep) <= {c.name for c in pool}
    assert rep == select_base_concepts(spec, pool, enc)
    rnd_spec = BaseSpec(selector="random", count=4)
    rnd = select_base_concepts(rnd_spec, pool, enc)
    assert len(rnd) == 4 and rnd == select_base_concepts(rnd_spec, pool, enc)
    assert select_base_concepts(rnd_spec.model_copy(update={"seed": 1}), pool, enc) != rnd
    assert len(select_base_concepts(BaseSpec(selector="single"), pool, enc)) == 1
    assert select_base_concepts(BaseSpec(selector="single", concepts=("sepia",)), pool, enc) == ["sepia"]
    with pytest.raises(ConfigError) as e:  # list needs names; the selector's Params say so, naming the field
        select_base_concepts(BaseSpec(selector="list"), pool, enc, file="s.yaml")
    assert e.value.field == "base.concepts" and "s.yaml" in e.value.line()
    with pytest.raises(ConfigError) as e:  # a selector's own parameters live under base.params
        select_base_concepts(BaseSpec(selector="random", params={"counts": 3}), pool, enc)
    assert e.value.field == "base.params.counts" and "count" in e.value.line()
    e = concept_embedding(pool[0], enc)
    assert e.shape == (384 + 256,) and np.isfinite(e).all()
    # the teacher effect separates concepts that share words: sepia vs negative differ in the effect part
    a, b = concept_embedding(cat.concept("sepia"), enc), concept_embedding(cat.concept("negative"), enc)
    assert np.linalg.norm(a[384:] - b[384:]) > 0.1


TINY_SUITE = """name: tiny
concepts: [sepia]
methods: [{name: e2gan, overrides: {budget: {steps: 2, batch: 2}, data: {selector: all}}}]
base:
  selector: representative
  count: 2
  pool: [night, cartoon, pencil-sketch]
  budget: {steps: 2, batch: 2}
data: {resolution: 16, n_train: 6, n_test: 4}
model: {e2gan: {ngf: 4}, discriminator: {ndf: 4}}
eval: {kid_subsets: 2, kid_subset_size: 3, lpips: false, latency: false, samples_in_grid: 0}
"""


def test_rank_search_option_end_to_end(tmp_path, capsys):
    suite = tmp_path / "tiny.yaml"
    suite.write_text(TINY_SUITE)
    out = tmp_path / "o"
    assert cli("run", "--suite", suite, "--out", out, "--rank-search", "plugins.my_search:rank_one_everywhere") == 0
    store = ResultsStore(out)
    (method, rec), = store.records("tiny")
    assert method == "e2gan-rs-rank-one-everywhere"
    assert set(rec.details["rank_pattern"].values()) == {1}
    assert len(rec.provenance) and rec.details["rank_search"] == "plugins.my_search:rank_one_everywhere"
    capsys.readouterr()
    assert cli("run", "--suite", suite, "--out", out, "--rank-search", "no.such:thing") == 2
    assert "--rank-search" in capsys.readouterr().err


@pytest.mark.slow
def test_layer_analysis_end_to_end(tmp_path, capsys):
    suite = tmp_path / "tiny.yaml"
    suite.write_text(TINY_SUITE)
    out = tmp_path / "o"
    assert cli("analyze", "layers", "--suite", suite, "--out", out, "--steps", "2", "--rank", "1") == 0
    md = (out / "reports" / "tiny-layers" / "layers.md").read_text()
    assert "lora-out" in md and "full-transformer" in md and "crucial set" in md
    import pandas as pd

    t = pd.read_csv(out / "reports" / "tiny-layers" / "layers.csv")
    groups = set(ARCHS.get("e2gan")(ngf=4).layer_groups())
    assert {f"lora-{g}" for g in groups} | {f"full-{g}" for g in groups} <= set(t["method"])
    assert (t["params"] > 0).all()
    # re-running reuses every finished run: no record is recomputed
    before = {r.key: r.created for _, r in ResultsStore(out).records()}
    assert cli("analyze", "layers", "--suite", suite, "--out", out, "--steps", "2", "--rank", "1") == 0
    assert {r.key: r.created for _, r in ResultsStore(out).records()} == before
