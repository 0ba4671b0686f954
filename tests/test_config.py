"""Schemas and loading: every built-in file loads; bad files fail with file, field and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2gan_bench.config import Concept, Method, Suite, load_concept, load_suite
from e2gan_bench.errors import ConfigError
from e2gan_bench.resources import Catalog, builtin_dir, find_suite, suite_names
from e2gan_bench.training.targets import check_fixed
from e2gan_bench.yamlio import deep_merge, validate


def test_builtin_files_load():
    cat = Catalog()
    assert len(cat.concept_names()) >= 24
    categories = {cat.concept(n).category for n in cat.concept_names()}
    assert len(categories) >= 5
    for n in cat.method_names():
        assert isinstance(cat.method(n), Method)
    assert {"e2gan", "full-finetune", "scratch", "pix2pix", "identity"} <= set(cat.method_names())
    assert {"smoke", "quick"} <= set(suite_names())
    for n in suite_names():
        s, path = find_suite(n)
        for c in s.concepts + s.base.concepts:
            cat.concept(c)
        for m in s.methods:
            cat.method(m.starts_from)
        # a suite's fixed targets exist for every concept it ranks, at its resolution and curve size
        check_fixed(s.target, list(s.concepts), s.data.resolution, s.curve.max_images, file=str(path))


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_malformed_yaml_names_file_and_line(tmp_path):
    p = _write(tmp_path, "bad.yaml", "name: x\nprompt: [unclosed\n")
    with pytest.raises(ConfigError) as e:
        load_concept(p)
    assert str(p) in e.value.line() and "line" in e.value.line()


def test_unknown_field_lists_allowed(tmp_path):
    p = _write(tmp_path, "c1.yaml", "name: c1\nprompt: make it red\nteacher: {kind: procedural, ops: []}\ncolour: red\n")
    with pytest.raises(ConfigError) as e:
        load_concept(p)
    line = e.value.line()
    assert "colour" in line and "prompt" in line and str(p) in line


def test_bad_value_names_field_and_value(tmp_path):
    p = _write(tmp_path, "c2.yaml", "name: c2\nprompt: make it red\nresolution: 7\nteacher: {kind: procedural}\n")
    with pytest.raises(ConfigError) as e:
        load_concept(p)
    assert e.value.field == "resolution" and e.value.value == 7


def test_name_must_match_file(tmp_path):
    p = _write(tmp_path, "c3.yaml", "name: other\nprompt: make it red\nteacher: {kind: procedural}\n")
    with pytest.raises(ConfigError, match="file name"):
        load_concept(p)


def test_unsafe_name_rejected(tmp_path):
    with pytest.raises(ConfigError) as e:
        validate(Concept, {"name": "../etc", "prompt": "x y z", "teacher": {"kind": "procedural"}}, file="f.yaml")
    assert e.value.field == "name"


def test_suite_methods_forms_and_nested_error(tmp_path):
    p = _write(tmp_path, "s.yaml", "name: s\nconcepts: [sepia]\nmethods: [e2gan, {pix2pix: {budget: {steps: 3}}}]\n")
    s = load_suite(p)
    assert [m.name for m in s.methods] == ["e2gan", "pix2pix"] and s.methods[1].overrides["budget"]["steps"] == 3
    p2 = _write(tmp_path, "s2.yaml", "name: s2\nconcepts: [sepia]\nmethods: [e2gan]\nseeds: [zero]\n")
    with pytest.raises(ConfigError) as e:
        load_suite(p2)
    assert e.value.field == "seeds[0]" and e.value.value == "zero"


def test_deep_merge():
    assert deep_merge({"a": {"b": 1, "c": 2}, "d": 1}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}, "d": 1}


def test_builtin_dir_points_at_checkout_or_wheel():
    for kind in ("concepts", "suites", "targets"):
        assert any(builtin_dir(kind).glob("*.yaml"))
    assert {p.parent.name for p in builtin_dir("baselines").glob("*/*.yaml")} == {
        "full-finetune", "scratch", "pix2pix", "identity"}


def test_suite_defaults():
    s = Suite(name="x", concepts=("a",), methods=("e2gan",))
    assert s.seeds == (0,) and s.methods[0].starts_from == "e2gan"


def test_method_entry_names_its_starting_method_old_key_accepted(tmp_path):
    """``method:`` names the method an entry starts from; suites written with ``recipe:`` keep working."""
    for key in ("method", "recipe"):
        p = _write(tmp_path, f"s-{key}.yaml", f"name: s\nconcepts: [sepia]\nmethods: [{{name: short, {key}: e2gan}}]\n")
        assert load_suite(p).methods[0].starts_from == "e2gan"
    p = _write(tmp_path, "bad.yaml", "name: s\nconcepts: [sepia]\nmethods: [{name: short, recipes: e2gan}]\n")
    with pytest.raises(ConfigError) as e:
        load_suite(p)
    assert e.value.field == "methods[0].recipes" and "method" in e.value.line()


def test_rank_search_names_stay_valid_names():
    """`--rank-search` renames each LoRA method `<method>-rs-<search>`: a long method name and a long search name
    still give a valid name (at most 64 characters), not a validation traceback."""
    import re

    from e2gan_bench.config import NAME_PATTERN
    from e2gan_bench.harness.spec import rank_search_name

    name = rank_search_name("m" * 64, "pkg.module:" + "Very_Long_Search_Name" * 5)
    assert len(name) == 64 and re.match(NAME_PATTERN, name) and name.endswith("-rs-very-long-search-namever")
    assert rank_search_name("e2gan", "uniform") == "e2gan-rs-uniform"


def test_every_builtin_method_is_one_folder():
    """A method is a folder holding its preset and its card: E2GAN's inside the package, each baseline's under
    baselines/; the preset names a registered trainable set (the method's code)."""
    from e2gan_bench.methods.contract import TRAINABLES

    cat = Catalog()
    assert set(cat.method_names()) == {"e2gan", "full-finetune", "scratch", "pix2pix", "identity"}
    for name, f in cat.method_files.items():
        assert f.parent.name == name and (f.parent / "README.md").is_file(), f
        method = cat.method(name)
        assert method.name == name and method.trainable in TRAINABLES.names()
    import e2gan_bench

    assert cat.method_files["e2gan"].resolve().parent == (Path(e2gan_bench.__file__).parent / "methods" / "e2gan").resolve()
    for name in ("full-finetune", "scratch", "pix2pix", "identity"):
        assert cat.method_files[name].resolve().parent.parent == builtin_dir("baselines").resolve()


def test_a_methods_dir_is_searched_recursively_skipping_hidden_folders(tmp_path):
    """--methods-dir adds method folders at any depth (a method is a folder); hidden folders (.venv, .git) are not
    searched, and one name in two folders is one line naming both files."""
    (tmp_path / "mine" / "fast").mkdir(parents=True)
    (tmp_path / "mine" / "fast" / "fast.yaml").write_text("name: fast\ntrainable: all\nbudget: {steps: 2}\n")
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "junk.yaml").write_text(": not yaml :\n")
    cat = Catalog(method_dirs=[tmp_path])
    assert "fast" in cat.method_names() and "junk" not in cat.method_names()
    assert cat.method("fast").budget.steps == 2
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "fast.yaml").write_text("name: fast\n")
    with pytest.raises(ConfigError, match="duplicate name") as e:
        Catalog(method_dirs=[tmp_path])
    assert e.value.value == "fast"
