"""Time grids: uniform, EDM-style polynomial in the noise level, and the tuned grid."""

from __future__ import annotations

import math

import pytest
import torch

from oracles import GaussianOracle, OracleField
from interpgen_plugins.samplers import time_grid as tg
from interpgen_plugins.samplers.fixed_step import EulerSampler, HeunSampler, MidpointSampler, Rk4Sampler
from interpgen_plugins.samplers.sde import EulerMaruyamaSampler, StochasticHeunSampler
from interpgen_plugins.si import BrownianGamma, MirrorInterpolant, OneSidedInterpolant, VPInterpolant

F64 = torch.float64


def narrow_gaussian() -> GaussianOracle:
    """N(0, I) -> N(m, 0.01 I): the linear path bends sharply near t = 1."""
    return GaussianOracle(OneSidedInterpolant(), torch.zeros(2, dtype=F64), torch.eye(2, dtype=F64),
                          torch.tensor([1.0, -0.5], dtype=F64), 0.01 * torch.eye(2, dtype=F64))


def test_uniform_grid_is_unchanged():
    assert tg.time_grid("uniform", 0.0, 1.0, 4) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert tg.time_grid("uniform", 1.0, 0.2, 2) == [1.0, 0.6, 0.2]
    assert tg.GRIDS == ("uniform", "edm", "tuned", "fitted")
    with pytest.raises(ValueError, match="unknown time grid 'cosine'; known: uniform, edm, tuned"):
        tg.time_grid("cosine", 0.0, 1.0, 4)
    with pytest.raises(ValueError, match="a time grid needs steps >= 1, got 0"):
        tg.time_grid("edm", 0.0, 1.0, 0)


@pytest.mark.parametrize("steps, rho", [(2, 7.0), (5, 7.0), (8, 3.0), (16, 1.0)])
def test_edm_grid_on_the_linear_path_follows_the_polynomial(steps, rho):
    """sigma(t) = (1 - t)/t, so t = 1/(1 + sigma); sigma_hi = 80 (sigma(0) = inf), sigma_lo = 0."""
    times = tg.time_grid("edm", 0.0, 1.0, steps, interpolant=OneSidedInterpolant(), rho=rho)
    sigmas = [(80.0 ** (1 / rho) * (1 - k / steps)) ** rho for k in range(1, steps)]
    expected = [0.0] + [1.0 / (1.0 + s) for s in sigmas] + [1.0]
    assert times[0] == 0.0 and times[-1] == 1.0 and len(times) == steps + 1
    for got, want in zip(times, expected):
        assert got == pytest.approx(want, abs=1e-14)


def test_edm_grid_between_finite_noise_levels_and_backward():
    vp = VPInterpolant()
    forward = tg.time_grid("edm", 0.1, 0.9, 4, interpolant=vp, rho=7.0)
    level = lambda t: float(tg.noise_level(vp, torch.tensor([t], dtype=F64)))  # noqa: E731
    hi, lo = level(0.1), level(0.9)
    for k, t in enumerate(forward[1:-1], start=1):
        want = (hi ** (1 / 7) + k / 4 * (lo ** (1 / 7) - hi ** (1 / 7))) ** 7
        assert level(t) == pytest.approx(want, rel=1e-9)
    assert tg.time_grid("edm", 0.9, 0.1, 4, interpolant=vp) == forward[::-1]


def test_edm_grid_needs_a_decreasing_noise_level_and_the_interpolant():
    with pytest.raises(ValueError, match="'edm' time grid needs the interpolant"):
        tg.time_grid("edm", 0.0, 1.0, 4)
    with pytest.raises(ValueError, match="needs a noise level alpha_eff/beta that decreases"):
        tg.time_grid("edm", 0.0, 1.0, 4, interpolant=MirrorInterpolant(gamma=BrownianGamma()))


def test_equalising_knots_split_the_integral_evenly():
    knots = tg.equalising_knots([0.0, 0.5, 1.0], [1.0, 3.0], 4)  # G = 0.5 then 2.0
    assert knots == pytest.approx([0.0, 0.5, 0.5 + 0.5 / 3, 0.5 + 1.0 / 3, 1.0], abs=1e-15)
    assert knots[0] == 0.0 and knots[-1] == 1.0


def test_tuned_grid_is_uniform_for_a_straight_path():
    def constant_velocity(t, x):
        return torch.ones_like(x)

    x = torch.zeros(4, 2, dtype=F64)
    assert tg.tuned_grid(constant_velocity, x, 0.0, 1.0, 5) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0], abs=1e-14)


def test_tuned_grid_puts_small_steps_where_the_path_bends():
    field = OracleField(narrow_gaussian())
    x0 = torch.randn(64, 2, dtype=F64, generator=torch.Generator().manual_seed(0))
    times = tg.time_grid("tuned", 0.0, 1.0, 8, velocity=lambda t, x: field.evaluate(x, t, ("velocity",))[0], x=x0)
    assert field.nfe == tg.TUNED_PILOT_STEPS + 1 == tg.tuning_evaluations("tuned")
    assert times[0] == 0.0 and times[-1] == 1.0 and len(times) == 9
    steps = [b - a for a, b in zip(times[:-1], times[1:])]
    assert all(h > 0 for h in steps) and steps[-1] < 0.5 * steps[0]


def test_tuned_euler_beats_uniform_euler_on_a_bending_path():
    oracle = narrow_gaussian()
    x0 = torch.randn(256, 2, dtype=F64, generator=torch.Generator().manual_seed(1))
    exact = oracle.flow_map(x0, 1.0)
    errors = {}
    for grid in ("uniform", "tuned"):
        field = OracleField(oracle)
        result = EulerSampler(steps=8, grid=grid).sample(field, x0)
        assert result.nfe == 8  # the pilot's evaluations are not in the sampling budget
        assert field.nfe == 8 + tg.tuning_evaluations(grid)
        errors[grid] = float((result.x - exact).norm(dim=1).mean())
    assert errors["tuned"] < 0.5 * errors["uniform"], errors


@pytest.mark.parametrize("cls, stages", [(EulerSampler, 1), (HeunSampler, 2), (MidpointSampler, 2), (Rk4Sampler, 4)])
@pytest.mark.parametrize("grid", ["edm", "tuned"])
def test_every_fixed_step_ode_sampler_takes_every_grid(cls, stages, grid):
    oracle = narrow_gaussian()
    x0 = torch.randn(32, 2, dtype=F64, generator=torch.Generator().manual_seed(2))
    result = cls(steps=3, grid=grid, rho=5.0).sample(OracleField(oracle), x0, return_trajectory=True)
    assert result.nfe == 3 * stages and result.trajectory.shape == (4, 32, 2)
    assert bool(torch.isfinite(result.x).all())
    # integrate() (used for likelihoods) has no interpolant: tuned works on the bare right-hand side
    y, calls = cls(steps=3, grid="tuned").integrate(lambda t, y: -y, torch.ones(2, 1, dtype=F64), 0.0, 1.0)
    assert calls == 3 * stages and float(y[0, 0]) == pytest.approx(math.exp(-1.0), abs=0.1)
    if grid == "edm":
        with pytest.raises(ValueError, match="only available when sampling a field"):
            cls(steps=3, grid="edm").integrate(lambda t, y: -y, torch.ones(2, 1, dtype=F64), 0.0, 1.0)


@pytest.mark.parametrize("cls", [EulerMaruyamaSampler, StochasticHeunSampler])
@pytest.mark.parametrize("grid", ["edm", "tuned"])
def test_sde_samplers_take_every_grid(cls, grid):
    field = OracleField(narrow_gaussian())
    x0 = torch.randn(16, 2, dtype=F64, generator=torch.Generator().manual_seed(3))
    sampler = cls(steps=4, grid=grid)
    times, last = sampler.grid_times(0.0, 1.0, field, x0)
    assert times[0] == pytest.approx(1e-3) and times[-1] == pytest.approx(0.96) and len(times) == 5
    assert all(b > a for a, b in zip(times[:-1], times[1:]))
    before = field.nfe
    result = sampler.sample(field, x0, generator=torch.Generator().manual_seed(4))
    per_step = 1 if cls is EulerMaruyamaSampler else 2
    assert result.nfe == 4 * per_step + 1
    assert field.nfe - before == result.nfe + tg.tuning_evaluations(grid)


def test_bad_grid_names_and_rho_are_rejected():
    with pytest.raises(ValueError, match="grid must be one of 'uniform', 'edm', 'tuned', 'fitted', got 'cosine'"):
        HeunSampler(grid="cosine")
    with pytest.raises(ValueError, match="grid must be one of 'uniform', 'edm', 'tuned', got 'fitted'"):
        EulerMaruyamaSampler(grid="fitted")  # fitted matches a deterministic scheme
    with pytest.raises(ValueError, match="rho must be a finite number > 0, got 0.0"):
        EulerSampler(rho=0.0)
    with pytest.raises(ValueError, match="rho must be a finite number > 0, got -1.0"):
        EulerMaruyamaSampler(rho=-1.0)


@pytest.mark.parametrize("cls, stages", [(EulerSampler, 1), (MidpointSampler, 2), (HeunSampler, 2)])
def test_fitted_grid_lands_closer_to_the_exact_flow(cls, stages):
    from interpgen_plugins.samplers.fitted_grid import fitted_evaluations

    oracle = narrow_gaussian()
    x0 = torch.randn(256, 2, dtype=F64, generator=torch.Generator().manual_seed(5))
    exact = oracle.flow_map(x0, 1.0)
    errors = {}
    for grid in ("uniform", "fitted"):
        field = OracleField(oracle)
        result = cls(steps=2, grid=grid).sample(field, x0, return_trajectory=True)
        assert result.nfe == 2 * stages  # the fitting's evaluations are not in the sampling budget
        spent = fitted_evaluations(2, stages) if grid == "fitted" else 0
        assert field.nfe == result.nfe + spent
        errors[grid] = float((result.x - exact).norm(dim=1).mean())
    assert errors["fitted"] < 0.6 * errors["uniform"], errors


def test_fitted_grid_is_increasing_with_exact_ends_and_runs_backward():
    from interpgen_plugins.samplers.butcher import MIDPOINT

    field = OracleField(narrow_gaussian())
    x0 = torch.randn(64, 2, dtype=F64, generator=torch.Generator().manual_seed(6))
    velocity = lambda t, x: field.evaluate(x, t, ("velocity",))[0]  # noqa: E731
    times = tg.time_grid("fitted", 0.001, 0.999, 4, velocity=velocity, x=x0, tableau=MIDPOINT)
    assert times[0] == 0.001 and times[-1] == 0.999 and len(times) == 5
    assert all(b > a for a, b in zip(times[:-1], times[1:]))
    back = tg.time_grid("fitted", 1.0, 0.0, 3, velocity=lambda t, y: -y, x=torch.ones(4, 1, dtype=F64),
                        tableau=MIDPOINT)
    assert back[0] == 1.0 and back[-1] == 0.0 and all(b < a for a, b in zip(back[:-1], back[1:]))
    with pytest.raises(ValueError, match="'fitted' time grid fits a fixed-step ODE scheme"):
        tg.time_grid("fitted", 0.0, 1.0, 3, velocity=velocity, x=x0)
