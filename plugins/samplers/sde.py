"""SDE samplers: Euler-Maruyama and stochastic Heun (math.md 1.3, 2.2).

Forward SDE (math.md 1.3): ``dX = f(t, X) dt + sqrt(2 eps(t)) dW`` with ``f = b + eps s``,
``X ~ rho0`` at the start, for a diffusion ``eps(t) >= 0`` (kind ``"diffusion"``).

The grid (``steps`` steps) runs from ``max(t_eps, t_start)`` to ``t_end - last_step_size``
(to ``t_end`` for ``last_step = "none"``), ``(t_start, t_end) = field.time_range(stochastic=True)``;
``t_eps > 0`` keeps eps_rev (the default diffusion ``reverse``, infinite at ``t = 0``) away from 0. A final
noiseless step of size ``Delta = last_step_size`` from ``t1 = t_end - Delta`` follows (SiT,
math.md 2.2):

* ``mean``:    ``x + f(t1, x) Delta`` (Euler-Maruyama without the noise);
* ``tweedie``: ``eta_1(t1, x) = E[x1 | x_t1 = x]``, the field's ``x1`` prediction;
* ``euler``:   ``x + b(t1, x) Delta``;
* ``none``:    no last step.

With ``eps = 0`` each step is exactly the matching ODE step (Euler, Heun). The stepping loop and
the Euler-Maruyama step are the kernel's (:mod:`interpgen.sde`).
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch
from torch import Tensor

from interpgen.config import Part
from interpgen.protocols import Diffusion, Field, SampleResult
from interpgen.sde import Step, euler_maruyama_step, integrate_sde
from interpgen.tensors import batch_time, expand_like
from interpgen_plugins.samplers.butcher import HEUN
from interpgen_plugins.samplers.diffusions import ReverseDiffusion
from interpgen_plugins.samplers.explicit_rk import RightHandSide, rk_step
from interpgen_plugins.samplers.ode_sampler import velocity_of
from interpgen_plugins.samplers.time_grid import sde_grid_name, time_grid
from interpgen.validators import checked, one_of, positive_float, positive_int, unit_interval_open_right

LAST_STEPS: tuple[str, ...] = ("none", "mean", "tweedie", "euler")


def sde_drift(field: Field, diffusion: Diffusion) -> RightHandSide:
    """``f(t, x) = b(t, x) + eps(t) s(t, x)``, one field evaluation (math.md 1.3)."""

    def drift(t: Tensor, x: Tensor) -> Tensor:
        b, s = field.evaluate(x, t, ("velocity", "score"))
        return b + expand_like(diffusion(t, field.interpolant), x) * s

    return drift


@attrs.frozen(kw_only=True)
class SdeSampler:
    """Shared parameters, checks and last step of the SDE samplers; a subclass gives the one-step
    rule (``_rule``) that the kernel's loop :func:`interpgen.sde.integrate_sde` runs over the grid."""

    stochastic: ClassVar[bool] = True
    sampler_name: ClassVar[str]
    steps: int = attrs.field(default=250, validator=positive_int)
    diffusion: Part("diffusion") = attrs.field(factory=ReverseDiffusion, validator=checked(
        "a diffusion coefficient eps(t, interpolant)", attrs.validators.instance_of(Diffusion), error=TypeError))
    last_step: str = attrs.field(default="mean", validator=one_of(*LAST_STEPS))
    last_step_size: float = attrs.field(default=0.04, validator=positive_float)
    t_eps: float = attrs.field(default=1e-3, validator=unit_interval_open_right)
    grid: str = attrs.field(default="uniform", validator=sde_grid_name)
    rho: float = attrs.field(default=7.0, validator=positive_float)

    def _check_field(self, field: Field) -> None:
        available = tuple(field.available())
        offers = ", ".join(available) or "nothing"
        if "score" not in available:
            raise ValueError(
                f"{self.sampler_name} is an SDE sampler and its drift b + eps s needs the score, which this "
                f"field cannot produce (it offers: {offers}); train a score, or a velocity model on a "
                "Gaussian base, or use an ODE sampler")
        if self.last_step == "tweedie" and "x1" not in available:
            raise ValueError(
                f"{self.sampler_name} with last_step='tweedie' needs the field's 'x1' prediction "
                f"(it offers: {offers}); choose last_step='mean' or 'euler'")

    def grid_times(self, t_start: float, t_end: float, field: Field | None = None,
                   x: Tensor | None = None) -> tuple[list[float], float]:
        """The grid times for a field's stochastic time range ``[t_start, t_end]`` and the last
        step's size (0 for ``none``). ``edm`` and ``tuned`` grids need the ``field`` (its
        interpolant's noise level, or a pilot run of its velocity from ``x``, see
        :mod:`time_grid`)."""
        first = max(self.t_eps, t_start)
        last_size = 0.0 if self.last_step == "none" else self.last_step_size
        grid_end = t_end - last_size
        if not grid_end > first:
            raise ValueError(
                f"{self.sampler_name}: the grid would run from t={first:.6g} to t={grid_end:.6g} "
                f"(t_eps={self.t_eps}, last_step_size={self.last_step_size}, field range [{t_start}, {t_end}]); "
                "make t_eps or last_step_size smaller")
        context = {} if field is None else {"interpolant": field.interpolant, "velocity": velocity_of(field), "x": x}
        return time_grid(self.grid, first, grid_end, self.steps, rho=self.rho, **context), last_size

    def _rule(self, field: Field, drift: RightHandSide) -> Step:  # pragma: no cover - each subclass
        raise NotImplementedError

    def _final_step(self, field: Field, drift: RightHandSide, x: Tensor, t1: float, size: float) -> Tensor:
        t = batch_time(t1, x.shape[0], like=x)
        if self.last_step == "mean":
            return x + size * drift(t, x)
        if self.last_step == "euler":
            return x + size * field.evaluate(x, t, ("velocity",))[0]
        if self.last_step == "tweedie":
            return field.evaluate(x, t, ("x1",))[0]
        return x

    def sample(self, field: Field, x0: Tensor, generator: torch.Generator | None = None,
               return_trajectory: bool = False) -> SampleResult:
        """Integrate the SDE from ``x0`` over ``field.time_range(stochastic=True)``; the noise
        comes from ``generator`` (reproducible). ``nfe`` counts ``field.evaluate`` calls.

        ``trajectory`` holds the states at the grid times and, after a last step, the result:
        ``steps + 1`` (``none``) or ``steps + 2`` states.
        """
        self._check_field(field)
        t_start, t_end = field.time_range(stochastic=True)
        times, last_size = self.grid_times(float(t_start), float(t_end), field, x0)
        drift = sde_drift(field, self.diffusion)
        before = field.nfe
        states = [x0] if return_trajectory else None
        x = integrate_sde(self._rule(field, drift), x0, times, generator=generator, states=states)
        if self.last_step != "none":
            x = self._final_step(field, drift, x, times[-1], last_size)
            if states is not None:
                states.append(x)
        trajectory = torch.stack(states) if states is not None else None
        return SampleResult(x=x, nfe=field.nfe - before, trajectory=trajectory)


@attrs.frozen(kw_only=True)
class EulerMaruyamaSampler(SdeSampler):
    """Euler-Maruyama: ``x + f(t, x) dt + sqrt(2 eps(t) dt) xi`` with ``f = b + eps s``
    (math.md 1.3, 2.2); 1 evaluation per step, plus 1 for a last step."""

    sampler_name: ClassVar[str] = "euler_maruyama"

    def _rule(self, field: Field, drift: RightHandSide) -> Step:
        return euler_maruyama_step(drift, lambda t: 2.0 * self.diffusion(t, field.interpolant))


@attrs.frozen(kw_only=True)
class StochasticHeunSampler(SdeSampler):
    """Stochastic Heun: noise first, then the trapezoid on ``f = b + eps s`` with ``K1`` at
    ``t`` and ``K2`` at ``t + dt`` (math.md 2.2; the official code's ``K1`` at ``t + dt`` is not
    copied); 2 evaluations per step, plus 1 for a last step."""

    sampler_name: ClassVar[str] = "stochastic_heun"

    def _rule(self, field: Field, drift: RightHandSide) -> Step:
        """``x^ = x + sqrt(2 eps dt) xi``, ``K1 = f(t, x^)``, ``K2 = f(t + dt, x^ + dt K1)``,
        ``x^ + dt (K1 + K2) / 2`` (math.md 2.2)."""

        def step(x: Tensor, t: float, dt: float, xi: Tensor | None) -> Tensor:
            eps = self.diffusion(batch_time(t, x.shape[0], like=x), field.interpolant)
            return rk_step(drift, t, x + expand_like((2 * dt * eps).sqrt(), x) * xi, dt, HEUN)[0]

        return step
