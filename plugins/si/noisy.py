"""Interpolants with a ``gamma`` part: the latent-noise term of math.md 1.1 as a recipe field."""

from __future__ import annotations

from typing import Any

import attrs
import torch
from torch import Tensor

from interpgen.affine import AffineInterpolant
from interpgen.config import Part
from interpgen.protocols import Gamma

from .gammas import ZeroGamma


def check_gamma(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, Gamma) or not callable(value):
        raise TypeError(
            f"{attribute.name} must be a gamma part (gamma, gamma_dot, gamma_gamma_dot and "
            f"__call__(t) = gamma(t)), got {type(value).__name__}")


def gamma_is_zero(gamma: Any) -> bool:
    """``gamma.is_zero`` when the part says, else whether gamma vanishes on a grid of [0, 1]."""
    flag = getattr(gamma, "is_zero", None)
    if flag is not None:
        return bool(flag)
    grid = torch.linspace(0.0, 1.0, 101, dtype=torch.float64)
    return bool((gamma.gamma(grid) == 0).all())


def require_nonzero_gamma(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if gamma_is_zero(value):
        raise ValueError(
            f"{type(instance).__name__} needs a non-zero gamma (got {type(value).__name__}); "
            f"{instance._why_gamma}")


@attrs.frozen(kw_only=True)
class NoisyInterpolant(AffineInterpolant):
    """An interpolant with a ``gamma`` part (default zero): ``gamma(t)`` is the part itself
    (calling it evaluates gamma), and ``gamma_dot``, ``gamma_gamma_dot`` are the part's."""

    gamma: Part("gamma") = attrs.field(factory=ZeroGamma, validator=check_gamma)

    def gamma_dot(self, t: Tensor) -> Tensor:
        return self.gamma.gamma_dot(t)

    def gamma_gamma_dot(self, t: Tensor) -> Tensor:
        return self.gamma.gamma_gamma_dot(t)

    @property
    def deterministic(self) -> bool:
        return gamma_is_zero(self.gamma)


__all__ = ["NoisyInterpolant", "check_gamma", "gamma_is_zero", "require_nonzero_gamma"]
