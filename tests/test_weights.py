"""Weight registry (add / list / resolve, pinned hashes, changed files) and `e2gan-bench doctor`."""

from __future__ import annotations

import json
import os
import warnings

import pytest
import torch
from conftest import cli, one_error_line

from e2gan_bench.errors import UserError
from e2gan_bench.features import weights as W
from e2gan_bench.keys import sha256_file


class _Layers(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # N×3×299×299 -> N×2048, like Inception's pool features
        return x.mean((2, 3)).repeat(1, 683)[:, :2048]


class _ThreeFeatures(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3))


class _NotInception(torch.nn.Module):
    """A TorchScript with a ``layers`` module that is not Inception (3 features per image)."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = _ThreeFeatures()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class _TinyInception(torch.nn.Module):
    """clean-fid's interface (a ``layers`` module) in a few hundred bytes of TorchScript."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = _Layers()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def tiny_inception(path):
    with warnings.catch_warnings():  # "torch.jit is deprecated": clean-fid ships TorchScript all the same
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(_TinyInception()), str(path))
    return path


REAL_CACHE_CANDIDATES = W._cache_candidates


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("E2GAN_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("E2GAN_BENCH_INCEPTION", raising=False)
    # the usual caches of this machine must not leak into these tests
    monkeypatch.setattr(W, "_cache_candidates", lambda name: [])
    return tmp_path / "home"


def test_pinned_hash_mismatch_exits_2(tmp_path, capsys, home):
    fake = tmp_path / "alexnet-owt-7be5be79.pth"
    fake.write_bytes(b"not really alexnet")
    assert cli("weights", "add", "alexnet", fake) == 2
    one_error_line(capsys, fake, "7be5be79", sha256_file(fake), "mismatch")
    assert not (home / "weights.json").exists()  # nothing half-registered


def test_unknown_name_and_missing_path(tmp_path, capsys):
    assert cli("weights", "add", "vgg", tmp_path) == 2
    one_error_line(capsys, "vgg", "inception", "alexnet", "clip")
    assert cli("weights", "add", "inception", tmp_path / "nope.pt") == 2
    one_error_line(capsys, "nope.pt", "not found")
    assert cli("weights", "add", "clip", tmp_path) == 2  # a folder without config.json
    one_error_line(capsys, "config.json")
    assert cli("weights", "add", "inception", tmp_path) == 2  # a folder where a file is expected
    one_error_line(capsys, str(tmp_path), "file")


def test_add_list_resolve_round_trip(tmp_path, capsys, home):
    f = tiny_inception(tmp_path / "inception-2015-12-05.pt")
    assert W.resolve("inception") is None
    assert cli("weights", "add", "inception", f) == 0
    out = capsys.readouterr().out
    assert sha256_file(f) in out and "hash not pinned: recorded as observed" in out
    reg = json.loads((home / "weights.json").read_text())
    assert reg["inception"]["sha256"] == sha256_file(f) and reg["inception"]["size"] == f.stat().st_size
    assert reg["inception"]["path"] == str(f.resolve()) and reg["inception"]["added"]

    ref = W.resolve("inception")
    assert ref is not None and ref.source == "registry" and ref.sha256 == sha256_file(f)
    assert ref.tag == "sha256:" + sha256_file(f)

    assert cli("weights", "list", "--json") == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["inception"]["status"] == "ok" and rows["inception"]["sha256"] == sha256_file(f)
    assert rows["clip"]["resolved"] is None and "weights add clip" in rows["clip"]["status"]
    assert cli("weights", "list") == 0
    assert "inception" in capsys.readouterr().out

    assert cli("weights", "remove", "inception") == 0
    assert W.resolve("inception") is None
    assert cli("weights", "remove", "inception") == 2


def test_truncated_or_changed_file_detected(tmp_path, home):
    f = tiny_inception(tmp_path / "inception-2015-12-05.pt")
    data = f.read_bytes()
    W.add("inception", f)
    f.write_bytes(data[:100])  # truncated: size differs
    ref, why = W.resolve_with_reason("inception")
    assert ref is None and "changed" in why and "size" in why
    f.write_bytes(bytes(len(data)))  # same size, different content (and mtime): re-hashed
    os.utime(f, ns=(1, 1))
    ref, why = W.resolve_with_reason("inception")
    assert ref is None and "sha256" in why
    f.write_bytes(data)  # restored content, new mtime: re-hash matches, usable again
    ref = W.resolve("inception")
    assert ref is not None and ref.sha256 == sha256_file(f)
    f.unlink()
    assert W.resolve_with_reason("inception")[1].startswith("registered file is gone")


def test_truncated_pinned_file_is_a_mismatch(tmp_path):
    # a pin on a small file stands in for a real pinned checkpoint cut short by an interrupted copy
    good = tmp_path / "w.bin"
    good.write_bytes(b"x" * 1000)
    kw = W.KnownWeights("toy", "w.bin", sha256_file(good), None, "toy", "nowhere")
    W._check_pin(kw, good, sha256_file(good))
    good.write_bytes(b"x" * 500)
    with pytest.raises(UserError, match="sha256 mismatch for 'toy'"):
        W._check_pin(kw, good, sha256_file(good))


def test_inception_that_gives_the_wrong_features_is_refused(tmp_path, home):
    """A TorchScript is taken for clean-fid's Inception only when its `layers` turn a 299×299 image into 2048
    features (having a `layers` module is not enough)."""
    f = tmp_path / "inception-2015-12-05.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(_NotInception()), str(f))
    with pytest.raises(UserError, match="give 3 features per image, not 2048"):
        W.add("inception", f)
    assert not (home / "weights.json").exists()


def test_inception_is_never_taken_from_a_folder_others_can_write(tmp_path, monkeypatch):
    """clean-fid downloads to /tmp; that folder (or any other anyone may write into) is never searched: a planted
    file there would be labelled as real Inception. A folder only its owner writes is searched when named."""
    monkeypatch.delenv("E2GAN_BENCH_CLEANFID_DIR", raising=False)
    assert all("/tmp" not in str(p) for p, _ in REAL_CACHE_CANDIDATES("inception"))  # not by default
    shared = tmp_path / "shared"
    shared.mkdir()
    tiny_inception(shared / "inception-2015-12-05.pt")
    monkeypatch.setenv("E2GAN_BENCH_CLEANFID_DIR", str(shared))
    os.chmod(shared, 0o777)
    assert not [s for _, s in REAL_CACHE_CANDIDATES("inception") if s == "clean-fid cache"]
    os.chmod(shared, 0o755)
    assert [p for p, s in REAL_CACHE_CANDIDATES("inception") if s == "clean-fid cache"] == [
        shared / "inception-2015-12-05.pt"]


def test_usual_cache_is_found(tmp_path, monkeypatch):
    f = tmp_path / "alexnet-owt-7be5be79.pth"
    f.write_bytes(b"wrong bytes")
    monkeypatch.setattr(W, "_cache_candidates", lambda name: [(f, "torch hub cache")] if name == "alexnet" else [])
    ref, why = W.resolve_with_reason("alexnet")
    assert ref is None and "mismatch" in why  # a cached file with the wrong hash is never used
    monkeypatch.setattr(W, "KNOWN", {**W.KNOWN, "alexnet": W.KnownWeights(
        "alexnet", f.name, None, sha256_file(f)[:8], "toy", "torch hub")})
    ref = W.resolve("alexnet")
    assert ref is not None and ref.source == "torch hub cache" and ref.pinned


def test_doctor_reports_labelled_fallbacks(capsys, monkeypatch):
    from e2gan_bench.features import extractors as features
    from e2gan_bench.metrics import all_metrics

    monkeypatch.setattr(features, "_loaded", {})  # no extractor loaded earlier in this process
    assert cli("doctor") == 0
    out = capsys.readouterr().out
    for needle in ("kid", "lpips", "clip_score", "text encoder", "latency_ms", "FALLBACK", "torch threads",
                   "clean-fid", "transformers"):
        assert needle in out, needle
    assert cli("doctor", "--json") == 0
    d = json.loads(capsys.readouterr().out)
    assert set(d["metrics"]) == {m.name for m in all_metrics()} | {"text encoder"}  # one row per registered metric
    for name in ("kid", "fid"):
        fk = d["metrics"][name]
        assert fk["fallback"] and "random-init" in fk["backend"] and "weights add inception" in fk["why"]
    assert d["metrics"]["clip_score"]["fallback"] and "weights add clip" in d["metrics"]["clip_score"]["why"]
    from e2gan_bench.metrics.perceptual import LPIPSMetric

    assert d["metrics"]["lpips"]["backend"] == LPIPSMetric().backend  # doctor says what a run will use
    assert d["metrics"]["train_flops"]["backend"] == "torch.utils.flop_counter" and not d["metrics"]["psnr"]["fallback"]
    assert d["versions"]["torch"] and d["versions"]["clean-fid"] == "0.1.35"
    assert d["torch_threads"] >= 1 and d["device"] == "cpu"


def test_registered_file_that_is_not_torchscript(tmp_path, capsys, monkeypatch, home):
    from e2gan_bench.features import extractors as features

    f = tmp_path / "inception-2015-12-05.pt"
    f.write_bytes(os.urandom(2048))
    with pytest.raises(UserError, match="not clean-fid's Inception TorchScript"):
        W.add("inception", f)  # `weights add` refuses it …
    st = f.stat()  # … but a registry written by an older version may hold it: loading tells
    (home / "weights.json").parent.mkdir(parents=True, exist_ok=True)
    (home / "weights.json").write_text(json.dumps({"inception": {
        "path": str(f), "file": str(f), "sha256": sha256_file(f), "size": st.st_size, "mtime_ns": st.st_mtime_ns}}))
    with pytest.raises(UserError, match="not clean-fid's Inception TorchScript"):
        features.InceptionClean()
    monkeypatch.setattr(features, "_loaded", {})
    assert cli("doctor", "--json") == 0
    fk = json.loads(capsys.readouterr().out)["metrics"]["kid"]
    assert fk["fallback"] and "failed to load" in fk["why"] and "not clean-fid's Inception" in fk["why"]
