"""The uniform prior on a box, rho0 = U([low, high]) per feature (math.md 0)."""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch
from torch import Tensor

from . import draws
from .base import BuiltPrior
from .shapes import event_shape_of, per_feature
from .values import Numbers, finite, float_or_floats, pairwise


@attrs.frozen(kw_only=True)
class UniformParams:
    """Uniform prior on the box [low, high] (scalars apply to every feature)."""

    low: Numbers = attrs.field(default=-1.0, converter=float_or_floats, validator=finite)
    high: Numbers = attrs.field(default=1.0, converter=float_or_floats, validator=finite)

    def __attrs_post_init__(self) -> None:
        for i, (lo, hi) in enumerate(pairwise("low", self.low, "high", self.high)):
            if not lo < hi:
                where = f" (feature {i})" if isinstance(self.low, tuple) or isinstance(self.high, tuple) else ""
                raise ValueError(f"low must be < high{where}, got low {lo} and high {hi}")


class UniformPrior(BuiltPrior):
    """x0 = low + (high - low) * u with u ~ U[0, 1)^d.

    ``log_prob(x) = -sum_i log(high_i - low_i)`` when every entry lies in ``[low_i, high_i]``
    (the closed box) and ``-inf`` otherwise.
    """

    prior_name = "uniform"

    def __init__(self, low: Tensor, high: Tensor):
        super().__init__(tuple(low.shape))
        if tuple(high.shape) != self.event_shape or not bool((low < high).all()):
            raise ValueError(f"prior {self.prior_name!r}: low and high must have one shape with low < high")
        self.register_buffer("low", low.clone(), persistent=False)
        self.register_buffer("high", high.clone(), persistent=False)

    def sample(self, num: int, shape: tuple[int, ...], *, generator: torch.Generator | None = None,
               device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Tensor:
        shape = self._check_request(num, shape)
        device, dtype = self._placement(device, dtype)
        u = draws.uniform((num, *shape), generator=generator, device=device, dtype=dtype)
        low = self.low.to(device=device, dtype=dtype)
        high = self.high.to(device=device, dtype=dtype)
        return low + (high - low) * u

    def log_prob(self, x: Tensor) -> Tensor:
        self._check_input(x)
        low = self.low.to(device=x.device, dtype=x.dtype)
        high = self.high.to(device=x.device, dtype=x.dtype)
        inside = ((x >= low) & (x <= high)).reshape(x.shape[0], -1).all(dim=1)
        log_volume = torch.log(high - low).sum()
        return torch.where(inside, -log_volume, torch.full_like(log_volume, -math.inf))


def build_uniform(params: UniformParams, *, event_shape: tuple[int, ...], **context: Any) -> UniformPrior:
    """Build the box prior, checking ``low`` and ``high`` against ``event_shape``."""
    name = UniformPrior.prior_name
    shape = event_shape_of(event_shape, name)
    low = per_feature(params.low, field="low", event_shape=shape, prior=name)
    high = per_feature(params.high, field="high", event_shape=shape, prior=name)
    return UniformPrior(low, high)
