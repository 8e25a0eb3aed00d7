"""A finite data set held in memory, served in shuffled epochs."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from interpgen.batches import check_shard


class FiniteSource:
    """A :class:`~interpgen.protocols.DataSource` over the rows of ``data`` (shape
    ``(N, *event)``, already in model space) with optional integer ``labels`` (shape ``(N,)``).

    ``affine`` is ``(shift, scale)`` with ``data_as_loaded = shift + scale * data`` (or None).
    """

    def __init__(self, data: Tensor, *, labels: Tensor | None = None, num_classes: int | None = None,
                 affine: tuple[Tensor, Tensor] | None = None):
        if data.dim() < 2 or data.shape[0] < 1:
            raise ValueError(f"data must have shape (N, *event) with N >= 1, got {tuple(data.shape)}")
        if labels is not None and tuple(labels.shape) != (data.shape[0],):
            raise ValueError(f"labels must have shape ({data.shape[0]},), got {tuple(labels.shape)}")
        self.data = data
        self.labels = labels
        self.num_classes = num_classes
        self.event_shape: tuple[int, ...] = tuple(data.shape[1:])
        self._affine = affine

    def __len__(self) -> int:
        return self.data.shape[0]

    def _rows(self, index: Tensor) -> tuple[Tensor, Tensor | None]:
        index = index.to(self.data.device)
        return self.data[index], (self.labels[index] if self.labels is not None else None)

    def _permutation(self, generator: torch.Generator) -> Tensor:
        return torch.randperm(len(self), generator=generator, device=generator.device)

    def batches(self, batch_size: int, *, generator: torch.Generator,
                shard: tuple[int, int] = (0, 1)) -> Iterator[tuple[Tensor, Tensor | None]]:
        """Yield ``(x1, labels_or_None)`` forever.

        Each epoch is a fresh permutation drawn with ``generator``, cut into full global batches
        of ``count * batch_size`` rows (``shard = (index, count)``, see
        :class:`~interpgen.protocols.DataSource`); the ragged remainder is dropped, so every row
        appears at most once per epoch and exactly once when the global batch divides ``N``.
        When the data has fewer rows than a global batch, each one is drawn with replacement.
        Shard ``index`` gets rows ``[index * batch_size, (index + 1) * batch_size)`` of each.
        """
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        index, count = check_shard(shard)
        n, width = len(self), batch_size * count
        mine = slice(index * batch_size, (index + 1) * batch_size)
        while True:
            if n < width:
                yield self._rows(torch.randint(0, n, (width,), generator=generator, device=generator.device)[mine])
                continue
            order = self._permutation(generator)
            for start in range(0, n - width + 1, width):
                yield self._rows(order[start:start + width][mine])

    def reference(self, num: int, *, generator: torch.Generator) -> Tensor:
        """``num`` rows: distinct rows when ``num <= N``; otherwise every row ``num // N`` times
        plus ``num % N`` distinct others, so no row repeats more than needed."""
        if not isinstance(num, int) or isinstance(num, bool) or num < 1:
            raise ValueError(f"num must be an integer >= 1, got {num!r}")
        n = len(self)
        parts = [self._permutation(generator) for _ in range(num // n)]
        if num % n:
            parts.append(self._permutation(generator)[: num % n])
        return self._rows(torch.cat(parts))[0]

    def data_affine(self) -> tuple[Tensor, Tensor] | None:
        """``(shift, scale)`` with ``data = shift + scale * model_space`` (None when the data is
        used as loaded)."""
        return self._affine
