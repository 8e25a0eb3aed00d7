"""The point-mass prior rho0 = delta(x - location) (math.md 0; the base of the point-mass
schedules of math.md 3.2)."""

from __future__ import annotations

from typing import Any

import attrs
import torch
from torch import Tensor

from .base import BuiltPrior
from .shapes import event_shape_of, per_feature
from .values import Numbers, finite, float_or_floats


@attrs.frozen(kw_only=True)
class PointMassParams:
    """Point-mass prior: every x0 equals ``location`` (a number for every feature, or a vector)."""

    location: Numbers = attrs.field(default=0.0, converter=float_or_floats, validator=finite)


class PointMassPrior(BuiltPrior):
    """x0 = location for every sample; no randomness, so the generator is accepted and unused.

    A point mass has no density with respect to Lebesgue measure, so ``log_prob`` raises
    NotImplementedError.
    """

    prior_name = "point_mass"

    def __init__(self, location: Tensor):
        super().__init__(tuple(location.shape))
        self.register_buffer("location", location.clone(), persistent=False)

    def sample(self, num: int, shape: tuple[int, ...], *, generator: torch.Generator | None = None,
               device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Tensor:
        shape = self._check_request(num, shape)
        device, dtype = self._placement(device, dtype)
        location = self.location.to(device=device, dtype=dtype)
        return location.expand(num, *shape).clone()

    def log_prob(self, x: Tensor) -> Tensor:
        raise NotImplementedError(
            f"prior {self.prior_name!r} has no density: a point mass (every x0 equals the location) "
            "is not absolutely continuous, so log_prob is undefined; likelihoods need a prior with a "
            "density (e.g. 'gaussian')")


def build_point_mass(params: PointMassParams, *, event_shape: tuple[int, ...], **context: Any) -> PointMassPrior:
    """Build the point mass, checking ``location`` against ``event_shape``."""
    name = PointMassPrior.prior_name
    shape = event_shape_of(event_shape, name)
    return PointMassPrior(per_feature(params.location, field="location", event_shape=shape, prior=name))
