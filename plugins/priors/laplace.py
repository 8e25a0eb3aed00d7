"""The Laplace prior rho0 = prod_i Laplace(loc_i, scale_i) (math.md 0; the "Laplacian" prior the LSI
paper compares, math.md 4.3), registered as ``laplacian`` (``laplace`` is the name the third-party
example plugin of docs/plugins.md registers).

Density per feature ``exp(-|x - loc| / scale) / (2 scale)``; variance ``2 scale^2`` (so
``scale = 1/sqrt(2)`` has unit variance, like ``N(0, I)``).
"""

from __future__ import annotations

from typing import Any

import attrs
import torch
from torch import Tensor

from . import draws
from .base import BuiltPrior
from .shapes import event_shape_of, per_feature
from .values import Numbers, finite, float_or_floats, positive


@attrs.frozen(kw_only=True)
class LaplaceParams:
    """Laplace prior with location ``loc`` and scale ``scale`` (scalars apply to every feature)."""

    loc: Numbers = attrs.field(default=0.0, converter=float_or_floats, validator=finite)
    #: ``b`` of ``exp(-|x - loc| / b) / (2 b)``; the variance is ``2 b^2``
    scale: Numbers = attrs.field(default=1.0, converter=float_or_floats, validator=positive)


class LaplacePrior(BuiltPrior):
    """x0 = loc + scale * (e1 - e2) with e1, e2 ~ Exp(1) independent (their difference is a
    standard Laplace draw); ``log_prob = sum_i [-|x_i - loc_i| / scale_i - log(2 scale_i)]``."""

    prior_name = "laplacian"

    def __init__(self, loc: Tensor, scale: Tensor):
        super().__init__(tuple(loc.shape))
        if tuple(scale.shape) != self.event_shape or not bool((scale > 0).all()):
            raise ValueError(f"prior {self.prior_name!r}: scale must have the shape of loc and be > 0")
        self.register_buffer("loc", loc.clone(), persistent=False)
        self.register_buffer("scale", scale.clone(), persistent=False)

    def sample(self, num: int, shape: tuple[int, ...], *, generator: torch.Generator | None = None,
               device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Tensor:
        shape = self._check_request(num, shape)
        device, dtype = self._placement(device, dtype)
        u = draws.uniform((2, num, *shape), generator=generator, device=device, dtype=dtype)
        e = -torch.log1p(-u)  # Exp(1); 1 - u lies in (0, 1], so this stays finite
        return self.loc.to(device=device, dtype=dtype) + self.scale.to(device=device, dtype=dtype) * (e[0] - e[1])

    def log_prob(self, x: Tensor) -> Tensor:
        self._check_input(x)
        loc = self.loc.to(device=x.device, dtype=x.dtype)
        scale = self.scale.to(device=x.device, dtype=x.dtype)
        per_entry = -(x - loc).abs() / scale - torch.log(2.0 * scale)
        return per_entry.reshape(x.shape[0], -1).sum(dim=1)

    def extra_repr(self) -> str:
        return f"event_shape={self.event_shape}"


def build_laplace(params: LaplaceParams, *, event_shape: tuple[int, ...], **context: Any) -> LaplacePrior:
    """Build the prior, checking ``loc`` and ``scale`` against ``event_shape``."""
    name = LaplacePrior.prior_name
    shape = event_shape_of(event_shape, name)
    loc = per_feature(params.loc, field="loc", event_shape=shape, prior=name)
    scale = per_feature(params.scale, field="scale", event_shape=shape, prior=name)
    return LaplacePrior(loc, scale)

