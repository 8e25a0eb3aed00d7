"""Small tensor helpers shared by the kernel and plugins."""

from __future__ import annotations

import torch
from torch import Tensor


def expand_like(t: Tensor, x: Tensor) -> Tensor:
    """View a per-sample ``(B,)`` tensor as ``(B, 1, ..., 1)`` to broadcast against ``x`` ``(B, *event)``."""
    if t.dim() != 1 or t.shape[0] != x.shape[0]:
        raise ValueError(f"expected a time tensor of shape ({x.shape[0]},), got {tuple(t.shape)}")
    return t.reshape(t.shape[0], *([1] * (x.dim() - 1)))


def batch_time(t: float | Tensor, batch: int, *, like: Tensor) -> Tensor:
    """A time tensor of shape ``(batch,)`` on ``like``'s device and dtype."""
    if isinstance(t, Tensor) and t.dim() == 1:
        return t.to(device=like.device, dtype=like.dtype)
    return torch.full((batch,), float(t), device=like.device, dtype=like.dtype)


def check_shard(shard: tuple[int, int]) -> tuple[int, int]:
    """``(index, count)`` with ``0 <= index < count``; raises ValueError otherwise."""
    index, count = shard
    if not (isinstance(index, int) and isinstance(count, int) and count >= 1 and 0 <= index < count):
        raise ValueError(f"shard must be (index, count) with 0 <= index < count, got {shard!r}")
    return index, count


def drop_labels(labels: Tensor, probability: float, null_label: int, *,
                generator: torch.Generator | None = None) -> Tensor:
    """Each label replaced by ``null_label`` with ``probability``, per sample so every batch mixes
    conditional and unconditional rows: classifier-free guidance's training side (docs/math.md 6)."""
    if probability <= 0.0:
        return labels
    drop = torch.rand(labels.shape, generator=generator, device=labels.device) < probability
    return torch.where(drop, torch.full_like(labels, null_label), labels)
