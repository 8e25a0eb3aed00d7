"""Small tensor helpers shared by the kernel and plugins."""

from __future__ import annotations

import torch
from torch import Tensor


def expand_like(t: Tensor, x: Tensor) -> Tensor:
    """View a per-sample tensor of shape ``(B,)`` as ``(B, 1, ..., 1)`` to broadcast against
    ``x`` of shape ``(B, *event)``."""
    if t.dim() != 1 or t.shape[0] != x.shape[0]:
        raise ValueError(f"expected a time tensor of shape ({x.shape[0]},), got {tuple(t.shape)}")
    return t.reshape(t.shape[0], *([1] * (x.dim() - 1)))


def batch_time(t: float | Tensor, batch: int, *, like: Tensor) -> Tensor:
    """A time tensor of shape ``(batch,)`` on ``like``'s device and dtype."""
    if isinstance(t, Tensor) and t.dim() == 1:
        return t.to(device=like.device, dtype=like.dtype)
    return torch.full((batch,), float(t), device=like.device, dtype=like.dtype)
