"""The standard normal prior rho0 = N(0, I) (math.md 0; the base the one-sided conversions of
math.md 1.5 require)."""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch
from torch import Tensor

from . import draws
from .base import BuiltPrior

_LOG_2PI = math.log(2.0 * math.pi)


@attrs.frozen(kw_only=True)
class GaussianParams:
    """Standard normal prior N(0, I); takes no parameters."""


class StandardGaussianPrior(BuiltPrior):
    """x0 ~ N(0, I) over the event shape.

    ``log_prob(x) = -1/2 sum_i x_i^2 - (d/2) log(2 pi)``, summed over the ``d`` event entries.
    """

    prior_name = "gaussian"

    def __init__(self, event_shape: tuple[int, ...]):
        super().__init__(event_shape)
        self.standard_normal = True

    def sample(self, num: int, shape: tuple[int, ...], *, generator: torch.Generator | None = None,
               device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Tensor:
        shape = self._check_request(num, shape)
        device, dtype = self._placement(device, dtype)
        return draws.normal((num, *shape), generator=generator, device=device, dtype=dtype)

    def log_prob(self, x: Tensor) -> Tensor:
        self._check_input(x)
        flat = x.reshape(x.shape[0], -1)
        return -0.5 * flat.pow(2).sum(dim=1) - 0.5 * flat.shape[1] * _LOG_2PI


def build_gaussian(params: GaussianParams, *, event_shape: tuple[int, ...], **context: Any) -> StandardGaussianPrior:
    """Build N(0, I) for data of ``event_shape``."""
    return StandardGaussianPrior(event_shape)
