"""The diffusers (InstructPix2Pix) teacher end to end, the paper's suites, and the inputs check (`doctor --suite`,
`run` failing fast).

The teacher is a real StableDiffusionInstructPix2PixPipeline, tiny and randomly initialised in code (no download):
a UNet with 8 input channels, an AutoencoderKL, a CLIP text encoder with a byte-level tokenizer, a scheduler —
saved with ``save_pretrained`` and registered the way a user registers real weights (``weights add``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import cli, one_error_line
from PIL import Image

from e2gan_bench.config import load_concept, load_suite
from e2gan_bench.errors import ConfigError
from e2gan_bench.harness.store import ResultsStore
from e2gan_bench.resources import Catalog, builtin_dir

pytestmark = pytest.mark.slow  # the slow tier (tox -e slow; CI runs both)

pytest.importorskip("diffusers")

#: the concept names PAPER.md lists (the paper's wording), per set
PAPER_FFHQ = ["pink hair", "abstract art", "Hulk", "albino person", "Paul Gauguin painting", "Hercule Poirot",
              "old person", "Ghost Rider", "Van Gogh style", "grey hair", "blond person", "watercolor painting",
              "White Walker", "Green Lantern", "screen printing", "silver sculpture", "Chewbacca", "Harley Quinn",
              "Catwoman", "abstract expressionist makeup", "Obi-Wan Kenobi", "zombie", "Gamora", "Draco Malfoy",
              "put on sunglasses", "oldtime photo", "Henri Matisse paintings", "Jacob Lawrence paintings",
              "Chinese ink painting"]
PAPER_SCENERY = ["forest during autumn", "watercolor painting", "Van Gogh style", "forest in the dark", "add blossoms",
                 "forest in the dusk", "impressionism", "forest in the winter"]


def build_tiny_ip2p(folder: Path) -> Path:
    """A randomly initialised InstructPix2Pix pipeline (a few hundred kB), saved like downloaded weights."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerAncestralDiscreteScheduler,
        StableDiffusionInstructPix2PixPipeline,
        UNet2DConditionModel,
    )
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    chars = sorted(ByteLevel.alphabet())  # a byte-level BPE vocabulary without merges: every text tokenizes
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=16)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=8, out_channels=4, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16, norm_num_groups=4, attention_head_dim=4)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16),
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=4)
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=2,
        max_position_embeddings=16, projection_dim=16, bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"]))
    pipe = StableDiffusionInstructPix2PixPipeline(
        vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, scheduler=EulerAncestralDiscreteScheduler(),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_ip2p(tmp_path_factory) -> Path:
    return build_tiny_ip2p(tmp_path_factory.mktemp("weights") / "tiny-ip2p")


def _independent_folder_hash(folder: Path) -> str:
    """The weights hash written out again here (hashlib over every file), to check the one the pairs record."""
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(folder).as_posix()}\0{hashlib.sha256(f.read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest()


CONCEPT = """name: tiny-edit
prompt: "make it autumn"
teacher: {kind: diffusers, steps: 2, guidance_scale: 6.5, image_guidance_scale: 1.25, batch: 4, work_resolution: 64}
source: {kind: folder, path: photos, test_fraction: 0.4, min_crop: 0.6, max_crop: 1.0}
"""

SUITE = """name: {name}
concepts: [tiny-edit]
methods: {methods}
data: {{resolution: 32, n_train: 4, n_test: 4, n_val: 0}}
model: {{e2gan: {{ngf: 4}}, discriminator: {{ndf: 4}}}}
budget: {{steps: 2, batch: 2}}
curve: {{points: 0}}
eval: {{kid_subsets: 2, kid_subset_size: 3, lpips: false, latency: false, samples_in_grid: 2}}
"""


def _photos(folder: Path, n: int = 5) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        y = np.linspace(0, 1, 48)[:, None, None]
        im = (y * rng.uniform(0, 1, 3) + (1 - y) * rng.uniform(0, 1, 3)) * 255 + rng.normal(0, 8, (48, 48, 3))
        Image.fromarray(np.clip(im, 0, 255).astype(np.uint8)).save(folder / f"p{i}.png")


def _data_files(out: Path) -> dict[str, int]:
    return {f.name: f.stat().st_mtime_ns for f in sorted((out / "cache" / "data").iterdir())}


def test_diffusers_teacher_runs_a_suite_caches_its_pairs_with_provenance_and_reuses_them(tiny_ip2p, tmp_path):
    cdir, data, out = tmp_path / "concepts", tmp_path / "data", tmp_path / "out"
    cdir.mkdir()
    (cdir / "tiny-edit.yaml").write_text(CONCEPT)
    _photos(data / "photos")
    s1, s2 = tmp_path / "s1.yaml", tmp_path / "s2.yaml"
    s1.write_text(SUITE.format(name="ip2p-a", methods="[identity]"))
    s2.write_text(SUITE.format(name="ip2p-b", methods="[identity, {scratch: {budget: {steps: 2}}}]"))

    # provided the way a user provides real weights: registered by path (the data folder: --data-root)
    assert cli("weights", "add", "instruct-pix2pix", tiny_ip2p) == 0
    try:
        assert cli("run", "--suite", s1, "--out", out, "--concepts-dir", cdir, "--data-root", data) == 0
        first = _data_files(out)
        pairs = [n for n in first if not n.startswith("crops-")]
        assert len(pairs) == 1  # one paired dataset: the teacher's outputs
        store = ResultsStore(out)
        (_, rec), = store.records("ip2p-a")
        prov = rec.provenance["data"]
        assert prov["teacher"] == "diffusers" and prov["pairs"] == "computed"
        made = prov["made_by"]["teacher_params"]
        assert made["weights_sha256"] == _independent_folder_hash(tiny_ip2p)
        assert (made["steps"], made["guidance_scale"], made["image_guidance_scale"]) == (2, 6.5, 1.25)
        assert made["folder"] == str(tiny_ip2p.resolve())
        with np.load(out / "cache" / "data" / pairs[0]) as z:  # the cache entry carries the same provenance
            assert json.loads(str(z["provenance"])) == prov["made_by"]
            tgt, src = z["tgt_test"], z["src_test"]
        assert tgt.shape == src.shape == (4, 32, 32, 3) and not np.array_equal(tgt, src)  # the teacher edited them
        cfg = json.loads((store.run_dir(rec.key) / "config.json").read_text())
        assert cfg["concept"]["source"]["path"] == str(data / "photos")  # bound: evaluable again without options
        assert cfg["concept"]["teacher"]["model"] == str(tiny_ip2p.resolve())

        # a second suite on the same concept: its new training reads the pairs back; the teacher does not run again
        assert cli("run", "--suite", s2, "--out", out, "--concepts-dir", cdir, "--data-root", data) == 0
        assert _data_files(out) == first  # no cache file written or rewritten
        recs = dict(ResultsStore(out).records("ip2p-b"))
        again = recs["scratch"].provenance["data"]
        assert again["pairs"] == "cache" and again["made_by"] == prov["made_by"] and again["data_key"] == prov["data_key"]
    finally:
        assert cli("weights", "remove", "instruct-pix2pix") == 0


def test_paper_suite_fails_fast_listing_missing_inputs_and_doctor_says_how(tiny_ip2p, tmp_path, capsys):
    import torch

    out = tmp_path / "out"
    assert cli("run", "--suite", "paper-ffhq", "--out", out) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot run suite 'paper-ffhq'" in err
    assert "teacher weights" in err and "weights add instruct-pix2pix" in err and "--teacher-weights" in err
    assert "data 'ffhq'" in err and "--data-root" in err
    assert ("GPU" in err) == (not torch.cuda.is_available())
    assert not out.exists()  # nothing written before the check

    # with the inputs provided (and the CPU chosen), doctor finds every one of them
    faces = tmp_path / "root" / "ffhq"
    _photos(faces, 3)
    assert cli("doctor", "--suite", "paper-ffhq", "--json", "--teacher-weights", tiny_ip2p,
               "--data-root", tmp_path / "root", "--device", "cpu") == 0
    rep = json.loads(capsys.readouterr().out)["suite"]
    assert rep["ready"] and {n["what"] for n in rep["needs"]} == {"package", "teacher weights", "data", "GPU"}
    data_need, = [n for n in rep["needs"] if n["what"] == "data"]
    assert data_need["name"] == str(faces) and len(data_need["used_by"]) == 50  # 30 evaluated + 20 base concepts


def test_paper_concept_sets_and_suites():
    cat = Catalog()
    for ds, paper, n_eval in (("ffhq", PAPER_FFHQ, 30), ("scenery", PAPER_SCENERY, 10)):
        concepts = [cat.concept(n) for n in cat.concept_names() if n.startswith(f"{ds}-")]
        assert sorted(c.paper_name for c in concepts if c.origin == "paper") == sorted(paper)
        assert all(c.teacher.kind == "diffusers" and c.source.params["path"] == ds for c in concepts)
        suite = load_suite(builtin_dir("suites") / f"paper-{ds}.yaml")
        assert len(suite.concepts) == n_eval and len(suite.seeds) >= 3 and suite.data.resolution == 256
        assert {cat.concept(n).paper_name for n in suite.concepts} >= set(paper)  # every paper concept is evaluated
        assert all(cat.concept(n).origin == "ours" for n in suite.base.concepts)
        assert not set(suite.base.concepts) & set(suite.concepts)
    assert not any(n.startswith(("ffhq-", "scenery-")) for n in cat.bank_names())  # default base pools unchanged


def test_weights_add_refuses_a_folder_that_is_not_instruct_pix2pix(tiny_ip2p, tmp_path, capsys):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(tiny_ip2p, other)
    index = json.loads((other / "model_index.json").read_text())
    (other / "model_index.json").write_text(json.dumps({**index, "_class_name": "StableDiffusionPipeline"}))
    assert cli("weights", "add", "instruct-pix2pix", other) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "InstructPix2Pix" in err and "model_index.json" in err
    (other / "model_index.json").write_text(json.dumps(index))
    unet = json.loads((other / "unet" / "config.json").read_text())
    (other / "unet" / "config.json").write_text(json.dumps({**unet, "in_channels": 4}))
    assert cli("weights", "add", "instruct-pix2pix", other) == 2
    assert "8 input channels" in capsys.readouterr().err


def test_concept_origin_is_validated(tmp_path):
    f = tmp_path / "x.yaml"
    f.write_text("name: x\nprompt: make it so\nteacher: {kind: procedural, ops: [{op: sepia}]}\norigin: paper\n")
    with pytest.raises(ConfigError, match="paper_name"):
        load_concept(f)
    f.write_text("name: x\nprompt: make it so\nteacher: {kind: procedural, ops: [{op: sepia}]}\norigin: theirs\n")
    with pytest.raises(ConfigError, match="origin"):
        load_concept(f)


def test_pickle_weights_in_the_folder_are_refused(tiny_ip2p, tmp_path, capsys):
    """Only safetensors weights are loaded: a pickle file anywhere in the model's components (loading one can run
    code) is refused, naming it, and a component without safetensors weights is too."""
    import shutil

    folder = tmp_path / "ip2p"
    shutil.copytree(tiny_ip2p, folder)
    (folder / "vae" / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x04not weights")
    assert cli("weights", "add", "instruct-pix2pix", folder) == 2
    one_error_line(capsys, "diffusion_pytorch_model.bin", "pickle")
    (folder / "vae" / "diffusion_pytorch_model.bin").unlink()
    for f in (folder / "text_encoder").glob("*.safetensors"):
        f.unlink()
    assert cli("weights", "add", "instruct-pix2pix", folder) == 2
    one_error_line(capsys, "text_encoder", "no safetensors")
