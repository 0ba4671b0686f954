"""Generators: the E2GAN generator and the pix2pix ResNet generator, plus identity.

All generators take ``(x, text, text_mask)`` with ``x`` in [-1, 1], ``text`` of shape
``(B, L, text_dim)`` (prompt token embeddings) and a boolean ``text_mask`` (True = real token);
generators without text conditioning ignore the text. Each exposes ``layer_groups()``: group name
-> names of its Conv2d / Linear modules, used to choose LoRA targets (crucial layers).

Architectures are plugins (``ARCHS``, entry-point group ``e2gan_bench.arch``): each declares its sizes as ``Params``
(the built-ins' are ``E2GANSizes``, ``Pix2PixSizes`` and ``IdentitySizes`` in the torch-free config/schemas.py, since
suites are checked before torch is imported), and :func:`build_generator` validates a run's sizes against it and
passes them as keyword arguments — so a generator is also built by hand, ``E2GANGenerator(ngf=8)``.

Departures from the paper's generator (all switchable; ``norm="instance", head="tanh", skips=False,
color_path=False, film=False`` is the paper's / pix2pix's form). Each was measured on the bank's concepts, from
scratch, at the CPU suites' size (48 px, ngf 16, 300 steps): see ``docs/generators.md`` and
``reports/regime/``.

* ``norm="group"``: GroupNorm with one group (layer norm over C×H×W) instead of InstanceNorm.
  InstanceNorm removes each channel's mean and scale at every layer, so the colour balance of the
  input is lost in the first layer and colour edits must be re-derived from nothing.
* ``head="residual"``: the output is the input plus a predicted edit; the clamp to [-1, 1] applies
  at inference only (a clamp in training stops the gradient of every overshooting pixel).
* ``color_path``: a 1×1 convolution of the raw input added to the output (zero-initialised), so a
  global colour transform (inversion, grey, tint) is one linear map instead of a deep computation.
* ``skips`` (E2GAN; pix2pix has the stem → output part): the DS → transformer → US bottleneck becomes a
  residual branch at 1/4 resolution, and the stem's full-resolution features reach the output layer (concatenated).
  Without them everything the output sees has passed through the 1/8-resolution bottleneck (6×6 at
  48 px), and fine structure (sketch lines) cannot come back.
* ``film`` (E2GAN): besides the transformer's cross-attention, the prompt scales and shifts every
  normalisation layer. With cross-attention alone at the 1/8-resolution bottleneck, a base model
  trained on 12 concepts learned an average edit (8.7 dB on its own "negative" concept, where one
  concept alone reaches 20 dB): the prompt could not select the edit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel
from torch import nn

from e2gan_bench.config import E2GANSizes, IdentitySizes, Pix2PixSizes
from e2gan_bench.models.text import TEXT_DIM
from e2gan_bench.plugins import params_model, parse_params
from e2gan_bench.registry import Registry

#: Generator architectures: :class:`Generator` subclasses (or functions returning one) with a ``Params`` model of
#: their sizes, constructed with the validated sizes as keyword arguments (:func:`build_generator`).
ARCHS: Registry[Callable[..., Generator]] = Registry("arch")

#: The paper's crucial layers — Downsample, DS, transformer block, US, Upsample — as LoRA targets of the
#: e2gan method. The output layer is counted in the Upsample stage (it is the stage's last conv):
#: measured with `e2gan-bench analyze layers` (see reports/ablation-layers).
CRUCIAL_GROUPS = ("down", "ds", "transformer", "us", "up", "out")

Norm = Literal["group", "instance"]
Head = Literal["residual", "tanh"]


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


class CondNorm(nn.Module):
    """GroupNorm(1) or InstanceNorm, then (``cond_dim`` > 0) a per-channel scale and shift predicted from
    the prompt: ``h · (1 + γ(c)) + β(c)`` with γ, β zero-initialised (FiLM, as diffusion U-Nets condition
    every block on their time step)."""

    def __init__(self, kind: Norm, ch: int, cond_dim: int = 0) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(1, ch) if kind == "group" else nn.InstanceNorm2d(ch, affine=False)
        self.film: nn.Linear | None = None
        if cond_dim:
            self.film = nn.Linear(cond_dim, 2 * ch)
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        x = self.norm(x)
        if self.film is not None and c is not None:
            gamma, beta = self.film(c)[:, :, None, None].chunk(2, dim=1)
            x = x * (1 + gamma) + beta
        return x


class ConvBlock(nn.Module):
    """conv → norm (optionally prompt-modulated) → ReLU; ``up`` resizes ×2 first (resize + conv exports
    cleanly to mobile runtimes and can carry a LoRA, unlike ConvTranspose2d)."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, norm: Norm = "group", cond_dim: int = 0,
                 up: bool = False) -> None:
        super().__init__()
        self.up = up
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, padding_mode="reflect")
        self.norm = CondNorm(norm, cout, cond_dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return F.relu(self.norm(self.conv(x), c))


class ResnetBlock(nn.Module):
    def __init__(self, ch: int, norm: Norm = "group", cond_dim: int = 0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1, padding_mode="reflect")
        self.norm1 = CondNorm(norm, ch, cond_dim)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1, padding_mode="reflect")
        self.norm2 = CondNorm(norm, ch, cond_dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return x + self.norm2(self.conv2(F.relu(self.norm1(self.conv1(x), c))), c)


class Stage(nn.ModuleList):
    """Blocks applied in order, each given the prompt condition."""

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        for block in self:
            x = block(x, c)
        return x


class OutputHead(nn.Module):
    """The last layer: a 7×7 conv of the features, plus (``color_path``) a 1×1 conv of the raw input,
    then the ``tanh`` or ``residual`` head. Both convs sit in the ``out`` layer group."""

    #: The colour path's weights are used × this gain (stored ÷ it): Adam moves a weight by about the
    #: learning rate per step, and a global colour map needs weights of order 1–2 (inversion: −2·I on top
    #: of the residual), out of reach of a few hundred steps at lr 4e-3 without it (StyleGAN's "equalized
    #: learning rate" trick, applied to this one layer).
    COLOR_GAIN = 10.0

    def __init__(self, cin: int, head: Head = "residual", color_path: bool = True) -> None:
        super().__init__()
        self.head = head
        self.conv = nn.Conv2d(cin, 3, 7, padding=3, padding_mode="reflect")
        self.color: nn.Conv2d | None = None
        if color_path:
            self.color = nn.Conv2d(3, 3, 1)
            nn.init.zeros_(self.color.weight)
            nn.init.zeros_(self.color.bias)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(h)
        if self.color is not None:
            y = y + self.COLOR_GAIN * self.color(x)
        if self.head == "tanh":
            return torch.tanh(y)
        y = x + y
        # the clamp is the image's range, applied where images leave the model; in training it would
        # zero the gradient of every pixel that overshoots, so those pixels could never come back
        return y if self.training else torch.clamp(y, -1.0, 1.0)


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
    """stem → Downsample (2× stride-2) → 2 ResNet → DS → transformer → US → 1 ResNet → Upsample (2×) → out.

    The prompt enters through the transformer block's cross-attention (the paper's form) and, with
    ``film``, through a scale and shift of every normalisation layer, predicted from the prompt's
    mean token embedding. With ``skips`` the DS → transformer → US branch is added to its input
    (1/4 resolution) and the stem's features are concatenated to the output layer's input.
    """

    text_conditioned = True
    Params: ClassVar[type[BaseModel]] = E2GANSizes

    def __init__(self, ngf: int = 16, text_dim: int = 384, heads: int = 4, mlp_ratio: int = 2,
                 norm: Norm = "group", head: Head = "residual", skips: bool = True, color_path: bool = True,
                 film: bool = True) -> None:
        super().__init__()
        self.skips = skips
        c1, c2, c4 = ngf, ngf * 2, ngf * 4
        cd = c4 if film else 0
        self.text_proj = nn.Sequential(nn.Linear(text_dim, cd), nn.SiLU()) if film else None
        self.stem = ConvBlock(3, c1, k=7, norm=norm, cond_dim=cd)
        self.down = Stage([ConvBlock(c1, c2, stride=2, norm=norm, cond_dim=cd),
                           ConvBlock(c2, c4, stride=2, norm=norm, cond_dim=cd)])
        self.res = Stage([ResnetBlock(c4, norm, cd), ResnetBlock(c4, norm, cd)])
        self.ds = ConvBlock(c4, c4, stride=2, norm=norm, cond_dim=cd)
        self.transformer = TransformerBlock(c4, text_dim, heads, mlp_ratio)
        self.us = ConvBlock(c4, c4, norm=norm, cond_dim=cd, up=True)
        self.res_up = ResnetBlock(c4, norm, cd)
        self.up = Stage([ConvBlock(c4, c2, norm=norm, cond_dim=cd, up=True),
                         ConvBlock(c2, c1, norm=norm, cond_dim=cd, up=True)])
        self.out = OutputHead(c1 * 2 if skips else c1, head, color_path)

    def condition(self, text: torch.Tensor | None, text_mask: torch.Tensor | None) -> torch.Tensor | None:
        """The prompt's mean token embedding (real tokens only), projected: the FiLM condition."""
        if self.text_proj is None or text is None:
            return None
        if text_mask is None:
            pooled = text.mean(1)
        else:
            m = text_mask.to(text.dtype)[..., None]
            pooled = (text * m).sum(1) / m.sum(1).clamp_min(1.0)
        return self.text_proj(pooled)

    def forward(self, x: torch.Tensor, text: torch.Tensor | None = None,
                text_mask: torch.Tensor | None = None) -> torch.Tensor:
        c = self.condition(text, text_mask)
        h0 = self.stem(x, c)
        h = self.res(self.down(h0, c), c)
        z = self.us(self.transformer(self.ds(h, c), text, text_mask), c)
        h = self.res_up(h + z if self.skips else z, c)
        h = self.up(h, c)
        return self.out(torch.cat([h, h0], 1) if self.skips else h, x)


class ResnetGenerator(Generator):
    """pix2pix / CycleGAN ResNet generator (c7s1-ngf, d2ngf, d4ngf, n×R, u2ngf, ungf, c7s1-3).

    ``skips`` concatenates the stem's features to the output layer's input, as in the E2GAN generator. Off by
    default (pix2pix's own ResNet topology, which at the suites' size drew line edits below identity's SSIM —
    reports/regime); the quick and standard suites turn it on, so the baseline gets every departure E2GAN
    gets."""

    Params: ClassVar[type[BaseModel]] = Pix2PixSizes

    def __init__(self, ngf: int = 64, n_blocks: int = 9, text_dim: int = 384, norm: Norm = "group",
                 head: Head = "residual", skips: bool = False, color_path: bool = True) -> None:
        super().__init__()
        self.skips = skips
        c1, c2, c4 = ngf, ngf * 2, ngf * 4
        self.stem = ConvBlock(3, c1, k=7, norm=norm)
        self.down = Stage([ConvBlock(c1, c2, stride=2, norm=norm), ConvBlock(c2, c4, stride=2, norm=norm)])
        self.res = Stage([ResnetBlock(c4, norm) for _ in range(n_blocks)])
        self.up = nn.Sequential(
            nn.ConvTranspose2d(c4, c2, 3, stride=2, padding=1, output_padding=1), CondNorm(norm, c2), nn.ReLU(True),
            nn.ConvTranspose2d(c2, c1, 3, stride=2, padding=1, output_padding=1), CondNorm(norm, c1), nn.ReLU(True),
        )
        self.out = OutputHead(c1 * 2 if skips else c1, head, color_path)

    def forward(self, x: torch.Tensor, text: torch.Tensor | None = None,
                text_mask: torch.Tensor | None = None) -> torch.Tensor:
        h0 = self.stem(x)
        h = self.up(self.res(self.down(h0)))
        return self.out(torch.cat([h, h0], 1) if self.skips else h, x)


class IdentityGenerator(Generator):
    """The floor every method must beat: output = input."""

    Params: ClassVar[type[BaseModel]] = IdentitySizes

    def forward(self, x: torch.Tensor, text: torch.Tensor | None = None,
                text_mask: torch.Tensor | None = None) -> torch.Tensor:
        return x


ARCHS.add("e2gan", E2GANGenerator)
ARCHS.add("pix2pix-resnet", ResnetGenerator)
ARCHS.add("identity", IdentityGenerator)


def generator_sizes(arch: str, sizes: Mapping[str, Any] | None, *, file: str | None = None,
                    field: str | None = None) -> BaseModel:
    """``sizes`` validated against the architecture's ``Params`` (a suite's ``model.<arch>``): errors name ``file``
    and ``model.<arch>.<name>``; an unknown ``arch`` names ``field`` (default ``model.<arch>``)."""
    cls = ARCHS.get(arch, file=file, field=field or f"model.{arch}")
    return parse_params(cls, dict(sizes or {}), file=file, field=f"model.{arch}")


def build_generator(arch: str, sizes: Mapping[str, Any] | None = None, *, text_dim: int = TEXT_DIM,
                    file: str | None = None, field: str | None = None) -> Generator:
    """The generator of architecture ``arch`` (a registered name or ``package.module:attr``) with ``sizes`` (a run's
    ``model_kwargs``: the suite's ``model.<arch>`` over the harness's defaults), validated against its ``Params``
    and passed as keyword arguments; the unset ones take the ``Params`` defaults.

    ``text_dim`` is not a size: it follows the prompt encoder (every built-in encoder's tokens are ``TEXT_DIM`` wide)
    and is passed to a text-conditioned architecture (``text_conditioned = True``) whose ``Params`` has no field of
    that name. ``field`` names where ``arch`` was given (``arch``, ``--arch``) in the error for an unknown one."""
    cls = ARCHS.get(arch, file=file, field=field)
    kwargs = generator_sizes(arch, sizes, file=file).model_dump()
    if getattr(cls, "text_conditioned", False) and "text_dim" not in params_model(cls).model_fields:
        kwargs["text_dim"] = text_dim
    return cls(**kwargs)


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
