"""Event-shape checks shared by the priors: parameters against the data's shape at build time,
sample requests and inputs at call time."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from .values import numbers_of


def event_shape_of(event_shape: Any, prior: str) -> tuple[int, ...]:
    """``event_shape`` as a tuple of positive ints, or a ValueError naming the prior."""
    try:
        shape = tuple(event_shape)
    except TypeError:
        raise ValueError(f"prior {prior!r}: event_shape must be a tuple of ints, got {event_shape!r}") from None
    if not shape or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
        raise ValueError(f"prior {prior!r}: event_shape must be a non-empty tuple of positive ints, "
                         f"got {event_shape!r}")
    return shape


def describe_features(event_shape: tuple[int, ...]) -> str:
    """``'2 features'``, or ``'3072 features (event shape (3, 32, 32))'`` for non-vectors."""
    n = math.prod(event_shape)
    noun = "feature" if n == 1 else "features"
    return f"{n} {noun}" if len(event_shape) == 1 else f"{n} {noun} (event shape {event_shape})"


def per_feature(value: Any, *, field: str, event_shape: tuple[int, ...], prior: str) -> Tensor:
    """A scalar-or-tuple recipe value as a tensor of ``event_shape``.

    A scalar is used for every feature; a tuple must hold one value per feature, in the
    row-major (``reshape``) order of the event.
    """
    values = numbers_of(field, value)
    n = math.prod(event_shape)
    if isinstance(value, tuple):
        if len(values) != n:
            raise ValueError(f"prior {prior!r}: {field} has {len(values)} values but the data has "
                             f"{describe_features(event_shape)}")
        return torch.tensor(values, dtype=torch.get_default_dtype()).reshape(event_shape)
    return torch.full(event_shape, values[0], dtype=torch.get_default_dtype())


def check_sample_request(num: Any, shape: Any, event_shape: tuple[int, ...], prior: str) -> tuple[int, ...]:
    """Validate ``sample(num, shape)`` against the event shape the prior was built for."""
    if isinstance(num, bool) or not isinstance(num, int) or num < 0:
        raise ValueError(f"prior {prior!r}: num must be an int >= 0, got {num!r}")
    asked = tuple(int(s) for s in shape)
    if asked != event_shape:
        raise ValueError(f"prior {prior!r} was built for event shape {event_shape} but was asked for "
                         f"samples of shape {asked}")
    return asked


def check_input(x: Tensor, event_shape: tuple[int, ...], prior: str) -> None:
    """``x`` must be a batch ``(B, *event_shape)``."""
    if tuple(x.shape[1:]) != event_shape or x.dim() != len(event_shape) + 1:
        raise ValueError(f"prior {prior!r} expects x of shape (B, {', '.join(map(str, event_shape))}), "
                         f"got {tuple(x.shape)}")
