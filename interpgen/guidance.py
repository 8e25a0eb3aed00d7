"""Classifier-free guidance (CFG) as a network wrapper (math.md 6).

For a network trained with label dropout (the label replaced by the null class ``num_classes`` some of the
time), :class:`GuidedNetwork` returns, for labels ``y`` and guidance scale ``w``, on **every** output channel

    out_w(x, t, y) = out(x, t, null) + w * (out(x, t, y) - out(x, t, null))

``w = 1`` is the conditional model, ``w = 0`` the unconditional one, ``w > 1`` guides towards the label (for a
score, up to the model's errors, the score of ``p(x) p(y|x)^w``). Every conversion of :mod:`interpgen.conversions`
is affine in the prediction at fixed ``(x, t)``, ``P' = A(t) P + B(t) x``, so it commutes with this combination,
``A(u + w(c - u)) + Bx = (Au + Bx) + w((Ac + Bx) - (Au + Bx))``: guiding the raw output gives the same field as
guiding any prediction derived from it, provided all channels are guided (math.md 6 on DiT's and SiT's
``forward_with_cfg``, which do not).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class GuidedNetwork(nn.Module):
    """``uncond + scale * (cond - uncond)`` over all channels, with cond and uncond from ONE batched forward of
    ``network(x, t, labels)`` (the batch doubled: ``[x, x]`` with ``[labels, null]``); ``network`` must embed the
    null class ``num_classes``. ``labels=None`` gives the unconditional output; ``scale == 1`` the conditional
    output of a single forward, exactly.
    """

    def __init__(self, network: nn.Module, scale: float, num_classes: int):
        super().__init__()
        if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not math.isfinite(scale):
            raise ValueError(f"guidance scale must be a finite number, got {scale!r}")
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
        self.network = network
        self.scale = float(scale)
        self.num_classes = num_classes

    def null_labels(self, batch: int, device: torch.device) -> Tensor:
        return torch.full((batch,), self.num_classes, dtype=torch.long, device=device)

    def forward(self, x: Tensor, t: Tensor, labels: Tensor | None = None) -> Tensor:
        batch = x.shape[0]
        null = self.null_labels(batch, x.device)
        if labels is None:
            return self.network(x, t, null)
        if self.scale == 1.0:
            return self.network(x, t, labels)
        if t.dim() == 0:
            t = t.expand(batch)
        out = self.network(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels.to(null.device), null]))
        cond, uncond = out[:batch], out[batch:]
        return uncond + self.scale * (cond - uncond)
