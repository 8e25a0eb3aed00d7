"""Fixed-step explicit Runge-Kutta ODE samplers: Euler, Heun, midpoint, RK4.

Each takes ``steps`` steps on the time grid named by ``grid`` (see :mod:`time_grid`), with
``steps * stages`` evaluations: Euler 1, Heun 2, midpoint 2, RK4 4 per step. The ODE is
math.md 1.3's ``dX = b(t, X) dt``.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch
from torch import Tensor

from interpgen.protocols import Field, Interpolant, SampleResult
from interpgen_plugins.samplers.butcher import EULER, HEUN, MIDPOINT, RK4, ButcherTableau
from interpgen_plugins.samplers.explicit_rk import RightHandSide, integrate_on_grid
from interpgen_plugins.samplers.ode_sampler import OdeSampler, velocity_of
from interpgen_plugins.samplers.time_grid import grid_name, time_grid
from interpgen.validators import positive_float, positive_int


@attrs.frozen(kw_only=True)
class FixedStepSampler(OdeSampler):
    """An ODE sampler that steps a Butcher tableau over a fixed time grid.

    ``rho`` is the exponent of the ``edm`` grid (unused by the others). The ``tuned`` grid's
    pilot evaluations happen before sampling and are not counted in the sample's ``nfe``."""

    tableau: ClassVar[ButcherTableau]
    steps: int
    grid: str
    rho: float = attrs.field(default=7.0, validator=positive_float)

    def _times(self, fn: RightHandSide, y: Tensor, t_start: float, t_end: float,
               interpolant: Interpolant | None = None) -> list[float]:
        return time_grid(self.grid, t_start, t_end, self.steps, interpolant=interpolant, rho=self.rho,
                         velocity=fn, x=y, tableau=self.tableau)

    def _solve(self, fn: RightHandSide, y: Tensor, t_start: float, t_end: float, *, record: bool
               ) -> tuple[Tensor, int, list[Tensor] | None]:
        return integrate_on_grid(fn, y, self._times(fn, y, t_start, t_end), self.tableau, record=record)

    def sample(self, field: Field, x0: Tensor, generator: torch.Generator | None = None,
               return_trajectory: bool = False) -> SampleResult:
        """As :meth:`OdeSampler.sample`, with the grid built from the field (its interpolant for
        ``edm``, its velocity for ``tuned``; the tuning calls are not in ``nfe``)."""
        t_start, t_end = (float(t) for t in field.time_range(stochastic=False))
        fn = velocity_of(field)
        times = self._times(fn, x0, t_start, t_end, field.interpolant)
        before = field.nfe
        x, _, states = integrate_on_grid(fn, x0, times, self.tableau, record=return_trajectory)
        trajectory = torch.stack(states) if states is not None else None
        return SampleResult(x=x, nfe=field.nfe - before, trajectory=trajectory)


@attrs.frozen(kw_only=True)
class EulerSampler(FixedStepSampler):
    """Explicit Euler (order 1): ``x_{k+1} = x_k + h b(t_k, x_k)``; 1 evaluation per step."""

    tableau: ClassVar[ButcherTableau] = EULER
    steps: int = attrs.field(default=100, validator=positive_int)
    grid: str = attrs.field(default="uniform", validator=grid_name)


@attrs.frozen(kw_only=True)
class HeunSampler(FixedStepSampler):
    """Heun / explicit trapezoid (order 2): ``k1 = b(t, x)``, ``k2 = b(t + h, x + h k1)``,
    ``x + h (k1 + k2) / 2``; 2 evaluations per step."""

    tableau: ClassVar[ButcherTableau] = HEUN
    steps: int = attrs.field(default=50, validator=positive_int)
    grid: str = attrs.field(default="uniform", validator=grid_name)


@attrs.frozen(kw_only=True)
class MidpointSampler(FixedStepSampler):
    """Explicit midpoint (order 2): ``x + h b(t + h/2, x + (h/2) b(t, x))``; 2 evaluations per step."""

    tableau: ClassVar[ButcherTableau] = MIDPOINT
    steps: int = attrs.field(default=50, validator=positive_int)
    grid: str = attrs.field(default="uniform", validator=grid_name)


@attrs.frozen(kw_only=True)
class Rk4Sampler(FixedStepSampler):
    """Classical fourth-order Runge-Kutta; 4 evaluations per step."""

    tableau: ClassVar[ButcherTableau] = RK4
    steps: int = attrs.field(default=25, validator=positive_int)
    grid: str = attrs.field(default="uniform", validator=grid_name)
