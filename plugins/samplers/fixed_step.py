"""Fixed-step explicit Runge-Kutta ODE samplers: Euler, Heun, midpoint, RK4.

Each takes ``steps`` steps on the time grid named by ``grid`` (see :mod:`time_grid`), with
``steps * stages`` evaluations: Euler 1, Heun 2, midpoint 2, RK4 4 per step. The ODE is
math.md 1.3's ``dX = b(t, X) dt``. A sample's result reports the grid it used (``times``). The
``fitted`` grid is fitted once per model and kept (:mod:`.grid_cache`): in ``grid_cache``, which
the build fills with ``RUN/grids`` when the pipeline was loaded from a run directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import attrs
import torch
from torch import Tensor

from interpgen.protocols import Field, Interpolant, SampleResult
from interpgen_plugins.samplers.butcher import EULER, HEUN, MIDPOINT, RK4, ButcherTableau
from interpgen_plugins.samplers.explicit_rk import RightHandSide, integrate_on_grid
from interpgen_plugins.samplers.grid_cache import GRIDS_DIR, fitted_times
from interpgen_plugins.samplers.ode_sampler import OdeSampler, velocity_of
from interpgen_plugins.samplers.time_grid import grid_name, time_grid
from interpgen.validators import positive_float, positive_int


@attrs.frozen(kw_only=True)
class FixedStepSampler(OdeSampler):
    """An ODE sampler that steps a Butcher tableau over a fixed time grid.

    ``rho`` is the exponent of the ``edm`` grid (unused by the others). The ``tuned`` and
    ``fitted`` grids' pilot evaluations happen before sampling and are not counted in the sample's
    ``nfe``. ``grid_cache``: the folder that keeps ``fitted`` grids between runs (default: the run
    directory's ``grids/`` when sampling a loaded run; otherwise they are kept in this process only).
    """

    tableau: ClassVar[ButcherTableau]
    steps: int
    grid: str
    rho: float = attrs.field(default=7.0, validator=positive_float)
    grid_cache: str | None = attrs.field(default=None, validator=attrs.validators.optional(
        attrs.validators.instance_of(str)))

    def _times(self, fn: RightHandSide, y: Tensor, t_start: float, t_end: float,
               interpolant: Interpolant | None = None, field: Field | None = None) -> list[float]:
        if self.grid == "fitted" and self.steps > 1 and t_start != t_end:
            return fitted_times(fn, y, t_start, t_end, self.steps, self.tableau, sampler=self.tableau.name,
                                field=field, folder=self.grid_cache)
        return time_grid(self.grid, t_start, t_end, self.steps, interpolant=interpolant, rho=self.rho,
                         velocity=fn, x=y, tableau=self.tableau)

    def _solve(self, fn: RightHandSide, y: Tensor, t_start: float, t_end: float, *, record: bool
               ) -> tuple[Tensor, int, list[Tensor] | None]:
        return integrate_on_grid(fn, y, self._times(fn, y, t_start, t_end), self.tableau, record=record)

    def sample(self, field: Field, x0: Tensor, generator: torch.Generator | None = None,
               return_trajectory: bool = False) -> SampleResult:
        """As :meth:`OdeSampler.sample`, with the grid built from the field (its interpolant for
        ``edm``, its velocity for ``tuned`` and ``fitted``; the tuning calls are not in ``nfe``) and
        reported as ``times``."""
        t_start, t_end = (float(t) for t in field.time_range(stochastic=False))
        fn = velocity_of(field)
        times = self._times(fn, x0, t_start, t_end, field.interpolant, field)
        before = field.nfe
        x, _, states = integrate_on_grid(fn, x0, times, self.tableau, record=return_trajectory)
        trajectory = torch.stack(states) if states is not None else None
        return SampleResult(x=x, nfe=field.nfe - before, trajectory=trajectory,
                            times=torch.tensor(times, dtype=torch.float64))


def build_in_run(params: FixedStepSampler, *, run_dir: Any = None, **context: Any) -> FixedStepSampler:
    """The sampler of a pipeline's run: a ``fitted`` grid without a ``grid_cache`` is kept in
    ``run_dir/grids`` when the pipeline has a run directory (``Pipeline.sampler_for``'s context)."""
    if params.grid != "fitted" or params.grid_cache is not None or run_dir is None:
        return params
    return attrs.evolve(params, grid_cache=str(Path(run_dir) / GRIDS_DIR))


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
