"""Small in-memory data sources for tests (the ``DataSource`` protocol of ``interpgen.protocols``)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor


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
