"""The ``unet`` network: a time- and class-conditioned U-Net for small images of any size.

``net(x, t, labels=None)`` maps ``x: (B, C, H, W)`` (``t: (B,)`` in ``[0, 1]``, math.md 0) to
``(B, C_out, H, W)``. The shape of the computation:

* **conditioning** ``c = MLP(e(t)) + E[label]``: ``e`` is the sinusoidal time embedding of
  :mod:`.time_embedding` (the DDPM embedding of ``1000 t``), the MLP is
  ``Linear -> SiLU -> Linear`` to ``4 * channels``, and ``E`` has one row per class plus the
  "no label" row ``num_classes`` (:mod:`.conditioning`);
* **padding**: ``x`` is zero-padded on the bottom and right to a multiple of ``2**(L-1)`` for
  ``L = len(channel_mult)`` levels and the output is cropped back, so 8x8 digits and 25x25
  faces work as they are;
* **encoder**: a 3x3 convolution to ``channels``, then per level ``l`` ``blocks`` residual blocks
  of width ``channels * channel_mult[l]`` (each followed by self-attention when the level's
  feature-map size is in ``attention_resolutions``) and a stride-2 3x3 convolution between
  levels; every block's output is kept as a skip connection;
* **middle**: residual block, self-attention (``mid_attention``), residual block;
* **decoder**: per level, ``blocks + 1`` residual blocks, each taking the concatenation of the
  current features and one skip connection (last in, first out), then nearest-neighbour 2x
  upsampling and a 3x3 convolution between levels;
* **output**: GroupNorm, SiLU and a 3x3 convolution whose weight and bias start at zero, so the
  untrained network predicts exactly 0.

A residual block with input ``h`` and conditioning ``c`` computes

    u = conv_1(SiLU(GN(h))),    [s, b] = W SiLU(c),
    out = skip(h) + conv_2(dropout(SiLU(GN(u) * (1 + s) + b))),

(``skip`` is a 1x1 convolution when the width changes, else the identity); a self-attention
block adds ``MHSA(GN(h))`` over the ``H*W`` positions as tokens (:mod:`.self_attention`) with the
attention backend named by ``attention`` (:mod:`.attention`). GroupNorm uses
``gcd(norm_groups, width)`` groups.

``attention_resolutions`` are feature-map sizes: the longer side of the padded input at that
level (e.g. 32, 16, 8, 4 for CIFAR-10 with ``channel_mult = (1, 2, 2, 2)``); a size that matches
no level of the network built for the data is an error.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from interpgen.registry import Registry
from interpgen.validators import (checked, integer, nonempty_str, positive_int, positive_int_vector, tuple_of,
                                  unit_interval_open_right)

from .attention import AttendFn, attention_backend
from .conditioning import LabelEmbedding, batch_times, checked_labels
from .self_attention import MultiHeadSelfAttention
from .time_embedding import SinusoidalTimeEmbedding

#: Number of sinusoidal time features fed to the conditioning MLP.
TIME_FEATURES = 64


_int_tuple_ge1_or_empty = checked("a list of integers >= 1 (may be empty)",
                                  tuple_of(attrs.validators.and_(integer, attrs.validators.ge(1)), min_length=0))


@attrs.frozen(kw_only=True)
class UNetParams:
    """A U-Net with residual blocks, time/class conditioning and attention at chosen sizes."""

    #: Width of the first level (``channels * channel_mult[l]`` at level ``l``). The defaults are
    #: sized for 8x8 digits on a CPU (docs/networks.md has the sizes for faces and CIFAR-10).
    channels: int = attrs.field(default=16, validator=positive_int)
    #: Width multiplier per level; the number of levels is its length.
    channel_mult: tuple[int, ...] = attrs.field(default=(1, 2), validator=positive_int_vector)
    #: Residual blocks per level in the encoder (the decoder has one more per level).
    blocks: int = attrs.field(default=1, validator=positive_int)
    #: Feature-map sizes (longer side, after padding) at which blocks get self-attention.
    attention_resolutions: tuple[int, ...] = attrs.field(default=(), validator=_int_tuple_ge1_or_empty)
    #: Self-attention in the middle block (at the coarsest level).
    mid_attention: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    #: Attention heads (each attended width must be divisible by it).
    heads: int = attrs.field(default=4, validator=positive_int)
    #: Dropout before the second convolution of each residual block.
    dropout: float = attrs.field(default=0.0, validator=unit_interval_open_right)
    #: Upper bound on GroupNorm groups (``gcd(norm_groups, width)`` are used).
    norm_groups: int = attrs.field(default=8, validator=positive_int)
    #: Attention backend name (kind "attention"); ``auto`` can be replaced by $INTERPGEN_ATTENTION.
    attention: str = attrs.field(default="auto", validator=nonempty_str)


def _norm(width: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(groups, width), width)


class ResidualBlock(nn.Module):
    """``skip(h) + conv_2(dropout(SiLU(GN(u) (1 + s) + b)))`` with ``u = conv_1(SiLU(GN(h)))``."""

    def __init__(self, width_in: int, width_out: int, cond_dim: int, *, dropout: float, groups: int):
        super().__init__()
        self.norm_in = _norm(width_in, groups)
        self.conv_in = nn.Conv2d(width_in, width_out, 3, padding=1)
        self.condition = nn.Linear(cond_dim, 2 * width_out)
        self.norm_out = _norm(width_out, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv_out = nn.Conv2d(width_out, width_out, 3, padding=1)
        self.skip = nn.Conv2d(width_in, width_out, 1) if width_in != width_out else nn.Identity()

    def forward(self, h: Tensor, c: Tensor) -> Tensor:
        u = self.conv_in(F.silu(self.norm_in(h)))
        scale, shift = self.condition(F.silu(c))[:, :, None, None].chunk(2, dim=1)
        u = self.norm_out(u) * (1 + scale) + shift
        return self.skip(h) + self.conv_out(self.dropout(F.silu(u)))


class AttentionBlock(nn.Module):
    """``h + MHSA(GN(h))`` over the ``H * W`` positions."""

    def __init__(self, width: int, heads: int, attend: AttendFn, *, groups: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"U-Net attention at width {width} needs heads dividing it, got heads={heads}")
        self.norm = _norm(width, groups)
        self.attention = MultiHeadSelfAttention(width, heads, attend)

    def forward(self, h: Tensor) -> Tensor:
        batch, width, height, length = h.shape
        tokens = self.norm(h).flatten(2).transpose(1, 2)
        out = self.attention(tokens).transpose(1, 2).reshape(batch, width, height, length)
        return h + out


class Level(nn.Module):
    """Residual blocks of one resolution, each optionally followed by self-attention."""

    def __init__(self, blocks: list[ResidualBlock], attentions: list[nn.Module]):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.attentions = nn.ModuleList(attentions)


class UNet(nn.Module):
    """See the module docstring; ``num_classes`` None means unconditional."""

    def __init__(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...], params: UNetParams,
                 attend: AttendFn, *, num_classes: int | None = None):
        super().__init__()
        if len(in_shape) != 3 or len(out_shape) != 3 or tuple(in_shape[1:]) != tuple(out_shape[1:]):
            raise ValueError(f"unet needs image shapes (C, H, W) with the same H, W in and out, got "
                             f"in_shape={tuple(in_shape)} out_shape={tuple(out_shape)}")
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        self.num_classes = num_classes
        levels = len(params.channel_mult)
        self.multiple = 2 ** (levels - 1)
        padded = [-(-side // self.multiple) * self.multiple for side in in_shape[1:]]
        sizes = [max(padded) // 2 ** level for level in range(levels)]
        unmatched = sorted(set(params.attention_resolutions) - set(sizes))
        if unmatched:
            raise ValueError(f"attention_resolutions {unmatched} match no level: on input {tuple(in_shape)} "
                             f"the feature maps of this U-Net are {', '.join(map(str, sizes))} pixels")
        self.sizes = tuple(sizes)
        base, groups, cond = params.channels, params.norm_groups, 4 * params.channels
        widths = [base * m for m in params.channel_mult]

        self.time_embedding = SinusoidalTimeEmbedding(TIME_FEATURES)
        self.time_mlp = nn.Sequential(nn.Linear(TIME_FEATURES, cond), nn.SiLU(), nn.Linear(cond, cond))
        self.label_embedding = LabelEmbedding(num_classes, cond) if num_classes is not None else None

        def block(a: int, b: int) -> ResidualBlock:
            return ResidualBlock(a, b, cond, dropout=params.dropout, groups=groups)

        def attention(width: int, size: int) -> nn.Module:
            if size in params.attention_resolutions:
                return AttentionBlock(width, params.heads, attend, groups=groups)
            return nn.Identity()

        self.conv_in = nn.Conv2d(in_shape[0], base, 3, padding=1)
        skip_widths, width = [base], base
        self.down_levels, self.downsamplers = nn.ModuleList(), nn.ModuleList()
        for level, level_width in enumerate(widths):
            blocks, attns = [], []
            for _ in range(params.blocks):
                blocks.append(block(width, level_width))
                attns.append(attention(level_width, sizes[level]))
                width = level_width
                skip_widths.append(width)
            self.down_levels.append(Level(blocks, attns))
            if level < levels - 1:
                self.downsamplers.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
                skip_widths.append(width)

        self.mid_in = block(width, width)
        self.mid_attention = (AttentionBlock(width, params.heads, attend, groups=groups)
                              if params.mid_attention else nn.Identity())
        self.mid_out = block(width, width)

        self.up_levels, self.upsamplers = nn.ModuleList(), nn.ModuleList()
        for level in reversed(range(levels)):
            blocks, attns = [], []
            for _ in range(params.blocks + 1):
                blocks.append(block(width + skip_widths.pop(), widths[level]))
                attns.append(attention(widths[level], sizes[level]))
                width = widths[level]
            self.up_levels.append(Level(blocks, attns))
            if level > 0:
                self.upsamplers.append(nn.Conv2d(width, width, 3, padding=1))

        self.norm_out = _norm(width, groups)
        self.conv_out = nn.Conv2d(width, out_shape[0], 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def conditioning(self, t: Tensor, labels: Tensor | None, batch: int) -> Tensor:
        """``c = MLP(e(t)) + E[label]``, shape ``(B, 4 * channels)``."""
        t = batch_times(t, batch)
        c = self.time_mlp(self.time_embedding(t).to(self.conv_in.weight.dtype))
        labels = checked_labels(labels, batch, self.num_classes, t.device)
        if self.label_embedding is not None:
            c = c + self.label_embedding(labels)
        return c

    def forward(self, x: Tensor, t: Tensor, labels: Tensor | None = None) -> Tensor:
        batch = x.shape[0]
        if tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"expected x of shape (B, {', '.join(map(str, self.in_shape))}), got {tuple(x.shape)}")
        c = self.conditioning(t, labels, batch)
        height, width = x.shape[-2:]
        pad_h, pad_w = (-height) % self.multiple, (-width) % self.multiple
        h = F.pad(x, (0, pad_w, 0, pad_h)) if pad_h or pad_w else x
        h = self.conv_in(h)
        skips = [h]
        for level, stage in enumerate(self.down_levels):
            for block, attention in zip(stage.blocks, stage.attentions):
                h = attention(block(h, c))
                skips.append(h)
            if level < len(self.downsamplers):
                h = self.downsamplers[level](h)
                skips.append(h)
        h = self.mid_out(self.mid_attention(self.mid_in(h, c)), c)
        for index, stage in enumerate(self.up_levels):
            for block, attention in zip(stage.blocks, stage.attentions):
                h = attention(block(torch.cat([h, skips.pop()], dim=1), c))
            if index < len(self.upsamplers):
                h = self.upsamplers[index](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        out = self.conv_out(F.silu(self.norm_out(h)))
        return out[:, :, :height, :width]


def build_unet(params: UNetParams, *, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
               num_classes: int | None = None, registry: Registry, **context: Any) -> UNet:
    """The U-Net for images of shape ``in_shape`` predicting ``out_shape`` (same H, W)."""
    return UNet(tuple(in_shape), tuple(out_shape), params, attention_backend(params.attention, registry),
                num_classes=num_classes)
