"""LoRA through peft on chosen layer groups: inject, save and load adapters alone (what a concept must store),
and fold them into their base layers (for export and latency).

The adapted layers compute ``W x + s·B(A x)`` as one operator, ``(W + s·B A) x`` (:class:`FusedConv2d`,
:class:`FusedLinear`, registered through peft's custom-module hook): the same linear map (equal within float
rounding; tested), but a training step then runs the base layer's convolution once instead of three
activation-sized operators and their backward. At the suites' size (48 px, ngf 16) that is what made a LoRA step
slower than a full fine-tuning step of the same generator (``benchmarks/lora_step.py``). With dropout on the
adapter input (``lora.dropout`` > 0) the layers fall back to peft's unfused form, which dropout needs.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model, set_peft_model_state_dict
from peft.tuners.lora import layer as peft_lora
from peft.tuners.tuners_utils import BaseTunerLayer
from safetensors.torch import load_file, save_file
from torch import nn

from e2gan_bench.models.generators import Generator


def lora_targets(G: Generator, groups: tuple[str, ...] | None) -> list[str]:
    """Names of the Conv2d / Linear modules in ``groups`` (ConvTranspose2d cannot carry a peft LoRA)."""
    all_groups = G.layer_groups()
    chosen = all_groups if groups is None else {g: all_groups[g] for g in groups if g in all_groups}
    mods = dict(G.named_modules())
    return [n for names in chosen.values() for n in names
            if isinstance(mods[n], (torch.nn.Conv2d, torch.nn.Linear))]


def lora_param_count(G: Generator, rank_pattern: dict[str, int]) -> int:
    """Parameters a LoRA with this per-layer rank pattern adds (A: in·k·k·r, B: r·out)."""
    mods = dict(G.named_modules())
    total = 0
    for name, r in rank_pattern.items():
        m = mods[name]
        if isinstance(m, torch.nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1]
            total += r * (m.in_channels // m.groups) * k + r * m.out_channels
        else:
            total += r * (m.in_features + m.out_features)
    return total


def full_ranks(G: Generator, targets: list[str]) -> dict[str, int]:
    """Each target's full rank (a LoRA of higher rank adds parameters and nothing else): min(fan-in, fan-out)."""
    mods = dict(G.named_modules())
    out = {}
    for name in targets:
        m = mods[name]
        if isinstance(m, torch.nn.Conv2d):
            out[name] = min(m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1], m.out_channels)
        else:
            out[name] = min(m.in_features, m.out_features)
    return out


def _fused_weight(layer: peft_lora.LoraLayer) -> torch.Tensor | None:
    """The base weight plus every active adapter's ``s·B A``, or None where the fused form does not apply
    (adapters disabled or merged, a variant such as DoRA, dropout on the adapter input)."""
    if layer.disable_adapters or layer.merged:
        return None
    active = [a for a in layer.active_adapters if a in layer.lora_A]
    if any(a in layer.lora_variant or not isinstance(layer.lora_dropout[a], nn.Identity) for a in active):
        return None
    weight = layer.get_base_layer().weight
    for a in active:
        weight = weight + layer.get_delta_weight(a)
    return weight


class FusedConv2d(peft_lora.Conv2d):
    """peft's LoRA Conv2d computing ``(W + s·B A) * x`` in one convolution (see the module's docstring)."""

    def forward(self, x: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        weight = None if args or kwargs else _fused_weight(self)
        if weight is None:
            return super().forward(x, *args, **kwargs)
        base = self.get_base_layer()
        return base._conv_forward(x, weight, base.bias)


class FusedLinear(peft_lora.Linear):
    """peft's LoRA Linear computing ``(W + s·B A) x`` in one matrix product."""

    def forward(self, x: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        weight = None if args or kwargs or self.fan_in_fan_out else _fused_weight(self)
        if weight is None:
            return super().forward(x, *args, **kwargs)
        return F.linear(x, weight, self.get_base_layer().bias)


def add_lora(G: Generator, rank_pattern: dict[str, int], alpha: float | None = None, dropout: float = 0.0, *,
             fused: bool = True) -> Generator:
    """Inject LoRA adapters (only they stay trainable). ``alpha=None`` keeps scale alpha/r = 1. ``fused=False``
    keeps peft's own layers (``W x + s·B(A x)``; the benchmark and the equivalence test compare the two)."""
    targets = sorted(rank_pattern)
    r0 = max(rank_pattern.values())
    cfg = LoraConfig(
        r=r0,
        lora_alpha=alpha if alpha is not None else r0,
        target_modules=targets,
        rank_pattern=dict(rank_pattern),
        alpha_pattern={} if alpha is not None else {k: v for k, v in rank_pattern.items()},
        lora_dropout=dropout,
    )
    if fused:
        cfg._register_custom_module({nn.Conv2d: FusedConv2d, nn.Linear: FusedLinear})
    G = inject_adapter_in_model(cfg, G)
    # peft builds lora_A convs with zero padding; the generators pad by reflection. Match them, or the
    # trained (unmerged) model and its merged export differ at every border.
    for m in G.modules():
        if isinstance(m, BaseTunerLayer) and isinstance(m.get_base_layer(), torch.nn.Conv2d):
            for a in m.lora_A.values():
                a.padding_mode = m.get_base_layer().padding_mode
    return G


def save_adapter(G: Generator, path: Path) -> int:
    sd = {k: v.detach().contiguous() for k, v in get_peft_model_state_dict(G).items()}
    save_file(sd, str(path))
    return Path(path).stat().st_size


def load_adapter(G: Generator, path: Path) -> None:
    set_peft_model_state_dict(G, load_file(str(path)))


def unwrap_lora(G: nn.Module) -> nn.Module:
    """Merge every peft LoRA adapter into its base layer and replace the wrapper by the base layer.

    Works **in place** (deep-copy first to keep the original) and returns ``G``: afterwards ``G``
    holds only plain ``nn.Conv2d`` / ``nn.Linear`` layers, computes what the adapted model computed
    (within float rounding), and exports like the base architecture. A model without LoRA is
    returned unchanged.
    """

    def outermost() -> list[tuple[str, nn.Module]]:
        found: list[tuple[str, nn.Module]] = []
        for name, mod in G.named_modules():
            if isinstance(mod, BaseTunerLayer) and not any(name.startswith(p + ".") for p, _ in found):
                found.append((name, mod))
        return found

    layers = outermost()
    if not layers:
        return G
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "already merged" when an adapter was merged before
        for _, mod in layers:
            mod.merge()  # merges the active adapters not merged yet
    for name, mod in layers:
        base = mod.get_base_layer()
        if name == "":
            return base
        parent_name, _, child = name.rpartition(".")
        setattr(G.get_submodule(parent_name) if parent_name else G, child, base)
    if "peft_config" in vars(G):  # set by peft's inject_adapter_in_model
        del G.peft_config
    return G
