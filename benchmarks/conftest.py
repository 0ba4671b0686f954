"""Shared fixtures of the pytest-benchmark suite (``tox -e bench``; README "Benchmarks").

Everything is set up the way the quick suite runs it: the suite is expanded by the harness (methods with their
overrides, model sizes, data settings), the pairs are the quick suite's first concept built by the real data
pipeline (procedural teacher on the built-in photographs, 48 px), and the prompt is encoded by the suite's prompt
encoder. Caches go to a temporary folder, so a benchmark run never reads or fills the user's caches.

PyTorch runs on ``E2GAN_BENCH_THREADS`` threads (default 1): on a shared or loaded machine, several intra-op
threads make every timing depend on the other processes (on 2 cores under load a training step was 10× slower
with 2 threads than with 1), and one thread is what the latency metric uses. The count is in every result's
``extra_info``.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from e2gan_bench.config import Suite  # noqa: E402
from e2gan_bench.data.dataset import PairedDataset, build_dataset  # noqa: E402
from e2gan_bench.harness.spec import RunSpec, expand_suite  # noqa: E402
from e2gan_bench.models.text import CachedPromptEncoder, PromptEmbedding, default_encoder  # noqa: E402
from e2gan_bench.resources import Catalog, find_suite  # noqa: E402

THREADS = int(os.environ.get("E2GAN_BENCH_THREADS", "1"))
torch.set_num_threads(THREADS)

#: The suite whose sizes every benchmark uses (48 px, E2GAN ngf 16, pix2pix ResNet-9 ngf 16, batch 8).
SUITE = "quick"


@dataclass
class Quick:
    suite: Suite
    specs: list[RunSpec]  # the quick suite's first concept, one spec per method (seed 0)
    pairs: PairedDataset
    prompt: PromptEmbedding
    cache: Path

    def spec(self, method: str) -> RunSpec:
        return next(s for s in self.specs if s.method.name == method)


@pytest.fixture(scope="session")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Quick:
    cache = tmp_path_factory.mktemp("bench-cache")
    catalog = Catalog()
    suite, path = find_suite(SUITE)
    specs = [s for s in expand_suite(suite, catalog, str(path), cache)
             if s.concept.name == suite.concepts[0] and s.seed == suite.seeds[0]]
    first = specs[0]
    pairs = build_dataset(first.concept, first.data, cache, file=first.concept_file)
    prompt = CachedPromptEncoder(default_encoder(), cache).encode(first.concept.prompt)
    return Quick(suite, specs, pairs, prompt, cache)


def machine_info() -> dict[str, object]:
    """What the timings depend on beyond pytest-benchmark's own machine_info (CPU, Python): torch and its threads."""
    return {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
