"""Argument checks shared by the couplings: one batch size, labels per x1, one event space."""

from __future__ import annotations

from torch import Tensor


def check_pair_arguments(name: str, x0: Tensor, x1: Tensor, labels: Tensor | None, *,
                         same_event: bool = True) -> None:
    """Raise ValueError unless ``x0`` and ``x1`` are batches of equal size (and, when
    ``same_event``, of equal event shape, as a transport cost between them needs) and
    ``labels`` has one entry per row of ``x1``."""
    if x0.dim() == 0 or x1.dim() == 0 or x0.shape[0] != x1.shape[0]:
        raise ValueError(f"coupling {name!r}: x0 and x1 must have the same batch size, got x0 of "
                         f"shape {tuple(x0.shape)} and x1 of shape {tuple(x1.shape)}")
    if same_event and x0.shape[1:] != x1.shape[1:]:
        raise ValueError(f"coupling {name!r}: x0 and x1 must live in one space to measure the transport "
                         f"cost between them, got event shapes {tuple(x0.shape[1:])} and {tuple(x1.shape[1:])}")
    if labels is not None and (labels.dim() != 1 or labels.shape[0] != x1.shape[0]):
        raise ValueError(f"coupling {name!r}: labels must have one entry per x1, got labels of "
                         f"shape {tuple(labels.shape)} and x1 of shape {tuple(x1.shape)}")
