"""The paper's quantitative claims, as data: its numbers, the suites and methods that measure our nearest quantity,
and the checks (:mod:`.checks`) that decide each one.

The paper: Gong, Zhan, Jin, Li, Idelbayev, Liu, Zharkov, Aberman, Tulyakov, Wang, Ren, "E2GAN: Efficient Training
of Efficient GANs for Image-to-Image Translation", ICML 2024 (PMLR 235, pp. 15929–15950; arXiv:2401.06127). Its
numbers below are copied from its abstract, project page and figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Union

from e2gan_bench.report.claims.checks import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NO_DIFF,
    NOT_MEASURED,
    NonInferior,
    Ordering,
    Ratio,
)

PAPER = ("Gong et al., \"E2GAN: Efficient Training of Efficient GANs for Image-to-Image Translation\", ICML 2024 "
         "(PMLR 235:15929-15950; arXiv:2401.06127)")

VERDICTS = {
    HOLDS: "the paper's direction is reproduced: a paired difference significant at 95 % (orderings), not worse "
           "beyond the gate tolerance (\"≈\" claims), or a cost ratio on the paper's side of 1 (its magnitude is "
           "shown beside the paper's, and is not part of the verdict)",
    FAILS: "significantly the other way (for \"≈\" claims: significantly worse beyond the tolerance), or a cost "
           "ratio on the other side of 1",
    NO_DIFF: "the 95 % interval of the paired difference (or of the per-unit ratios) spans 0 (or 1)",
    INCONCLUSIVE: "too few units for an interval, or the interval straddles the tolerance / 1",
    NOT_MEASURED: "no given store holds a suite with the methods this claim needs",
}

Check = Union[Ordering, NonInferior, Ratio]

#: The paper's base-model ablation (FID on FFHQ after fine-tuning to the target concept).
BASE_ABLATION = {  # concept: (representative, 20 random, 200 art concepts, single concept)
    "White Walker": (40.18, 53.92, 40.32, 51.99), "blond person": (48.01, 52.77, 61.50, 55.58),
    "sunglasses": (38.49, 40.54, 41.37, 44.12), "Van Gogh style": (71.82, 78.58, 68.21, 78.06),
}


def _mean_col(i: int) -> float:
    return round(sum(v[i] for v in BASE_ABLATION.values()) / len(BASE_ABLATION), 2)


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str  # the paper's statement
    paper: Mapping[str, float]  # the paper's numbers, labelled
    suites: tuple[str, ...]  # suites that measure our nearest quantity
    ours: str  # our nearest quantity and how it is computed
    rule: str  # how the verdict is reached
    checks: tuple[Check, ...]  # all must hold
    also: tuple[Check, ...] = ()  # reported beside, not part of the verdict
    paper_note: str = ""

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m for c in self.checks for m in c.methods))


_ORDER_RULE = ("holds when the first one significantly better (95 % t interval of the paired difference entirely on "
               "its side of 0); does not hold when the other is significantly better, or (no significant "
               "difference) when the interval spans 0; inconclusive with one unit")
_RATIO_RULE = ("holds when the ratio of medians is on the paper's side of 1 and the 95 % interval of the per-unit "
               "(paired) ratios excludes 1 (deterministic counts have a point interval); the magnitude is reported "
               "beside the paper's, not judged")
_LOOSE = ("quick", "standard", "regime")

CLAIMS: tuple[Claim, ...] = (
    Claim("fid-vs-pix2pix",
          "E2GAN reaches a lower FID than pix2pix trained per concept (FFHQ 80.28 vs 86.03; Flickr-Scenery "
          "109.37 vs 114.2, averaged over concepts).",
          {"FID E2GAN FFHQ": 80.28, "FID pix2pix FFHQ": 86.03, "FID E2GAN Scenery": 109.37,
           "FID pix2pix Scenery": 114.2}, _LOOSE,
          "test FID (student vs teacher outputs) of e2gan vs pix2pix, paired over (concept, seed) units at the "
          "suite's equal step budget; KID and PSNR reported beside", _ORDER_RULE + " (FID decides; KID, then PSNR, "
          "when FID is not measured)", (Ordering("e2gan", "pix2pix"),)),
    Claim("time-vs-pix2pix", "E2GAN needs 4.8× less training time per concept than pix2pix (200 s vs 950 s).",
          {"seconds E2GAN": 200, "seconds pix2pix": 950, "reduction ×": 4.8}, _LOOSE,
          "median seconds to the suite's validation target (time-to-quality, rank search included, a run that "
          "never got there counts as ∞), pix2pix / e2gan; beside it, median train_seconds at equal steps "
          "(stated as such; decides only when the suite has no validation curves)", _RATIO_RULE,
          (Ratio("pix2pix", "e2gan", ("seconds_to_target", "train_seconds"), 4.8),)),
    Claim("flops-vs-pix2pix", "E2GAN needs 14× fewer training FLOPs per concept than pix2pix (≈0.2e16 vs ≈2.8e16).",
          {"FLOPs E2GAN": 0.2e16, "FLOPs pix2pix": 2.8e16, "reduction ×": 14}, _LOOSE,
          "median FLOPs to the validation target, pix2pix / e2gan; beside it, train_flops at equal steps (counted "
          "with torch.utils.flop_counter, rank-search trials included)", _RATIO_RULE,
          (Ratio("pix2pix", "e2gan", ("flops_to_target", "train_flops"), 14),)),
    Claim("params-vs-pix2pix", "E2GAN trains (and stores) 121× fewer parameters per concept than pix2pix "
          "(≈0.09M vs ≈11M).", {"trainable params E2GAN (M)": 0.09, "pix2pix (M)": 11, "reduction ×": 121}, _LOOSE,
          "median trainable_params, pix2pix / e2gan; beside it, stored_bytes (bytes on disk per concept)",
          _RATIO_RULE, (Ratio("pix2pix", "e2gan", ("trainable_params", "stored_bytes"), 121),),
          paper_note="ours at the suite's model sizes (CPU-sized widths), so the magnitude differs by design"),
    Claim("latency-vs-pix2pix", "E2GAN runs faster than pix2pix with 9 ResNet blocks on an iPhone 14: 15.5 ms vs "
          "21.0 ms (ratio 0.74).", {"latency E2GAN (ms)": 15.5, "latency pix2pix (ms)": 21.0, "ratio": 0.74},
          _LOOSE, "median ONNX Runtime latency e2gan / pix2pix ResNet-9 at the paper's size (256², ngf 64) from "
          "`e2gan-bench latency --json` files (claims --latency; each file one replicate) — a desktop proxy for the "
          "paper's phone, not a phone measurement; the suites' one timing at their own size is shown beside it and "
          "cannot decide", "holds when the 95 % interval of the per-file ratios lies below 1; inconclusive with one "
          "file; a suite's single timing copied to every run is not a replicated measurement",
          (Ratio("e2gan", "pix2pix", ("latency_ms",), 0.74, want="below", replicated=False),)),
    Claim("base-representative", "A base model trained on representative concepts fine-tunes better than one "
          "trained on random concepts or on a single concept (mean FID over 4 target concepts: "
          f"{_mean_col(0)} vs {_mean_col(1)} (20 random) and {_mean_col(3)} (single)).",
          {"mean FID representative": _mean_col(0), "mean FID 20 random": _mean_col(1),
           "mean FID 200 art concepts": _mean_col(2), "mean FID single": _mean_col(3)}, ("ablation-base",),
          "test FID of E2GAN fine-tuned from a base on 6 representative concepts (k-means) vs 6 random and vs one "
          "concept, paired over (concept, seed) units; KID and PSNR beside", _ORDER_RULE + "; both comparisons "
          "must hold", (Ordering("representative", "random-6"), Ordering("representative", "single")),
          paper_note="ours: 6 random concepts where the paper uses 20; the paper's means over its 4 target "
          "concepts are computed here from its table"),
    Claim("rank-search-order", "Searched LoRA ranks beat uniform allocations and a random one: FID searched "
          "109.37 < uniform 4× 111.42 < random 129.87 ≈ uniform 1× 130.98 (Flickr-Scenery, 10 concepts).",
          {"FID searched": 109.37, "FID uniform 4×": 111.42, "FID random": 129.87, "FID uniform 1×": 130.98},
          ("ablation-rank",), "test FID of the four allocations, each step of the ordering a paired comparison "
          "over (concept, seed) units; KID and PSNR beside", _ORDER_RULE + "; every '<' step must hold and the "
          "'≈' step must show no significant difference (consistent with, not proof of, equality)",
          (Ordering("e2gan-searched", "uniform-4x"), Ordering("uniform-4x", "random"),
           Ordering("uniform-4x", "uniform-1x"), Ordering("random", "uniform-1x", "similar")),
          also=(Ordering("e2gan-searched", "uniform-1x"), Ordering("e2gan-searched", "random"))),
    Claim("lora-vs-full-finetune", "Fine-tuning LoRA on the crucial layers of the base model — about 1 % of its "
          "weights (0.092M parameters) — instead of the whole model keeps the quality at a fraction of the "
          "per-concept storage.", {"LoRA params (M)": 0.092, "fraction of weights fine-tuned": 0.01,
                                   "implied reduction ×": 100}, _LOOSE,
          "test FID (then KID, PSNR) of e2gan vs full-finetune, paired over (concept, seed) units, against the "
          "metric's default gate tolerance; and median stored_bytes full-finetune / e2gan (trainable_params beside)",
          "holds when e2gan is not worse than full-finetune beyond the tolerance (the worse end of the 95 % "
          "interval within it) and the storage ratio holds (" + _RATIO_RULE + ")",
          (NonInferior("e2gan", "full-finetune"),
           Ratio("full-finetune", "e2gan", ("stored_bytes", "trainable_params"), 100)),
          paper_note="the paper gives the LoRA size and the 1 % fraction; the 100× is implied, not stated, and "
          "it reports no full-fine-tuning FID"),
    Claim("minimal-data", "Training on a k-means-selected subset of the pairs (nearest the cluster centres of "
          "image features) loses little quality against training on all of them.", {}, ("ablation-data",),
          "test FID (then KID, PSNR) of E2GAN on the k-means 25 % subset vs all pairs, paired over (concept, seed) "
          "units, against the metric's default gate tolerance; beside it the 12.5 % subset, and k-means vs random "
          "subsets of the same size",
          "holds when kmeans-25 is not worse than all-data beyond the tolerance (the worse end of the 95 % interval "
          "within it); does not hold when significantly worse beyond it; inconclusive otherwise",
          (NonInferior("kmeans-25", "all-data"),),
          also=(NonInferior("kmeans-12", "all-data"), NonInferior("kmeans-50", "all-data"),
                Ordering("kmeans-25", "random-25"), Ordering("kmeans-12", "random-12"),
                Ordering("kmeans-50", "random-50")),
          paper_note="no number: the paper fixes no subset size; ours clusters thumbnail features unless "
          "CLIP weights are registered (the paper: CLIP features)"),
)
