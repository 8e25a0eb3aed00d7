"""The ``fitted`` time grid: knots chosen so that the few-step solver lands where a fine solve
of the same model lands.

On a pilot batch (at most :data:`FITTED_PILOT_BATCH` of the starting points) the model's ODE
(math.md 1.3, ``dX = b(t, X) dt``) is solved finely, :data:`FITTED_REFERENCE_STEPS` midpoint
steps on the uniform grid, giving reference end points ``X_ref``. The ``K - 1`` inner knots of
the sampler's own grid are then chosen to minimise

    E(t_1, ..., t_{K-1}) = mean_i || Phi_grid(x_i) - X_ref,i ||^2,

where ``Phi_grid`` is the sampler's own Runge-Kutta scheme on that grid: a coordinate search
(golden-section on each knot between its neighbours, :data:`FITTED_SWEEPS` sweeps) started from
the uniform grid. The ends stay exactly ``t_start`` and ``t_end``. The search costs
``2 * FITTED_REFERENCE_STEPS`` evaluations for the reference plus ``K * stages`` per candidate
grid, all on the pilot batch and all before sampling: they are **not** counted in a sample's
``nfe`` (the sampling budget stays ``steps * stages``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from interpgen_plugins.samplers.butcher import MIDPOINT, ButcherTableau
from interpgen_plugins.samplers.explicit_rk import integrate_on_grid

#: Pilot rows, fine reference steps, sweeps over the knots and golden-section iterations per knot.
FITTED_PILOT_BATCH: int = 256
FITTED_REFERENCE_STEPS: int = 64
FITTED_SWEEPS: int = 2
FITTED_SECTIONS: int = 12

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0

Velocity = Callable[[Tensor, Tensor], Tensor]


def fitted_grid(velocity: Velocity, x: Tensor, t_start: float, t_end: float, steps: int,
                tableau: ButcherTableau) -> list[float]:
    """The ``fitted`` grid of the module docstring (``t_end`` may be below ``t_start``)."""
    pilot = x[:FITTED_PILOT_BATCH].detach()
    span = t_end - t_start
    fine = [t_start + span * k / FITTED_REFERENCE_STEPS for k in range(FITTED_REFERENCE_STEPS)] + [t_end]
    with torch.no_grad():
        reference, _, _ = integrate_on_grid(velocity, pilot, fine, MIDPOINT)

        def error(times: list[float]) -> float:
            end, _, _ = integrate_on_grid(velocity, pilot, times, tableau)
            return float((end - reference).pow(2).reshape(end.shape[0], -1).sum(1).mean())

        # knots as fractions u of the way from t_start to t_end, kept increasing
        u = [k / steps for k in range(steps + 1)]
        best = error([t_start + span * v for v in u])
        for _ in range(FITTED_SWEEPS):
            for k in range(1, steps):
                lo, hi = u[k - 1], u[k + 1]
                value, at = _golden_section(lambda v: error([t_start + span * w for w in (*u[:k], v, *u[k + 1:])]),
                                            lo + 1e-3 * (hi - lo), hi - 1e-3 * (hi - lo))
                if value < best:
                    best, u[k] = value, at
    times = [t_start + span * v for v in u]
    times[0], times[-1] = t_start, t_end
    return times


def _golden_section(f: Callable[[float], float], a: float, b: float) -> tuple[float, float]:
    """``(min f, argmin)`` over ``[a, b]`` by golden-section search (f assumed unimodal)."""
    c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(FITTED_SECTIONS):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - _GOLDEN * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + _GOLDEN * (b - a)
            fd = f(d)
    return (fc, c) if fc <= fd else (fd, d)


def fitted_evaluations(steps: int, stages: int) -> int:
    """Evaluations the ``fitted`` grid spends before sampling (on the pilot batch)."""
    searches = FITTED_SWEEPS * max(steps - 1, 0) * (FITTED_SECTIONS + 2)
    return 2 * FITTED_REFERENCE_STEPS + (1 + searches) * steps * stages
