"""A finite data set held in memory, served in shuffled epochs, with a held-out part."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from interpgen.tensors import check_shard

#: The parts of a finite data set (see :mod:`.split`).
PARTS: tuple[str, ...] = ("train", "heldout")


def _check_count(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


class FiniteSource:
    """A :class:`~interpgen.protocols.DataSource` over the rows of ``data`` (shape ``(N, *event)``)
    with optional integer ``labels`` (shape ``(N,)``).

    ``data`` is the *training* part; ``heldout`` (with ``heldout_labels``) is the part kept out of
    training, which :meth:`reference` draws from (the training rows when there is none).

    Rows are stored as given and turned into model space by ``encode`` when they are served
    (identity when None): image data sets store ``uint8`` pixels and encode each batch to
    ``[-1, 1]``, which keeps large image sets at one byte per pixel in memory.
    ``affine = (shift, scale)`` maps model space back, ``data = shift + scale * model_space``.

    With ``flip`` every served training row is mirrored along its last axis (the image width)
    with probability 1/2, decided per row with the batch generator; :meth:`reference` never flips.
    """

    #: ``(low, high)`` bounding every model-space value (images: ``(-1, 1)``), or None: samples are
    #: clamped to it on output (``Pipeline.sample``, unless ``raw``).
    normalised_range: tuple[float, float] | None = None

    def __init__(self, data: Tensor, *, labels: Tensor | None = None, num_classes: int | None = None,
                 affine: tuple[Tensor, Tensor] | None = None, heldout: Tensor | None = None,
                 heldout_labels: Tensor | None = None, encode: Callable[[Tensor], Tensor] | None = None,
                 flip: bool = False, dataset: Any = None):
        if data.dim() < 2 or data.shape[0] < 1:
            raise ValueError(f"data must have shape (N, *event) with N >= 1, got {tuple(data.shape)}")
        if labels is not None and tuple(labels.shape) != (data.shape[0],):
            raise ValueError(f"labels must have shape ({data.shape[0]},), got {tuple(labels.shape)}")
        if heldout is not None:
            if tuple(heldout.shape[1:]) != tuple(data.shape[1:]):
                raise ValueError(f"held-out rows have event shape {tuple(heldout.shape[1:])}, "
                                 f"the training rows {tuple(data.shape[1:])}")
            if (heldout_labels is None) != (labels is None):
                raise ValueError("give labels for both the training and the held-out rows, or for neither")
            if heldout_labels is not None and tuple(heldout_labels.shape) != (heldout.shape[0],):
                raise ValueError(f"heldout_labels must have shape ({heldout.shape[0]},), "
                                 f"got {tuple(heldout_labels.shape)}")
        self.data = data
        self.labels = labels
        self.heldout = heldout if heldout is not None and heldout.shape[0] > 0 else None
        self.heldout_labels = heldout_labels if self.heldout is not None else None
        self.num_classes = num_classes
        self.event_shape: tuple[int, ...] = tuple(data.shape[1:])
        self.flip = bool(flip)
        #: The ``datasets.Dataset`` the rows were read from (None when built from tensors).
        self.dataset = dataset
        self._affine = affine
        self._encode = encode

    def __len__(self) -> int:
        return self.data.shape[0]

    # -- rows of either part ---------------------------------------------------------------------
    def _part(self, part: str) -> tuple[Tensor, Tensor | None]:
        if part == "train":
            return self.data, self.labels
        if part == "heldout":
            return (self.heldout, self.heldout_labels) if self.heldout is not None else (self.data, self.labels)
        raise ValueError(f"part must be one of {', '.join(PARTS)}, got {part!r}")

    def part_size(self, part: str) -> int:
        """Rows in ``part`` (``"train"`` or ``"heldout"``; the held-out part of a data set
        without one is its training part)."""
        return self._part(part)[0].shape[0]

    def take(self, part: str, index: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Rows ``index`` (all when None) of ``part`` in model space (float32), with their labels."""
        rows, labels = self._part(part)
        if index is not None:
            index = index.to(rows.device)
            rows, labels = rows[index], (labels[index] if labels is not None else None)
        return self._model_space(rows), labels

    def _model_space(self, rows: Tensor) -> Tensor:
        return self._encode(rows) if self._encode is not None else rows

    def _rows(self, index: Tensor) -> tuple[Tensor, Tensor | None]:
        return self.take("train", index)

    def _permutation(self, n: int, generator: torch.Generator) -> Tensor:
        return torch.randperm(n, generator=generator, device=generator.device)

    def _flipped(self, x: Tensor, mask: Tensor) -> Tensor:
        mask = mask.to(x.device).reshape(-1, *([1] * (x.dim() - 1)))
        return torch.where(mask, x.flip(-1), x)

    # -- the DataSource protocol --------------------------------------------------------------------
    def batches(self, batch_size: int, *, generator: torch.Generator,
                shard: tuple[int, int] = (0, 1)) -> Iterator[tuple[Tensor, Tensor | None]]:
        """Yield ``(x1, labels_or_None)`` from the training part forever.

        Each epoch is a fresh permutation drawn with ``generator``, cut into full global batches
        of ``count * batch_size`` rows (``shard = (index, count)``, see
        :class:`~interpgen.protocols.DataSource`); the ragged remainder is dropped, so every row
        appears at most once per epoch and exactly once when the global batch divides ``N``.
        When the data has fewer rows than a global batch, each one is drawn with replacement.
        Shard ``index`` gets rows ``[index * batch_size, (index + 1) * batch_size)`` of each.
        With ``flip`` the flips are drawn for the whole global batch right after it, so the
        shards of one step together see exactly the single-process batch.
        """
        _check_count("batch_size", batch_size)
        index, count = check_shard(shard)
        n, width = len(self), batch_size * count
        mine = slice(index * batch_size, (index + 1) * batch_size)

        def serve(rows: Tensor) -> tuple[Tensor, Tensor | None]:
            if not self.flip:
                return self._rows(rows[mine])
            mask = torch.rand(width, generator=generator, device=generator.device) < 0.5
            x, labels = self._rows(rows[mine])
            return self._flipped(x, mask[mine]), labels

        while True:
            if n < width:
                yield serve(torch.randint(0, n, (width,), generator=generator, device=generator.device))
                continue
            order = self._permutation(n, generator)
            for start in range(0, n - width + 1, width):
                yield serve(order[start:start + width])

    def reference(self, num: int, *, generator: torch.Generator) -> Tensor:
        """``num`` rows of the held-out part (of the training part when nothing is held out),
        never flipped: distinct rows when ``num`` is at most the part's size; otherwise every
        row ``num // N`` times plus ``num % N`` distinct others."""
        _check_count("num", num)
        n = self.part_size("heldout")
        parts = [self._permutation(n, generator) for _ in range(num // n)]
        if num % n:
            parts.append(self._permutation(n, generator)[: num % n])
        return self.take("heldout", torch.cat(parts))[0]

    def data_affine(self) -> tuple[Tensor, Tensor] | None:
        """``(shift, scale)`` with ``data = shift + scale * model_space`` (None when the data is
        used as loaded)."""
        return self._affine

    def __repr__(self) -> str:
        held = self.heldout.shape[0] if self.heldout is not None else 0
        return (f"FiniteSource(train={len(self)}, heldout={held}, event_shape={self.event_shape}, "
                f"num_classes={self.num_classes}, flip={self.flip})")
