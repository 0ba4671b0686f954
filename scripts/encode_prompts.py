"""Encode the prompts of some suites' concepts (base concepts included) into a prompt-embedding cache, for a machine
that cannot hold the encoder's weights (it then sets E2GAN_BENCH_TEXT_ENCODER_CACHED to the identity printed here).

    python scripts/encode_prompts.py --cache .carry/cache scaling-96 scaling-128 targets-gpu-96 targets-gpu-128
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from e2gan_bench.models.text import CachedPromptEncoder, default_encoder  # noqa: E402
from e2gan_bench.resources import Catalog, find_suite  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("suites", nargs="+")
    ap.add_argument("--cache", type=Path, required=True, help="a store's cache folder (the embeddings go to CACHE/text)")
    a = ap.parse_args()
    cat = Catalog()
    enc = CachedPromptEncoder(default_encoder(), a.cache)
    names: set[str] = set()
    for s in a.suites:
        suite, _ = find_suite(s)
        names |= set(suite.concepts) | set(suite.base.concepts)
    for n in sorted(names):
        enc.encode(cat.concept(n).prompt)
    print(f"{len(names)} prompts in {enc.dir}; E2GAN_BENCH_TEXT_ENCODER_CACHED={enc.info.name}@{enc.info.weights}")


if __name__ == "__main__":
    main()
