"""Generators: the E2GAN generator (DESIGN.md) and the pix2pix ResNet generator, plus identity.

All generators take ``(x, text, text_mask)`` with ``x`` in [-1, 1], ``text`` of shape
``(B, L, text_dim)`` (prompt token embeddings) and a boolean ``text_mask`` (True = real token);
generators without text conditioning ignore the text. Each exposes ``layer_groups()``: group name
-> names of its Conv2d / Linear modules, used to choose LoRA targets (crucial layers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from e2gan_bench.registry import Registry

ARCHS: Registry[Callable[..., Generator]] = Registry("arch")

#: The paper's crucial layers — Downsample, DS, transformer block, US, Upsample — as LoRA targets of the
#: e2gan method. The output projection is counted in the Upsample stage (it is the stage's last conv):
#: measured with `e2gan-bench analyze layers`, LoRA without it gained far less (pencil-sketch, 48 px:
#: 10.2 dB test PSNR vs 14.0 dB with it; LoRA on every layer 14.3, full fine-tuning 14.5).
CRUCIAL_GROUPS = ("down", "ds", "transformer", "us", "up", "out")


class Generator(nn.Module):
    """Common interface."""

    text_conditioned = False

    def forward(self, x: torch.Tensor, text: torch.Tensor | None = None,
                text_mask: torch.Tensor | None = None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def layer_groups(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for name, mod in self.named_modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d)):
                groups.setdefault(name.split(".")[0], []).append(name)
        return groups


def _output(y: torch.Tensor, x: torch.Tensor, residual: bool) -> torch.Tensor:
    """``tanh`` head, or (``residual``) the input plus a predicted edit, clamped to [-1, 1].

    Instance normalisation removes each image's colour statistics at every layer, so a plain
    generator must re-learn even the identity; the residual head starts at the identity and learns
    only the edit — what makes small training budgets (CPU suites) meaningful. Off by default
    (the paper's and pix2pix's form); suites set it for both architectures alike.
    """
    if residual:
        return torch.clamp(x + y, -1.0, 1.0)
    return torch.tanh(y)


def _norm(ch: int) -> nn.Module:
    return nn.InstanceNorm2d(ch, affine=False)


class ConvBlock(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, padding_mode="reflect"),
            _norm(cout),
            nn.ReLU(inplace=True),
        )


class UpBlock(nn.Sequential):
    """Resize ×2 + conv: exports cleanly to mobile runtimes and can carry a LoRA (unlike ConvTranspose2d)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), ConvBlock(cin, cout))


class ResnetBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1, padding_mode="reflect"), _norm(ch), nn.ReLU(inplace=True),
            nn.Conv2d(ch, ch, 3, padding=1, padding_mode="reflect"), _norm(ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Attention(nn.Module):
    """Multi-head attention with plain Linear projections (so peft LoRA can wrap each)."""

    def __init__(self, dim: int, kv_dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(kv_dim, dim)
        self.v = nn.Linear(kv_dim, dim)
        self.o = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        h = self.heads
        q = self.q(x).view(b, n, h, d // h).transpose(1, 2)
        k = self.k(ctx).view(b, ctx.shape[1], h, d // h).transpose(1, 2)
        v = self.v(ctx).view(b, ctx.shape[1], h, d // h).transpose(1, 2)
        attn_mask = None if mask is None else mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.o(out.transpose(1, 2).reshape(b, n, d))


class TransformerBlock(nn.Module):
    """Self-attention, cross-attention to the prompt tokens, MLP (pre-norm, residual)."""

    def __init__(self, dim: int, text_dim: int, heads: int, mlp_ratio: int = 2) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.self_attn = Attention(dim, dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.cross_attn = Attention(dim, text_dim, heads)
        self.norm3 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * mlp_ratio), nn.GELU(), nn.Linear(dim * mlp_ratio, dim))

    def forward(self, x: torch.Tensor, text: torch.Tensor | None, text_mask: torch.Tensor | None) -> torch.Tensor:
        b, c, hgt, wid = x.shape
        t = x.flatten(2).transpose(1, 2)
        y = self.norm1(t)
        t = t + self.self_attn(y, y)
        if text is not None:
            t = t + self.cross_attn(self.norm2(t), text, text_mask)
        t = t + self.mlp(self.norm3(t))
        return t.transpose(1, 2).reshape(b, c, hgt, wid)


class E2GANGenerator(Generator):
    """stem → Downsample (2× stride-2) → 2 ResNet → DS → transformer → US → 1 ResNet → Upsample (2×) → out."""

    text_conditioned = True

    def __init__(self, ngf: int = 16, text_dim: int = 384, heads: int = 4, mlp_ratio: int = 2,
                 residual: bool = False) -> None:
        super().__init__()
        self.residual = residual
        c1, c2, c4 = ngf, ngf * 2, ngf * 4
        self.stem = ConvBlock(3, c1, k=7)
        self.down = nn.Sequential(ConvBlock(c1, c2, stride=2), ConvBlock(c2, c4, stride=2))
        self.res = nn.Sequential(ResnetBlock(c4), ResnetBlock(c4))
        self.ds = ConvBlock(c4, c4, stride=2)
        self.transformer = TransformerBlock(c4, text_dim, heads, mlp_ratio)
        self.us = UpBlock(c4, c4)
        self.res_up = ResnetBlock(c4)
        self.up = nn.Sequential(UpBlock(c4, c2), UpBlock(c2, c1))
        self.out = nn.Conv2d(c1, 3, 7, padding=3, padding_mode="reflect")

    def forward(self, x: torch.Tensor, text: torch.Tensor | None = None,
                text_mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.stem(x)
        h = self.res(self.down(h))
        h = self.transformer(self.ds(h), text, text_mask)
        h = self.res_up(self.us(h))
        return _output(self.out(self.up(h)), x, self.residual)


class ResnetGenerator(Generator):
    """pix2pix / CycleGAN ResNet generator (c7s1-ngf, d2ngf, d4ngf, n×R, u2ngf, ungf, c7s1-3)."""

    def __init__(self, ngf: int = 64, n_blocks: int = 9, text_dim: int = 384, residual: bool = False) -> None:
        super().__init__()
        self.residual = residual
        c1, c2, c4 = ngf, ngf * 2, ngf * 4
        self.stem = ConvBlock(3, c1, k=7)
        self.down = nn.Sequential(ConvBlock(c1, c2, stride=2), ConvBlock(c2, c4, stride=2))
        self.res = nn.Sequential(*[ResnetBlock(c4) for _ in range(n_blocks)])
        self.up = nn.Sequential(
            nn.ConvTranspose2d(c4, c2, 3, stride=2, padding=1, output_padding=1), _norm(c2), nn.ReLU(True),
            nn.ConvTranspose2d(c2, c1, 3, stride=2, padding=1, output_padding=1), _norm(c1), nn.ReLU(True),
        )
        self.out = nn.Conv2d(c1, 3, 7, padding=3, padding_mode="reflect")

    def forward(self, x: torch.Tensor, text: torch.Tensor | None = None,
                text_mask: torch.Tensor | None = None) -> torch.Tensor:
        return _output(self.out(self.up(self.res(self.down(self.stem(x))))), x, self.residual)


class IdentityGenerator(Generator):
    """The floor every method must beat: output = input."""

    def forward(self, x: torch.Tensor, text: torch.Tensor | None = None,
                text_mask: torch.Tensor | None = None) -> torch.Tensor:
        return x


@ARCHS.register("e2gan")
def build_e2gan(**kw: Any) -> Generator:
    return E2GANGenerator(**kw)


@ARCHS.register("pix2pix-resnet")
def build_pix2pix(**kw: Any) -> Generator:
    return ResnetGenerator(**kw)


@ARCHS.register("identity")
def build_identity(**kw: Any) -> Generator:
    return IdentityGenerator()


class PatchDiscriminator(nn.Module):
    """Conditional PatchGAN (pix2pix): sees concat(input, output); ``n_layers`` sets the receptive field."""

    def __init__(self, ndf: int = 32, n_layers: int = 3, in_ch: int = 6) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for i in range(1, n_layers):
            nxt = min(ndf * 2**i, ndf * 8)
            layers += [nn.Conv2d(ch, nxt, 4, 2, 1), nn.InstanceNorm2d(nxt), nn.LeakyReLU(0.2, True)]
            ch = nxt
        nxt = min(ch * 2, ndf * 8)
        layers += [nn.Conv2d(ch, nxt, 4, 1, 1), nn.InstanceNorm2d(nxt), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(nxt, 1, 4, 1, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, src: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([src, out], 1))


def count_params(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
