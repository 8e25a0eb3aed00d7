"""The built-in interpolants (math.md 1.6, 1.7, 1.8), registered under kind ``"interpolant"``.

Every ``alpha, beta`` and derivative is in closed form; derivatives that involve gamma use the
part's ``gamma_gamma_dot`` so they stay finite where ``gamma_dot`` is not. Cosines are evaluated
as shifted sines so that the boundary values that should vanish are exactly 0 in floating point.

========================  ===============================  ==============================  ============
name                      alpha(t)                         beta(t)                         gamma
========================  ===============================  ==============================  ============
``linear``                1 - t                            t                               any
``trig``                  sqrt(1-g^2) cos(pi t/2)          sqrt(1-g^2) sin(pi t/2)         g, g^2 < 1
``gvp``                   cos(pi t/2)                      sin(pi t/2)                     any
``vp``                    sqrt(1 - beta^2)                 exp(-(1-t)^2 (bmax-bmin)/4      0
                                                           - (1-t) bmin/2)
``encoding_decoding``     cos^2(pi t) 1[t <= 1/2]          cos^2(pi t) 1[t > 1/2]          gamma(1/2)>0
``fm_ot``                 1 - (1 - sigma_min) t            t                               0
``mirror``                0                                1                               non-zero
========================  ===============================  ==============================  ============

One name per path: ``fm_ot`` takes ``0 < sigma_min < 1`` (at 0 it is ``linear``); ``trig`` needs a
non-zero gamma (with gamma zero it is ``gvp``). ``one_sided`` is a preset: ``linear`` with gamma
fixed to zero. The LSI plugin's ``lsi_bridge`` with ``schedule = "linear"`` is the path ``linear``
with gamma ``a_brownian`` (``a = sigma^2``).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import attrs
import torch
from attrs.validators import gt, lt
from torch import Tensor

from interpgen.affine import DeterministicInterpolant
from interpgen.config import Part
from interpgen.validators import checked, nonnegative_float, number

from .gammas import BrownianGamma, SineSquaredGamma, ZeroGamma
from .noisy import NoisyInterpolant, check_gamma, require_nonzero_gamma

_HALF_PI = 0.5 * math.pi


def _cos_half_pi(t: Tensor) -> Tensor:
    """``cos(pi t/2)`` evaluated as ``sin(pi (1 - t)/2)``, which is exactly 0 at t = 1."""
    return torch.sin(_HALF_PI * (1.0 - t))


# -- linear family ------------------------------------------------------------------------------

@attrs.frozen(kw_only=True)
class LinearInterpolant(NoisyInterpolant):
    """``alpha = 1 - t``, ``beta = t``, plus any gamma (math.md 1.7, 1.8 ``linear``): rectified
    flow / linear flow matching with gamma zero (the default), the SI ``linear`` interpolant
    otherwise."""

    def alpha(self, t: Tensor) -> Tensor:
        return 1.0 - t

    def beta(self, t: Tensor) -> Tensor:
        return t.clone()

    def alpha_dot(self, t: Tensor) -> Tensor:
        return -torch.ones_like(t)

    def beta_dot(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)


@attrs.frozen(kw_only=True)
class OneSidedInterpolant(LinearInterpolant):
    """Preset of ``linear`` with gamma = zero (fixed, not a parameter): ``alpha = 1 - t``,
    ``beta = t``, the one-sided linear SI for a Gaussian base ``x0 ~ N(0, I)`` (math.md 1.8
    ``one-sided-linear``). Pass ``gaussian_base=True`` to ``convert`` and ``target`` when the prior
    is ``N(0, I)``, as intended."""

    gamma: Part("gamma") = attrs.field(factory=ZeroGamma, init=False)


@attrs.frozen(kw_only=True)
class FMOTInterpolant(DeterministicInterpolant):
    """Lipman et al.'s flow-matching OT path (math.md 1.7): ``alpha = 1 - (1 - sigma_min) t``,
    ``beta = t``, gamma = 0. Note ``alpha(1) = sigma_min`` (1e-4 by default, not 0): the
    endpoint at t = 1 is the data smoothed by ``sigma_min`` times the base."""

    sigma_min: float = attrs.field(default=1e-4, validator=checked(
        "a number in (0, 1) (sigma_min = 0 is the path 'linear': use it)", number, gt(0), lt(1)))

    def alpha(self, t: Tensor) -> Tensor:
        return 1.0 - (1.0 - self.sigma_min) * t

    def beta(self, t: Tensor) -> Tensor:
        return t.clone()

    def alpha_dot(self, t: Tensor) -> Tensor:
        return torch.full_like(t, -(1.0 - self.sigma_min))

    def beta_dot(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)


# -- trigonometric family -----------------------------------------------------------------------

@attrs.frozen(kw_only=True)
class GVPInterpolant(NoisyInterpolant):
    """``alpha = cos(pi t/2)``, ``beta = sin(pi t/2)`` (math.md 1.8, SiT ``GVP``); gamma zero by
    default (any gamma may be added on top)."""

    def alpha(self, t: Tensor) -> Tensor:
        return _cos_half_pi(t)

    def beta(self, t: Tensor) -> Tensor:
        return torch.sin(_HALF_PI * t)

    def alpha_dot(self, t: Tensor) -> Tensor:
        return -_HALF_PI * torch.sin(_HALF_PI * t)

    def beta_dot(self, t: Tensor) -> Tensor:
        return _HALF_PI * _cos_half_pi(t)


def _gamma_below_one(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    check_gamma(instance, attribute, value)
    require_nonzero_gamma(instance, attribute, value)
    grid = torch.linspace(0.0, 1.0, 2001, dtype=torch.float64)
    peak = float(value.gamma(grid).abs().max())
    if not peak < 1.0:
        raise ValueError(
            f"trig needs gamma(t)^2 < 1 on [0, 1] (alpha and beta carry sqrt(1 - gamma^2), whose "
            f"derivative is infinite where gamma = 1); {type(value).__name__} reaches {peak:.6g}")


@attrs.frozen(kw_only=True)
class TrigInterpolant(NoisyInterpolant):
    """The two-sided trigonometric SI (math.md 1.8 ``trig``):
    ``alpha = sqrt(1 - g^2) cos(pi t/2)``, ``beta = sqrt(1 - g^2) sin(pi t/2)``, gamma = g.

    With ``r = sqrt(1 - g^2)``, ``r' = -g g' / r`` (from ``gamma_gamma_dot``, finite as long as
    ``g^2 < 1``, which is checked on a grid of [0, 1]); ``alpha' = r' cos - r (pi/2) sin`` and
    ``beta' = r' sin + r (pi/2) cos``. The gamma must not be zero (that path is ``gvp``).
    """

    _why_gamma: ClassVar[str] = "with gamma zero the path is 'gvp' (alpha = cos(pi t/2), beta = sin(pi t/2)): use it"

    gamma: Part("gamma") = attrs.field(factory=BrownianGamma, validator=_gamma_below_one)

    def _root(self, t: Tensor) -> Tensor:
        g = self.gamma.gamma(t)
        return (1.0 - g * g).sqrt()

    def _root_dot(self, t: Tensor) -> Tensor:
        return -self.gamma.gamma_gamma_dot(t) / self._root(t)

    def alpha(self, t: Tensor) -> Tensor:
        return self._root(t) * _cos_half_pi(t)

    def beta(self, t: Tensor) -> Tensor:
        return self._root(t) * torch.sin(_HALF_PI * t)

    def alpha_dot(self, t: Tensor) -> Tensor:
        return (self._root_dot(t) * _cos_half_pi(t)
                - self._root(t) * _HALF_PI * torch.sin(_HALF_PI * t))

    def beta_dot(self, t: Tensor) -> Tensor:
        return (self._root_dot(t) * torch.sin(_HALF_PI * t)
                + self._root(t) * _HALF_PI * _cos_half_pi(t))


# -- variance preserving (score SDE) ------------------------------------------------------------

def _above_beta_min(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    if not (value > instance.beta_min and math.isfinite(value)):
        raise ValueError(f"beta_max must be > beta_min = {instance.beta_min!r}, got {value!r}")


@attrs.frozen(kw_only=True)
class VPInterpolant(DeterministicInterpolant):
    """The VP score-SDE path as ported in SiT ``VPCPlan`` (math.md 1.7), gamma = 0:

    ``beta(t) = exp(-(1-t)^2 (beta_max - beta_min)/4 - (1-t) beta_min/2)``,
    ``alpha = sqrt(1 - beta^2)``; ``beta' = beta * beta_sde/2`` with
    ``beta_sde = beta_min + (1-t)(beta_max - beta_min)``, ``alpha' = -beta beta'/alpha``.

    The boundary conditions are inexact: ``beta(0) = exp(-(beta_max + beta_min)/4)`` (about
    0.0066 with the defaults), ``alpha(1) = 0`` and ``alpha'(1) = -inf`` (returned as such).
    Hence ``default_t_eps`` is 1e-5 for every prediction (SiT's training epsilon, math.md 2.2).
    """

    singular_t_eps: ClassVar[float] = 1e-5

    beta_min: float = attrs.field(default=0.1, validator=nonnegative_float)
    beta_max: float = attrs.field(default=20.0, validator=_above_beta_min)

    def _log_beta(self, t: Tensor) -> Tensor:
        s = 1.0 - t
        return -0.25 * s * s * (self.beta_max - self.beta_min) - 0.5 * s * self.beta_min

    def beta_sde(self, t: Tensor) -> Tensor:
        """``beta_min + (1 - t)(beta_max - beta_min)`` (math.md 1.7)."""
        return self.beta_min + (1.0 - t) * (self.beta_max - self.beta_min)

    def alpha(self, t: Tensor) -> Tensor:
        return (-torch.expm1(2.0 * self._log_beta(t))).clamp_min(0.0).sqrt()

    def beta(self, t: Tensor) -> Tensor:
        return torch.exp(self._log_beta(t))

    def alpha_dot(self, t: Tensor) -> Tensor:
        return -self.beta(t) * self.beta_dot(t) / self.alpha(t)

    def beta_dot(self, t: Tensor) -> Tensor:
        return 0.5 * self.beta(t) * self.beta_sde(t)


# -- encoding-decoding --------------------------------------------------------------------------

def _positive_at_half(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """``gamma(1/2) > 0`` (math.md 1.8): at ``t = 1/2`` encoding_decoding has ``alpha = beta = 0``, so
    ``x_{1/2} = gamma(1/2) z``; a gamma that vanishes there (not only a zero one) collapses the path."""
    half = float(value.gamma(torch.tensor([0.5], dtype=torch.float64)))
    if not half > 0:
        raise ValueError(
            f"encoding_decoding needs gamma(1/2) > 0, but {type(value).__name__} gives gamma(1/2) = {half:.6g}: "
            "alpha = beta = 0 at t = 1/2, so x_1/2 = gamma(1/2) z is a point and nothing passes through it "
            "(the SI paper uses gamma = sin^2(pi t), the default 'sinesquared')")


@attrs.frozen(kw_only=True)
class EncodingDecodingInterpolant(NoisyInterpolant):
    """The SI encoding-decoding interpolant (math.md 1.8): ``alpha = cos^2(pi t) 1[t <= 1/2]``,
    ``beta = cos^2(pi t) 1[t > 1/2]``, so ``x_{1/2} = gamma(1/2) z`` is pure noise.

    ``alpha' = -pi sin(2 pi t) 1[t <= 1/2]``, ``beta' = -pi sin(2 pi t) 1[t > 1/2]`` (continuous:
    both vanish at t = 1/2). The gamma needs ``gamma(1/2) > 0`` (alpha = beta = 0 at t = 1/2;
    refused otherwise, math.md 1.8); the default is ``sinesquared``, equal to 1 at t = 1/2.

    ``cos(pi t)`` is evaluated as ``sin(pi (1/2 - t))`` and ``sin(2 pi t)`` as
    ``sin(pi (1 - 2t))`` so that alpha, beta and both derivatives are exactly 0 at t = 1/2 (the
    conversions use exact zeros to tell where x0 or x1 drops out of x_t).
    """

    _why_gamma: ClassVar[str] = "alpha = beta = 0 at t = 1/2, so x_{1/2} = gamma(1/2) z must carry noise"

    gamma: Part("gamma") = attrs.field(factory=SineSquaredGamma,
                                       validator=[check_gamma, require_nonzero_gamma, _positive_at_half])

    @staticmethod
    def _cos_squared(t: Tensor) -> Tensor:
        return torch.sin(math.pi * (0.5 - t)) ** 2

    @staticmethod
    def _cos_squared_dot(t: Tensor) -> Tensor:
        return -math.pi * torch.sin(math.pi * (1.0 - 2.0 * t))

    def alpha(self, t: Tensor) -> Tensor:
        return torch.where(t <= 0.5, self._cos_squared(t), torch.zeros_like(t))

    def beta(self, t: Tensor) -> Tensor:
        return torch.where(t > 0.5, self._cos_squared(t), torch.zeros_like(t))

    def alpha_dot(self, t: Tensor) -> Tensor:
        return torch.where(t <= 0.5, self._cos_squared_dot(t), torch.zeros_like(t))

    def beta_dot(self, t: Tensor) -> Tensor:
        return torch.where(t > 0.5, self._cos_squared_dot(t), torch.zeros_like(t))


# -- mirror -------------------------------------------------------------------------------------

@attrs.frozen(kw_only=True)
class MirrorInterpolant(NoisyInterpolant):
    """The mirror interpolant (math.md 1.6): ``x_t = x1 + gamma(t) z`` with ``rho0 = rho1 = data``
    (``base_is_data``), i.e. ``alpha = 0``, ``beta = 1``; ``b = -gamma gamma' s``.

    The gamma must not be zero (x_t would never move); the default is ``brownian``. Only the
    score (or noise, or velocity) is learnable: E[x0|x_t] is not determined by any field.
    """

    base_is_data: ClassVar[bool] = True
    ignores_base: ClassVar[bool] = True
    _why_gamma: ClassVar[str] = "x_t = x1 + gamma z would not move from the data"

    gamma: Part("gamma") = attrs.field(factory=BrownianGamma,
                                       validator=[check_gamma, require_nonzero_gamma])

    def check_compatible(self, *, prior: object = None, **parts: object) -> None:
        """The base must be the data itself (the pipeline calls this with its other parts)."""
        if not getattr(prior, "is_data", False):
            raise ValueError("the mirror interpolant maps the data to itself: use prior = {name = \"dataset\"} "
                             "with the training data as its data")

    def alpha(self, t: Tensor) -> Tensor:
        return torch.zeros_like(t)

    def beta(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)

    def alpha_dot(self, t: Tensor) -> Tensor:
        return torch.zeros_like(t)

    def beta_dot(self, t: Tensor) -> Tensor:
        return torch.zeros_like(t)


#: name -> class, in the order they are registered.
INTERPOLANTS: dict[str, type] = {
    "linear": LinearInterpolant,
    "trig": TrigInterpolant,
    "gvp": GVPInterpolant,
    "vp": VPInterpolant,
    "encoding_decoding": EncodingDecodingInterpolant,
    "one_sided": OneSidedInterpolant,  # preset of linear (gamma zero)
    "fm_ot": FMOTInterpolant,
    "mirror": MirrorInterpolant,
}
