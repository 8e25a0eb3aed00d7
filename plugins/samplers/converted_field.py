"""A trained model presented under another schedule: the converted field of math.md 3.1.

For a source field (a model trained under ``(alpha, beta[, gamma])``) and a target schedule
``(alpha_bar, beta_bar[, gamma_bar])`` with :class:`ScheduleMap`'s ``tau(s)``, ``c(s)``:

* the predictors are invariant: ``eta_bar_0(s, y) = eta_0(tau, y/c)``,
  ``eta_bar_1(s, y) = eta_1(tau, y/c)``;
* ``s_bar(s, y) = s(tau, y/c) / c``;
* ``b_bar(s, y) = alpha_bar' eta_bar_0 + beta_bar' eta_bar_1`` (math.md 3.1; equal to
  ``(c'/c) y + c tau' b(tau, y/c)``, but without ``c'`` or ``tau'``).

One source evaluation gives every target prediction. Cases (say plainly what is covered):

* **source and target with gamma = 0, any base and coupling**: the map is pathwise
  (``I_bar_s = c I_tau`` for every pair), so the ODE converts exactly; a score (for SDEs) needs
  a Gaussian base.
* **a two-sided side (gamma > 0) with a Gaussian base** ``x0 ~ N(0, I)`` independent of x1: it
  is one-sided with ``alpha_eff = sqrt(alpha^2 + gamma^2)`` (math.md 1.5), and the effective noise
  predictor is ``eta_n = -alpha_eff s``. For a two-sided target, ``m = eta_n / alpha_eff = -s_bar``
  gives ``x0 = alpha_bar m``, ``noise = gamma_bar m`` and
  ``b_bar = (alpha_bar alpha_bar' + gamma_bar gamma_bar') m + beta_bar' eta_bar_1``.
* **two-sided with a non-Gaussian base** (e.g. data-to-data): not covered by math.md (the map
  would need ``alpha_bar/alpha = beta_bar/beta = gamma_bar/gamma`` at once); refused with
  :class:`ConversionError`.
* schedules whose ``beta/alpha_eff`` is not non-decreasing (``mirror``): refused.
  ``encoding_decoding`` with a Gaussian base passes: its ratio is 0 on ``s <= 1/2`` (pure
  noise, ``tau = 0`` there) and increases after.

Where ``c(s) = 0`` (a point-mass target at s = 0, math.md 3.2) the state is the point 0 and
``x = y/c`` is replaced by ``x = 0`` at ``tau = 0``: the source's ``E[x1 | x_0]`` is ``E[x1]`` for
an independent coupling, whatever ``x_0``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from interpgen.protocols import PREDICTIONS, ConversionError, Field, Interpolant
from interpgen.tensors import expand_like

from interpgen_plugins.samplers.schedule_map import effective_alpha, shared_map


def _times_zero(coef: Tensor, value: Tensor) -> Tensor:
    """``coef * value`` with an exact 0 where ``coef == 0``."""
    return torch.where(coef == 0, torch.zeros_like(value), coef * value)


def _source_has_gaussian_base(source: Field) -> bool:
    """The source's ``gaussian_base`` attribute when it has one (a ModelField does); otherwise
    True only for a gamma = 0 source that offers a score (which needs a N(0, I) base,
    math.md 1.2)."""
    flag = getattr(source, "gaussian_base", None)
    if flag is not None:
        return bool(flag)
    return bool(source.interpolant.deterministic and "score" in source.available())


class ConvertedField:
    """The :class:`~interpgen.protocols.Field` of ``source`` under the schedule ``target``
    (math.md 3.1). ``interpolant`` is ``target``; time is the target's ``s``; ``nfe`` is the
    source's count.

    ``gaussian_base``: whether the source's base is ``N(0, I)`` independent of the data (None:
    the source's own ``gaussian_base`` attribute, as a :class:`interpgen.fields.ModelField` has,
    else whether a gamma = 0 source offers a score).
    """

    def __init__(self, source: Field, target: Interpolant, *, gaussian_base: bool | None = None):
        if gaussian_base is None:
            gaussian_base = _source_has_gaussian_base(source)
        self.source = source
        self.interpolant = target
        self.gaussian_base = gaussian_base
        self.map = shared_map(source.interpolant, target)
        for role, schedule in (("source", source.interpolant), ("target", target)):
            if not schedule.deterministic and not gaussian_base:
                raise ConversionError(
                    f"schedule conversion with a two-sided {role} ({type(schedule).__name__}, gamma > 0) "
                    "needs a N(0, I) base independent of the data (then it is one-sided with "
                    "alpha_eff = sqrt(alpha^2 + gamma^2), math.md 1.5); with another base math.md 3.1 "
                    "gives no map")
        self._source_wants = ("x0", "x1") if source.interpolant.deterministic else ("score", "x1")
        missing = [w for w in self._source_wants if w not in source.available()]
        if missing:
            raise ConversionError(
                f"schedule conversion needs the source field's {', '.join(self._source_wants)}; "
                f"it cannot give {', '.join(missing)} (it offers {', '.join(source.available()) or 'nothing'})")

    @property
    def nfe(self) -> int:
        return self.source.nfe

    def available(self) -> tuple[str, ...]:
        if self.gaussian_base:
            return PREDICTIONS
        return tuple(p for p in PREDICTIONS if p != "score")

    def scale(self, s: Tensor) -> Tensor:
        """``c(s)`` (shape of ``s``, float64)."""
        return self.map.tau_and_scale(s)[1]

    def initial_state(self, x0: Tensor, s_start: float) -> Tensor:
        """``c(s_start) x0``: a source sample at ``tau(s_start)`` seen in target coordinates (exact
        in law when ``tau(s_start)`` is the source's start and ``x0`` is drawn there)."""
        s = torch.full((x0.shape[0],), float(s_start), dtype=torch.float64)
        return expand_like(self.scale(s).to(x0.dtype), x0) * x0

    def predictors(self, y: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
        """``(eta_bar_n, eta_bar_1)`` at ``(y, s)``: the effective-noise and data predictors, from
        one source evaluation at ``(y/c, tau)`` (math.md 3.1)."""
        tau, c = self.map.tau_and_scale(s)
        c_x = expand_like(c.to(y.dtype), y)
        x = torch.where(c_x == 0, torch.zeros_like(y), y / torch.where(c_x == 0, torch.ones_like(c_x), c_x))
        first, eta1 = self.source.evaluate(x, tau.to(y.dtype), self._source_wants)
        if self.source.interpolant.deterministic:
            return first, eta1
        a_eff = expand_like(effective_alpha(self.source.interpolant, tau).to(y.dtype), y)
        return -a_eff * first, eta1

    def evaluate(self, y: Tensor, s: Tensor, wants: tuple[str, ...]) -> tuple[Tensor, ...]:
        for want in wants:
            if want not in PREDICTIONS:
                raise ValueError(f"unknown prediction {want!r}; expected one of {', '.join(PREDICTIONS)}")
            if want not in self.available():
                raise ConversionError(
                    f"the converted field cannot give {want!r}: a score needs a N(0, I) base (math.md 1.5)")
        eta_n, eta1 = self.predictors(y, s)
        target = self.interpolant
        s64 = s.to(torch.float64)

        def coef(values: Tensor) -> Tensor:
            return expand_like(values.to(y.dtype), y)

        a_bar, b_dot = coef(target.alpha(s64)), coef(target.beta_dot(s64))
        out = []
        if target.deterministic:
            a_dot = coef(target.alpha_dot(s64))
            for want in wants:
                if want in ("x0", "noise"):
                    out.append(eta_n)
                elif want == "x1":
                    out.append(eta1)
                elif want == "score":
                    out.append(-eta_n / a_bar)
                else:
                    out.append(_times_zero(a_dot, eta_n) + _times_zero(b_dot, eta1))
            return tuple(out)
        a_eff = coef(effective_alpha(target, s64))
        m = eta_n / a_eff
        for want in wants:
            if want == "x0":
                out.append(_times_zero(a_bar, m))
            elif want == "noise":
                out.append(coef(target.gamma(s64)) * m)
            elif want == "x1":
                out.append(eta1)
            elif want == "score":
                out.append(-m)
            else:
                aad = coef(target.alpha(s64) * target.alpha_dot(s64) + target.gamma_gamma_dot(s64))
                out.append(aad * m + _times_zero(b_dot, eta1))
        return tuple(out)

    def time_range(self, stochastic: bool) -> tuple[float, float]:
        """The source's range mapped to target time, kept ``target.default_t_eps('velocity')``
        away from the target's singular ends (1e-3 for ``point_mass``, whose alpha' is infinite at
        both ends; 0 for ``lazy_vp``, ``gvp``, ``linear``)."""
        t_start, t_end = self.source.time_range(stochastic)
        s_start, s_end = self.map.target_time(t_start), self.map.target_time(t_end)
        eps = float(self.interpolant.default_t_eps("velocity"))
        return max(s_start, eps), min(s_end, 1.0 - eps)


__all__ = ["ConvertedField"]
