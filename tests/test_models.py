"""Generators, LoRA (peft) on crucial layers, the GAN trainer and the prompt encoders."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import hashlib  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from e2gan_bench.config import Budget  # noqa: E402
from e2gan_bench.models.generators import (  # noqa: E402
    ARCHS,
    CRUCIAL_GROUPS,
    E2GANGenerator,
    ResnetGenerator,
    count_params,
)
from e2gan_bench.models.lora import (  # noqa: E402
    add_lora,
    load_adapter,
    lora_param_count,
    lora_targets,
    save_adapter,
    unwrap_lora,
)
from e2gan_bench.models.text import (  # noqa: E402
    MAX_TOKENS,
    TEXT_DIM,
    CachedPromptEncoder,
    HashEncoder,
    MiniLMEncoder,
)
from e2gan_bench.training.trainer import TrainData, train_gan  # noqa: E402

#: small enough for 2 busy CPU cores
TINY = {"e2gan": {"ngf": 8}, "pix2pix-resnet": {"ngf": 8, "n_blocks": 2}, "identity": {}}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: on a shared 2-core machine this is several times faster than two."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _e2gan(ngf: int = 8) -> E2GANGenerator:
    torch.manual_seed(0)
    return E2GANGenerator(ngf=ngf)


def _inputs(b: int = 2, res: int = 16, n_real: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, 3, res, res, generator=g) * 2 - 1
    text = torch.randn(b, MAX_TOKENS, TEXT_DIM, generator=g)
    mask = torch.zeros(b, MAX_TOKENS, dtype=torch.bool)
    mask[:, :n_real] = True
    return x, text, mask


def _perturb_lora(G: torch.nn.Module, seed: int = 1, scale: float = 0.05) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in G.named_parameters():
            if "lora_" in n:
                p.copy_(torch.randn(p.shape, generator=g) * scale)


def _rank_pattern(G: E2GANGenerator) -> dict[str, int]:
    """Mixed ranks (1, 2, 3) over the crucial layers."""
    return {n: 1 + i % 3 for i, n in enumerate(lora_targets(G, CRUCIAL_GROUPS))}


# ----------------------------------------------------------------------------- generators


@pytest.mark.parametrize("res", [16, 32])
@pytest.mark.parametrize("arch", ["e2gan", "pix2pix-resnet", "identity"])
def test_arch_shape_and_range(arch: str, res: int) -> None:
    assert set(TINY) <= set(ARCHS.names())
    torch.manual_seed(0)
    G = ARCHS.get(arch)(**TINY[arch]).eval()
    x, text, mask = _inputs(b=2, res=res)
    with torch.no_grad():
        y = G(x, text, mask)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
    assert y.min() >= -1 and y.max() <= 1
    if arch == "identity":
        assert torch.equal(y, x)
    else:
        assert y.std() > 1e-3  # not a constant map


def test_e2gan_uses_text_through_cross_attention() -> None:
    G = _e2gan().eval()
    x, text, mask = _inputs()
    _, other, _ = _inputs(seed=7)
    with torch.no_grad():
        y = G(x, text, mask)
        y_other = G(x, other, mask)
        y_none = G(x, None, None)
        # tokens behind the mask must be ignored
        padded = text.clone()
        padded[:, 5:] = torch.randn(2, MAX_TOKENS - 5, TEXT_DIM)
        y_padded = G(x, padded, mask)
    assert (y - y_other).abs().max() > 1e-3
    assert (y - y_none).abs().max() > 1e-3
    torch.testing.assert_close(y_padded, y, atol=1e-6, rtol=0)


def test_pix2pix_ignores_text() -> None:
    torch.manual_seed(0)
    G = ARCHS.get("pix2pix-resnet")(**TINY["pix2pix-resnet"]).eval()
    x, text, mask = _inputs()
    _, other, _ = _inputs(seed=7)
    with torch.no_grad():
        y = G(x, text, mask)
        assert torch.equal(y, G(x, other, mask))
        assert torch.equal(y, G(x, None, None))


def test_e2gan_layer_groups_and_crucial_targets() -> None:
    G = _e2gan()
    groups = G.layer_groups()
    assert list(groups) == ["text_proj", "stem", "down", "res", "ds", "transformer", "us", "res_up", "up", "out"]
    assert set(CRUCIAL_GROUPS) <= set(groups)
    targets = lora_targets(G, CRUCIAL_GROUPS)
    frozen = {n for g in ("res", "res_up", "stem", "text_proj") for n in groups[g]}
    assert targets and not frozen & set(targets)
    assert all(t.split(".")[0] in CRUCIAL_GROUPS for t in targets)
    # every crucial group is covered, with all its conv / linear layers (e2gan has no ConvTranspose2d)
    assert sorted(targets) == sorted(n for g in CRUCIAL_GROUPS for n in groups[g])
    assert {"transformer.cross_attn.k", "transformer.self_attn.q", "ds.conv", "us.conv", "out.conv", "out.color",
            "ds.norm.film", "up.1.norm.film"} <= set(targets)


def test_lora_targets_skip_conv_transpose() -> None:
    G = ARCHS.get("pix2pix-resnet")(**TINY["pix2pix-resnet"])
    mods = dict(G.named_modules())
    every = lora_targets(G, None)
    assert "up.0" in G.layer_groups()["up"]  # the ConvTranspose2d is in the group ...
    assert "up.0" not in every and "up.3" not in every  # ... but cannot carry a LoRA
    assert all(isinstance(mods[n], (torch.nn.Conv2d, torch.nn.Linear)) for n in every)
    assert "stem.conv" in every and "out.conv" in every


def test_paper_sizes() -> None:
    p2p = count_params(ResnetGenerator(ngf=64, n_blocks=9))
    e2g = count_params(E2GANGenerator(ngf=64))
    assert 10.5e6 <= p2p <= 12.5e6  # paper: ~11M
    assert 5e6 <= e2g <= 10e6
    assert e2g < p2p


# ----------------------------------------------------------------------------- LoRA


def test_add_lora_trainable_count_and_frozen_base() -> None:
    G = _e2gan()
    pattern = _rank_pattern(G)
    expected = lora_param_count(G, pattern)  # on the plain model, before injection
    base_total = count_params(G)
    L = add_lora(G, pattern)
    trainable = {n: p for n, p in L.named_parameters() if p.requires_grad}
    assert count_params(L, trainable_only=True) == expected
    assert trainable and all("lora_" in n for n in trainable)
    assert count_params(L) == base_total + expected
    mods = dict(L.named_modules())
    for name, r in pattern.items():
        assert mods[name].lora_A["default"].weight.shape[0] == r
        assert mods[name].lora_B["default"].weight.shape[1] == r
        assert mods[name].scaling["default"] == pytest.approx(1.0)  # alpha=None -> alpha/r = 1
    # layers outside the pattern are untouched
    assert not hasattr(mods["res.0.conv1"], "lora_A")
    assert not hasattr(mods["stem.conv"], "lora_A")


def test_add_lora_explicit_alpha_scales_by_rank() -> None:
    G = _e2gan()
    pattern = {"ds.conv": 2, "transformer.cross_attn.k": 4}
    L = add_lora(G, pattern, alpha=8.0)
    mods = dict(L.named_modules())
    assert mods["ds.conv"].scaling["default"] == pytest.approx(4.0)
    assert mods["transformer.cross_attn.k"].scaling["default"] == pytest.approx(2.0)


def test_lora_at_init_equals_base() -> None:
    x, text, mask = _inputs()
    base = _e2gan().eval()
    with torch.no_grad():
        y0 = base(x, text, mask)
    L = add_lora(_e2gan(), _rank_pattern(base)).eval()
    with torch.no_grad():
        y1 = L(x, text, mask)
    assert torch.equal(y0, y1)


def test_adapter_roundtrip(tmp_path: Path) -> None:
    x, text, mask = _inputs()
    pattern = _rank_pattern(_e2gan())
    L = add_lora(_e2gan(), pattern).eval()
    _perturb_lora(L)
    with torch.no_grad():
        y = L(x, text, mask)
        y_base = _e2gan().eval()(x, text, mask)
    assert (y - y_base).abs().max() > 1e-3  # the adapter does something
    path = tmp_path / "adapter.safetensors"
    size = save_adapter(L, path)
    assert size == path.stat().st_size > 0

    from safetensors.torch import load_file

    saved = load_file(str(path))
    assert all("lora_" in k for k in saved)  # only the adapter is stored
    assert sum(v.numel() for v in saved.values()) == lora_param_count(_e2gan(), pattern)

    fresh = add_lora(_e2gan(), pattern).eval()
    load_adapter(fresh, path)
    with torch.no_grad():
        assert torch.equal(fresh(x, text, mask), y)


def _merge_gap(groups: tuple[str, ...], res: int = 16) -> float:
    x, text, mask = _inputs(res=res)
    G = _e2gan()
    L = add_lora(G, {n: 2 for n in lora_targets(G, groups)}).eval()
    _perturb_lora(L)
    with torch.no_grad():
        y = L(x, text, mask)
        y_merged = unwrap_lora(L)(x, text, mask)  # the one merge path (export and latency use it)
    return float((y - y_merged).abs().max())


def test_merge_lora_linear_layers() -> None:
    assert _merge_gap(("transformer",)) < 1e-5


def test_merge_lora_matches_unmerged() -> None:
    assert _merge_gap(CRUCIAL_GROUPS) < 1e-5


def _forward_and_grads(fused: bool, dropout: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor], type]:
    x, text, mask = _inputs(res=16)
    G = _e2gan()
    for p in G.parameters():
        p.requires_grad_(False)
    targets = lora_targets(G, CRUCIAL_GROUPS)
    L = add_lora(G, dict.fromkeys(targets, 3), alpha=6.0, dropout=dropout, fused=fused).train()
    _perturb_lora(L)
    torch.manual_seed(5)  # the same dropout masks in both forms
    y = L(x, text, mask)
    y.square().mean().backward()
    grads = {n: p.grad.clone() for n, p in L.named_parameters() if p.requires_grad}
    return y.detach(), grads, type(dict(L.named_modules())[targets[0]])


def test_fused_lora_layers_compute_peft_s_map_and_gradients() -> None:
    """The fused layers ``(W + s·B A) x`` (what the methods train) are peft's ``W x + s·B(A x)`` within float
    rounding, forward and every adapter's gradient, on convolutions and the transformer's linear layers."""
    y_peft, g_peft, kind_peft = _forward_and_grads(fused=False)
    y_fused, g_fused, kind_fused = _forward_and_grads(fused=True)
    assert kind_fused.__name__ == "FusedConv2d" and kind_peft.__name__ == "Conv2d"
    assert (y_fused - y_peft).abs().max() < 1e-5
    assert g_fused.keys() == g_peft.keys() and any(".lora_A." in n and "transformer" in n for n in g_fused)
    for n in g_peft:
        scale = g_peft[n].abs().max()
        assert scale > 0, n  # every adapter gets a gradient
        assert (g_fused[n] - g_peft[n]).abs().max() <= 1e-4 * scale, n


def test_fused_lora_falls_back_to_peft_with_dropout() -> None:
    """Dropout acts on the adapter's input, which the fused form never sees: it must use peft's form then."""
    y_peft, g_peft, _ = _forward_and_grads(fused=False, dropout=0.3)
    y_fused, g_fused, _ = _forward_and_grads(fused=True, dropout=0.3)
    assert torch.equal(y_fused, y_peft)
    assert all(torch.equal(g_fused[n], g_peft[n]) for n in g_peft)


# ----------------------------------------------------------------------------- trainer


def _invert_task(n: int = 8, res: int = 16) -> TrainData:
    g = torch.Generator().manual_seed(3)
    src = torch.rand(n, 3, res, res, generator=g) * 2 - 1
    texts = torch.randn(1, MAX_TOKENS, TEXT_DIM, generator=g)
    masks = torch.zeros(1, MAX_TOKENS, dtype=torch.bool)
    masks[:, :4] = True
    return TrainData(src, -src, torch.zeros(n, dtype=torch.long), texts, masks)


def test_train_gan_lowers_l1() -> None:
    data = _invert_task()
    flops = {}
    for mode in ("none", "lsgan"):
        G = _e2gan(ngf=4)
        n_params = count_params(G)
        budget = Budget(steps=40, batch=4, lr=3e-3, gan_mode=mode)
        res = train_gan(G, data, budget, seed=0, ndf=8, log_every=10)
        l1 = [c["l1"] for c in res.curve]
        assert [c["step"] for c in res.curve] == [0, 10, 20, 30, 39]
        assert l1[-1] < 0.85 * l1[0], (mode, l1)
        assert res.steps == 40 and res.seconds > 0
        assert res.trainable_params == n_params
        assert res.flops > 0
        assert ("d_loss" in res.curve[0]) == (mode == "lsgan")
        assert not G.training
        flops[mode] = res.flops
    assert flops["lsgan"] > flops["none"]  # the discriminator's work is counted


def test_train_gan_lora_only_adapters_change_and_is_deterministic() -> None:
    data = _invert_task()
    budget = Budget(steps=6, batch=4, lr=1e-3, gan_mode="lsgan")
    results, states = [], []
    for _ in range(2):
        G = _e2gan(ngf=4)
        pattern = _rank_pattern(G)
        expected = lora_param_count(G, pattern)
        L = add_lora(G, pattern)
        before = {k: v.clone() for k, v in L.state_dict().items()}
        res = train_gan(L, data, budget, seed=5, ndf=8, log_every=1)
        assert res.trainable_params == expected
        after = L.state_dict()
        for k, v in before.items():
            if "lora_" in k:
                continue
            assert torch.equal(after[k], v), k  # base weights frozen
        assert any(not torch.equal(after[k], v) for k, v in before.items() if "lora_B" in k)
        results.append([c["l1"] for c in res.curve])
        states.append(after)
    assert results[0] == results[1]
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    # flops = one counted step × steps
    G = add_lora(_e2gan(ngf=4), pattern)
    res3 = train_gan(G, data, budget.model_copy(update={"steps": 3}), seed=5, ndf=8)
    assert res3.flops * 2 == res.flops


def test_train_gan_zero_steps() -> None:
    G = _e2gan(ngf=4)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    res = train_gan(G, _invert_task(), Budget(steps=0), seed=0)
    assert res.steps == 0 and res.seconds == 0.0 and res.flops == 0 and res.curve == []
    assert res.trainable_params == count_params(G)
    assert all(torch.equal(G.state_dict()[k], v) for k, v in before.items())


# ----------------------------------------------------------------------------- text encoders


def test_hash_encoder() -> None:
    a = HashEncoder().encode("Make it a Pencil sketch")
    b = HashEncoder().encode("make it a pencil sketch")
    c = HashEncoder().encode("make it snowy")
    assert a.tokens.shape == (MAX_TOKENS, TEXT_DIM) and a.tokens.dtype == torch.float32
    assert a.mask.dtype == torch.bool and a.mask.tolist() == [True] * 5 + [False] * 11
    assert torch.equal(a.tokens, b.tokens)  # deterministic, case-insensitive
    assert torch.equal(a.tokens[:2], c.tokens[:2])  # same words, same vectors
    assert not torch.equal(a.tokens[2], c.tokens[2])
    assert torch.all(a.tokens[5:] == 0)
    torch.testing.assert_close(a.tokens[:5].norm(dim=1), torch.ones(5))
    long = HashEncoder().encode(" ".join(f"w{i}" for i in range(40)))
    assert long.tokens.shape == (MAX_TOKENS, TEXT_DIM) and bool(long.mask.all())
    assert HashEncoder.info.fallback


@pytest.fixture(scope="module")
def minilm() -> MiniLMEncoder:
    return MiniLMEncoder()


def test_minilm_encoder(minilm: MiniLMEncoder) -> None:
    w = minilm.dir / "model.safetensors"
    assert minilm.info.weights == "sha256:" + hashlib.sha256(w.read_bytes()).hexdigest()
    assert not minilm.info.fallback and minilm.info.dim == TEXT_DIM
    a = minilm.encode("make it a pencil sketch")
    b = minilm.encode("turn the scene into a snowy winter night")
    assert a.tokens.shape == (MAX_TOKENS, TEXT_DIM) and a.mask.shape == (MAX_TOKENS,)
    n = int(a.mask.sum())
    assert 3 <= n < MAX_TOKENS and bool(a.mask[:n].all())  # CLS + words + SEP, then padding
    assert torch.all(a.tokens[n:] == 0) and a.tokens[:n].abs().sum() > 0
    assert (a.tokens - b.tokens).abs().max() > 0.1
    assert torch.equal(minilm.encode("make it a pencil sketch").tokens, a.tokens)


def _counting(encoder):
    calls = []
    orig = encoder.encode

    def encode(prompt):
        calls.append(prompt)
        return orig(prompt)

    encoder.encode = encode
    return calls


def test_cached_prompt_encoder(tmp_path: Path) -> None:
    enc = HashEncoder()
    calls = _counting(enc)
    cached = CachedPromptEncoder(enc, tmp_path)
    first = cached.encode("make it a watercolor")
    files = list((tmp_path / "text").glob("*.safetensors"))
    assert len(files) == 1 and calls == ["make it a watercolor"]
    second = CachedPromptEncoder(enc, tmp_path).encode("make it a watercolor")
    assert len(calls) == 1  # served from disk
    assert torch.equal(second.tokens, first.tokens) and torch.equal(second.mask, first.mask)
    assert second.mask.dtype == torch.bool
    cached.encode("make it night")
    assert len(calls) == 2 and len(list((tmp_path / "text").glob("*.safetensors"))) == 2
    # corrupt entry -> recomputed and rewritten
    files[0].write_bytes(b"not a safetensors file")
    third = cached.encode("make it a watercolor")
    assert len(calls) == 3
    assert torch.equal(third.tokens, first.tokens)
    fourth = cached.encode("make it a watercolor")
    assert len(calls) == 3 and torch.equal(fourth.tokens, first.tokens)


def test_cached_minilm_roundtrip(tmp_path: Path, minilm: MiniLMEncoder) -> None:
    a = CachedPromptEncoder(minilm, tmp_path).encode("make it a pencil sketch")
    b = CachedPromptEncoder(minilm, tmp_path).encode("make it a pencil sketch")
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.mask, b.mask)
    # the cache key includes the encoder identity: a hash encoder does not read MiniLM's entry
    h = CachedPromptEncoder(HashEncoder(), tmp_path).encode("make it a pencil sketch")
    assert not torch.equal(h.tokens, a.tokens)


def test_cached_only_encoder_uses_the_cache_filled_elsewhere_and_refuses_a_miss(tmp_path, monkeypatch):
    """A machine without the encoder's weights reads the embeddings computed where they are (same identity, same
    cache keys); a prompt that was not computed there is one clear error, never a silent fallback."""
    import e2gan_bench.models.text as text
    from e2gan_bench.errors import UserError

    real = text.CachedPromptEncoder(text.default_encoder(), tmp_path)
    emb = real.encode("make it look like a blueprint")
    ident = f"{real.info.name}@{real.info.weights}"
    monkeypatch.setattr(text.MiniLMEncoder, "__init__",
                        lambda self, params=None: (_ for _ in ()).throw(RuntimeError("absent")))
    monkeypatch.setenv("E2GAN_BENCH_TEXT_ENCODER_CACHED", ident)
    enc = text.default_encoder()
    assert isinstance(enc, text.CachedOnlyEncoder) and enc.info.name == real.info.name
    cached = text.CachedPromptEncoder(enc, tmp_path)
    again = cached.encode("make it look like a blueprint")
    assert torch.equal(again.tokens, emb.tokens) and torch.equal(again.mask, emb.mask)
    with pytest.raises(UserError, match="no cached embedding"):
        cached.encode("a prompt never encoded")
    monkeypatch.setenv("E2GAN_BENCH_TEXT_ENCODER_CACHED", "no-at-sign")
    with pytest.raises(UserError, match="NAME@WEIGHTS"):
        text.default_encoder()
