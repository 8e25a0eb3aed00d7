"""Gaussian noise for the SDE samplers, reproducible from a ``torch.Generator``."""

from __future__ import annotations

import torch
from torch import Tensor


def standard_normal_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """``xi ~ N(0, I)`` with ``x``'s shape, dtype and device, drawn from ``generator`` (on the
    generator's own device, then moved) or from torch's global stream when it is None."""
    device = generator.device if generator is not None else x.device
    xi = torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype)
    return xi.to(x.device)
