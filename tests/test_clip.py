"""CLIP score end to end with a tiny randomly initialised CLIP built offline (no hub, no download)."""

from __future__ import annotations

import string

import numpy as np
import pytest
import torch

from e2gan_bench.features import clip as C
from e2gan_bench.features import weights


def _tiny_clip(folder) -> None:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    vocab: dict[str, int] = {}
    for c in string.ascii_lowercase:
        vocab[c] = len(vocab)
    for c in string.ascii_lowercase:
        vocab[c + "</w>"] = len(vocab)
    bos, eos = "<|startoftext|>", "<|endoftext|>"
    vocab[bos], vocab[eos] = len(vocab), len(vocab) + 1
    tok = CLIPTokenizer(vocab=vocab, merges=[])
    ip = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    text = dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                max_position_embeddings=40, bos_token_id=vocab[bos], eos_token_id=vocab[eos], pad_token_id=vocab[eos])
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32,
                  patch_size=8)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).eval()
    model.save_pretrained(str(folder))
    CLIPProcessor(image_processor=ip, tokenizer=tok).save_pretrained(str(folder))


@pytest.fixture(scope="module")
def clip_home(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip")
    _tiny_clip(root / "tiny-clip")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("E2GAN_BENCH_HOME", str(root / "home"))
        weights.add("clip", root / "tiny-clip")
    return root


@pytest.fixture
def scorer(clip_home, monkeypatch):
    monkeypatch.setenv("E2GAN_BENCH_HOME", str(clip_home / "home"))
    s = C.get_clip_scorer()
    assert s is not None, C.unavailable_reason()
    return s


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 40, 48, 3), dtype=np.uint8)


def test_clip_registered_as_folder(clip_home, monkeypatch):
    monkeypatch.setenv("E2GAN_BENCH_HOME", str(clip_home / "home"))
    ref = weights.resolve("clip")
    assert ref is not None and ref.source == "registry"
    assert ref.file.name == "model.safetensors" and ref.sha256 == weights.file_sha256(ref.file)


def test_clip_score_end_to_end(scorer):
    a, b = _images(3, 0), _images(3, 1)
    s1 = scorer.score(a, "a pencil sketch")
    assert 0.0 <= s1 <= 100.0
    assert scorer.score(a, "a pencil sketch") == s1  # deterministic, metric state reset between calls
    assert scorer.score(a.copy(), "a pencil sketch") == s1  # identical images and prompt: same score
    assert 0.0 <= scorer.score(b, "night scene") <= 100.0
    # torchmetrics' definition: max(100 * mean cos(image, text), 0)
    cos = (scorer.image_embeddings(a) @ scorer.text_embeddings(["a pencil sketch"]).T).squeeze(1)
    assert s1 == pytest.approx(max(100 * float(cos.mean()), 0.0), abs=1e-3)
    assert scorer.backend.startswith("torchmetrics-clipscore:") and scorer.weights.sha256 in scorer.backend
    assert C.get_clip_scorer() is scorer  # loaded once per process


def test_directional_similarity(scorer):
    src, out = _images(4, 2), _images(4, 3)
    d = scorer.directional(src, out, "a pencil sketch", src_prompt="a photo")
    assert -1.0 <= d <= 1.0
    assert scorer.directional(src, out, "a pencil sketch") == d
    assert scorer.directional(src, src, "a pencil sketch") == 0.0  # no image change: no direction


def test_no_weights_gives_none_and_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("E2GAN_BENCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(weights, "_cache_candidates", lambda name: [])
    assert C.get_clip_scorer() is None
    assert C.unavailable_reason() == "n/a: no CLIP weights registered (e2gan-bench weights add clip PATH)"
