"""Classifier-free guidance (CFG) as a network wrapper.

For a network trained with label dropout (the label replaced by the null class ``num_classes``
some of the time), :class:`GuidedNetwork` returns, for labels ``y`` and guidance scale ``w``,

    out_w(x, t, y) = out(x, t, null) + w * (out(x, t, y) - out(x, t, null))

on **every** output channel. ``w = 1`` is the conditional model (returned exactly, with one
forward), ``w = 0`` the unconditional one, ``w > 1`` guides towards the label.

On a velocity, score or noise prediction this is the usual CFG (for the score it is the score of
``p(x) p(y|x)^w`` up to the model's errors). Every conversion between predictions in
:mod:`interpgen.conversions` (math.md 1.2, 1.5) is affine in the prediction at fixed ``(x, t)``:
``P' = A(t) P + B(t) x``. An affine map commutes with a combination whose weights sum to one,
``A(u + w(c - u)) + Bx = (Au + Bx) + w((Ac + Bx) - (Au + Bx))``, so guiding the raw network
output gives the same field as guiding any prediction derived from it. That holds only if all
channels are guided: DiT's ``forward_with_cfg`` and SiT's copy of it guide the first 3 (or
``C/2``) channels and pass the rest through conditionally, which for 4-channel latents leaves a
channel unguided and for several stacked predictions mixes guided and unguided fields.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class GuidedNetwork(nn.Module):
    """``uncond + scale * (cond - uncond)`` over all channels, with cond and uncond from ONE
    batched forward of ``network`` (the batch doubled: ``[x, x]`` with ``[labels, null]``).

    ``network`` is called as ``network(x, t, labels)`` and must embed the null class
    ``num_classes``. ``labels=None`` gives the unconditional output; ``scale == 1`` gives the
    conditional output of a single forward, exactly.
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
