"""Random draws that honour a ``torch.Generator`` wherever the samples are wanted.

The draw runs on the generator's device (so a CPU generator gives the same numbers whether the
samples end up on the CPU or a GPU) and the result is then moved to ``device``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _draw_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    return generator.device if generator is not None else device


def normal(shape: tuple[int, ...], *, generator: torch.Generator | None, device: torch.device,
           dtype: torch.dtype) -> Tensor:
    """Standard normal draws of ``shape``."""
    where = _draw_device(generator, device)
    return torch.randn(shape, generator=generator, device=where, dtype=dtype).to(device)


def uniform(shape: tuple[int, ...], *, generator: torch.Generator | None, device: torch.device,
            dtype: torch.dtype) -> Tensor:
    """Draws from U[0, 1) of ``shape``."""
    where = _draw_device(generator, device)
    return torch.rand(shape, generator=generator, device=where, dtype=dtype).to(device)


def categorical(probs: Tensor, num: int, *, generator: torch.Generator | None,
                device: torch.device) -> Tensor:
    """``num`` indices drawn with replacement with probabilities ``probs`` (shape ``(K,)``)."""
    if num == 0:
        return torch.zeros(0, dtype=torch.long, device=device)
    where = _draw_device(generator, device)
    p = probs.detach().to(device=where, dtype=torch.float64)
    return torch.multinomial(p, num, replacement=True, generator=generator).to(device)


def integers(high: int, num: int, *, generator: torch.Generator | None) -> Tensor:
    """``num`` indices drawn uniformly from ``{0, ..., high - 1}`` (on the generator's device), on the CPU."""
    where = generator.device if generator is not None else torch.device("cpu")
    return torch.randint(high, (num,), generator=generator, device=where).cpu()
