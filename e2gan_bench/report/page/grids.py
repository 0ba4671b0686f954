"""Image grids per concept: the source and teacher rows, then each method's student row on the same test images.

Every evaluated run folder holds ``samples.png`` (:func:`e2gan_bench.metrics.evaluate.sample_grid`): three rows of
equal height — the source images, the teacher's edits, the student's outputs. A concept's grid takes the source and
teacher rows from its first run and adds one student row per method, all from one seed (the smallest seed with
samples, unless one is given), so every row shows the same test photographs. A run whose samples have another
size (a suite evaluating other test images) is left out of the grid and named in ``skipped``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from e2gan_bench.cache import atomic_write_bytes
from e2gan_bench.record import RunRecord

SAMPLES = "samples.png"


@dataclass
class GridRow:
    label: str
    image: np.ndarray  # H × W × 3, uint8
    key: str | None = None  # the run whose student row this is (None: source, teacher)


@dataclass
class ConceptGrid:
    concept: str
    seed: int
    rows: list[GridRow]
    skipped: list[str] = field(default_factory=list)


def read_samples(path: Path) -> np.ndarray | None:
    """A run's sample picture as an RGB array; ``None`` when it is missing or unreadable."""
    try:
        return np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("RGB"))
    except (OSError, ValueError):
        return None


def concept_grids(pairs: list[tuple[str, RunRecord]], run_dir: Callable[[str], Path],
                  seed: int | None = None) -> list[ConceptGrid]:
    """One grid per concept (in the order the runs list them) that has finished runs with samples.

    ``run_dir`` maps a run key to its folder (:meth:`e2gan_bench.harness.store.ResultsStore.run_dir`)."""
    samples: dict[tuple[str, int], list[tuple[str, RunRecord, np.ndarray]]] = {}
    for method, r in pairs:
        if r.status != "ok" or (seed is not None and r.seed != seed):
            continue
        im = read_samples(run_dir(r.key) / SAMPLES)
        if im is not None and im.shape[0] >= 3:
            samples.setdefault((r.concept, r.seed), []).append((method, r, im))
    out = []
    for concept in dict.fromkeys(c for c, _ in samples):
        s = min(sd for c, sd in samples if c == concept)
        grid = ConceptGrid(concept, s, [])
        shape = None
        for method, r, im in samples[(concept, s)]:
            if any(row.label == method for row in grid.rows[2:]):
                continue  # one row per method (a store may hold several evaluations of it)
            if shape is None:
                shape = im.shape
                h = im.shape[0] // 3
                grid.rows += [GridRow("source", im[:h]), GridRow("teacher", im[h:2 * h])]
            elif im.shape != shape:
                grid.skipped.append(method)
                continue
            h = im.shape[0] // 3
            grid.rows.append(GridRow(method, im[2 * h:3 * h], r.key))
        out.append(grid)
    return out


def grid_image(grid: ConceptGrid, scale: int = 2, pad: int = 150) -> Image.Image:
    """The grid as one picture, rows enlarged ``scale`` times, labels in a left margin ``pad`` pixels wide."""
    body = np.concatenate([r.image for r in grid.rows], axis=0).repeat(scale, 0).repeat(scale, 1)
    canvas = Image.new("RGB", (body.shape[1] + pad, body.shape[0]), "white")
    canvas.paste(Image.fromarray(body), (pad, 0))
    draw = ImageDraw.Draw(canvas)
    rh = body.shape[0] // len(grid.rows)
    for i, row in enumerate(grid.rows):
        draw.text((4, i * rh + rh // 2 - 6), row.label, fill="black")
    return canvas


def png_bytes(img: Image.Image | np.ndarray) -> bytes:
    buf = io.BytesIO()
    (img if isinstance(img, Image.Image) else Image.fromarray(img)).save(buf, format="PNG")
    return buf.getvalue()


def file_name(concept: str) -> str:
    """A concept name made safe for a file name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", concept) + ".png"


def write_grids(grids: list[ConceptGrid], dest: Path) -> list[Path]:
    """``dest/grids/<concept>.png`` for each grid (:func:`grid_image`)."""
    paths = []
    for g in grids:
        path = Path(dest) / "grids" / file_name(g.concept)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, png_bytes(grid_image(g)))
        paths.append(path)
    return paths
