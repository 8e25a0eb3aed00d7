"""Embeddings of the interpolation time ``t in [0, 1]`` (math.md 0) for any network.

Both map ``t`` of shape ``(B,)`` to ``(B, dim)`` features ``[sin(w_k t), cos(w_k t)]``,
``k = 1..dim/2``, and differ only in the angular frequencies ``w_k``:

* :class:`SinusoidalTimeEmbedding`: the fixed geometric ladder of transformer position
  encodings, ``w_k = time_scale * max_period^(-(k-1)/(dim/2))``. With the defaults
  (``time_scale = 1000``, ``max_period = 10000``) this is exactly the DiT/DDPM embedding of the
  integer step ``1000 t``: frequencies from 1000 down to about 0.1 radians per unit of ``t``.
* :class:`FourierTimeEmbedding`: random Fourier features, ``w_k = 2 pi scale xi_k`` with
  ``xi_k ~ N(0, 1)`` drawn once from a generator seeded with ``seed`` and stored as a buffer,
  so a checkpoint carries the exact frequencies it was trained with.

Both are in the network's floating dtype and device (the frequencies are buffers).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def _check_dim(dim: int) -> None:
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 2 or dim % 2:
        raise ValueError(f"embedding dim must be an even integer >= 2, got {dim!r}")


def _as_batch_times(t: Tensor) -> Tensor:
    if t.dim() == 0:
        t = t.reshape(1)
    if t.dim() != 1:
        raise ValueError(f"expected times of shape (B,), got {tuple(t.shape)}")
    return t


class _PeriodicEmbedding(nn.Module):
    """``t -> [sin(w t), cos(w t)]`` for the buffer of angular frequencies ``w``."""

    frequencies: Tensor

    def __init__(self, frequencies: Tensor):
        super().__init__()
        self.register_buffer("frequencies", frequencies.to(torch.float32))

    @property
    def dim(self) -> int:
        return 2 * self.frequencies.numel()

    def forward(self, t: Tensor) -> Tensor:
        t = _as_batch_times(t)
        angles = t.to(self.frequencies.dtype)[:, None] * self.frequencies[None, :]
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class SinusoidalTimeEmbedding(_PeriodicEmbedding):
    """Fixed geometric frequencies ``w_k = time_scale * max_period^(-(k-1)/(dim/2))``."""

    def __init__(self, dim: int, *, max_period: float = 10000.0, time_scale: float = 1000.0):
        _check_dim(dim)
        if not max_period > 1:
            raise ValueError(f"max_period must be > 1, got {max_period!r}")
        if not time_scale > 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale!r}")
        half = dim // 2
        exponents = torch.arange(half, dtype=torch.float64) / half
        super().__init__(time_scale * torch.exp(-math.log(max_period) * exponents))


class FourierTimeEmbedding(_PeriodicEmbedding):
    """Random fixed frequencies ``w_k = 2 pi scale xi_k``, ``xi ~ N(0, I)`` from ``seed``.

    ``scale`` is in cycles per unit of ``t``: since ``t`` spans ``[0, 1]``, ``scale = 4`` gives
    features that oscillate up to about ``3 * 4 = 12`` times across the whole time range (most
    of them a few times), fine enough to resolve the fast changes of a velocity field near the
    data end ``t = 1`` without turning into noise. (Score-based models that embed ``log sigma``,
    which spans a range of ~10, use 16; ``t`` spans 1.)
    """

    def __init__(self, dim: int, *, scale: float = 4.0, seed: int = 0):
        _check_dim(dim)
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale!r}")
        generator = torch.Generator().manual_seed(seed)
        xi = torch.randn(dim // 2, generator=generator, dtype=torch.float64)
        super().__init__(2.0 * math.pi * scale * xi)


TIME_EMBEDDINGS: dict[str, type[_PeriodicEmbedding]] = {
    "fourier": FourierTimeEmbedding,
    "sinusoidal": SinusoidalTimeEmbedding,
}
