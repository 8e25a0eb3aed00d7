"""Lazy and point-mass schedules (math.md 3.2, 3.3) and the few-step point-mass sampler (3.4)."""

from __future__ import annotations

import math

import pytest
import torch

from oracles import GaussianOracle, MixtureOracle, OracleField
from interpgen.protocols import Interpolant, Sampler
from interpgen_plugins.samplers.converted import ConvertedSampler
from interpgen_plugins.samplers.converted_field import ConvertedField
from interpgen_plugins.samplers.diffusions import OptimalDiffusion
from interpgen_plugins.samplers.fixed_step import EulerSampler, HeunSampler
from interpgen_plugins.samplers.point_mass import PointMassSampler, PointMassSchedule
from interpgen_plugins.samplers.time_grid import time_grid
from interpgen_plugins.si import LazyVPInterpolant, OneSidedInterpolant, PointMassInterpolant

F64 = torch.float64
S = torch.tensor([0.0, 0.1, 0.35, 0.5, 0.8, 1.0], dtype=F64)
INNER = S[1:-1]


def centred_gaussian(sigma_d: float, dim: int = 2) -> GaussianOracle:
    """Source: the one-sided linear path to data N(0, sigma_d^2 I)."""
    return GaussianOracle(OneSidedInterpolant(), torch.zeros(dim, dtype=F64), torch.eye(dim, dtype=F64),
                          torch.zeros(dim, dtype=F64), sigma_d ** 2 * torch.eye(dim, dtype=F64))


def test_registered_with_the_data_scale(registry):
    for name, cls in (("lazy_vp", LazyVPInterpolant), ("point_mass", PointMassInterpolant)):
        part = registry.create("interpolant", name)
        assert isinstance(part, cls) and isinstance(part, Interpolant) and part.sigma_d == 1.0
        assert part.deterministic is True
        with pytest.raises(ValueError, match="sigma_d must be a finite number > 0, got -1.0"):
            cls(sigma_d=-1.0)
    assert isinstance(registry.create("sampler", "point_mass"), Sampler)
    assert registry.create("sampler", "point_mass") == PointMassSampler(steps=8, sigma_d=1.0, final_noise=True)


@pytest.mark.parametrize("sigma_d", [0.5, 1.0, 2.5])
def test_lazy_vp_keeps_the_variance_constant(sigma_d):
    lazy = LazyVPInterpolant(sigma_d=sigma_d)
    a, b = lazy.alpha(S), lazy.beta(S)
    torch.testing.assert_close(a ** 2 + sigma_d ** 2 * b ** 2, torch.full_like(S, sigma_d ** 2))  # math.md 3.3
    assert (float(a[0]), float(b[0]), float(a[-1]), float(b[-1])) == (sigma_d, 0.0, 0.0, 1.0)


@pytest.mark.parametrize("sigma_d", [0.5, 1.0, 2.5])
def test_point_mass_schedule_conditions(sigma_d):
    pm = PointMassInterpolant(sigma_d=sigma_d)
    a, b = pm.alpha(S), pm.beta(S)
    torch.testing.assert_close(a ** 2, sigma_d ** 2 * b * (1 - b))  # math.md 3.3
    assert float(a[0]) == float(b[0]) == float(a[-1]) == 0.0 and float(b[-1]) == 1.0  # math.md 3.2
    assert pm.default_t_eps("velocity") == 1e-3  # alpha' infinite at both ends
    # eps* = sigma_d^2 beta'/2 is constant (math.md 3.3)
    torch.testing.assert_close(OptimalDiffusion()(INNER, pm), torch.full_like(INNER, sigma_d ** 2 / 2))
    # the sampler's private copy is the same schedule
    own = PointMassSchedule(sigma_d=sigma_d)
    for name in ("alpha", "beta", "alpha_dot", "beta_dot"):
        torch.testing.assert_close(getattr(own, name)(INNER), getattr(pm, name)(INNER))


@pytest.mark.parametrize("cls", [LazyVPInterpolant, PointMassInterpolant])
def test_derivatives_match_autograd(cls):
    sched = cls(sigma_d=1.7)
    t = INNER.clone().requires_grad_(True)
    for value, derivative in (("alpha", "alpha_dot"), ("beta", "beta_dot")):
        (grad,) = torch.autograd.grad(getattr(sched, value)(t).sum(), t)
        torch.testing.assert_close(getattr(sched, derivative)(INNER), grad)


@pytest.mark.parametrize("sigma_d", [0.7, 2.0])
def test_lazy_vp_velocity_vanishes_on_gaussian_data(sigma_d):
    field = ConvertedField(OracleField(centred_gaussian(sigma_d)), LazyVPInterpolant(sigma_d=sigma_d),
                           gaussian_base=True)
    y = torch.randn(len(S), 2, dtype=F64, generator=torch.Generator().manual_seed(0)) * sigma_d
    (b,) = field.evaluate(y, S, ("velocity",))
    assert float(b.abs().max()) < 1e-13


@pytest.mark.parametrize("sigma_d", [0.7, 2.0])
def test_point_mass_optimal_sde_drift_vanishes_on_gaussian_data(sigma_d):
    target = PointMassInterpolant(sigma_d=sigma_d)
    field = ConvertedField(OracleField(centred_gaussian(sigma_d)), target, gaussian_base=True)
    y = torch.randn(len(INNER), 2, dtype=F64, generator=torch.Generator().manual_seed(1))
    b, s = field.evaluate(y, INNER, ("velocity", "score"))
    drift = b + OptimalDiffusion()(INNER, target)[:, None] * s
    assert float(drift.abs().max()) < 1e-12
    assert float(b.abs().max()) > 0.1  # the ODE velocity alone does not vanish


def test_foellmer_form_of_the_point_mass_drift_on_a_mixture():
    """b + eps* s = beta'(eta_1 - y)/(1 - beta) for the point-mass schedule (math.md 3.3)."""
    oracle = MixtureOracle(OneSidedInterpolant(), torch.zeros(2), torch.eye(2), weights=[0.5, 0.5],
                           means=[[-2.0, 0.0], [2.0, 1.0]], covs=[[[0.1, 0.0], [0.0, 0.2]]] * 2)
    target = PointMassInterpolant(sigma_d=1.3)
    field = ConvertedField(OracleField(oracle), target, gaussian_base=True)
    y = torch.randn(len(INNER), 2, dtype=F64, generator=torch.Generator().manual_seed(2))
    b, s, eta1 = field.evaluate(y, INNER, ("velocity", "score", "x1"))
    lhs = b + OptimalDiffusion()(INNER, target)[:, None] * s
    torch.testing.assert_close(lhs, (eta1 - y) / (1 - INNER[:, None]), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("steps", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("sampler_cls", [EulerSampler, HeunSampler])
def test_deterministic_lazy_sampling_is_exact_on_gaussian_data(steps, sampler_cls):
    """Y_0 = sigma_d x0 and b_bar = 0, so every step count returns sigma_d x0 ~ N(0, sigma_d^2 I)."""
    sigma_d = 1.8
    x0 = torch.randn(16, 2, dtype=F64, generator=torch.Generator().manual_seed(3))
    out = ConvertedSampler(schedule=LazyVPInterpolant(sigma_d=sigma_d), sampler=sampler_cls(steps=steps)).sample(
        OracleField(centred_gaussian(sigma_d)), x0)
    torch.testing.assert_close(out.x, sigma_d * x0, rtol=1e-12, atol=1e-12)
    assert out.nfe == steps * (2 if sampler_cls is HeunSampler else 1)


@pytest.mark.parametrize("steps", [1, 2, 3, 5, 8, 16])
@pytest.mark.parametrize("grid", ["uniform", "edm"])
def test_point_mass_sampler_with_final_noise_is_exact_on_gaussian_data(steps, grid):
    """The drift vanishes, so Y_1 = sigma_d sum_k sqrt(h_k) xi_k ~ N(0, sigma_d^2 I) exactly."""
    sigma_d = 1.6
    field = OracleField(centred_gaussian(sigma_d))
    sampler = PointMassSampler(steps=steps, sigma_d=sigma_d, final_noise=True, grid=grid)
    x0 = torch.zeros(8, 2, dtype=F64)
    result = sampler.sample(field, x0, generator=torch.Generator().manual_seed(4), return_trajectory=True)
    assert result.nfe == steps and field.nfe == steps
    assert result.trajectory.shape == (steps + 1, 8, 2) and float(result.trajectory[0].abs().max()) == 0.0
    times = time_grid(grid, 0.0, 1.0, steps, interpolant=PointMassSchedule(sigma_d=sigma_d))
    gen = torch.Generator().manual_seed(4)
    expected = sum(sigma_d * math.sqrt(b - a) * torch.randn(8, 2, generator=gen, dtype=F64)
                   for a, b in zip(times[:-1], times[1:]))
    torch.testing.assert_close(result.x, expected, rtol=1e-12, atol=1e-12)


def test_point_mass_sampler_moments_on_gaussian_data_at_two_steps():
    sigma_d = 2.0
    out = PointMassSampler(steps=2, sigma_d=sigma_d).sample(
        OracleField(centred_gaussian(sigma_d, dim=1)), torch.zeros(20000, 1, dtype=F64),
        generator=torch.Generator().manual_seed(5)).x
    assert abs(float(out.mean())) < 0.05 and abs(float(out.var()) - sigma_d ** 2) < 0.12


def test_point_mass_sampler_without_final_noise_returns_the_posterior_mean():
    oracle = MixtureOracle(OneSidedInterpolant(), torch.zeros(1), torch.eye(1), weights=[0.3, 0.7],
                           means=[[-2.0], [1.0]], covs=[[[0.05]], [[0.1]]])
    field = OracleField(oracle)
    res = PointMassSampler(steps=4, sigma_d=1.0, final_noise=False).sample(
        field, torch.zeros(50, 1, dtype=F64), generator=torch.Generator().manual_seed(6), return_trajectory=True)
    last_state = res.trajectory[-2]
    converted = ConvertedField(OracleField(oracle), PointMassInterpolant(sigma_d=1.0), gaussian_base=True)
    (eta1,) = converted.evaluate(last_state, torch.full((50,), 0.75, dtype=F64), ("x1",))
    torch.testing.assert_close(res.x, eta1, rtol=1e-12, atol=1e-12)


def test_point_mass_sampler_parameters():
    with pytest.raises(ValueError, match="steps must be an integer >= 1, got 0"):
        PointMassSampler(steps=0)
    with pytest.raises(ValueError, match="sigma_d must be a finite number > 0, got 0.0"):
        PointMassSampler(sigma_d=0.0)
    with pytest.raises(ValueError, match="grid must be one of 'uniform', 'edm', got 'tuned'"):
        PointMassSampler(grid="tuned")
    with pytest.raises(TypeError, match="final_noise"):
        PointMassSampler(final_noise=1)
