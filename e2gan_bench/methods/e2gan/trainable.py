"""E2GAN's trainable set: LoRA adapters on the crucial layers (``lora-crucial``) or on every conv / linear layer
(``lora-all``) of the base generator, their ranks chosen by the method's rank search (:mod:`.rank_search`; the
search's trials are counted as search cost, not training). A concept keeps the adapters alone
(``adapter.safetensors``); evaluation loads them onto the base model's weights."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from e2gan_bench.config import Method
from e2gan_bench.errors import ConfigError
from e2gan_bench.methods.contract import TRAINABLES, PrepareContext, Prepared, Trainable
from e2gan_bench.methods.e2gan.rank_search import RANK_SEARCHES, RankSearchContext, check_pattern
from e2gan_bench.models.generators import CRUCIAL_GROUPS, Generator
from e2gan_bench.models.lora import add_lora, full_ranks, load_adapter, lora_param_count, lora_targets, save_adapter
from e2gan_bench.plugins import parse_params
from e2gan_bench.training.trainer import TrainData, train_gan

ADAPTER = "adapter.safetensors"


@TRAINABLES.register("lora-crucial")
class LoRACrucial(Trainable):
    """LoRA on the crucial layers (Downsample, DS, transformer, US, Upsample: the paper's choice), every other
    weight frozen; the method's ``groups`` replace that choice."""

    lora = True
    groups: ClassVar[tuple[str, ...] | None] = CRUCIAL_GROUPS

    def prepare(self, G: Generator, ctx: PrepareContext) -> Prepared:
        method, data, seed = ctx.method, ctx.data, ctx.seed
        for p in G.parameters():
            p.requires_grad_(False)
        targets = lora_targets(G, method.groups if method.groups is not None else self.groups)
        groups = {g: [n for n in names if n in targets] for g, names in G.layer_groups().items()}
        cost = {"flops": 0}
        n_val = max(1, len(data) // 5)

        def trial(pattern: dict[str, int], steps: int) -> float:
            """Short LoRA fine-tune (L1 only, no discriminator) on 4/5 of the data; L1 on the held-out 1/5."""
            Gt = add_lora(copy.deepcopy(G), pattern, method.lora.alpha)
            tr = TrainData(data.src[n_val:], data.tgt[n_val:], data.text_idx[n_val:], data.texts, data.masks)
            res = train_gan(Gt, tr, method.budget.model_copy(update={"steps": steps, "gan_mode": "none"}), seed)
            cost["flops"] += res.flops
            with torch.no_grad():
                out = Gt(data.src[:n_val], data.texts[data.text_idx[:n_val]], data.masks[data.text_idx[:n_val]])
            return float(F.l1_loss(out, data.tgt[:n_val]))

        def gradients(n_batches: int) -> dict[str, torch.Tensor]:
            """Summed L1-loss gradients of each target layer's weight over ``n_batches`` batches (no update)."""
            Gg = copy.deepcopy(G)
            mods = dict(Gg.named_modules())
            for t in targets:
                mods[t].weight.requires_grad_(True)
            gen = torch.Generator().manual_seed(seed + 1)
            with FlopCounterMode(display=False) as counter:
                for _ in range(n_batches):
                    i = torch.randint(0, len(data), (min(method.budget.batch, len(data)),), generator=gen)
                    out = Gg(data.src[i], data.texts[data.text_idx[i]], data.masks[data.text_idx[i]])
                    F.l1_loss(out, data.tgt[i]).backward()
            cost["flops"] += int(counter.get_total_flops())
            return {t: mods[t].weight.grad.detach().clone() for t in targets}

        search = RANK_SEARCHES.get(method.lora.search, field="lora.search")
        params = parse_params(search, method.lora.search_params, field="lora.search_params")
        ctx_s = RankSearchContext(targets, groups, method.lora.rank, params, seed, trial,
                                  lambda pat: lora_param_count(G, pat), gradients, full_rank=full_ranks(G, targets))
        t0 = time.perf_counter()
        pattern = check_pattern(search(ctx_s), ctx_s, method.lora.search)
        seconds = time.perf_counter() - t0
        G = add_lora(G, pattern, method.lora.alpha, method.lora.dropout)
        return Prepared(G, seconds, cost["flops"],
                        {"rank_search": method.lora.search, "rank_pattern": pattern, "search_log": ctx_s.log})

    def save(self, G: Generator, method: Method, out_dir: Path) -> tuple[int, list[str]]:
        return save_adapter(G, out_dir / ADAPTER), [ADAPTER]

    def load(self, G: Generator, method: Method, folder: Path, summary: dict[str, Any]) -> Generator:
        try:
            pattern = {k: int(v) for k, v in summary["details"]["rank_pattern"].items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"training.json lacks the LoRA rank pattern ({type(exc).__name__})",
                              file=str(folder / "training.json")) from None
        G = add_lora(G, pattern, method.lora.alpha, method.lora.dropout)
        load_adapter(G, folder / ADAPTER)
        return G


@TRAINABLES.register("lora-all")
class LoRAAll(LoRACrucial):
    """LoRA on every conv / linear layer (ConvTranspose2d excepted: peft cannot wrap it)."""

    groups = None
