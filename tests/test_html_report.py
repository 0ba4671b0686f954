"""`e2gan-bench report --html`: leaderboard.html (one self-contained page) and leaderboard.json. No training: run
records and their sample pictures are made by hand and committed to a real results store."""

from __future__ import annotations

import base64
import json
import math
import zlib
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd
import pytest
from conftest import cli
from PIL import Image

from e2gan_bench.harness.store import ResultsStore
from e2gan_bench.keys import content_key
from e2gan_bench.record import RunRecord
from e2gan_bench.report.page.grids import concept_grids
from e2gan_bench.report.page.html_tables import main_table
from e2gan_bench.report.page.plots import pareto_figure, pareto_front, use_log
from e2gan_bench.report.stats import Friedman

CONCEPTS = ["pencil-sketch", "winter"]
#: method -> (test PSNR offset, stored bytes, train seconds, latency ms); identity costs nothing
METHODS = {"identity": (0.0, 0, 0.0, None), "e2gan": (5.0, 92_088, 28.0, 2.2),
           "scratch": (4.0, 1_754_996, 24.0, 2.2), "pix2pix": (5.5, 2_866_628, 30.0, 3.0)}
TILE = 16


def _seed(*parts: object) -> int:
    return zlib.crc32(repr(parts).encode())


def samples(seed_value: int, n: int = 3) -> np.ndarray:
    """A samples.png picture: source, teacher and student rows of ``n`` tiles, each row of its own colour."""
    rng = np.random.default_rng(seed_value)
    rows = [rng.integers(0, 256, size=(TILE, TILE * n, 3), dtype=np.uint8) for _ in range(3)]
    return np.concatenate(rows, axis=0)


def val_curve(method: str, gain: float) -> dict | None:
    if method == "identity":
        return {"points": [{"step": 0, "seconds": 0.0, "flops": 0, "psnr": 10.0, "ssim": 0.3}], "n_images": 4}
    steps = [0, 10, 40, 160, 640]
    return {"points": [{"step": s, "seconds": 0.04 * s + (1.0 if method == "e2gan" else 0.0), "flops": 1e9 * s + 1e8,
                        "psnr": 10.0 + gain * (1 - math.exp(-s / 100)), "ssim": 0.3 + 0.05 * gain * s / 640}
                       for s in steps], "n_images": 4}


def record(concept: str, method: str, seed: int, status: str = "ok") -> RunRecord:
    off, stored, secs, lat = METHODS[method]
    vals = {"psnr": 10.0 + off + 0.3 * seed + (1.0 if concept == "winter" else 0.0),
            "ssim": 0.3 + off / 20 + 0.01 * seed, "lpips": 0.2 - off / 50, "stored_bytes": stored,
            "train_seconds": secs + seed if secs else 0.0, "train_flops": secs * 1e11, "trainable_params": stored // 4}
    if lat is not None:
        vals["latency_ms"] = lat
    if status != "ok":
        vals = {}
    return RunRecord(key=content_key(concept, method, seed, status), concept=concept, method=method, seed=seed,
                     status=status, reference=method == "identity", error="diverged at step 12" if status != "ok"
                     else None, backends={"psnr": "torchmetrics", "ssim": "torchmetrics", "lpips": "lpips-alex"},
                     val_curve=val_curve(method, off) if status == "ok" else None,
                     provenance={"git": "abc123", "versions": {"torch": "2.14.1"}, "python": "3.11"}, **vals)


def write_store(root: Path, records: list[RunRecord]) -> Path:
    store = ResultsStore(root)
    for r in records:
        staged = store.staging(r.key)  # created by the store
        if r.status == "ok":  # the same test images (source, teacher rows) for every method of a (concept, seed)
            pic = samples(_seed(r.concept, r.seed))
            pic[2 * TILE:] = samples(_seed(r.concept, r.method, r.seed))[2 * TILE:]
            Image.fromarray(pic).save(staged / "samples.png")
        store.commit(r, staged, "quick")
    return root


def full_store(root: Path, failed: bool = False) -> Path:
    recs = [record(c, m, s) for c in CONCEPTS for m in METHODS for s in (0, 1)]
    if failed:
        recs = [r for r in recs if not (r.concept == "winter" and r.method == "scratch" and r.seed == 1)]
        recs.append(record("winter", "scratch", 1, status="failed"))
    return write_store(root, recs)


class Page(HTMLParser):
    """Collects img sources, link targets, ids and alt texts; checks that every non-void element is closed."""

    VOID = {"meta", "img", "br", "hr", "link", "input", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.srcs: list[str] = []
        self.hrefs: list[str] = []
        self.ids: set[str] = set()
        self.alts: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "img":
            self.srcs.append(a.get("src") or "")
            self.alts.append(a.get("alt") or "")
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


class Tables(HTMLParser):
    """Every table of a page, in order: its id, class and caption, and its rows as lists of cells, each cell a dict
    of text (``<br>`` read as a space), tag (th / td), class and colspan; ``in_head`` marks the rows of its thead."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict] = []
        self._open: list[dict] = []  # the tables being read (nested ones too)
        self._cell: dict | None = None
        self._caption: dict | None = None
        self._head = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            t = {"id": a.get("id"), "class": a.get("class") or "", "caption": "", "rows": [], "head_rows": 0}
            self.tables.append(t)
            self._open.append(t)
        elif tag == "thead":
            self._head = True
        elif tag == "caption" and self._open:
            self._caption = self._open[-1]
        elif tag == "tr" and self._open:
            self._open[-1]["rows"].append([])
            self._open[-1]["head_rows"] += self._head
        elif tag in ("td", "th") and self._open:
            self._cell = {"text": "", "tag": tag, "class": (a.get("class") or "").split(),
                          "colspan": int(a.get("colspan") or 1)}
            self._open[-1]["rows"][-1].append(self._cell)
        elif tag == "br" and self._cell is not None:
            self._cell["text"] += " "

    def handle_endtag(self, tag):
        if tag == "table" and self._open:
            self._open.pop()
        elif tag == "thead":
            self._head = False
        elif tag == "caption":
            self._caption = None
        elif tag in ("td", "th") and self._cell is not None:
            self._cell["text"] = " ".join(self._cell["text"].split())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
        elif self._caption is not None:
            self._caption["caption"] += data

    def by_id(self, table_id: str) -> dict:
        [t] = [t for t in self.tables if t["id"] == table_id]
        return t


def tables(path: Path) -> Tables:
    t = Tables()
    t.feed(path.read_text(encoding="utf-8"))
    t.close()
    return t


def texts(row: list[dict]) -> list[str]:
    return [c["text"] for c in row]


def parse(path: Path) -> Page:
    p = Page()
    p.feed(path.read_text(encoding="utf-8"))
    p.close()
    assert p.errors == [] and p.stack == [], (p.errors, p.stack)
    return p


def check_links(page: Page, dest: Path) -> None:
    for src in page.srcs:
        assert not src.startswith(("http://", "https://", "/")), src
        if src.startswith("data:"):
            head, b64 = src.split(",", 1)
            assert head == "data:image/png;base64"
            assert base64.b64decode(b64).startswith(b"\x89PNG"), "an embedded image that is not a PNG"
        else:
            assert (dest / unquote(src)).is_file(), src
    for href in page.hrefs:
        assert not href.startswith(("http://", "https://", "/")), href  # relative paths only
        if href.startswith("#"):
            assert href[1:] in page.ids, href
        else:
            assert not urlparse(href).scheme, href
            assert (dest / unquote(href)).exists(), href


def strict_json(path: Path) -> dict:
    def no_constant(name):
        raise AssertionError(f"{name} in {path.name}")

    return json.loads(path.read_text(), parse_constant=no_constant)


def test_report_html_page(tmp_path):
    out, dest = full_store(tmp_path / "out"), tmp_path / "reports" / "html"
    assert cli("report", "--out", out, "--dest", dest, "--html") == 0
    page_file = dest / "leaderboard.html"
    page = parse(page_file)
    check_links(page, dest)
    text = page_file.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text
    for m in METHODS:
        assert f">{m}<" in text, m
    # the full leaderboard table, lower on the page: intervals, ranks with ties, time-to-quality medians
    full = tables(page_file).by_id("full-leaderboard-table")
    assert {"rank_psnr", "median_seconds_to_target"} <= set(texts(full["rows"][0]))
    assert any("± " in c["text"] for r in full["rows"][1:] for c in r)
    # per concept a grid: source, teacher and every method's student row, each linking to its run folder
    for c in CONCEPTS:
        assert f"grid-{c}" in page.ids
        for row in ("source", "teacher", *METHODS):
            assert f"{c}: {row}" in page.alts, (c, row)
        assert (dest / "grids" / f"{c}.png").is_file()
    run_links = [h for h in page.hrefs if "/runs/" in unquote(h)]
    assert len(run_links) >= len(CONCEPTS) * len(METHODS)
    assert all((dest / unquote(h)).resolve().parent == (out / "runs").resolve() for h in run_links)
    # plots: validation curves and the Pareto plots, as files beside the page and embedded in it
    for name in ("val_psnr_seconds", "val_psnr_flops", "pareto_stored_bytes", "pareto_train_seconds",
                 "pareto_latency_ms"):
        assert (dest / "plots" / f"{name}.png").is_file(), name
        assert name in page.alts, name
    assert "zero cost, not plotted: identity" in text.lower()
    assert (dest / "tradeoffs.png").is_file() and (dest / "leaderboard.md").is_file()
    # the JSON: what the tables show, JSON-safe
    data = strict_json(dest / "leaderboard.json")
    assert sorted(r["method"] for r in data["leaderboard"]) == sorted(METHODS)
    assert set(data["per_concept"]["psnr"]["methods"]) == set(METHODS)
    assert data["per_concept"]["psnr"]["concepts"] == CONCEPTS
    winter_e2gan = np.mean([record("winter", "e2gan", s).psnr for s in (0, 1)])
    assert data["per_concept"]["psnr"]["values"]["e2gan"]["winter"] == pytest.approx(winter_e2gan)
    assert data["provenance"] and any("torchmetrics" in line for line in data["provenance"])
    assert len(data["runs"]) == len(CONCEPTS) * len(METHODS) * 2
    assert all(r["folder"] for r in data["runs"])
    # missing and infinite values are null, never NaN; the displayed table keeps "not reached"
    ident = next(r for r in data["leaderboard"] if r["method"] == "identity")
    assert ident["latency_ms"] is None and ident["median_seconds_to_target"] is None
    shown = data["leaderboard_display"]
    row = shown["rows"][[r["method"] for r in data["leaderboard"]].index("identity")]
    assert row[shown["columns"].index("median_seconds_to_target")] == "not reached"


def test_report_html_with_failed_run(tmp_path, capsys):
    out, dest = full_store(tmp_path / "out", failed=True), tmp_path / "rep"
    assert cli("report", "--out", out, "--dest", dest, "--html") == 0
    assert "leaderboard.html" in capsys.readouterr().out
    page = parse(dest / "leaderboard.html")
    check_links(page, dest)
    text = (dest / "leaderboard.html").read_text(encoding="utf-8")
    assert "failed" in page.ids and "Failed runs (1)" in text
    assert "winter × scratch × seed 1" in text and "diverged at step 12" in text
    data = strict_json(dest / "leaderboard.json")
    assert data["failed"] == [{"concept": "winter", "method": "scratch", "seed": 1, "error": "diverged at step 12",
                               "key": record("winter", "scratch", 1, "failed").key}]
    scratch = next(r for r in data["leaderboard"] if r["method"] == "scratch")
    assert scratch["failed"] == 1 and scratch["runs"] == 3


def test_report_without_html_writes_no_page(tmp_path):
    out, dest = full_store(tmp_path / "out"), tmp_path / "rep"
    assert cli("report", "--out", out, "--dest", dest) == 0
    assert (dest / "leaderboard.md").is_file()
    assert not (dest / "leaderboard.html").exists() and not (dest / "leaderboard.json").exists()


def test_grids_use_smallest_seed_and_same_images(tmp_path):
    recs = [record("winter", m, s) for m in ("identity", "e2gan") for s in (3, 1)]
    store = ResultsStore(write_store(tmp_path / "out", recs), readonly=True)
    [grid] = concept_grids(store.records(), store.run_dir)
    assert grid.seed == 1 and [r.label for r in grid.rows] == ["source", "teacher", "identity", "e2gan"]
    pic = samples(_seed("winter", 1))
    assert np.array_equal(grid.rows[0].image, pic[:TILE]) and np.array_equal(grid.rows[1].image, pic[TILE:2 * TILE])
    student = samples(_seed("winter", "e2gan", 1))[2 * TILE:]
    assert np.array_equal(grid.rows[3].image, student)


def test_pareto_axes():
    assert use_log([1e3, 1e5]) and not use_log([10.0, 28.0]) and not use_log([0.0, 5.0])
    assert pareto_front([(1, 5.0), (2, 4.0), (3, 6.0), (3, 5.5)]) == [(1, 5.0), (3, 6.0)]


def test_tradeoffs_leave_zero_cost_off_the_log_axis(tmp_path):
    lb = pd.DataFrame({"method": ["identity", "e2gan", "pix2pix"], "psnr": [10.0, 15.4, 15.8],
                       "psnr_ci95": [0.4, 0.3, np.nan], "stored_bytes": [0, 92_088, 2_866_628],
                       "train_seconds": [0.0, 28.0, 30.0]})
    plot = pareto_figure(lb, ["stored_bytes", "train_seconds"], tmp_path / "t.png")
    assert plot is not None and plot.path.is_file()
    assert "identity (10.00 dB)" in plot.caption
    assert pareto_figure(lb.drop(columns="psnr"), ["stored_bytes"], tmp_path / "none.png") is None


def test_main_table_is_grouped_and_fits(tmp_path):
    """The page leads with a compact main table: a two-level header (method, quality, cost, time to target), at most
    14 columns, each quality value with its interval in the same cell and the best in bold; every leaderboard column
    stays in the full table lower on the page."""
    out, dest = full_store(tmp_path / "out", failed=True), tmp_path / "rep"
    assert cli("report", "--out", out, "--dest", dest, "--html") == 0
    page_file = dest / "leaderboard.html"
    text = page_file.read_text(encoding="utf-8")
    found = tables(page_file)
    main, full = found.by_id("main-leaderboard"), found.by_id("full-leaderboard-table")
    assert found.tables[0] is main  # the first table on the page, above the per-concept tables and the full one
    assert text.index("id=main-leaderboard") < text.index("id=per-concept") < text.index("id=full-leaderboard-table")
    assert main["head_rows"] == 2
    groups, header, *rows = main["rows"]
    assert [c["tag"] for c in groups + header] == ["th"] * (len(groups) + len(header))
    assert texts(groups) == ["Method", "Quality (test, vs teacher)", "Cost per concept", "Time to target"]
    assert sum(c["colspan"] for c in groups) == len(header) <= 14
    assert texts(header) == ["method", "rank", "mean rank", "concepts × seeds", "PSNR (dB) ↑", "SSIM ↑", "LPIPS ↓",
                             "train FLOPs", "stored bytes", "reached", "median steps", "median FLOPs"]
    assert all(len(r) == len(header) for r in rows)
    data = strict_json(dest / "leaderboard.json")
    lb = {r["method"]: r for r in data["leaderboard"]}
    assert [r[0]["text"] for r in rows] == list(lb)
    col = {h: i for i, h in enumerate(texts(header))}
    for r in rows:  # the interval in the quality cell itself, as leaderboard.md writes it
        m = lb[r[0]["text"]]
        assert r[col["PSNR (dB) ↑"]]["text"] == f"{m['psnr']:.2f} ± {m['psnr_ci95']:.2f}"
        assert r[col["LPIPS ↓"]]["text"].startswith(f"{m['lpips']:.3f} ± ")
    bold = {h: [r[0]["text"] for r in rows if "best" in r[col[h]]["class"]] for h in col}
    assert bold["PSNR (dB) ↑"] == ["pix2pix"] and bold["LPIPS ↓"] == ["pix2pix"] and bold["SSIM ↑"] == ["pix2pix"]
    assert not bold["stored bytes"] and not bold["method"]  # costs and labels are never bold
    scratch = rows[list(lb).index("scratch")]
    assert scratch[col["concepts × seeds"]]["text"] == "2 × 2 · 1 failed"
    assert rows[list(lb).index("identity")][col["median steps"]]["text"] == "not reached"
    assert "concept is the unit" in main["caption"] and "95 % interval over concepts" in main["caption"]
    assert "Holm-corrected" in main["caption"] and "equal ranks are ties" in main["caption"]
    # the full table keeps every leaderboard column (what the main table leaves out too), as leaderboard.json shows it
    shown = data["leaderboard_display"]
    assert texts(full["rows"][0]) == shown["columns"]
    assert [texts(r) for r in full["rows"][1:]] == shown["rows"]
    assert {"train_seconds", "trainable_params", "latency_ms", "median_seconds_to_target"} <= set(shown["columns"])
    # leaderboard.json mirrors the main table
    js = data["leaderboard_main"]
    assert [g["label"] for g in js["groups"]] == texts(groups)
    assert [len(g["columns"]) for g in js["groups"]] == [c["colspan"] for c in groups]
    assert js["rows"] == [texts(r) for r in rows] and js["best"]["psnr"] == ["pix2pix"]
    assert not {"train_seconds", "trainable_params", "latency_ms", "median_seconds_to_target"} & set(js["columns"])
    assert js["caption"] in " ".join(main["caption"].split())


def _lb(**extra: list) -> pd.DataFrame:
    return pd.DataFrame({"method": ["a", "b", "c"], "concepts": [3, 3, 3], "seeds": [2, 2, 2],
                         "psnr": [15.0, 16.0, 16.0], "psnr_ci95": [0.4, np.nan, 0.5], **extra})


def test_main_table_columns_follow_the_frame():
    """Groups and columns come only from what the leaderboard has; ties share the bold; the caption gives Friedman's
    p where the leaderboard has it."""
    t = main_table(_lb())
    assert [g for g, _ in t.groups] == ["Method", "Quality (test, vs teacher)"]
    assert t.columns == ["method", "concepts_x_seeds", "psnr"]
    assert t.rows == [["a", "3 × 2", "15.00 ± 0.40"], ["b", "3 × 2", "16.00"], ["c", "3 × 2", "16.00 ± 0.50"]]
    assert t.best == {"psnr": ["b", "c"]} and "Friedman" not in t.caption and "rank" not in t.caption.lower()
    lb = _lb(rank_psnr=[2, 1, 1], mean_rank_psnr=[3.0, 1.5, 1.5], kid=[0.02, 0.01, 0.03],
             kid_ci95=[0.001, 0.002, 0.003], peak_memory_bytes=[1e6, 2e6, np.nan], failed=[0, 1, 0])
    lb.attrs["friedman"] = Friedman({"a": 3.0, "b": 1.5, "c": 1.5}, 3, 4.5, 0.0123)
    t = main_table(lb)
    assert [g for g, _ in t.groups] == ["Method", "Quality (test, vs teacher)", "Cost per concept"]
    assert t.columns == ["method", "rank_psnr", "mean_rank_psnr", "concepts_x_seeds", "psnr", "kid",
                         "peak_memory_bytes"]
    assert t.rows[1][1:4] == ["1", "1.50", "3 × 2 · 1 failed"] and t.rows[2][-1] == "–"
    assert t.best == {"psnr": ["b", "c"], "kid": ["b"]}  # KID: lower is better
    assert "Friedman p = 0.0123" in t.caption and "equal ranks are ties" in t.caption
