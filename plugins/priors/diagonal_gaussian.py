"""A Gaussian prior with diagonal covariance, rho0 = N(mean, diag(std^2)) (math.md 0), fixed
or learnable."""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch
from torch import Tensor, nn

from . import draws
from .base import BuiltPrior
from .shapes import event_shape_of, per_feature
from .values import Numbers, finite, float_or_floats, pairwise, positive

_LOG_2PI = math.log(2.0 * math.pi)


@attrs.frozen(kw_only=True)
class DiagonalGaussianParams:
    """Diagonal Gaussian prior N(mean, diag(std^2)); scalars apply to every feature."""

    mean: Numbers = attrs.field(default=0.0, converter=float_or_floats, validator=finite)
    std: Numbers = attrs.field(default=1.0, converter=float_or_floats, validator=positive)
    #: learn the mean and the log of the std with the model
    learnable: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))

    def __attrs_post_init__(self) -> None:
        pairwise("mean", self.mean, "std", self.std)  # tuple lengths must agree


def diagonal_gaussian_log_prob(x: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
    """``sum_i [-1/2 ((x_i - m_i)/s_i)^2 - log s_i - 1/2 log(2 pi)]`` over the event, shape (B,).

    ``mean`` and ``log_std`` broadcast against ``x`` (shape ``(B, *event)``).
    """
    standardized = (x - mean) * torch.exp(-log_std)
    per_entry = -0.5 * standardized.pow(2) - log_std - 0.5 * _LOG_2PI
    return per_entry.reshape(x.shape[0], -1).sum(dim=1)


class DiagonalGaussianPrior(BuiltPrior):
    """x0 = mean + std * xi with xi ~ N(0, I) (reparameterised, so a learnable prior's samples carry
    gradients to ``mean`` and ``log_std``).

    ``mean`` and ``std`` are tensors of the event shape. When ``learnable`` the trained
    quantities are ``mean`` and ``log_std`` (so std stays positive).
    """

    prior_name = "diagonal_gaussian"

    def __init__(self, mean: Tensor, std: Tensor, *, learnable: bool = False):
        super().__init__(tuple(mean.shape))
        if tuple(std.shape) != self.event_shape:
            raise ValueError(f"prior {self.prior_name!r}: std has shape {tuple(std.shape)} but mean has "
                             f"{self.event_shape}")
        if not bool((std > 0).all()):
            raise ValueError(f"prior {self.prior_name!r}: std must be > 0")
        log_std = torch.log(std)
        self.learnable = learnable
        if learnable:
            self.mean = nn.Parameter(mean.clone())
            self.log_std = nn.Parameter(log_std.clone())
        else:
            self.register_buffer("mean", mean.clone(), persistent=False)
            self.register_buffer("log_std", log_std.clone(), persistent=False)
            self.standard_normal = bool((mean == 0).all()) and bool((std == 1).all())

    @property
    def std(self) -> Tensor:
        return torch.exp(self.log_std)

    def sample(self, num: int, shape: tuple[int, ...], *, generator: torch.Generator | None = None,
               device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Tensor:
        shape = self._check_request(num, shape)
        device, dtype = self._placement(device, dtype)
        xi = draws.normal((num, *shape), generator=generator, device=device, dtype=dtype)
        mean = self.mean.to(device=device, dtype=dtype)
        std = torch.exp(self.log_std.to(device=device, dtype=dtype))
        return mean + std * xi

    def log_prob(self, x: Tensor) -> Tensor:
        self._check_input(x)
        mean = self.mean.to(device=x.device, dtype=x.dtype)
        log_std = self.log_std.to(device=x.device, dtype=x.dtype)
        return diagonal_gaussian_log_prob(x, mean, log_std)

    def extra_repr(self) -> str:
        return f"event_shape={self.event_shape}, learnable={self.learnable}"


def build_diagonal_gaussian(params: DiagonalGaussianParams, *, event_shape: tuple[int, ...],
                            **context: Any) -> DiagonalGaussianPrior:
    """Build the prior, checking that ``mean`` and ``std`` fit ``event_shape``."""
    name = DiagonalGaussianPrior.prior_name
    shape = event_shape_of(event_shape, name)
    mean = per_feature(params.mean, field="mean", event_shape=shape, prior=name)
    std = per_feature(params.std, field="std", event_shape=shape, prior=name)
    return DiagonalGaussianPrior(mean, std, learnable=params.learnable)
