"""The spatially linear interpolant ``x_t = alpha(t) x0 + beta(t) x1 + gamma(t) z`` (math.md 1.1).

:class:`AffineInterpolant` holds what does not depend on the schedule: sampling ``x_t``, the regression targets
(math.md 1.4), the prediction conversions (:mod:`interpgen.conversions`) and the endpoint distances. A
third-party interpolant only writes its schedule: subclass :class:`DeterministicInterpolant` (gamma = 0) or
:class:`AffineInterpolant` (supplying ``gamma``, ``gamma_dot``, ``gamma_gamma_dot`` and ``deterministic``, as
the SI plugin's ``NoisyInterpolant`` does).

``gaussian_base`` means ``x0 ~ N(0, I)`` independent of ``x1`` (the independent coupling): only then are the
one-sided formulas of math.md 1.5 and the reduction of a two-sided interpolant to a one-sided one valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import attrs
import torch
from torch import Tensor

from interpgen.protocols import ConversionError
from interpgen.tensors import expand_like

from interpgen import conversions


@attrs.frozen(kw_only=True)
class AffineInterpolant:
    """Base of the built-in interpolants, not registered itself. Class attributes: ``base_is_data`` (x0 is drawn
    from the data: the mirror of math.md 1.6), ``ignores_base`` (alpha is identically 0, so x_t does not involve
    x0) and ``singular_t_eps`` (see :meth:`default_t_eps`)."""

    base_is_data: ClassVar[bool] = False
    ignores_base: ClassVar[bool] = False
    singular_t_eps: ClassVar[float] = 1e-3

    def alpha(self, t: Tensor) -> Tensor:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def beta(self, t: Tensor) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def alpha_dot(self, t: Tensor) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def beta_dot(self, t: Tensor) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    @property
    def deterministic(self) -> bool:  # pragma: no cover
        raise NotImplementedError

    def interpolate(self, x0: Tensor, x1: Tensor, z: Tensor | None, t: Tensor) -> Tensor:
        """``x_t`` (math.md 1.1); ``z`` may be None when the interpolant is deterministic."""
        out = expand_like(self.alpha(t), x1) * x0 + expand_like(self.beta(t), x1) * x1
        if self.deterministic:
            return out
        if z is None:
            raise ValueError(f"{type(self).__name__} has gamma > 0, so interpolate needs z")
        return out + expand_like(self.gamma(t), x1) * z

    def coefficients(self, t: Tensor, x: Tensor) -> conversions.Coefficients:
        """Schedule values at ``t`` broadcast against ``x``, each field from the method of its name (so gamma
        gamma' from its closed form)."""
        fields = conversions.Coefficients._fields
        return conversions.Coefficients(*(expand_like(getattr(self, name)(t), x) for name in fields))

    def target(self, prediction: str, x0: Tensor, x1: Tensor, z: Tensor | None, t: Tensor,
               *, gaussian_base: bool) -> Tensor:
        """The MSE regression target whose conditional mean given ``x_t`` is ``prediction`` (math.md 1.4):

        * velocity: ``alpha' x0 + beta' x1 + gamma' z``; the ``gamma' z`` term is dropped when gamma is zero,
          and also where ``gamma'`` is infinite (``t = 0, 1`` for the square-root gammas), where no finite target
          exists: keep ``t`` inside ``[t_eps, 1 - t_eps]`` with ``default_t_eps("velocity")``, > 0 then;
        * x0 -> ``x0``; x1 -> ``x1``; noise -> ``z`` (two-sided) or ``x0`` (gamma == 0);
        * score: gamma == 0 with a Gaussian base ``-x0/alpha`` (singular at t = 1); gamma > 0 with a Gaussian
          base ``-(alpha x0 + gamma z)/(alpha^2 + gamma^2)`` (singular where both vanish, t = 1); gamma > 0
          otherwise ``-z/gamma`` (singular at t = 0, 1); gamma == 0 with a non-Gaussian base:
          :class:`ConversionError` (no score target exists).
        """
        conversions.check_prediction(prediction)
        if not self.deterministic and z is None:
            raise ValueError(f"{type(self).__name__} has gamma > 0, so its targets need z")
        if prediction == "x1":
            return x1
        if prediction == "x0" or (prediction == "noise" and self.deterministic):
            return x0
        if prediction == "noise":
            return z
        alpha = expand_like(self.alpha(t), x1)
        if prediction == "velocity":
            out = expand_like(self.alpha_dot(t), x1) * x0 + expand_like(self.beta_dot(t), x1) * x1
            if self.deterministic:
                return out
            gamma_dot = self.gamma_dot(t)
            gamma_dot = torch.where(torch.isfinite(gamma_dot), gamma_dot, torch.zeros_like(gamma_dot))
            return out + expand_like(gamma_dot, x1) * z
        if self.deterministic:  # score
            if not gaussian_base:
                raise ConversionError(
                    f"{type(self).__name__} has gamma == 0 and the base is not Gaussian: no score "
                    "target exists (s = -E[x0|x_t]/alpha needs x0 ~ N(0, I), math.md 1.2); train "
                    "velocity, x0 or x1 instead, or use a two-sided interpolant")
            return -x0 / alpha
        gamma = expand_like(self.gamma(t), x1)
        if gaussian_base:
            return -(alpha * x0 + gamma * z) / (alpha * alpha + gamma * gamma)
        return -z / gamma

    def available(self, have: tuple[str, ...], *, gaussian_base: bool) -> tuple[str, ...]:
        """The predictions :meth:`convert` can produce from ``have`` (``have`` included)."""
        return conversions.available(have, deterministic=self.deterministic,
                                     gaussian_base=gaussian_base, ignores_base=self.ignores_base)

    def convert(self, have: Mapping[str, Tensor], x: Tensor, t: Tensor, want: str,
                *, gaussian_base: bool) -> Tensor:
        """Turn the predictions ``have`` at ``(x, t)`` into ``want``; :func:`interpgen.conversions.convert` has
        every formula and its singular points. Raises :class:`ConversionError` when ``have`` does not
        determine ``want``."""
        return conversions.convert(have, x, self.coefficients(t, x), want,
                                   deterministic=self.deterministic, gaussian_base=gaussian_base,
                                   ignores_base=self.ignores_base)

    def default_t_eps(self, prediction: str) -> float:
        """Distance kept from the ends when training or sampling with ``prediction``: ``0.0`` for a velocity
        when ``alpha', beta', gamma'`` are finite at both ends (then its target and the ODE drift are regular on
        all of [0, 1], e.g. linear, gvp, trig, one_sided, fm_ot with a zero or ``bsquared`` gamma); otherwise
        ``singular_t_eps`` (1e-3; 1e-5 for ``vp`` as in SiT, math.md 2.2), because score, noise, x0 and x1
        conversions divide by ``alpha``, ``beta`` or ``gamma`` at an end (math.md 1.5)."""
        conversions.check_prediction(prediction)
        if prediction == "velocity":
            ends = torch.tensor([0.0, 1.0], dtype=torch.float64)
            derivatives = torch.cat([self.alpha_dot(ends), self.beta_dot(ends), self.gamma_dot(ends)])
            if bool(torch.isfinite(derivatives).all()):
                return 0.0
        return float(self.singular_t_eps)


@attrs.frozen(kw_only=True)
class DeterministicInterpolant(AffineInterpolant):
    """An interpolant whose gamma is identically zero (no ``gamma`` field)."""

    def gamma(self, t: Tensor) -> Tensor:
        return torch.zeros_like(t)

    def gamma_dot(self, t: Tensor) -> Tensor:
        return torch.zeros_like(t)

    def gamma_gamma_dot(self, t: Tensor) -> Tensor:
        return torch.zeros_like(t)

    @property
    def deterministic(self) -> bool:
        return True


__all__ = ["AffineInterpolant", "DeterministicInterpolant"]
