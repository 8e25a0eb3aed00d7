"""An exponential moving average (EMA) of the network weights, which sampling uses by default.

After optimiser step ``k`` (counting from 0) the average moves towards the weights::

    ema <- d_k * ema + (1 - d_k) * weights,    d_k = min(decay, (1 + k) / (10 + k))

The warm-up in ``d_k`` keeps the random initial weights from lingering: with a fixed 0.999 they
would still weigh 0.999^3000 = 5% after 3000 steps.
"""

from __future__ import annotations

import torch
from torch import nn


def ema_decay_at(decay: float, step: int) -> float:
    """The decay ``d_k = min(decay, (1 + k) / (10 + k))`` used after optimiser step ``k = step``."""
    return min(decay, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * model`` for floating-point parameters; buffers (and
    non-floating parameters) are copied. Both modules must have the same structure."""
    ema_params, model_params = list(ema.parameters()), list(model.parameters())
    if len(ema_params) != len(model_params):
        raise ValueError(f"EMA has {len(ema_params)} parameters but the model has {len(model_params)}")
    pairs = [(e, p.detach()) for e, p in zip(ema_params, model_params)]
    floats = [(e, p) for e, p in pairs if e.is_floating_point()]
    if floats:
        torch._foreach_lerp_([e for e, _ in floats], [p for _, p in floats], 1.0 - decay)
    for e, p in pairs:
        if not e.is_floating_point():
            e.copy_(p)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)
