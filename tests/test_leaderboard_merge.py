"""`e2gan-bench leaderboard STORE… --dest DIR`: one suite's runs merged from several stores (report/merge/suite.py).

Three tiny stores are made by really running the tiny suite: A (seed 0) and B (seed 1) — the same suite split
across two stores, as two machines would — and C (seed 1 at another data resolution: another protocol). Copies of
A and B with edited records stand for a store whose copy of a run disagrees, and a store evaluated under other
metric weights."""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY_SUITE, cli, one_error_line, write_suite

from e2gan_bench.cache import host_id
from e2gan_bench.metrics.provenance import cpu_model, git_commit
from e2gan_bench.report.merge.suite import ORIGIN_COLUMNS


def _suite(seeds: str, text: str = TINY_SUITE) -> str:
    return text + f"seeds: {seeds}\n"


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("merge")
    out = {"full": write_suite(root / "suites", _suite("[0, 1]"), "full.yaml"),
           "suite_a": write_suite(root / "suites", _suite("[0]"), "a.yaml"),
           "suite_b": write_suite(root / "suites", _suite("[1]"), "b.yaml")}
    other = TINY_SUITE.replace("resolution: 16", "resolution: 24").replace(
        "methods: [identity, {scratch: {budget: {steps: 3}}}]", "methods: [identity]")
    assert other != TINY_SUITE
    out["suite_c"] = write_suite(root / "suites", _suite("[1]", other), "c.yaml")
    for name in ("a", "b", "c"):
        out[name] = root / name
        assert cli("run", "--suite", out[f"suite_{name}"], "--out", out[name]) == 0
    return out


def _records(store: Path) -> dict[str, dict]:
    with closing(sqlite3.connect(store / "results.sqlite")) as con:
        return {k: json.loads(r) for k, r in con.execute("SELECT key, record FROM runs")}


def _edit_records(store: Path, edit) -> None:
    """Change every record of a store in place (database row and record.json), as another machine's store would
    differ."""
    with closing(sqlite3.connect(store / "results.sqlite")) as con, con:
        for key, raw in con.execute("SELECT key, record FROM runs").fetchall():
            rec = json.loads(raw)
            edit(rec)
            con.execute("UPDATE runs SET record = ? WHERE key = ?", (json.dumps(rec), key))
            (store / "runs" / key / "record.json").write_text(json.dumps(rec))


def _md_without_sources(text: str) -> list[str]:
    """leaderboard.md without its title and the merge's Sources section."""
    lines = text.splitlines()[1:]
    if "## Sources" in lines:
        i = lines.index("## Sources")
        j = lines.index("## Provenance")
        lines = lines[:i] + lines[j:]
    return lines


def test_merge_has_the_union_and_where_each_run_came_from(stores, tmp_path):
    dest = tmp_path / "merged"
    assert cli("leaderboard", stores["a"], stores["b"], "--suite", stores["full"], "--dest", dest, "--html") == 0
    runs = pd.read_csv(dest / "runs.csv")
    a, b = _records(stores["a"]), _records(stores["b"])
    assert len(a) == 2 and len(b) == 2
    assert set(runs["key"]) == set(a) | set(b)  # the union: more runs than either store
    assert sorted(runs["seed"].unique()) == [0, 1]
    for col in ORIGIN_COLUMNS:
        assert col in runs.columns
    origin = dict(zip(runs["key"], runs["store"], strict=True))
    assert {origin[k] for k in a} == {str(stores["a"])} and {origin[k] for k in b} == {str(stores["b"])}
    assert set(runs["machine"]) == {f"{cpu_model()} (host {host_id()})"}
    assert set(runs["commit"]) == {git_commit() or "unrecorded"}
    assert runs["also_in"].isna().all()  # no run is in both stores
    lb = pd.read_csv(dest / "leaderboard.csv").set_index("method")
    assert list(lb.index) == ["identity", "scratch"]
    assert lb.loc["scratch", "runs"] == 2 and lb.loc["scratch", "seeds"] == 2
    scratch = runs[runs["method"] == "scratch"]
    assert lb.loc["scratch", "psnr"] == pytest.approx(scratch["psnr"].mean())
    md = (dest / "leaderboard.md").read_text()
    assert "merged from 2 store(s)" in md and "Incomplete" not in md
    sources = md[md.index("## Sources"):md.index("## Provenance")]
    assert f"store `{stores['a']}`: 2 run(s) kept" in sources and f"store `{stores['b']}`: 2 run(s) kept" in sources
    assert host_id() in sources
    page = json.loads((dest / "leaderboard.json").read_text())
    assert {r["store"] for r in page["runs"]} == {str(stores["a"]), str(stores["b"])}
    assert "id=sources" in (dest / "leaderboard.html").read_text()


def test_merge_of_one_store_equals_its_report(stores, tmp_path):
    report, merged = tmp_path / "report", tmp_path / "merged"
    assert cli("report", "--out", stores["a"], "--suite", stores["suite_a"], "--dest", report) == 0
    assert cli("leaderboard", stores["a"], "--suite", stores["suite_a"], "--dest", merged) == 0
    assert (merged / "leaderboard.csv").read_text() == (report / "leaderboard.csv").read_text()
    ours = pd.read_csv(merged / "runs.csv")
    pd.testing.assert_frame_equal(ours.drop(columns=list(ORIGIN_COLUMNS)), pd.read_csv(report / "runs.csv"))
    assert len(ours) == 2
    assert _md_without_sources((merged / "leaderboard.md").read_text()) == \
        _md_without_sources((report / "leaderboard.md").read_text())


def test_refuses_mixed_protocols(stores, tmp_path, capsys):
    dest = tmp_path / "merged"
    capsys.readouterr()
    assert cli("leaderboard", stores["a"], stores["c"], "--suite", stores["full"], "--dest", dest) == 2
    one_error_line(capsys, "protocols differ", "data.resolution", "24", str(stores["c"]))
    assert not dest.exists()


def test_refuses_mixed_metric_backends(stores, tmp_path, capsys):
    """B evaluated under other FID weights (a machine with Inception registered): never averaged with A's."""
    other = tmp_path / "b-inception"
    shutil.copytree(stores["b"], other)

    def inception(rec):
        rec["backends"]["fid"] = "inception-2015-12-05@sha256:f58cb9b6"

    _edit_records(other, inception)
    dest = tmp_path / "merged"
    capsys.readouterr()
    assert cli("leaderboard", stores["a"], other, "--suite", stores["full"], "--dest", dest) == 2
    one_error_line(capsys, "metric backends differ", "backends.fid", "inception-2015-12-05", str(other))
    assert not dest.exists()


def test_same_run_in_two_stores_is_kept_once_and_checked(stores, tmp_path):
    """A2 holds A's runs again (as if recomputed elsewhere), its scratch PSNR 1 dB off (beyond the 0.5 dB gate):
    one record per run is kept — the first store named — and the disagreement is reported."""
    again = tmp_path / "a-again"
    shutil.copytree(stores["a"], again)

    def drift(rec):
        if rec["method"] == "scratch":
            rec["psnr"] += 1.0

    _edit_records(again, drift)
    first, second = tmp_path / "first", tmp_path / "second"
    assert cli("leaderboard", stores["a"], stores["b"], again, "--suite", stores["full"], "--dest", first) == 0
    assert cli("leaderboard", again, stores["b"], stores["a"], "--suite", stores["full"], "--dest", second) == 0
    runs = pd.read_csv(first / "runs.csv").set_index(["method", "seed"])
    assert len(runs) == 4  # not 6: a run is one unit however many stores hold it
    assert runs.loc[("identity", 0), "store"] == str(stores["a"])
    assert runs.loc[("identity", 0), "also_in"] == str(again)
    assert runs.loc[("identity", 0), "duplicate_check"] == "identical"
    assert runs.loc[("scratch", 0), "duplicate_check"].startswith("disagree (psnr")
    assert pd.isna(runs.loc[("scratch", 1), "also_in"])
    a_psnr = _records(stores["a"])
    kept = [r for r in a_psnr.values() if r["method"] == "scratch"][0]["psnr"]
    assert runs.loc[("scratch", 0), "psnr"] == pytest.approx(kept)
    runs2 = pd.read_csv(second / "runs.csv").set_index(["method", "seed"])
    assert runs2.loc[("scratch", 0), "store"] == str(again)
    assert runs2.loc[("scratch", 0), "psnr"] == pytest.approx(kept + 1.0)
    md = (first / "leaderboard.md").read_text()
    assert "2 run(s) held by more than one store" in md and "1 disagree, 1 identical" in md


def test_bad_inputs(stores, tmp_path, capsys):
    dest = tmp_path / "merged"
    capsys.readouterr()
    assert cli("leaderboard", stores["a"], stores["a"], "--suite", stores["full"], "--dest", dest) == 2
    one_error_line(capsys, "store named twice", str(stores["a"]))
    assert cli("leaderboard", stores["a"], tmp_path / "nowhere", "--dest", dest) == 2
    one_error_line(capsys, "not found", "nowhere")
    assert cli("leaderboard", stores["a"], "--dest", dest) == 2  # the suite `tiny` is not built in
    one_error_line(capsys, "--suite", "tiny", "pass its YAML")
    assert not dest.exists()
