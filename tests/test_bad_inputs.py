"""A corpus of bad inputs a user will meet, each through the real CLI: malformed and hostile YAML, unknown names of
every registry, impossible and non-finite values, names that would escape the output folder, broken images,
broken stores and caches, bad plugin paths and bad plugin outputs.

The contract for each: exit code 2, exactly one line on stderr naming the file / field / value, no traceback —
and nothing written: the output folder is not created, or (input found bad only once running, or a store given)
holds no record, run folder, artifact or temporary more than before.
"""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_SUITE, assert_no_results, cli, one_error_line, snapshot, write_suite
from PIL import Image


@pytest.fixture(autouse=True)
def _code_allowed(allow_code):
    """The corpus's plugin cases name code in suites (module:attr): the user has opted in, unless a case says not."""


@dataclass
class Ctx:
    tmp: Path
    out: Path
    monkeypatch: pytest.MonkeyPatch
    request: pytest.FixtureRequest


Build = Callable[[Ctx], tuple[list, list]]  # -> (CLI arguments, what the error line must name)
CASES: list = []


def case(name: str, writes: str = "none") -> Callable[[Build], Build]:
    """Register a bad input. ``writes``: ``none`` (the output folder is never created), ``no-results`` (found bad
    while running: caches may exist, no result does), ``unchanged`` (an existing store, left as it was)."""

    def deco(fn: Build) -> Build:
        CASES.append(pytest.param(fn, writes, id=name))
        return fn

    return deco


def run_suite(c: Ctx, text: str, *extra) -> list:
    return ["run", "--suite", write_suite(c.tmp, text), "--out", c.out, *extra]


def tiny(**replace: str) -> str:
    """The tiny suite with some of its lines replaced (by their key)."""
    lines = TINY_SUITE.splitlines()
    for key, value in replace.items():
        lines = [f"{key}: {value}" if ln.startswith(f"{key}:") else ln for ln in lines]
        if not any(ln.startswith(f"{key}:") for ln in lines):
            lines.append(f"{key}: {value}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------- command line


@case("cli-mistyped-option")
def _(c):
    return ["run", "--suit", "quick", "--out", c.out], ["run", "--suit", "--suite"]


@case("cli-missing-argument")
def _(c):
    return ["compare"], ["compare", "Missing argument", "reference"]


@case("cli-option-without-value")
def _(c):
    return ["run", "--out"], ["--out", "requires an argument"]


@case("cli-not-an-integer")
def _(c):
    return ["concepts", "preview", "sepia", "--n", "many", "--dest", c.out / "p.png"], ["--n", "many"]


@case("cli-integer-out-of-range")
def _(c):
    return ["concepts", "preview", "sepia", "--n", "100000000", "--dest", c.out / "p.png"], ["--n", "64"]


@case("cli-unknown-command")
def _(c):
    return ["rnu", "--suite", "smoke"], ["rnu"]


# ------------------------------------------------------------------------------------- malformed, hostile YAML


@case("yaml-syntax")
def _(c):
    return run_suite(c, "name: s\nconcepts: [sepia\n"), ["s.yaml", "malformed YAML", "line"]


@case("yaml-bad-indentation")
def _(c):
    return run_suite(c, "name: s\n  concepts: [sepia]\n methods: x\n"), ["s.yaml", "malformed YAML"]


@case("yaml-unknown-field")
def _(c):
    return run_suite(c, TINY_SUITE + "colour: red\n"), ["s.yaml", "colour", "unknown field", "concepts"]


@case("yaml-top-level-list")
def _(c):
    return run_suite(c, "- name: s\n- concepts: [sepia]\n"), ["s.yaml", "mapping", "list"]


@case("yaml-empty-file")
def _(c):
    return run_suite(c, ""), ["s.yaml", "mapping", "NoneType"]


@case("yaml-unsafe-python-object-tag")
def _(c):
    marker = c.tmp / "pwned"
    text = f'name: !!python/object/apply:os.system ["touch {marker}"]\nconcepts: [sepia]\nmethods: [identity]\n'
    args = run_suite(c, text)
    c.request.addfinalizer(lambda: _assert_absent(marker))  # nothing executed
    return args, ["s.yaml", "python/object/apply:os.system", "line 1"]


def _assert_absent(p: Path) -> None:
    assert not p.exists(), p


@case("yaml-unsafe-python-name-tag")
def _(c):
    return run_suite(c, "name: s\nconcepts: !!python/name:os.system\nmethods: [identity]\n"), [
        "s.yaml", "python/name:os.system"]


@case("yaml-alias-bomb")
def _(c):
    # a few hundred bytes that expand 9^8-fold ("billion laughs"): refused before anything is built
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    return run_suite(c, TINY_SUITE + "\n".join(lines) + "\n"), ["s.yaml", "alias"]


@case("yaml-recursive-alias")
def _(c):
    return run_suite(c, "name: &a [*a]\nconcepts: [sepia]\nmethods: [identity]\n"), ["s.yaml", "recursive"]


@case("yaml-alias-bomb-in-model")
def _(c):
    lines = [f"x{i}: &x{i} {{{', '.join(f'k{j}: *x{i - 1}' for j in range(8))}}}" for i in range(1, 8)]
    bomb = "x0: &x0 {ngf: 8}\n" + "\n".join(lines) + "\n" + tiny(model="{e2gan: *x7}")
    return run_suite(c, bomb), ["s.yaml", "alias"]


@case("yaml-huge-file")
def _(c):
    return run_suite(c, TINY_SUITE + "# padding\n" * 200_000), ["s.yaml", "too large", "bytes"]


@case("yaml-not-utf8")
def _(c):
    p = c.tmp / "s.yaml"
    p.write_bytes(TINY_SUITE.replace("tiny", "t\xe9l\xe9").encode("latin-1"))
    return ["run", "--suite", p, "--out", c.out], ["s.yaml", "UTF-8"]


@case("yaml-binary-junk")
def _(c):
    p = c.tmp / "s.yaml"
    p.write_bytes(bytes(range(256)) * 4)
    return ["run", "--suite", p, "--out", c.out], ["s.yaml", "UTF-8"]


@case("yaml-deeply-nested")
def _(c):
    return run_suite(c, "name: " + "[" * 5000 + "]" * 5000 + "\n"), ["s.yaml", "nested too deeply"]


@case("yaml-duplicate-key")
def _(c):
    return run_suite(c, TINY_SUITE + "name: other\n"), ["s.yaml", "duplicate key 'name'"]


@case("yaml-suite-is-a-folder")
def _(c):
    (c.tmp / "d.yaml").mkdir()
    return ["run", "--suite", c.tmp / "d.yaml", "--out", c.out], ["d.yaml", "not found"]


def _search(name: str) -> str:
    """``methods:`` with E2GAN using the rank search ``name``."""
    return f"[{{name: e2gan, overrides: {{lora: {{search: '{name}'}}}}}}]"


#: Suites that are the tiny suite with some lines replaced: (the replaced lines by key, what the error names besides
#: the file).
SUITE_CASES: dict[str, tuple[dict[str, str], list[str]]] = {
    # malformed values and unknown fields
    "yaml-unknown-nested-field": (dict(eval="{kidd_subsets: 3}"),
        ["eval.kidd_subsets", "kid_subsets"]),
    "yaml-wrong-type-seeds": (dict(seeds="zero"),
        ["seeds", "zero"]),
    "yaml-wrong-type-concepts": (dict(concepts="5"),
        ["concepts", "5"]),
    # unknown names
    "unknown-concept": (dict(concepts="[sepia, no-such-concept]"),
        ["concepts[1]", "no-such-concept"]),
    "unknown-method": (dict(methods="[identity, magic]"),
        ["methods[1]", "magic", "scratch"]),
    "unknown-rank-search": (dict(methods=_search("unifrom")),
        ["methods[0].lora.search", "unifrom", "did you mean 'uniform'"]),
    "unknown-data-selector": (dict(methods="[{scratch: {data: {selector: kmean}}}]"),
        ["methods[0].data.selector", "kmean", "kmeans"]),
    "unknown-base-selector": (dict(methods="[e2gan]", base="{selector: representatve}"),
        ["base.selector", "representatve", "representative"]),
    "unknown-metric": (dict(eval="{params: {kidd: {}}}"),
        ["eval.params", "kidd", "unknown metric"]),
    "unknown-architecture": (dict(methods="[{scratch: {arch: unet}}]"),
        ["unet", "e2gan"]),
    "unknown-model-architecture": (dict(model="{e2gna: {ngf: 8}}"),
        ["model.e2gna", "pix2pix-resnet"]),
    # impossible and non-finite values
    "negative-steps": (dict(methods="[scratch]", budget="{steps: -1}"),
        ["budget.steps", "-1"]),
    "nan-learning-rate": (dict(budget="{lr: .nan}"),
        ["budget.lr", "nan", "finite"]),
    "inf-learning-rate": (dict(budget="{lr: .inf}"),
        ["budget.lr", "inf", "finite"]),
    "nan-in-lora-alpha": (dict(methods="[{scratch: {lora: {alpha: .nan}}}]"),
        ["lora.alpha", "nan"]),
    "inf-in-plugin-params": (dict(methods="[{e2gan: {lora: {search: uniform, search_params: {scale: .inf}}}}]"),
        ["search_params", "scale", "inf"]),
    "negative-seed": (dict(seeds="[0, -1]"),
        ["seeds[1]", "-1"]),
    "seed-beyond-32-bits": (dict(seeds=f"[{2**70}]"),
        ["seeds[0]", str(2**70)]),
    "resolution-too-small": (dict(data="{resolution: 7}"),
        ["data.resolution", "7"]),
    "a-billion-training-images": (dict(data="{n_train: 1000000000}"),
        ["data.n_train", "1000000000"]),
    "data-beyond-memory": (dict(data="{resolution: 1024, n_train: 100000}"),  # ~3 TB: refused before allocating
        ["'data'", "GiB", "resolution 1024, n_train 100000", "E2GAN_BENCH_ALLOW_LARGE=1"]),
    "base-data-beyond-memory": (dict(methods="[e2gan]", data="{resolution: 128, n_train: 5000}",  # 2.5 GB each
                                     base="{selector: random, count: 1000}"),
        ["'data'", "GiB", "the base model's 1000 concepts together"]),
    "rank-search-budget-absurd": (dict(methods="[{e2gan: {lora: {search: uniform, search_params: {scale: 1.0e+6}}}}]"),
        ["search_params", "scale", "64"]),
    "adam-beta-of-one": (dict(budget="{beta1: 1.0}"),
        ["budget.beta1", "1.0"]),
    "lora-alpha-negative": (dict(methods="[{e2gan: {lora: {alpha: -2}}}]"),
        ["methods[0].lora.alpha", "-2"]),
    "kid-subset-of-one": (dict(eval="{kid_subset_size: 1}"),
        ["eval.kid_subset_size", "1"]),
    "model-width-zero": (dict(model="{e2gan: {ngf: 0}}"),
        ["model.e2gan.ngf", "0"]),
    "model-heads-do-not-divide": (dict(model="{e2gan: {ngf: 4, heads: 3}}"),
        ["model.e2gan", "heads (3)"]),
    "lora-rank-zero": (dict(methods="[{e2gan: {lora: {rank: 0}}}]"),
        ["methods[0].lora.rank", "0"]),
    "data-fraction-above-one": (dict(methods="[{scratch: {data: {fraction: 1.5}}}]"),
        ["methods[0].data.fraction", "1.5"]),
    # names that would escape the output folder
    "suite-name-parent-folder": (dict(name="../../escaped"),
        ["field 'name'", "../../escaped"]),
    "suite-name-absolute-path": (dict(name="/tmp/escaped"),
        ["field 'name'", "/tmp/escaped"]),
    "method-label-parent-folder": (dict(methods="[{name: ../evil, method: scratch}]"),
        ["methods[0].name", "../evil"]),
    # bad plugin paths
    "plugin-module-missing": (dict(methods=_search("nosuch.module:fn")),
        ["methods[0].lora.search", "nosuch.module:fn", "cannot import"]),
    "plugin-attribute-missing": (dict(methods=_search("plugins.my_search:nope")),
        ["plugins.my_search:nope", "cannot import"]),
    "plugin-module-fails-at-import": (dict(methods=_search("plugins.broken_module:f")),
        ["plugins.broken_module:f", "RuntimeError", "broken"]),
    "plugin-not-callable": (dict(methods=_search("plugins.bad_search:not_callable")),
        ["plugins.bad_search:not_callable", "not a class or function"]),
}


for _name, (_replace, _needles) in SUITE_CASES.items():
    def _build_suite(c, replace=_replace, needles=_needles):
        return run_suite(c, tiny(**replace)), ["s.yaml", *needles]

    case(_name)(_build_suite)


# ------------------------------------------------------------------------------------- unknown names


@case("code-named-in-a-suite-without-opt-in")
def _(c):
    c.monkeypatch.delenv("E2GAN_BENCH_ALLOW_CODE")
    return run_suite(c, tiny(methods=_search("plugins.my_search:out_heavy"))), [
        "s.yaml", "methods[0].lora.search", "names code", "'plugins.my_search'", "E2GAN_BENCH_ALLOW_CODE=1"]


@case("unknown-suite")
def _(c):
    return ["run", "--suite", "quik", "--out", c.out], ["--suite", "quik", "quick"]


@case("unknown-rank-search-option")
def _(c):
    return ["run", "--suite", write_suite(c.tmp), "--out", c.out, "--rank-search", "spectral"], [
        "--rank-search", "spectral", "grad-spectrum"]


SEPIA = "{kind: procedural, ops: [{op: sepia}]}"


def concept_suite(c: Ctx, concept: str, *, name: str = "mine") -> list:
    d = c.tmp / "concepts"
    d.mkdir(exist_ok=True)
    (d / f"{name}.yaml").write_text(concept)
    return run_suite(c, tiny(concepts=f"[{name}]", methods="[identity]")) + ["--concepts-dir", d]


#: Concepts (in a ``--concepts-dir``, run by the tiny suite): (teacher, source, name), what the error names besides
#: the concept file.
CONCEPT_CASES: dict[str, tuple[tuple[str, str | None, str], list[str]]] = {
    # unknown names of every registry a concept uses
    "unknown-teacher": (("{kind: procedurel}", None, "mine"), ["teacher.kind", "procedurel", "procedural"]),
    "unknown-source": ((SEPIA, "{kind: fotos}", "mine"), ["source.kind", "fotos", "builtin-photos"]),
    "unknown-op": (("{kind: procedural, ops: [{op: sepai}]}", None, "mine"), ["teacher.ops[0]", "sepai", "sepia"]),
    "unknown-builtin-photo": ((SEPIA, "{kind: builtin-photos, photos: [astronaut, nope]}", "mine"),
                              ["source.photos", "nope", "astronaut"]),
    # impossible and non-finite op parameters
    "snow-density-unbounded": (("{kind: procedural, ops: [{op: snow, density: 1.0e+9}]}", None, "mine"),
                               ["teacher.ops[0]", "density", "<= 10"]),
    "op-parameter-nan": (("{kind: procedural, ops: [{op: grayscale, amount: .nan}]}", None, "mine"),
                         ["teacher.ops[0]", "amount", "finite"]),
    "synthetic-scene-size-absurd": ((SEPIA, "{kind: synthetic, size: 100000}", "mine"),
                                    ["source", "size", "100000", "4096"]),
    # a name that would escape the output folder
    "concept-name-parent-folder": ((SEPIA, None, "../x"), ["field 'name'", "../x"]),
    # a bad plugin path
    "plugin-teacher-missing-module": (("{kind: 'nosuch.teachers:T'}", None, "mine"),
                                      ["teacher.kind", "nosuch.teachers:T"]),
}


for _name, ((_teacher, _source, _cname), _needles) in CONCEPT_CASES.items():
    def _build_concept(c, teacher=_teacher, source=_source, cname=_cname, needles=_needles):
        text = f"name: {cname}\nprompt: make it so\nteacher: {teacher}\n" + (f"source: {source}\n" if source else "")
        return concept_suite(c, text), ["mine.yaml", *needles]

    case(_name)(_build_concept)


@case("unknown-weights-name")
def _(c):
    return ["weights", "add", "vgg", c.tmp], ["NAME", "vgg", "inception"]


# ------------------------------------------------------------------------------------- impossible values


@case("compare-confidence-nan")
def _(c):
    csv = c.tmp / "runs.csv"
    csv.write_text("concept,method,seed,psnr\nsepia,a,0,10\nsepia,a,1,11\n")
    return ["compare", csv, csv, "--confidence", "nan"], ["--confidence", "nan"]


# ------------------------------------------------------------------------------------- escaping the output folder


@case("out-is-a-file")
def _(c):
    c.out.write_text("not a folder")
    c.request.addfinalizer(lambda: _assert_unchanged_file(c.out))
    return ["run", "--suite", write_suite(c.tmp), "--out", c.out], [str(c.out)]


def _assert_unchanged_file(p: Path) -> None:
    assert p.read_text() == "not a folder"


# ------------------------------------------------------------------------------------- broken images


def _png(path: Path, size: int = 40, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return path


def _png_header_only(path: Path, w: int, h: int) -> Path:
    """A PNG that claims ``w`` × ``h`` pixels (a decompression bomb's header)."""
    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    return path


def folder_suite(c: Ctx, broken: Callable[[Path], Path] | None, n_good: int = 3) -> tuple[list, Path]:
    photos = c.tmp / "photos"
    photos.mkdir()
    for i in range(n_good):
        _png(photos / f"good{i}.png", seed=i)
    bad = broken(photos) if broken else photos
    args = concept_suite(c, f"name: mine\nprompt: make it sepia\nteacher: {{kind: procedural, ops: [{{op: sepia}}]}}\n"
                            f"source: {{kind: folder, path: '{photos}'}}\n")
    return args, bad


def _truncated(path: Path, fmt: str) -> Path:
    buf = path.with_suffix(".full")
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, format=fmt)
    data = buf.read_bytes()
    buf.unlink()
    path.write_bytes(data[: len(data) // 2])
    return path


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _dangling(path: Path) -> Path:
    path.symlink_to(path.with_name("missing.png"))
    return path


BROKEN_IMAGES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "zero-byte": (lambda d: _file(d / "empty.png", b""), "empty"),
    "truncated-png": (lambda d: _truncated(d / "cut.png", "PNG"), "unreadable image"),
    "truncated-jpeg": (lambda d: _truncated(d / "cut.jpg", "JPEG"), "truncated"),
    "garbage-jpeg": (lambda d: _file(d / "noise.jpg", np.random.default_rng(1).bytes(5000)), "unreadable image"),
    "text-named-png": (lambda d: _file(d / "notes.png", b"not an image"), "cannot identify"),
    "dangling-symlink": (lambda d: _dangling(d / "gone.png"), "No such file"),
    "decompression-bomb": (lambda d: _png_header_only(d / "bomb.png", 100_000, 100_000), "unreadable image"),
}


for _name, (_make, _needle) in BROKEN_IMAGES.items():
    def _build(c, make=_make, needle=_needle):
        args, bad = folder_suite(c, make)
        return args, ["mine.yaml", "source.path", bad.name, needle]

    case(f"image-{_name}")(_build)


def pairs_suite(c: Ctx, broken: Callable[[Path], Path], side: str) -> tuple[list, Path]:
    """A ``folder-pairs`` concept (A/ inputs, B/ targets) whose ``side`` folder holds one broken image."""
    root = c.tmp / "pairs"
    for d in ("A", "B"):
        (root / d).mkdir(parents=True)
        for i in range(3):
            _png(root / d / f"p{i}.png", seed=i)
    bad = broken(root / side)
    other = root / ("B" if side == "A" else "A") / bad.name
    if not other.exists():
        _png(other, seed=7)
    args = concept_suite(c, f"name: mine\nprompt: make it sepia\nteacher: {{kind: folder-pairs, path: '{root}'}}\n")
    return args, bad


for _name, _side in (("truncated-png", "A"), ("zero-byte", "B"), ("text-named-png", "B")):
    def _build_pairs(c, make=BROKEN_IMAGES[_name][0], needle=BROKEN_IMAGES[_name][1], side=_side):
        args, bad = pairs_suite(c, make, side)
        return args, ["mine.yaml", "teacher.inputs" if side == "A" else "teacher.targets", bad.name, needle]

    case(f"pairs-image-{_name}")(_build_pairs)


@case("image-permission-denied")
def _(c):
    def unreadable(d: Path) -> Path:
        f = _png(d / "secret.png", seed=9)
        os.chmod(f, 0)
        c.request.addfinalizer(lambda: os.chmod(f, 0o644))
        if os.geteuid() == 0:  # root reads anything: make the open fail as it would for a user
            real = Image.open

            def denied(fp, *a, **k):
                if Path(str(fp)).name == f.name:
                    raise PermissionError(13, "Permission denied", str(fp))
                return real(fp, *a, **k)

            c.monkeypatch.setattr(Image, "open", denied)
        return f

    args, bad = folder_suite(c, unreadable)
    return args, ["mine.yaml", "source.path", "secret.png", "Permission denied"]


@case("image-folder-with-one-image")
def _(c):
    args, photos = folder_suite(c, None, n_good=1)
    return args, ["mine.yaml", "source.path", "at least 2 images"]


@case("image-folder-missing")
def _(c):
    args = concept_suite(c, "name: mine\nprompt: make it sepia\nteacher: {kind: procedural, ops: [{op: sepia}]}\n"
                            f"source: {{kind: folder, path: '{c.tmp / 'nowhere'}'}}\n")
    return args, ["mine.yaml", "source.path", "nowhere", "not found"]


# ------------------------------------------------------------------------------------- broken stores and caches


@pytest.fixture(scope="module")
def tiny_out(tmp_path_factory) -> Path:
    """A small finished store (two runs) that store cases copy and break."""
    d = tmp_path_factory.mktemp("tiny")
    assert cli("run", "--suite", write_suite(d), "--out", d / "out") == 0
    return d / "out"


def broken_store(c: Ctx, damage: Callable[[Path], None]) -> Path:
    shutil.copytree(c.request.getfixturevalue("tiny_out"), c.out)
    damage(c.out)
    return c.out


@case("store-database-junk-run", writes="unchanged")
def _(c):
    broken_store(c, lambda o: (o / "results.sqlite").write_bytes(b"definitely not sqlite" * 100))
    return ["run", "--suite", write_suite(c.tmp), "--out", c.out], ["results.sqlite", "not a results database"]


@case("store-database-junk-report", writes="unchanged")
def _(c):
    broken_store(c, lambda o: (o / "results.sqlite").write_bytes(b"\x00" * 4096))
    return ["report", "--out", c.out, "--dest", c.tmp / "rep"], ["results.sqlite", "not a results database"]


@case("store-database-junk-compare", writes="unchanged")
def _(c):
    broken_store(c, lambda o: (o / "results.sqlite").write_bytes(b"SQLite format 3\x00" + b"\xff" * 200))
    return ["compare", c.out, c.out], ["results.sqlite"]


@case("store-training-record-corrupt", writes="unchanged")
def _(c):
    def damage(o: Path) -> None:
        for f in (o / "artifacts").glob("*/training.json"):
            f.write_text("{not json")
    broken_store(c, damage)
    return ["evaluate", "--out", c.out, "--force"], ["training.json", "unreadable training record"]


@case("store-adapter-corrupt", writes="unchanged")
def _(c):
    def damage(o: Path) -> None:
        for f in (o / "artifacts").glob("*/generator.safetensors"):
            f.write_bytes(b"\x00\x01garbage")
    broken_store(c, damage)
    return ["evaluate", "--out", c.out, "--force"], ["generator.safetensors", "unreadable run artifact"]


@case("runs-csv-junk")
def _(c):
    csv = c.tmp / "runs.csv"
    csv.write_bytes(b"\xff\xfe\x00junk")
    return ["compare", csv, csv], ["runs.csv", "unreadable"]


@case("runs-csv-wrong-columns")
def _(c):
    csv = c.tmp / "runs.csv"
    csv.write_text("a,b\n1,2\n")
    return ["compare", csv, csv], ["runs.csv", "no column 'concept'"]


@case("weights-registry-junk")
def _(c):
    home = c.tmp / "home"
    home.mkdir()
    (home / "weights.json").write_text("{broken")
    c.monkeypatch.setenv("E2GAN_BENCH_HOME", str(home))
    return ["weights", "list"], ["weights.json", "not valid JSON"]


@case("weights-junk-inception")
def _(c):
    junk = c.tmp / "inception-2015-12-05.pt"
    junk.write_bytes(b"junk!")  # 5 bytes
    c.monkeypatch.setenv("E2GAN_BENCH_HOME", str(c.tmp / "home"))
    c.request.addfinalizer(lambda: _assert_absent(c.tmp / "home" / "weights.json"))
    return ["weights", "add", "inception", junk], ["inception-2015-12-05.pt", "not clean-fid's Inception"]


@case("weights-wrong-network-alexnet")
def _(c):
    import torch

    f = c.tmp / "alexnet.pth"
    torch.save({"features.0.weight": torch.zeros(2, 2)}, f)
    c.monkeypatch.setenv("E2GAN_BENCH_HOME", str(c.tmp / "home"))
    c.monkeypatch.setattr("e2gan_bench.features.weights._check_pin", lambda *a: None)  # past the hash pin
    c.request.addfinalizer(lambda: _assert_absent(c.tmp / "home" / "weights.json"))
    return ["weights", "add", "alexnet", f], ["alexnet.pth", "not a torchvision AlexNet state dict"]


# ------------------------------------------------------------------------------------- bad plugin paths and outputs


@case("plugin-option-missing-module")
def _(c):
    return ["run", "--suite", write_suite(c.tmp), "--out", c.out, "--rank-search", "nosuch:fn"], [
        "--rank-search", "nosuch:fn", "cannot import"]


PLUGIN_OUTPUTS = {
    "unknown_layer": "unknown layer 'no.such.layer'",
    "rank_zero": "rank 0",
    "not_an_int": "not an integer",
    "a_bool": "not an integer",
    "too_big": "rank 4096",
    "a_list": "not a mapping",
    "empty": "no layers",
}

for _fn, _needle in PLUGIN_OUTPUTS.items():
    def _build_output(c, fn=_fn, needle=_needle):
        method = (f"[{{name: e2gan, overrides: {{init: scratch, data: {{selector: all}}, "
                  f"lora: {{search: 'plugins.bad_search:{fn}'}}}}}}]")
        return run_suite(c, tiny(methods=method)), ["lora.search", f"plugins.bad_search:{fn}", needle]

    case(f"plugin-output-{_fn.replace('_', '-')}", writes="no-results")(_build_output)


# ------------------------------------------------------------------------------------- the test


def test_corpus_is_large_enough():
    assert len(CASES) >= 40, len(CASES)


@pytest.mark.parametrize("build, writes", CASES)
def test_bad_input_is_one_line_and_exit_2(build, writes, tmp_path, capsys, monkeypatch, request):
    c = Ctx(tmp_path, tmp_path / "out", monkeypatch, request)
    args, needles = build(c)
    before = snapshot(c.out) if writes == "unchanged" else None
    capsys.readouterr()
    assert cli(*args) == 2
    one_error_line(capsys, *needles)
    if writes == "none":
        assert not c.out.exists() or c.out.is_file()
    elif writes == "unchanged":
        assert snapshot(c.out) == before
    else:
        assert_no_results(c.out)


def test_memory_estimate_counts_every_split_and_the_override_runs_it(tmp_path, monkeypatch):
    """The estimate is the data the suite holds at once (uint8 pairs of every split, float32 training pairs);
    ``E2GAN_BENCH_ALLOW_LARGE=1`` is the explicit override, and without it the refusal stands."""
    from e2gan_bench.config import load_suite
    from e2gan_bench.data.dataset import DataSettings
    from e2gan_bench.errors import UserError
    from e2gan_bench.harness.inputs import check_memory, memory_estimate
    from e2gan_bench.resources import Catalog

    catalog = Catalog()
    path = write_suite(tmp_path, tiny(data="{resolution: 1024, n_train: 100000}"))
    suite = load_suite(path)
    st = DataSettings.for_concept(catalog.concept("sepia"), suite.data)
    px = 1024 * 1024 * 3
    need, what = memory_estimate(suite, catalog, str(path))
    assert need == (100000 + st.n_test + st.n_val) * px * 2 + 100000 * px * 4 * 2 and "concept sepia" in what
    with pytest.raises(UserError, match="E2GAN_BENCH_ALLOW_LARGE"):
        check_memory(suite, catalog, str(path))
    monkeypatch.setenv("E2GAN_BENCH_ALLOW_LARGE", "1")
    check_memory(suite, catalog, str(path))  # the override: no refusal
    small = load_suite(write_suite(tmp_path / "small", tiny()))
    assert memory_estimate(small, catalog, "s.yaml")[0] < 2**20  # the tiny suite: well under a MiB


@pytest.mark.parametrize("kind, params, needles", [
    ("diffusers", {"steps": 1_000_000}, ["teacher.steps", "1000000", "1000"]),
    ("diffusers", {"work_resolution": 100_000}, ["teacher.work_resolution", "4096"]),
    ("diffusers", {"guidance_scale": float("nan")}, ["teacher.guidance_scale", "finite"]),
    ("diffusers", {"batch": 0}, ["teacher.batch", "0"]),
])
def test_teacher_numbers_are_bounded(kind, params, needles):
    """The diffusion teacher's numbers are bounded on both sides and refused before any weights are looked for (a
    suite naming it stops first on its missing weights, so this is checked on the plugin itself)."""
    from e2gan_bench.data.teachers import build_teacher
    from e2gan_bench.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        build_teacher(kind, params, file="c.yaml")
    line = e.value.line()
    assert "c.yaml" in line and all(n in line for n in needles), line
