"""The ``fitted`` time grid: knots chosen so that the few-step solver lands where a fine solve
of the same model lands (docs/sampling.md, "Time grids"; math.md 2.1).

On a pilot batch (at most :data:`FITTED_PILOT_BATCH` of the starting points) the model's ODE
(math.md 1.3, ``dX = b(t, X) dt``) is solved finely, :data:`FITTED_REFERENCE_STEPS` midpoint
steps on the uniform grid, giving reference end points ``X_ref``. The ``K - 1`` inner knots of
the sampler's own grid are then chosen to minimise

    E(t_1, ..., t_{K-1}) = mean_i || Phi_grid(x_i) - X_ref,i ||^2,

where ``Phi_grid`` is the sampler's own Runge-Kutta scheme on that grid: a coordinate search
(golden-section on each knot between its neighbours, :data:`FITTED_SWEEPS` sweeps) started from
the uniform grid. The ends stay exactly ``t_start`` and ``t_end``. Moving knot ``k`` leaves the
steps before knot ``k - 1`` unchanged, so each candidate is integrated from the state kept at
knot ``k - 1`` (the same numbers as a solve from the start, fewer evaluations).

The fit costs :func:`fitted_evaluations` evaluations on the pilot batch, all before sampling and
**not** counted in a sample's ``nfe`` (the sampling budget stays ``steps * stages``). It is
reported while it runs (``progress``), and the samplers keep its result (:mod:`.grid_cache`) so a
model's grid is fitted once.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from interpgen_plugins.samplers.butcher import MIDPOINT, ButcherTableau
from interpgen_plugins.samplers.explicit_rk import integrate_on_grid, rk_step

#: Pilot rows, fine reference steps, sweeps over the knots and golden-section iterations per knot.
FITTED_PILOT_BATCH: int = 256
FITTED_REFERENCE_STEPS: int = 64
FITTED_SWEEPS: int = 2
FITTED_SECTIONS: int = 12

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0

Velocity = Callable[[Tensor, Tensor], Tensor]
#: ``progress(evaluations_done)``, called as the fit goes.
Progress = Callable[[int], None]


def fitted_evaluations(steps: int, stages: int) -> int:
    """Evaluations the ``fitted`` grid spends before sampling (on the pilot batch): the reference
    solve, the uniform grid's error, and per sweep, for each knot ``k``, ``FITTED_SECTIONS + 2``
    candidate solves of the ``steps - k + 1`` steps from knot ``k - 1`` on, plus one step to
    carry the kept state to the next knot."""
    if steps < 2:
        return 0
    per_sweep = (FITTED_SECTIONS + 2) * (steps * (steps + 1) // 2 - 1) + (steps - 2)
    return 2 * FITTED_REFERENCE_STEPS + stages * (steps + FITTED_SWEEPS * per_sweep)


def fitted_grid(velocity: Velocity, x: Tensor, t_start: float, t_end: float, steps: int,
                tableau: ButcherTableau, progress: Progress | None = None) -> list[float]:
    """The ``fitted`` grid of the module docstring (``t_end`` may be below ``t_start``);
    ``progress(done)`` is told the evaluations spent so far."""
    pilot = x[:FITTED_PILOT_BATCH].detach()
    span = t_end - t_start
    fine = [t_start + span * k / FITTED_REFERENCE_STEPS for k in range(FITTED_REFERENCE_STEPS)] + [t_end]
    done = 0

    def counted(t: Tensor, y: Tensor) -> Tensor:  # the model, telling ``progress`` each evaluation
        nonlocal done
        out = velocity(t, y)
        done += 1
        if progress is not None:
            progress(done)
        return out

    def time(v: float) -> float:
        return t_start + span * v

    with torch.no_grad():
        reference, _, _ = integrate_on_grid(counted, pilot, fine, MIDPOINT)

        def error(state: Tensor, fractions: list[float]) -> float:
            """Squared distance to the reference after solving from ``state`` over ``fractions``."""
            end, _, _ = integrate_on_grid(counted, state, [time(v) for v in fractions], tableau)
            return float((end - reference).pow(2).reshape(end.shape[0], -1).sum(1).mean())

        # knots as fractions u of the way from t_start to t_end, kept increasing
        u = [k / steps for k in range(steps + 1)]
        best = error(pilot, u)
        for _ in range(FITTED_SWEEPS):
            state = pilot  # the state at knot k - 1 under the current knots
            for k in range(1, steps):
                if k > 1:
                    state, _, _ = rk_step(counted, time(u[k - 2]), state, time(u[k - 1]) - time(u[k - 2]), tableau)
                lo, hi = u[k - 1], u[k + 1]
                value, at = _golden_section(lambda v, s=state, k=k: error(s, [u[k - 1], v, *u[k + 1:]]),
                                            lo + 1e-3 * (hi - lo), hi - 1e-3 * (hi - lo))
                if value < best:
                    best, u[k] = value, at
    times = [time(v) for v in u]
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
