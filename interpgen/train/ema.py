"""The exponential moving average (EMA) of the network that sampling uses by default, kept by
``torch.optim.swa_utils.AveragedModel``. After optimiser step ``k`` (from 0)::

    ema <- d_k * ema + (1 - d_k) * weights,    d_k = min(decay, (1 + k) / (10 + k))

The warm-up in ``d_k`` keeps the random initial weights from lingering (with a fixed 0.999 they
would still weigh 5% after 3000 steps). Buffers are copied, not averaged.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def ema_decay_at(decay: float, step: int) -> float:
    """The decay ``d_k = min(decay, (1 + k) / (10 + k))`` used after optimiser step ``k = step``."""
    return min(decay, (1.0 + step) / (10.0 + step))


class WarmupEMA:
    """The ``multi_avg_fn`` of the average: torch's EMA update with the decay of ``step``."""

    def __init__(self, decay: float):
        self.decay, self.step = decay, 0

    def __call__(self, averaged: list, current: list, count: object) -> None:
        get_ema_multi_avg_fn(ema_decay_at(self.decay, self.step))(averaged, current, count)


def averaged_model(ema: nn.Module, decay: float) -> AveragedModel:
    """An ``AveragedModel`` that updates ``ema`` in place (no copy is made: ``ema`` becomes its
    ``module``) and counts the weights ``ema`` already holds as the first average, so the first
    update blends with ``d_0`` instead of copying. Update with ``.multi_avg_fn.step = k`` then
    ``.update_parameters(network)``."""
    model = AveragedModel(nn.Identity(), multi_avg_fn=WarmupEMA(decay))
    model.module = ema
    model.n_averaged.fill_(1)
    return model.to(next(ema.parameters(), torch.empty(0)).device)
