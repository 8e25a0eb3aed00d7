"""The ``dit`` network: a diffusion transformer (DiT/SiT style) for image latents.

``net(x, t, labels=None)`` maps ``x: (B, C, H, W)`` (``t: (B,)`` in ``[0, 1]``, math.md 0) to
``(B, C_out, H, W)``, or ``(B, 2 C_out, H, W)`` with ``learn_sigma``:

* **patch embedding**: non-overlapping ``p x p`` patches, each mapped linearly to ``width``
  (a stride-``p`` convolution), giving ``T = (H/p)(W/p)`` tokens, plus a fixed 2-D sin-cos
  positional embedding (:func:`sincos_position_embedding`);
* **conditioning** ``c = MLP(e(t)) + E[label]``: ``e`` is the 256-feature sinusoidal embedding
  of ``1000 t`` (:mod:`.time_embedding`), the MLP ``Linear -> SiLU -> Linear`` to ``width``, ``E``
  one row per class plus the "no label" row ``num_classes`` (:mod:`.conditioning`);
* **blocks with adaLN-Zero**: from ``c`` each block regresses six vectors and computes

      [a1, b1, g1, a2, b2, g2] = W SiLU(c) + w,
      x <- x + g1 * MHSA(LN(x) (1 + a1) + b1),
      x <- x + g2 * MLP(LN(x) (1 + a2) + b2),

  with ``LN`` a LayerNorm without affine parameters; ``W, w`` start at zero, so every gate ``g``
  is 0 and each block starts as the identity;
* **final layer**: ``[a, b] = W' SiLU(c) + w'`` (zero-initialised), ``y = L(LN(x)(1 + a) + b)``
  with the linear map ``L`` to ``p * p * C_out`` also zero-initialised, then the patches are put
  back in place. The untrained network predicts exactly 0.

``size`` picks depth, width and heads from the DiT paper: S = (12, 384, 6), B = (12, 768, 12),
L = (24, 1024, 16), XL = (28, 1152, 16); ``depth``, ``width`` and ``heads`` override them (tiny
test models). ``patch`` is 2, 4 or 8 in the paper's models (any size dividing H and W works).

``learn_sigma`` (off by default) doubles the output channels as DiT does. In DiT the second
half parameterises the variance of the reverse DDPM step (the interpolation between
``beta_k`` and ``tilde beta_k`` of improved DDPM, trained with a variational bound). Nothing in
interpgen trains or reads those channels: the objectives regress the first ``C_out`` channels
and samplers ignore the rest. The switch exists so DiT checkpoints and their parameter counts
can be reproduced.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch
from torch import Tensor, nn

from interpgen.registry import Registry
from interpgen.validators import nonempty_str, one_of, optional_positive_int, positive_float, positive_int

from .attention import AttendFn, attention_backend
from .conditioning import LabelEmbedding, batch_times, checked_labels
from .self_attention import MultiHeadSelfAttention
from .time_embedding import SinusoidalTimeEmbedding

#: (depth, width, heads) of the DiT paper's model sizes.
DIT_SIZES: dict[str, tuple[int, int, int]] = {
    "S": (12, 384, 6),
    "B": (12, 768, 12),
    "L": (24, 1024, 16),
    "XL": (28, 1152, 16),
}
#: Number of sinusoidal time features fed to the conditioning MLP (as in DiT).
TIME_FEATURES = 256


@attrs.frozen(kw_only=True)
class DiTParams:
    """A DiT-style transformer on latent patches with adaLN-Zero conditioning."""

    #: Model size from the DiT paper: S, B, L or XL.
    size: str = attrs.field(default="S", validator=one_of(*DIT_SIZES))
    #: Side of the square patches (2, 4 or 8 in the paper); must divide H and W.
    patch: int = attrs.field(default=2, validator=positive_int)
    #: Overrides of the size's depth / width / heads (e.g. tiny test models).
    depth: int | None = attrs.field(default=None, validator=optional_positive_int)
    width: int | None = attrs.field(default=None, validator=optional_positive_int)
    heads: int | None = attrs.field(default=None, validator=optional_positive_int)
    #: Hidden width of each block's MLP relative to ``width``.
    mlp_ratio: float = attrs.field(default=4.0, validator=positive_float)
    #: Double the output channels as DiT does (extra channels unused by interpgen; see module doc).
    learn_sigma: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    #: Attention backend name (kind "attention"); ``auto`` can be replaced by $INTERPGEN_ATTENTION.
    attention: str = attrs.field(default="auto", validator=nonempty_str)

    def __attrs_post_init__(self) -> None:
        depth, width, heads = self.dimensions()
        if width % heads:
            raise ValueError(f"width must be divisible by heads, got width={width} heads={heads}")
        if width % 4:
            raise ValueError(f"width must be a multiple of 4 (2-D sin-cos position embedding), got {width}")

    def dimensions(self) -> tuple[int, int, int]:
        """``(depth, width, heads)``: the size's values with the overrides applied."""
        depth, width, heads = DIT_SIZES[self.size]
        return (self.depth or depth, self.width or width, self.heads or heads)


def _sincos_1d(dim: int, positions: Tensor) -> Tensor:
    """``[sin(p w_k), cos(p w_k)]`` with ``w_k = 10000^(-k / (dim/2))``, ``k = 0..dim/2-1``."""
    k = torch.arange(dim // 2, dtype=torch.float64)
    angles = positions.double()[:, None] * (10000.0 ** (-k / (dim // 2)))[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def sincos_position_embedding(dim: int, rows: int, cols: int) -> Tensor:
    """Fixed 2-D position embedding, shape ``(rows * cols, dim)`` in row-major token order: the
    first ``dim/2`` features encode the row index, the last ``dim/2`` the column index, each with
    the 1-D transformer encoding ``[sin(p w_k), cos(p w_k)]`` (as in MAE and DiT)."""
    if dim % 4:
        raise ValueError(f"2-D sin-cos embedding needs dim divisible by 4, got {dim}")
    row = torch.arange(rows).repeat_interleave(cols)
    col = torch.arange(cols).repeat(rows)
    return torch.cat([_sincos_1d(dim // 2, row), _sincos_1d(dim // 2, col)], dim=1).float()


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """``x (1 + scale) + shift`` with per-sample ``shift, scale: (B, width)`` over tokens."""
    return x * (1 + scale[:, None, :]) + shift[:, None, :]


class DiTBlock(nn.Module):
    """One adaLN-Zero transformer block (module docstring); the identity at initialisation."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, attend: AttendFn):
        super().__init__()
        self.norm_attention = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attention = MultiHeadSelfAttention(width, heads, attend)
        self.norm_mlp = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))
        self.modulation = nn.Linear(width, 6 * width)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(nn.functional.silu(c)).chunk(6, dim=1)
        x = x + gate1[:, None, :] * self.attention(modulate(self.norm_attention(x), shift1, scale1))
        return x + gate2[:, None, :] * self.mlp(modulate(self.norm_mlp(x), shift2, scale2))


class FinalLayer(nn.Module):
    """``L(LN(x)(1 + a) + b)`` with ``[a, b]`` from ``c``; every weight starts at zero."""

    def __init__(self, width: int, out_features: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.modulation = nn.Linear(width, 2 * width)
        self.linear = nn.Linear(width, out_features)
        for layer in (self.modulation, self.linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift, scale = self.modulation(nn.functional.silu(c)).chunk(2, dim=1)
        return self.linear(modulate(self.norm(x), shift, scale))


class DiT(nn.Module):
    """See the module docstring; ``num_classes`` None means unconditional."""

    def __init__(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...], params: DiTParams,
                 attend: AttendFn, *, num_classes: int | None = None):
        super().__init__()
        if len(in_shape) != 3 or len(out_shape) != 3 or tuple(in_shape[1:]) != tuple(out_shape[1:]):
            raise ValueError(f"dit needs image shapes (C, H, W) with the same H, W in and out, got "
                             f"in_shape={tuple(in_shape)} out_shape={tuple(out_shape)}")
        patch = params.patch
        channels, height, width_px = in_shape
        if height % patch or width_px % patch:
            raise ValueError(f"dit input of shape {tuple(in_shape)} is not divisible into {patch}x{patch} "
                             f"patches: H and W must be multiples of patch={patch}")
        depth, width, heads = params.dimensions()
        self.in_shape, self.patch, self.num_classes = tuple(in_shape), patch, num_classes
        self.grid = (height // patch, width_px // patch)
        self.out_channels = out_shape[0] * (2 if params.learn_sigma else 1)
        self.out_shape = (self.out_channels, height, width_px)

        self.patch_embedding = nn.Conv2d(channels, width, patch, stride=patch)
        self.register_buffer("position", sincos_position_embedding(width, *self.grid)[None], persistent=False)
        self.time_embedding = SinusoidalTimeEmbedding(TIME_FEATURES)
        self.time_mlp = nn.Sequential(nn.Linear(TIME_FEATURES, width), nn.SiLU(), nn.Linear(width, width))
        self.label_embedding = LabelEmbedding(num_classes, width) if num_classes is not None else None
        self.blocks = nn.ModuleList(DiTBlock(width, heads, params.mlp_ratio, attend) for _ in range(depth))
        self.final = FinalLayer(width, patch * patch * self.out_channels)
        self._initialise()

    def _initialise(self) -> None:
        """DiT's initialisation: Xavier-uniform linear maps (the patch embedding as a linear map of
        the flattened patch), N(0, 0.02^2) time-MLP and label rows; adaLN and output stay zero."""
        for block in self.blocks:
            for layer in (block.attention.qkv, block.attention.proj, block.mlp[0], block.mlp[2]):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)
        weight = self.patch_embedding.weight
        nn.init.xavier_uniform_(weight.view(weight.shape[0], -1))
        nn.init.zeros_(self.patch_embedding.bias)
        for layer in (self.time_mlp[0], self.time_mlp[2]):
            nn.init.normal_(layer.weight, std=0.02)
            nn.init.zeros_(layer.bias)
        if self.label_embedding is not None:
            nn.init.normal_(self.label_embedding.table.weight, std=0.02)

    def conditioning(self, t: Tensor, labels: Tensor | None, batch: int) -> Tensor:
        """``c = MLP(e(t)) + E[label]``, shape ``(B, width)``."""
        t = batch_times(t, batch)
        c = self.time_mlp(self.time_embedding(t).to(self.patch_embedding.weight.dtype))
        labels = checked_labels(labels, batch, self.num_classes, t.device)
        if self.label_embedding is not None:
            c = c + self.label_embedding(labels)
        return c

    def tokens(self, x: Tensor) -> Tensor:
        """Patch embedding plus position: ``(B, C, H, W) -> (B, T, width)``."""
        return self.patch_embedding(x).flatten(2).transpose(1, 2) + self.position.to(x.dtype)

    def unpatchify(self, y: Tensor) -> Tensor:
        """``(B, T, p * p * C) -> (B, C, H, W)``, token ``(i, j)`` filling pixels ``[ip:(i+1)p, jp:(j+1)p]``."""
        rows, cols, p = *self.grid, self.patch
        y = y.reshape(y.shape[0], rows, cols, p, p, self.out_channels)
        return y.permute(0, 5, 1, 3, 2, 4).reshape(y.shape[0], self.out_channels, rows * p, cols * p)

    def forward(self, x: Tensor, t: Tensor, labels: Tensor | None = None) -> Tensor:
        batch = x.shape[0]
        if tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"expected x of shape (B, {', '.join(map(str, self.in_shape))}), got {tuple(x.shape)}")
        c = self.conditioning(t, labels, batch)
        h = self.tokens(x)
        for block in self.blocks:
            h = block(h, c)
        return self.unpatchify(self.final(h, c))


def build_dit(params: DiTParams, *, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
              num_classes: int | None = None, registry: Registry, **context: Any) -> DiT:
    """The DiT for latents of shape ``in_shape`` predicting ``out_shape`` (same H, W)."""
    return DiT(tuple(in_shape), tuple(out_shape), params, attention_backend(params.attention, registry),
               num_classes=num_classes)
