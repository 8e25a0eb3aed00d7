"""The LSI bridge interpolant ``z_t = eta_t eps + kappa_t z1 + nu_t z0`` (math.md 4.2).

``kappa`` (on the latent ``z1``) and ``nu`` (on the prior sample ``z0``) are chosen; with a scale
``C = sigma**2 > 0`` the rest is forced (math.md 4.2, "inverse"):

* ``eta_t^2 = C kappa_t nu_t``                      (bridge variance)
* ``sigma_t^2 = C (kappa'_t nu_t - kappa_t nu'_t)``   (diffusion of the model SDE)
* ``h_phi(z, t; z1) = (nu'/nu) z + (kappa' - kappa nu'/nu) z1``  (Doob drift of the bridge)

Schedules: ``linear`` (``kappa = t``, ``nu = 1 - t``: ``sigma_t = sigma`` constant and
``z_t = sigma sqrt(t(1-t)) eps + t z1 + (1-t) z0``) and ``trig`` (``kappa = sin(pi t/2)``,
``nu = cos(pi t/2)``: ``sigma_t^2 = C pi/2``, ``eta_t^2 = C sin cos``).

In the SI names of math.md 0: ``alpha = nu``, ``beta = kappa``, ``gamma = eta``, so the bridge is
an ordinary two-sided interpolant as well and works in the observation-space pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import attrs
import torch
from torch import Tensor

from interpgen.affine import AffineInterpolant
from interpgen.protocols import ConversionError
from interpgen.tensors import expand_like
from interpgen.validators import one_of, positive_float

from . import parameterisations

BRIDGE_SCHEDULES: tuple[str, ...] = ("linear", "trig")


def lsi_output(have: Mapping[str, Tensor] | tuple[str, ...]) -> str | None:
    """The LSI parameterisation among the network's predictions, None when there is none."""
    return next((name for name in parameterisations.PARAMETERISATIONS if name in have), None)


@attrs.frozen(kw_only=True)
class LSIBridge(AffineInterpolant):
    """LSI bridge interpolant: ``kappa, nu`` chosen, ``eta, sigma_t`` derived (math.md 4.2)."""

    #: ``linear`` (kappa = t, nu = 1 - t) or ``trig`` (kappa = sin(pi t/2), nu = cos(pi t/2)).
    schedule: str = attrs.field(default="linear", validator=one_of(*BRIDGE_SCHEDULES))
    #: ``sqrt(C)``: the diffusion scale; for ``linear`` it is the constant ``sigma_t``.
    sigma: float = attrs.field(default=1.0, validator=positive_float)

    deterministic: ClassVar[bool] = False

    # -- the chosen pair (kappa, nu) and its derivatives ------------------------------------
    def kappa(self, t: Tensor) -> Tensor:
        return t if self.schedule == "linear" else torch.sin(0.5 * math.pi * t)

    def nu(self, t: Tensor) -> Tensor:
        return 1.0 - t if self.schedule == "linear" else torch.cos(0.5 * math.pi * t)

    def kappa_dot(self, t: Tensor) -> Tensor:
        if self.schedule == "linear":
            return torch.ones_like(t)
        return 0.5 * math.pi * torch.cos(0.5 * math.pi * t)

    def nu_dot(self, t: Tensor) -> Tensor:
        if self.schedule == "linear":
            return -torch.ones_like(t)
        return -0.5 * math.pi * torch.sin(0.5 * math.pi * t)

    @property
    def scale(self) -> float:
        """``C = sigma^2`` (math.md 4.2)."""
        return self.sigma * self.sigma

    # -- derived quantities (math.md 4.2) ------------------------------------------------
    def eta_squared(self, t: Tensor) -> Tensor:
        """``eta_t^2 = C kappa_t nu_t`` (clamped at 0 against rounding at the ends)."""
        return (self.scale * self.kappa(t) * self.nu(t)).clamp_min(0.0)

    def diffusion_squared(self, t: Tensor) -> Tensor:
        """``sigma_t^2 = C (kappa' nu - kappa nu')``: ``sigma^2`` for linear, ``C pi/2`` for trig."""
        return self.scale * (self.kappa_dot(t) * self.nu(t) - self.kappa(t) * self.nu_dot(t))

    def bridge_drift(self, z: Tensor, z1: Tensor, t: Tensor) -> Tensor:
        """Doob drift ``h_phi = (nu'/nu) z + (kappa' - kappa nu'/nu) z1`` (math.md 4.2); singular
        at ``t = 1`` where ``nu = 0`` (the bridge is pinned at ``z1`` there)."""
        ratio = expand_like(self.nu_dot(t) / self.nu(t), z)
        return ratio * z + (expand_like(self.kappa_dot(t), z) - expand_like(self.kappa(t), z) * ratio) * z1

    def x1_from_drift(self, h: Tensor, z: Tensor, t: Tensor) -> Tensor:
        """``E[z1 | z_t = z] = (h - (nu'/nu) z) / (kappa' - kappa nu'/nu)``: the bridge drift is
        affine in ``z1``, so its conditional mean ``h = E[h_phi | z_t]`` gives ``E[z1 | z_t]``
        [DERIVED]. Linear: ``z + (1 - t) h`` (math.md 4.5, the final step)."""
        if self.schedule == "linear":
            return z + expand_like(1.0 - t, z) * h
        ratio = self.nu_dot(t) / self.nu(t)
        slope = self.kappa_dot(t) - self.kappa(t) * ratio
        return (h - expand_like(ratio, z) * z) / expand_like(slope, z)

    def score_from_drift(self, h: Tensor, z: Tensor, t: Tensor) -> Tensor:
        """``grad log p_t(z)`` for a standard Gaussian prior ``z0 ~ N(0, I)`` [DERIVED; NUM]:
        ``z_t | z1 ~ N(kappa z1, (nu^2 + eta^2) I)``, so ``s = -(z - kappa E[z1|z_t]) / (nu^2 + eta^2)``.
        Linear: ``s = (t h - z) / (1 - t + sigma^2 t)`` (math.md 4.5). Other priors: the drift
        alone does not determine the score (math.md 4.5)."""
        if self.schedule == "linear":
            tt = expand_like(t, z)
            return (tt * h - z) / (1.0 - tt + self.scale * tt)
        x1 = self.x1_from_drift(h, z, t)
        var = self.nu(t) ** 2 + self.eta_squared(t)
        return -(z - expand_like(self.kappa(t), z) * x1) / expand_like(var, z)

    # -- the heads of the lsi objective (math.md 4.3, 4.5) ------------------------------------
    def available(self, have: tuple[str, ...], *, gaussian_base: bool) -> tuple[str, ...]:
        """From one of the LSI outputs (linear schedule; :mod:`.parameterisations`): ``drift`` and ``x1``;
        ``score`` and ``velocity`` too with the noise head ``noise`` (any prior, eq. 21) or a standard
        Gaussian prior (eq. 89); anything else as the SI conversions give it."""
        name = lsi_output(have)
        if name is None:
            return super().available(have, gaussian_base=gaussian_base)
        noise = ("noise",) if "noise" in have else ()
        extra = ("velocity", "score") if (noise or gaussian_base) else ()
        return (name, *noise, "drift", "x1", *extra)

    def convert(self, have: Mapping[str, Tensor], x: Tensor, t: Tensor, want: str, *, gaussian_base: bool) -> Tensor:
        """The drift ``h`` from the network's output (:func:`.parameterisations.drift`, math.md 4.3), then
        ``x1 = E[z1 | z_t]``; the score from the noise head, ``-E[eps | z_t] / (sigma sqrt(t(1-t)))``
        (eq. 21, any prior), or else from the drift for a standard Gaussian prior (eq. 89); the
        probability-flow velocity ``b = h - (sigma_t^2 / 2) s`` (math.md 4.5)."""
        name = lsi_output(have)
        if name is None:
            return super().convert(have, x, t, want, gaussian_base=gaussian_base)
        if want in have:
            return have[want]
        h = parameterisations.drift(name, have[name], x, t, self.sigma)
        if want == "drift":
            return h
        if want == "x1":
            return self.x1_from_drift(h, x, t)
        if want not in ("score", "velocity"):
            raise ConversionError(f"an LSI model gives {', '.join(self.available(tuple(have), gaussian_base=True))}, "
                                  f"not {want!r}")
        if "noise" in have:
            score = -have["noise"] / expand_like(self.gamma(t), x)
        elif gaussian_base:
            score = self.score_from_drift(h, x, t)
        else:
            raise ConversionError(f"an LSI model with a non-Gaussian prior and no noise head cannot give {want!r}: "
                                  "the drift alone does not determine the score (math.md 4.5); train the noise "
                                  "head (objective.noise_head = true) or sample with lsi_sde and stochasticity = 1")
        return score if want == "score" else h - 0.5 * expand_like(self.diffusion_squared(t), x) * score

    # -- the SI view: alpha = nu, beta = kappa, gamma = eta (math.md 0 name table) -------------
    def alpha(self, t: Tensor) -> Tensor:
        return self.nu(t)

    def beta(self, t: Tensor) -> Tensor:
        return self.kappa(t)

    def alpha_dot(self, t: Tensor) -> Tensor:
        return self.nu_dot(t)

    def beta_dot(self, t: Tensor) -> Tensor:
        return self.kappa_dot(t)

    def gamma(self, t: Tensor) -> Tensor:
        """``eta_t = sqrt(C kappa_t nu_t)``."""
        return self.eta_squared(t).sqrt()

    def gamma_gamma_dot(self, t: Tensor) -> Tensor:
        """``eta eta' = C (kappa' nu + kappa nu') / 2``, finite at the ends (math.md 1.1)."""
        return 0.5 * self.scale * (self.kappa_dot(t) * self.nu(t) + self.kappa(t) * self.nu_dot(t))

    def gamma_dot(self, t: Tensor) -> Tensor:
        """``eta' = eta eta' / eta``: infinite at ``t = 0, 1`` (returned as such)."""
        return self.gamma_gamma_dot(t) / self.gamma(t)
