"""Diffusion coefficients eps(t) >= 0 of the generative SDE (math.md 1.3, 2.2).

The forward SDE ``dX = [b + eps s](t, X) dt + sqrt(2 eps(t)) dW`` has the interpolant's
marginals for every choice here. Each class is called as ``eps(t, interpolant) -> (B,)`` with
``t`` of shape ``(B,)``; the SiT forms of math.md 2.2 keep SiT's names (``sigma``, ``linear``,
``decreasing``, ``increasing_decreasing``; SiT's ``SBDM`` is ``reverse``).

``reverse`` is the reverse-diffusion choice ``eps_rev = alpha^2 beta'/beta - alpha alpha'``
(math.md 1.3), singular at ``t = 0``. ``optimal`` is the same coefficient under its older name,
kept so that existing recipes work: it is **not** the SI paper's optimal constant diffusion
``(DeltaL_b / DeltaL_s)^(1/2)`` (math.md 1.3), which no diffusion here estimates.
"""

from __future__ import annotations

import math

import attrs
import torch
from torch import Tensor

from interpgen.protocols import Interpolant
from interpgen.validators import nonnegative_float


@attrs.frozen(kw_only=True)
class ZeroDiffusion:
    """``eps = 0``: the SDE samplers reduce to their ODE steps (math.md 1.3)."""

    def __call__(self, t: Tensor, interpolant: Interpolant) -> Tensor:
        return torch.zeros_like(t)


@attrs.frozen(kw_only=True)
class ConstantDiffusion:
    """``eps = value`` (SiT ``constant``, the official SI code's fixed ``eps``; math.md 2.1, 2.2)."""

    value: float = attrs.field(default=1.0, validator=nonnegative_float)

    def __call__(self, t: Tensor, interpolant: Interpolant) -> Tensor:
        return torch.full_like(t, self.value)


@attrs.frozen(kw_only=True)
class NormedDiffusion:
    """Base of the diffusions scaled by ``norm >= 0`` (SiT's ``diffusion_norm``, math.md 2.2)."""

    norm: float = attrs.field(default=1.0, validator=nonnegative_float)


def effective_alpha_squared(t: Tensor, interpolant: Interpolant) -> Tensor:
    """``alpha_eff^2 = alpha^2 + gamma^2``: with a N(0, I) base and an independent coupling the
    two-sided interpolant is one-sided with this base coefficient (math.md 1.5)."""
    return interpolant.alpha(t) ** 2 + interpolant.gamma(t) ** 2


@attrs.frozen(kw_only=True)
class ReverseDiffusion(NormedDiffusion):
    """The reverse-diffusion choice ``eps_rev = norm (alpha^2 beta'/beta - alpha alpha')`` (math.md 1.3; SiT ``SBDM``).

    With it the forward SDE is the time reversal of the process that adds noise to data. For
    ``gamma != 0`` the effective one-sided schedule is used (math.md 1.5):
    ``alpha_eff^2 beta'/beta - (alpha alpha' + gamma gamma')`` with ``alpha_eff^2 = alpha^2 + gamma^2``
    and ``gamma gamma'`` in closed form. Linear path: ``(1-t)^2/t + (1-t)``; VP: ``beta_sde/2``
    (math.md 1.7). Infinite where ``beta = 0`` (``t = 0``): SDE samplers start at ``t_eps > 0``.
    """

    def __call__(self, t: Tensor, interpolant: Interpolant) -> Tensor:
        i = interpolant
        eps = (effective_alpha_squared(t, i) * i.beta_dot(t) / i.beta(t)
               - (i.alpha(t) * i.alpha_dot(t) + i.gamma_gamma_dot(t)))
        return self.norm * eps


@attrs.frozen(kw_only=True)
class OptimalDiffusion(ReverseDiffusion):
    """The older name of ``reverse`` (``eps_rev``, math.md 1.3), kept for existing recipes: not the SI paper's optimal diffusion.

    The paper's optimal constant diffusion ``(DeltaL_b / DeltaL_s)^(1/2)`` needs the trained
    models' excess losses; no diffusion estimates it (pass a value to ``constant``).
    """


@attrs.frozen(kw_only=True)
class SigmaDiffusion(NormedDiffusion):
    """``eps = norm alpha_eff = norm sqrt(alpha^2 + gamma^2)`` (SiT ``sigma``: the noise
    coefficient, math.md 2.2)."""

    def __call__(self, t: Tensor, interpolant: Interpolant) -> Tensor:
        return self.norm * effective_alpha_squared(t, interpolant).sqrt()


@attrs.frozen(kw_only=True)
class LinearDiffusion(NormedDiffusion):
    """``eps = norm (1 - t)`` (SiT ``linear``, math.md 2.2)."""

    def __call__(self, t: Tensor, interpolant: Interpolant) -> Tensor:
        return self.norm * (1 - t)


@attrs.frozen(kw_only=True)
class DecreasingDiffusion(NormedDiffusion):
    """``eps = (norm cos(pi t) + 1)^2 / 4`` (SiT ``decreasing``, math.md 2.2)."""

    def __call__(self, t: Tensor, interpolant: Interpolant) -> Tensor:
        return 0.25 * (self.norm * torch.cos(math.pi * t) + 1) ** 2


@attrs.frozen(kw_only=True)
class IncreasingDecreasingDiffusion(NormedDiffusion):
    """``eps = norm sin^2(pi t)`` (SiT ``increasing-decreasing``, math.md 2.2)."""

    def __call__(self, t: Tensor, interpolant: Interpolant) -> Tensor:
        return self.norm * torch.sin(math.pi * t) ** 2
