"""Latent-noise schedules gamma(t) (math.md 1.1, 1.8), registered under kind ``"gamma"``.

Each class follows the :class:`interpgen.protocols.Gamma` protocol with ``gamma``,
``gamma_dot`` and ``gamma_gamma_dot`` in closed form. ``gamma_gamma_dot`` is its own formula,
not ``gamma(t) * gamma_dot(t)``: for ``sqrt(a t (1-t))`` the derivative is infinite at
``t = 0, 1`` while ``gamma * gamma_dot = a (1 - 2t) / 2`` is finite there (math.md 1.1).
Samplers and conversions must use ``gamma_gamma_dot`` only.

A gamma object is also callable, ``g(t) == g.gamma(t)``, so that an interpolant holding it in
its ``gamma`` field answers ``interpolant.gamma(t)`` as the protocol asks.
``is_zero`` is True only for :class:`ZeroGamma`.
"""

from __future__ import annotations

import math
from typing import ClassVar

import attrs
import torch
from torch import Tensor

from interpgen.validators import positive_float


def _bridge_variance(t: Tensor) -> Tensor:
    """``t (1 - t)``, clamped at 0 so rounding just outside [0, 1] gives 0, not NaN."""
    return (t * (1.0 - t)).clamp_min(0.0)


@attrs.frozen(kw_only=True)
class GammaForm:
    """Shared behaviour of the gamma forms: calling the object evaluates gamma(t)."""

    is_zero: ClassVar[bool] = False

    def __call__(self, t: Tensor) -> Tensor:
        return self.gamma(t)

    def gamma(self, t: Tensor) -> Tensor:  # pragma: no cover - each form overrides
        raise NotImplementedError

    def gamma_dot(self, t: Tensor) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def gamma_gamma_dot(self, t: Tensor) -> Tensor:  # pragma: no cover
        raise NotImplementedError


@attrs.frozen(kw_only=True)
class ZeroGamma(GammaForm):
    """gamma(t) = 0: a deterministic interpolant (math.md 1.8, ``zero``)."""

    is_zero: ClassVar[bool] = True

    def gamma(self, t: Tensor) -> Tensor:
        return torch.zeros_like(t)

    def gamma_dot(self, t: Tensor) -> Tensor:
        return torch.zeros_like(t)

    def gamma_gamma_dot(self, t: Tensor) -> Tensor:
        return torch.zeros_like(t)


@attrs.frozen(kw_only=True)
class BrownianGamma(GammaForm):
    """gamma(t) = sqrt(t (1 - t)), the Brownian-bridge scale (math.md 1.8, ``brownian``).

    ``gamma_dot = (1 - 2t) / (2 sqrt(t (1-t)))`` is ``+inf`` at ``t = 0`` and ``-inf`` at
    ``t = 1`` (returned as such, not clamped); ``gamma_gamma_dot = (1 - 2t) / 2`` is finite.
    """

    def gamma(self, t: Tensor) -> Tensor:
        return _bridge_variance(t).sqrt()

    def gamma_dot(self, t: Tensor) -> Tensor:
        return (1.0 - 2.0 * t) / (2.0 * _bridge_variance(t).sqrt())

    def gamma_gamma_dot(self, t: Tensor) -> Tensor:
        return (1.0 - 2.0 * t) / 2.0


@attrs.frozen(kw_only=True)
class ABrownianGamma(GammaForm):
    """gamma(t) = sqrt(a t (1 - t)) with ``a > 0`` (math.md 1.8, ``a-brownian``).

    ``gamma_dot = a (1 - 2t) / (2 sqrt(a t (1-t)))`` is ``+inf`` / ``-inf`` at ``t = 0`` / ``1``
    (not clamped); ``gamma_gamma_dot = a (1 - 2t) / 2`` is finite everywhere.
    """

    a: float = attrs.field(default=1.0, validator=positive_float)

    def gamma(self, t: Tensor) -> Tensor:
        return (self.a * _bridge_variance(t)).sqrt()

    def gamma_dot(self, t: Tensor) -> Tensor:
        return self.a * (1.0 - 2.0 * t) / (2.0 * (self.a * _bridge_variance(t)).sqrt())

    def gamma_gamma_dot(self, t: Tensor) -> Tensor:
        return self.a * (1.0 - 2.0 * t) / 2.0


@attrs.frozen(kw_only=True)
class BSquaredGamma(GammaForm):
    """gamma(t) = t (1 - t) (math.md 1.8, ``bsquared``); ``gamma_dot = 1 - 2t`` is finite,
    ``gamma_gamma_dot = t (1-t)(1-2t)``."""

    def gamma(self, t: Tensor) -> Tensor:
        return t * (1.0 - t)

    def gamma_dot(self, t: Tensor) -> Tensor:
        return 1.0 - 2.0 * t

    def gamma_gamma_dot(self, t: Tensor) -> Tensor:
        return t * (1.0 - t) * (1.0 - 2.0 * t)


def _sin_pi_symmetric(t: Tensor) -> Tensor:
    """``sin(pi t)`` evaluated as ``sin(pi min(t, 1 - t))`` so that it is exactly 0 at t = 1."""
    return torch.sin(math.pi * torch.minimum(t, 1.0 - t))


@attrs.frozen(kw_only=True)
class SineSquaredGamma(GammaForm):
    """gamma(t) = sin^2(pi t) (math.md 1.8, ``sinesquared``); ``gamma_dot = pi sin(2 pi t)``,
    ``gamma_gamma_dot = pi sin^2(pi t) sin(2 pi t)``, all finite. It reaches 1 at t = 1/2.
    Evaluated symmetrically so that gamma(0) = gamma(1) = 0 exactly."""

    def gamma(self, t: Tensor) -> Tensor:
        return _sin_pi_symmetric(t) ** 2

    def gamma_dot(self, t: Tensor) -> Tensor:
        return math.pi * torch.sin(2.0 * math.pi * t)

    def gamma_gamma_dot(self, t: Tensor) -> Tensor:
        return math.pi * _sin_pi_symmetric(t) ** 2 * torch.sin(2.0 * math.pi * t)


#: name -> class, in the order they are registered.
GAMMAS: dict[str, type[GammaForm]] = {
    "zero": ZeroGamma,
    "brownian": BrownianGamma,
    "a_brownian": ABrownianGamma,
    "bsquared": BSquaredGamma,
    "sinesquared": SineSquaredGamma,
}
