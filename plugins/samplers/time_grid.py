"""Time grids for fixed-step samplers.

A grid is the list of ``steps + 1`` times ``t_0 = t_start, ..., t_K = t_end`` at which a
fixed-step solver evaluates; it may run backward (``t_end < t_start``). The ``grid`` parameter
of every fixed-step sampler (ODE and SDE) is validated against :data:`GRIDS`:

* ``uniform``: ``t_k = t_start + (k/K)(t_end - t_start)``.
* ``edm``: polynomial in the noise level, as in Karras et al.'s EDM (math.md 3.5). The noise
  level of an interpolant is ``sigma(t) = alpha_eff(t) / beta(t)`` with
  ``alpha_eff = sqrt(alpha^2 + gamma^2)``, the inverse square root of the signal-to-noise ratio
  (``exp(-lambda)`` with the half log-SNR ``lambda`` of math.md 0; ``(1 - t)/t`` on the linear
  path). The inner knots are ``sigma_k = (sigma_hi^(1/rho) + (k/K)(sigma_lo^(1/rho) -
  sigma_hi^(1/rho)))^rho`` for ``k = 1 .. K-1`` with ``sigma_hi = min(sigma(t_start), 80)`` (EDM's
  ``sigma_max``; sigma is infinite at t = 0) and ``sigma_lo = sigma(t_end)``, mapped back to time by
  bisection; the ends stay exactly ``t_start`` and ``t_end``. ``rho`` (7 in EDM) concentrates the
  steps near the data end. It needs the interpolant, whose noise level must decrease in t.
* ``tuned``: chosen from a few model evaluations (see :func:`tuned_grid`): a pilot Euler run of
  :data:`TUNED_PILOT_STEPS` steps on at most :data:`TUNED_PILOT_BATCH` of the starting points
  measures the path's acceleration ``kappa`` per pilot interval; the grid equalises Euler's local
  truncation error ``h^2 kappa / 2`` across steps, i.e. the knots split ``integral of
  sqrt(kappa) dt`` into equal parts. The ``TUNED_PILOT_STEPS + 1`` pilot evaluations are **not**
  counted in a sample's ``nfe`` (the sampling budget stays ``steps * stages``); they are listed
  separately by :func:`tuning_evaluations`.
* ``fitted``: knots fitted so that the sampler's own scheme lands where a fine solve of the model
  lands, on a pilot batch (:mod:`fitted_grid`); fixed-step ODE samplers only, tuning evaluations
  not counted in ``nfe``, the cost said before the fit and its progress shown while it runs; the
  samplers keep a model's fitted grid (:mod:`grid_cache`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from interpgen.protocols import Interpolant
from interpgen.validators import one_of

#: The grid names a sampler accepts.
GRIDS: tuple[str, ...] = ("uniform", "edm", "tuned", "fitted")

#: attrs validator for a ``grid`` field.
grid_name = one_of(*GRIDS)
#: The grids of an SDE sampler: ``fitted`` matches a deterministic scheme, so it is not one.
SDE_GRIDS: tuple[str, ...] = tuple(g for g in GRIDS if g != "fitted")
sde_grid_name = one_of(*SDE_GRIDS)

#: EDM's largest noise level: the ``edm`` grid starts its polynomial here when sigma(t_start) is
#: larger (infinite at t = 0 for every schedule with beta(0) = 0).
EDM_SIGMA_MAX: float = 80.0

#: Euler steps and batch rows of the pilot run behind the ``tuned`` grid.
TUNED_PILOT_STEPS: int = 32
TUNED_PILOT_BATCH: int = 256

#: Share of the mean density added everywhere by the ``tuned`` grid so that no interval is skipped.
TUNED_DENSITY_FLOOR: float = 0.1

Velocity = Callable[[Tensor, Tensor], Tensor]


def time_grid(name: str, t_start: float, t_end: float, steps: int, *,
              interpolant: Interpolant | None = None, rho: float = 7.0,
              velocity: Velocity | None = None, x: Tensor | None = None, tableau=None) -> list[float]:  # noqa: ANN001
    """The ``steps + 1`` grid times from ``t_start`` to ``t_end`` (both included, exact).

    ``edm`` needs ``interpolant`` (and uses ``rho``); ``tuned`` needs ``velocity(t, x)`` (the
    right-hand side being integrated, ``t`` of shape ``(B,)``) and starting points ``x``. A
    backward grid (``t_end < t_start``) is the forward grid from ``t_end`` to ``t_start`` reversed
    (for ``tuned`` the pilot then starts at ``t_start`` and runs backward).
    """
    if name not in GRIDS:
        raise ValueError(f"unknown time grid {name!r}; known: {', '.join(GRIDS)}")
    if steps < 1:
        raise ValueError(f"a time grid needs steps >= 1, got {steps}")
    if name == "uniform" or steps == 1 or t_start == t_end:
        return uniform_grid(t_start, t_end, steps)
    if name == "edm":
        if interpolant is None:
            raise ValueError("the 'edm' time grid needs the interpolant (its noise level alpha/beta); "
                             "it is only available when sampling a field, not for a bare integrate()")
        if t_end < t_start:
            return edm_grid(interpolant, t_end, t_start, steps, rho)[::-1]
        return edm_grid(interpolant, t_start, t_end, steps, rho)
    if velocity is None or x is None:
        raise ValueError(f"the {name!r} time grid needs the velocity and the starting points")
    if name == "fitted":
        if tableau is None:
            raise ValueError("the 'fitted' time grid fits a fixed-step ODE scheme (euler, heun, midpoint, rk4); "
                             "an SDE sampler cannot use it")
        from interpgen_plugins.samplers.grid_cache import fitted_times

        return fitted_times(velocity, x, t_start, t_end, steps, tableau, sampler=tableau.name)
    return tuned_grid(velocity, x, t_start, t_end, steps)


def uniform_grid(t_start: float, t_end: float, steps: int) -> list[float]:
    """``t_k = t_start + (k/K)(t_end - t_start)``, with ``t_K = t_end`` exactly."""
    span = t_end - t_start
    times = [t_start + span * k / steps for k in range(steps)]
    times.append(t_end)
    return times


# -- edm ------------------------------------------------------------------------------------------

def noise_level(interpolant: Interpolant, t: Tensor) -> Tensor:
    """``sigma(t) = sqrt(alpha^2 + gamma^2) / beta`` (``exp(-lambda)``, math.md 0): ``inf`` where
    beta = 0 (also at a point mass, alpha = beta = 0), 0 where alpha_eff = 0; ``(1 - t)/t`` on the
    linear path."""
    a2 = interpolant.alpha(t) ** 2 + interpolant.gamma(t) ** 2
    beta = interpolant.beta(t)
    level = a2.sqrt() / beta
    # a point mass (alpha = beta = 0, math.md 3.2) is the limit of infinite noise level
    return torch.where((a2 == 0) & (beta == 0), torch.full_like(level, math.inf), level)


def _time_of_noise_level(interpolant: Interpolant, sigma: float, lo: float, hi: float) -> float:
    """The ``t`` in ``[lo, hi]`` with ``noise_level(t) = sigma`` (bisection; sigma decreasing)."""
    a = torch.tensor([lo], dtype=torch.float64)
    b = torch.tensor([hi], dtype=torch.float64)
    for _ in range(60):
        mid = 0.5 * (a + b)
        above = noise_level(interpolant, mid) > sigma
        a = torch.where(above, mid, a)
        b = torch.where(above, b, mid)
    return float(0.5 * (a + b))


def edm_grid(interpolant: Interpolant, t_start: float, t_end: float, steps: int,
             rho: float) -> list[float]:
    """The forward (``t_start < t_end``) ``edm`` grid of the module docstring."""
    ends = torch.tensor([t_start, t_end], dtype=torch.float64)
    hi, lo = (float(v) for v in noise_level(interpolant, ends))
    hi = min(hi, EDM_SIGMA_MAX)
    if not (math.isfinite(lo) and hi > lo >= 0.0):
        raise ValueError(
            f"the 'edm' grid needs a noise level alpha_eff/beta that decreases from t={t_start:.6g} "
            f"to t={t_end:.6g}; {type(interpolant).__name__} gives {hi:.6g} -> {lo:.6g}")
    inv = 1.0 / rho
    times = [t_start]
    for k in range(1, steps):
        sigma = (hi ** inv + (k / steps) * (lo ** inv - hi ** inv)) ** rho
        times.append(_time_of_noise_level(interpolant, sigma, t_start, t_end))
    times.append(t_end)
    return times


# -- tuned ------------------------------------------------------------------------------------------

def tuning_evaluations(name: str) -> int:
    """Field evaluations a grid spends before sampling (not counted in a sample's nfe)."""
    return TUNED_PILOT_STEPS + 1 if name == "tuned" else 0


def pilot_acceleration(velocity: Velocity, x: Tensor, t_start: float, t_end: float,
                       pilot_steps: int = TUNED_PILOT_STEPS) -> tuple[list[float], list[float]]:
    """A uniform Euler pilot run: returns the pilot times and, per pilot interval, the RMS over
    the batch of ``||b(t_{j+1}, x_{j+1}) - b(t_j, x_j)|| / |t_{j+1} - t_j|`` (the path's
    acceleration). ``pilot_steps + 1`` evaluations."""
    times = uniform_grid(t_start, t_end, pilot_steps)
    x = x[:TUNED_PILOT_BATCH].detach()
    batch = x.shape[0]
    b = velocity(torch.full((batch,), times[0], dtype=x.dtype, device=x.device), x).detach()
    accel = []
    for t, t_next in zip(times[:-1], times[1:]):
        x = x + (t_next - t) * b
        b_next = velocity(torch.full((batch,), t_next, dtype=x.dtype, device=x.device), x).detach()
        change = (b_next - b).reshape(batch, -1).pow(2).sum(1).mean().sqrt()
        accel.append(float(change) / abs(t_next - t))
        b = b_next
    return times, accel


def equalising_knots(times: list[float], density: list[float], steps: int) -> list[float]:
    """Knots that split ``G(t) = integral of density`` (piecewise constant on ``times``) into
    ``steps`` equal parts; ends exact."""
    cumulative = [0.0]
    for (t, t_next), d in zip(zip(times[:-1], times[1:]), density):
        cumulative.append(cumulative[-1] + d * abs(t_next - t))
    total = cumulative[-1]
    knots = [times[0]]
    j = 0
    for k in range(1, steps):
        level = total * k / steps
        while cumulative[j + 1] < level:
            j += 1
        share = (level - cumulative[j]) / (cumulative[j + 1] - cumulative[j])
        knots.append(times[j] + share * (times[j + 1] - times[j]))
    knots.append(times[-1])
    return knots


def tuned_grid(velocity: Velocity, x: Tensor, t_start: float, t_end: float, steps: int,
               pilot_steps: int = TUNED_PILOT_STEPS) -> list[float]:
    """The ``tuned`` grid: knot density ``sqrt(kappa) + floor`` (``floor`` =
    :data:`TUNED_DENSITY_FLOOR` times the mean of ``sqrt(kappa)``), which equalises Euler's local
    error ``h^2 kappa / 2`` per step. Non-finite accelerations (a singular end) count as the
    largest finite one."""
    times, accel = pilot_acceleration(velocity, x, t_start, t_end, pilot_steps)
    finite = [a for a in accel if math.isfinite(a)]
    top = max(finite) if finite else 1.0
    roots = [math.sqrt(a if math.isfinite(a) else top) for a in accel]
    mean = sum(roots) / len(roots)
    floor = TUNED_DENSITY_FLOOR * mean if mean > 0 else 1.0
    return equalising_knots(times, [r + floor for r in roots], steps)


__all__ = ["GRIDS", "EDM_SIGMA_MAX", "TUNED_PILOT_STEPS", "TUNED_PILOT_BATCH", "TUNED_DENSITY_FLOOR",
           "grid_name", "time_grid", "uniform_grid", "noise_level", "edm_grid", "tuned_grid",
           "pilot_acceleration", "equalising_knots", "tuning_evaluations"]
