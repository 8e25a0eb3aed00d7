"""Lazy and point-mass schedules (math.md 3.2, 3.3), registered under kind ``"interpolant"``.

Both are one-sided (gamma = 0) schedules meant as *targets* of schedule conversion
(math.md 3.1): a model trained under another schedule is sampled under them without retraining
(sampler ``converted``). ``sigma_d`` is the data scale: on data ``N(0, sigma_d^2 I)`` their
drifts vanish.

========================  ==============================  ===============  ==========================
name                      alpha(s)                        beta(s)          lazy for
========================  ==============================  ===============  ==========================
``lazy_vp``               sigma_d cos(pi s/2)             sin(pi s/2)      the ODE (eps = 0)
``point_mass``            sigma_d sqrt(s (1 - s))         s                the SDE with eps* (3.3)
========================  ==============================  ===============  ==========================

``lazy_vp`` keeps ``Var Y_s = alpha^2 + sigma_d^2 beta^2 = sigma_d^2`` constant on Gaussian data,
so ``b = (V'/2V) y = 0`` (math.md 3.3, deterministic case). Its base is ``N(0, sigma_d^2 I)``:
``alpha(0) = sigma_d``.

``point_mass`` has ``alpha(0) = beta(0) = 0``: the base collapses to the point 0 (math.md 3.2),
and ``alpha^2 = sigma_d^2 beta (1 - beta)`` makes ``b + eps* s = 0`` on Gaussian data with
``eps* = sigma_d^2 beta'/2`` (math.md 3.3, the reverse diffusion ``eps_rev`` of 1.3); ``Y_s = sigma_d W_{beta(s)}``.
Its ``alpha'`` is infinite at ``s = 0`` and ``s = 1`` (returned as such): the ODE is singular at
both ends, hence ``default_t_eps`` 1e-3 for every prediction; the few-step sampler of math.md 3.4
(sampler ``point_mass``) uses the regular Foellmer form of the SDE drift instead.
"""

from __future__ import annotations

import math

import attrs
import torch
from torch import Tensor

from interpgen.affine import DeterministicInterpolant
from interpgen.validators import positive_float

_HALF_PI = 0.5 * math.pi


@attrs.frozen(kw_only=True)
class LazyVPInterpolant(DeterministicInterpolant):
    """The VP-type lazy schedule (math.md 3.3): ``alpha = sigma_d cos(pi s/2)``,
    ``beta = sin(pi s/2)``, gamma = 0. ``alpha^2 + sigma_d^2 beta^2 = sigma_d^2``, so the velocity
    vanishes identically on data ``N(0, sigma_d^2 I)`` and Euler steps are exact there.
    ``cos`` is evaluated as a shifted ``sin`` so that ``alpha(1) = 0`` exactly."""

    sigma_d: float = attrs.field(default=1.0, validator=positive_float)

    def alpha(self, t: Tensor) -> Tensor:
        return self.sigma_d * torch.sin(_HALF_PI * (1.0 - t))

    def beta(self, t: Tensor) -> Tensor:
        return torch.sin(_HALF_PI * t)

    def alpha_dot(self, t: Tensor) -> Tensor:
        return -self.sigma_d * _HALF_PI * torch.sin(_HALF_PI * t)

    def beta_dot(self, t: Tensor) -> Tensor:
        return _HALF_PI * torch.sin(_HALF_PI * (1.0 - t))


@attrs.frozen(kw_only=True)
class PointMassInterpolant(DeterministicInterpolant):
    """The point-mass schedule that is lazy for the reverse-diffusion SDE (math.md 3.2, 3.3):
    ``beta = s``, ``alpha = sigma_d sqrt(s (1 - s))``, gamma = 0.

    ``alpha' = sigma_d (1 - 2s) / (2 sqrt(s (1 - s)))`` (infinite at s = 0 and 1).
    The reverse diffusion ``eps* = alpha^2 beta'/beta - alpha alpha' = sigma_d^2 / 2`` is
    constant, and ``b + eps* s = beta' (eta_1 - y)/(1 - beta)`` (math.md 3.3) vanishes on data
    ``N(0, sigma_d^2 I)``.
    """

    sigma_d: float = attrs.field(default=1.0, validator=positive_float)

    @staticmethod
    def _bridge(t: Tensor) -> Tensor:
        return (t * (1.0 - t)).clamp_min(0.0)

    def alpha(self, t: Tensor) -> Tensor:
        return self.sigma_d * self._bridge(t).sqrt()

    def beta(self, t: Tensor) -> Tensor:
        return t.clone()

    def alpha_dot(self, t: Tensor) -> Tensor:
        return self.sigma_d * (1.0 - 2.0 * t) / (2.0 * self._bridge(t).sqrt())

    def beta_dot(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)


#: name -> class, registered by the SI plugin.
LAZY_INTERPOLANTS: dict[str, type] = {
    "lazy_vp": LazyVPInterpolant,
    "point_mass": PointMassInterpolant,
}

__all__ = ["LAZY_INTERPOLANTS", "LazyVPInterpolant", "PointMassInterpolant"]
