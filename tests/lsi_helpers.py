"""Pieces the LSI tests share: an ``N(0, I)`` data source (the ``DataSource`` protocol of
``interpgen.protocols``) and the exact InterpFlow output for a Gaussian target (math.md 4.2, 4.3)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn


class NormalRows:
    """``N(0, I)`` rows of ``shape``, optionally labelled: the Gaussian target of the latent tests. With
    ``affine = (shift, scale)`` the rows are in model space and data space is ``shift + scale * x``."""

    def __init__(self, shape: tuple[int, ...] = (3,), num_classes: int | None = None,
                 affine: tuple[float, float] | None = None) -> None:
        self.event_shape, self.num_classes, self.affine = shape, num_classes, affine

    def data_affine(self) -> tuple[Tensor, Tensor] | None:
        if self.affine is None:
            return None
        return tuple(torch.full(self.event_shape, float(v)) for v in self.affine)

    def batches(self, batch_size: int, *, generator: torch.Generator,
                shard: tuple[int, int] = (0, 1)) -> Iterator[tuple[Tensor]]:
        while True:
            yield (torch.randn(batch_size, *self.event_shape, generator=generator),)

    def reference(self, num: int, *, generator: torch.Generator) -> Tensor:
        return torch.randn(num, *self.event_shape, generator=generator)


class InterpFlowOracle(nn.Module):
    """The exact InterpFlow output ``h^ = sqrt(1 - t) h + sqrt(t) z`` (math.md 4.3) of a bridge (math.md 4.2)
    for ``z0 ~ N(0, I)`` and ``z1 ~ N(m, diag s2)``: with ``z_t = kappa z1 + nu z0 + eta xi``,
    ``E[z1 | z_t] = m + kappa s2 (z_t - kappa m) / (nu^2 + kappa^2 s2 + eta^2)`` and ``h`` the bridge's
    drift at that ``z1``."""

    def __init__(self, bridge, m: Tensor, s2: Tensor) -> None:
        super().__init__()
        self.bridge, self.m, self.s2 = bridge, m, s2

    def forward(self, z: Tensor, t: Tensor, labels: Tensor | None = None) -> Tensor:
        b = self.bridge
        k, v = b.kappa(t)[:, None], b.nu(t)[:, None]
        var = v**2 + k**2 * self.s2 + b.eta_squared(t)[:, None]
        x1 = self.m + k * self.s2 * (z - k * self.m) / var
        return (1 - t).sqrt()[:, None] * b.bridge_drift(z, x1, t) + t.sqrt()[:, None] * z
