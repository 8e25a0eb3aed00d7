"""Checks and embeddings of a network's conditioning inputs: times ``t in [0, 1]`` (math.md 0) and
class labels.

Label convention (shared by every network of this plugin): labels are integers in
``[0, num_classes)``; the value ``num_classes`` means "no label" (the null class that
classifier-free guidance evaluates, :mod:`interpgen.guidance`), so a network built with
``num_classes`` classes embeds ``num_classes + 1`` of them; ``labels=None`` means every sample is
unlabelled. A network built without classes (``num_classes=None``) rejects labels.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def batch_times(t: Tensor, batch: int) -> Tensor:
    """``t`` as shape ``(batch,)``: a 0-d time is broadcast, any other shape is an error."""
    if t.dim() == 0:
        t = t.expand(batch)
    if t.shape != (batch,):
        raise ValueError(f"expected t of shape ({batch},), got {tuple(t.shape)}")
    return t


def checked_labels(labels: Tensor | None, batch: int, num_classes: int | None, device: torch.device) -> Tensor | None:
    """Labels ready for :class:`LabelEmbedding`: ``None`` -> all ``num_classes`` (null) when the
    network has classes; integer labels of shape ``(batch,)`` in ``[0, num_classes]`` otherwise."""
    if num_classes is None:
        if labels is not None:
            raise ValueError("labels were given but this network was built without classes (num_classes=None)")
        return None
    if labels is None:
        return torch.full((batch,), num_classes, dtype=torch.long, device=device)
    if labels.shape != (batch,) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integers of shape ({batch},), got {labels.dtype} {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) > num_classes):
        raise ValueError(f"labels must be in [0, {num_classes}] ({num_classes} = no label), "
                         f"got values in [{int(labels.min())}, {int(labels.max())}]")
    return labels.long()


class LabelEmbedding(nn.Module):
    """A learned vector per class plus one for "no label" (row ``num_classes``)."""

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise ValueError(f"num_classes must be an integer >= 1 or None, got {num_classes!r}")
        self.num_classes = num_classes
        self.table = nn.Embedding(num_classes + 1, dim)

    def forward(self, labels: Tensor) -> Tensor:
        return self.table(labels)
