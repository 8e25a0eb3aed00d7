"""Samplers (plugins/samplers): solver order and NFE on ODEs with known solutions, ODE and SDE
sampling against the analytic oracles of math.md section 8, and parameter validation."""

from __future__ import annotations

import math

import attrs
import pytest
import torch

from oracles import GaussianOracle, MixtureOracle, OracleField
from interpgen.protocols import OdeSolver, Sampler
from interpgen_plugins.samplers.adaptive import StepLimitError
from interpgen_plugins.samplers.diffusions import ConstantDiffusion, OptimalDiffusion, ReverseDiffusion, ZeroDiffusion
from interpgen_plugins.samplers.dopri5 import Dopri5Sampler
from interpgen_plugins.samplers.fixed_step import EulerSampler, HeunSampler, MidpointSampler, Rk4Sampler
from interpgen_plugins.samplers.sde import EulerMaruyamaSampler, StochasticHeunSampler

F64 = torch.float64
FIXED = [(EulerSampler, 1, 1), (HeunSampler, 2, 2), (MidpointSampler, 2, 2), (Rk4Sampler, 4, 4)]
SDES = [EulerMaruyamaSampler, StochasticHeunSampler]
DIFFUSION_NAMES = ["zero", "constant", "reverse", "optimal", "sigma", "linear", "decreasing", "increasing_decreasing"]




# -- plain ODEs with known solutions -------------------------------------------------------------

A = torch.tensor([[-0.5, 2.0], [-2.0, -0.5]], dtype=F64)  # a damped rotation


def linear_rhs(t, y):
    return y @ A.T


def linear_exact(y0, t0, t1):
    return y0 @ torch.linalg.matrix_exp(A * (t1 - t0)).T


def time_dependent_rhs(t, y):
    """dy/dt = cos(t) y: exercises the stage times c_i h."""
    return torch.cos(t)[:, None] * y


def time_dependent_exact(y0, t0, t1):
    return y0 * math.exp(math.sin(t1) - math.sin(t0))


Y0 = torch.tensor([[1.0, 0.5], [-0.3, 2.0], [0.0, -1.0]], dtype=F64)


class CountingRhs:
    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, t, y):
        assert t.shape == (y.shape[0],) and t.dtype == y.dtype
        self.calls += 1
        return self.fn(t, y)


@pytest.mark.parametrize("cls, order, stages", FIXED)
@pytest.mark.parametrize("rhs, exact", [(linear_rhs, linear_exact), (time_dependent_rhs, time_dependent_exact)])
def test_fixed_step_convergence_order(cls, order, stages, rhs, exact):
    # Halving the step divides the global error by about 2^order; the observed order from
    # 16 -> 32 -> 64 steps over [0, 2] is within 0.25 of the method's order.
    t0, t1 = 0.0, 2.0
    errors = []
    for steps in (16, 32, 64):
        y, calls = cls(steps=steps).integrate(rhs, Y0, t0, t1)
        assert calls == steps * stages
        errors.append((y - exact(Y0, t0, t1)).abs().max().item())
    observed = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    for p in observed:
        assert abs(p - order) < 0.25, (cls.__name__, observed)


@pytest.mark.parametrize("cls, order, stages", FIXED)
def test_fixed_step_backward_integration(cls, order, stages):
    # Backward in time (t_end < t_start) solves the same ODE: the end value matches the
    # exact backward solution with a forward-like error, and forward-then-back returns to Y0.
    steps = 200
    y1, _ = cls(steps=steps).integrate(linear_rhs, Y0, 1.0, 0.2)
    tol = 5.0 * (0.8 / steps) ** order * 10
    assert torch.allclose(y1, linear_exact(Y0, 1.0, 0.2), atol=tol, rtol=0)
    forward, _ = cls(steps=steps).integrate(linear_rhs, Y0, 0.0, 1.0)
    back, _ = cls(steps=steps).integrate(linear_rhs, forward, 1.0, 0.0)
    assert torch.allclose(back, Y0, atol=tol, rtol=0)


def test_one_euler_step_is_exact_formula():
    fn = CountingRhs(time_dependent_rhs)
    y, calls = EulerSampler(steps=1).integrate(fn, Y0, 0.3, 0.8)
    assert torch.equal(y, Y0 + 0.5 * math.cos(0.3) * Y0)
    assert calls == fn.calls == 1


def test_integrate_with_equal_endpoints_is_identity():
    for solver in (HeunSampler(steps=3), Dopri5Sampler()):
        y, calls = solver.integrate(linear_rhs, Y0, 0.4, 0.4)
        assert torch.allclose(y, Y0) and (calls == 0 or isinstance(solver, HeunSampler))


@pytest.mark.parametrize("tol", [1e-4, 1e-7, 1e-10])
def test_dopri5_meets_tolerance_and_counts_calls(tol):
    fn = CountingRhs(linear_rhs)
    y, calls = Dopri5Sampler(rtol=tol, atol=tol).integrate(fn, Y0, 0.0, 2.0)
    assert calls == fn.calls
    # 2 start-up calls (f(t0, y0) and the initial-step probe), then 6 per attempted step (FSAL)
    assert (calls - 2) % 6 == 0 and calls > 8
    error = (y - linear_exact(Y0, 0.0, 2.0)).abs().max().item()
    # a global error within 20 x the local tolerance over the interval
    assert error < 20 * tol


def test_dopri5_fewer_calls_for_looser_tolerance_and_backward():
    _, loose = Dopri5Sampler(rtol=1e-3, atol=1e-3).integrate(linear_rhs, Y0, 0.0, 2.0)
    _, tight = Dopri5Sampler(rtol=1e-9, atol=1e-9).integrate(linear_rhs, Y0, 0.0, 2.0)
    assert loose < tight
    y_back, _ = Dopri5Sampler(rtol=1e-9, atol=1e-9).integrate(time_dependent_rhs, Y0, 2.0, -0.5)
    assert torch.allclose(y_back, time_dependent_exact(Y0, 2.0, -0.5), atol=1e-7, rtol=0)


def test_dopri5_step_limit_error_names_the_limit():
    with pytest.raises(StepLimitError, match="max_steps=3"):
        Dopri5Sampler(max_steps=3, rtol=1e-10, atol=1e-10).integrate(linear_rhs, Y0, 0.0, 5.0)


def test_dopri5_reports_non_finite_state():
    def blow_up(t, y):
        return torch.full_like(y, float("nan"))

    with pytest.raises(StepLimitError, match="non-finite"):
        Dopri5Sampler().integrate(blow_up, Y0, 0.0, 1.0)


# -- a field with known flow: the linear ODE seen through the Field protocol ---------------------

class LinearField:
    """b(t, x) = A x on flattened events; the score is given by a fixed map so SDE code runs."""

    def __init__(self, interpolant, offers=("velocity", "score", "x1"), time_range=(0.0, 1.0)):
        self.interpolant = interpolant
        self.nfe = 0
        self.offers = offers
        self.range = time_range

    def available(self):
        return self.offers

    def evaluate(self, x, t, wants):
        self.nfe += 1
        flat = x.reshape(x.shape[0], -1)
        out = {"velocity": linear_rhs(t, flat).reshape(x.shape),
               "score": -x * (1 + t.reshape(-1, *[1] * (x.dim() - 1))),
               "x1": 2 * x + 1}
        return tuple(out[w] for w in wants)

    def time_range(self, stochastic):
        return self.range


@pytest.mark.parametrize("cls, order, stages", FIXED)
def test_ode_sample_counts_nfe_and_returns_trajectory(cls, order, stages, linear):
    field = LinearField(linear)
    field.nfe = 7  # the sampler reads the counter before and after
    result = cls(steps=5).sample(field, Y0, return_trajectory=True)
    assert result.nfe == 5 * stages and field.nfe == 7 + 5 * stages
    assert result.trajectory.shape == (6, *Y0.shape)
    assert torch.equal(result.trajectory[0], Y0) and torch.equal(result.trajectory[-1], result.x)
    same, _ = cls(steps=5).integrate(linear_rhs, Y0, 0.0, 1.0)
    assert torch.allclose(result.x, same, atol=1e-15, rtol=0)
    assert cls(steps=5).sample(field, Y0).trajectory is None


def test_ode_sample_any_event_shape(linear):
    x = torch.randn(4, 1, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    result = Rk4Sampler(steps=40).sample(LinearField(linear), x, return_trajectory=True)
    assert result.x.shape == x.shape and result.trajectory.shape == (41, 4, 1, 2)
    assert torch.allclose(result.x.reshape(4, 2), linear_exact(x.reshape(4, 2), 0.0, 1.0), atol=1e-5)


def test_dopri5_sample_nfe_and_trajectory(linear):
    field = LinearField(linear, time_range=(0.1, 0.9))
    result = Dopri5Sampler(rtol=1e-8, atol=1e-8).sample(field, Y0, return_trajectory=True)
    assert result.nfe == field.nfe and (result.nfe - 2) % 6 == 0
    assert torch.allclose(result.x, linear_exact(Y0, 0.1, 0.9), atol=1e-7)
    assert torch.equal(result.trajectory[0], Y0) and torch.equal(result.trajectory[-1], result.x)


# -- ODE samplers against the exact flow map (math.md 8a) -----------------------------------------

def gaussian_oracle(interpolant):
    # one-sided base N(0, I); diagonal data covariance so the flow map of math.md 8a is exact
    return GaussianOracle(interpolant, m0=[0.0, 0.0], S0=torch.eye(2), m1=[1.0, -2.0], S1=torch.diag(torch.tensor([0.25, 2.0])))


@pytest.mark.parametrize("cls, order, stages", FIXED)
def test_ode_samplers_match_gaussian_flow_map_at_their_order(cls, order, stages, linear):
    oracle = gaussian_oracle(linear)
    x0 = oracle.sample_prior(64, torch.Generator().manual_seed(1))
    exact = oracle.flow_map(x0, 1.0)
    errors = []
    for steps in (8, 16, 32):
        x = cls(steps=steps).sample(OracleField(oracle), x0).x
        errors.append((x - exact).abs().max().item())
    observed = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    # at least the method's order (midpoint happens to reach 3 on this problem: its leading
    # error term cancels over [0, 1]), and the error must be small at 32 steps
    assert all(p > order - 0.3 for p in observed), (cls.__name__, errors, observed)
    assert errors[-1] < 10 * 32.0 ** -order


def test_dopri5_matches_gaussian_flow_map(linear):
    oracle = gaussian_oracle(linear)
    x0 = oracle.sample_prior(64, torch.Generator().manual_seed(2))
    result = Dopri5Sampler(rtol=1e-8, atol=1e-8).sample(OracleField(oracle), x0)
    assert (result.x - oracle.flow_map(x0, 1.0)).abs().max().item() < 1e-6
    assert result.nfe > 0 and (result.nfe - 2) % 6 == 0


def mixture_oracle(interpolant):
    return MixtureOracle(interpolant, m0=[0.0, 0.0], S0=torch.eye(2), weights=[0.3, 0.7],
                         means=[[-2.0, 0.0], [1.5, 1.0]],
                         covs=[[[0.3, 0.1], [0.1, 0.2]], [[0.5, -0.2], [-0.2, 0.4]]])


@pytest.mark.parametrize("cls, order, stages", FIXED)
def test_ode_samplers_converge_on_mixture(cls, order, stages, linear):
    # No closed-form flow map for a mixture: compare with a tight dopri5 solution; the error
    # must shrink at (at least nearly) the method's order.
    oracle = mixture_oracle(linear)
    x0 = oracle.sample_prior(32, torch.Generator().manual_seed(3))
    reference = Dopri5Sampler(rtol=1e-11, atol=1e-11).sample(OracleField(oracle), x0).x
    errors = [(cls(steps=s).sample(OracleField(oracle), x0).x - reference).abs().max().item() for s in (32, 64, 128)]
    observed = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert all(p > order - 0.5 for p in observed), (cls.__name__, errors, observed)


def test_ode_pushforward_reaches_mixture_moments(linear):
    # 4000 samples: the sample mean has standard error sd / sqrt(4000) <= 1.5 / 63 = 0.024 per
    # coordinate and a covariance entry about sqrt(2 / 4000) var <= 0.06; we allow 4 standard errors.
    oracle = mixture_oracle(linear)
    x0 = oracle.sample_prior(4000, torch.Generator().manual_seed(4))
    x = Rk4Sampler(steps=20).sample(OracleField(oracle), x0).x
    assert torch.allclose(x.mean(0), oracle.mean(1.0)[0], atol=0.1)
    assert torch.allclose(torch.cov(x.T), oracle.cov(1.0)[0], atol=0.25)


# -- SDE samplers ------------------------------------------------------------------------------

@pytest.mark.parametrize("sde_cls, ode_cls", [(EulerMaruyamaSampler, EulerSampler), (StochasticHeunSampler, HeunSampler)])
@pytest.mark.parametrize("target", [gaussian_oracle, mixture_oracle])
def test_zero_diffusion_sde_equals_ode(sde_cls, ode_cls, target, linear):
    field = OracleField(target(linear))
    x0 = field.oracle.sample_prior(50, torch.Generator().manual_seed(5))
    sde = sde_cls(steps=20, diffusion=ZeroDiffusion(), last_step="none", t_eps=0.0)
    stochastic = sde.sample(field, x0, generator=torch.Generator().manual_seed(6))
    deterministic = ode_cls(steps=20).sample(field, x0)
    assert torch.equal(stochastic.x, deterministic.x)
    assert stochastic.nfe == deterministic.nfe


def test_euler_maruyama_step_formula(linear):
    # one step x + (b + eps s) dt + sqrt(2 eps dt) xi, with xi from the given generator
    field = LinearField(linear)
    sampler = EulerMaruyamaSampler(steps=1, diffusion=ConstantDiffusion(value=0.7), last_step="none", t_eps=0.2)
    x = sampler.sample(field, Y0, generator=torch.Generator().manual_seed(9)).x
    xi = torch.randn(Y0.shape, generator=torch.Generator().manual_seed(9), dtype=F64)
    t = torch.full((3,), 0.2, dtype=F64)
    b, s = LinearField(linear).evaluate(Y0, t, ("velocity", "score"))
    assert torch.allclose(x, Y0 + (b + 0.7 * s) * 0.8 + math.sqrt(2 * 0.7 * 0.8) * xi, atol=1e-14)


def test_stochastic_heun_step_formula(linear):
    # noise first, then the trapezoid with K1 at t and K2 at t + dt (math.md 2.2)
    field = LinearField(linear)
    eps, t0, dt = 0.7, 0.2, 0.8
    sampler = StochasticHeunSampler(steps=1, diffusion=ConstantDiffusion(value=eps), last_step="none", t_eps=t0)
    x = sampler.sample(field, Y0, generator=torch.Generator().manual_seed(9)).x
    assert field.nfe == 2
    xi = torch.randn(Y0.shape, generator=torch.Generator().manual_seed(9), dtype=F64)
    ref = LinearField(linear)

    def f(t, y):
        b, s = ref.evaluate(y, torch.full((3,), t, dtype=F64), ("velocity", "score"))
        return b + eps * s

    hat = Y0 + math.sqrt(2 * eps * dt) * xi
    k1 = f(t0, hat)
    k2 = f(t0 + dt, hat + dt * k1)
    assert torch.allclose(x, hat + dt * (k1 + k2) / 2, atol=1e-14)


@pytest.mark.parametrize("cls, per_step", [(EulerMaruyamaSampler, 1), (StochasticHeunSampler, 2)])
def test_sde_last_steps_and_nfe(cls, per_step, linear):
    oracle = gaussian_oracle(linear)
    field = OracleField(oracle)
    x0 = oracle.sample_prior(10, torch.Generator().manual_seed(7))
    eps = OptimalDiffusion()
    t1 = 1.0 - 0.04
    for last in ("mean", "tweedie", "euler"):
        result = cls(steps=12, last_step=last).sample(field, x0, generator=torch.Generator().manual_seed(8),
                                                     return_trajectory=True)
        assert result.nfe == 12 * per_step + 1
        assert result.trajectory.shape == (14, 10, 2)
        before = result.trajectory[-2]
        t = torch.full((10,), t1, dtype=F64)
        b, s, x1 = (oracle.predict(n, before, t) for n in ("velocity", "score", "x1"))
        expected = {"mean": before + 0.04 * (b + eps(t, linear)[:, None] * s),
                    "euler": before + 0.04 * b, "tweedie": x1}[last]
        assert torch.allclose(result.x, expected, atol=1e-12)
    none = cls(steps=12, last_step="none").sample(field, x0, generator=torch.Generator().manual_seed(8),
                                                  return_trajectory=True)
    assert none.nfe == 12 * per_step and none.trajectory.shape == (13, 10, 2)


@pytest.mark.parametrize("cls", SDES)
def test_sde_noise_is_reproducible(cls, linear):
    field = OracleField(gaussian_oracle(linear))
    x0 = torch.zeros(5, 2, dtype=F64)
    a = cls(steps=10).sample(field, x0, generator=torch.Generator().manual_seed(11)).x
    b = cls(steps=10).sample(field, x0, generator=torch.Generator().manual_seed(11)).x
    c = cls(steps=10).sample(field, x0, generator=torch.Generator().manual_seed(12)).x
    assert torch.equal(a, b) and not torch.allclose(a, c)


@pytest.mark.parametrize("cls", SDES)
@pytest.mark.parametrize("diffusion", DIFFUSION_NAMES)
def test_sde_reaches_gaussian_target(cls, diffusion, registry, linear):
    # 3000 samples in 2-D with a fixed seed. Target N(m1, diag(0.25, 2)): the sample mean has
    # standard error <= sqrt(2 / 3000) = 0.026 and a variance estimate <= 2 sqrt(2 / 3000) = 0.052;
    # discretisation bias (100 steps, dt ~ 0.01, last step 0.04) is a few 1e-3 on these moments.
    # Tolerances are 4 standard errors: mean 0.1, covariance 0.1 + 0.1 |Sigma_ij|.
    oracle = gaussian_oracle(linear)
    x0 = oracle.sample_prior(3000, torch.Generator().manual_seed(20))
    sampler = cls(steps=100, diffusion=registry.create("diffusion", diffusion))
    x = sampler.sample(OracleField(oracle), x0, generator=torch.Generator().manual_seed(21)).x
    target_cov = oracle.cov(1.0)[0]
    assert torch.allclose(x.mean(0), oracle.mean(1.0)[0], atol=0.1)
    assert torch.allclose(torch.cov(x.T), target_cov, atol=0.1, rtol=0.1)


@pytest.mark.parametrize("cls", SDES)
def test_sde_reaches_mixture_target(cls, linear):
    # Same tolerances as above (the mixture's per-coordinate variances are below 2.5).
    oracle = mixture_oracle(linear)
    x0 = oracle.sample_prior(3000, torch.Generator().manual_seed(22))
    x = cls(steps=100).sample(OracleField(oracle), x0, generator=torch.Generator().manual_seed(23)).x
    assert torch.allclose(x.mean(0), oracle.mean(1.0)[0], atol=0.1)
    assert torch.allclose(torch.cov(x.T), oracle.cov(1.0)[0], atol=0.15, rtol=0.1)


@pytest.mark.parametrize("cls", SDES)
def test_sde_without_score_is_refused_before_evaluating(cls, linear):
    field = LinearField(linear, offers=("velocity", "x1"))
    with pytest.raises(ValueError, match=rf"{cls.sampler_name}.*needs the score.*train a score, or a velocity model on a Gaussian base"):
        cls().sample(field, Y0)
    assert field.nfe == 0
    no_x1 = LinearField(linear, offers=("velocity", "score"))
    with pytest.raises(ValueError, match="last_step='tweedie' needs the field's 'x1'"):
        cls(last_step="tweedie").sample(no_x1, Y0)
    assert no_x1.nfe == 0


def test_sde_grid_must_not_be_empty(linear):
    field = LinearField(linear, time_range=(0.0, 0.5))
    with pytest.raises(ValueError, match="make t_eps or last_step_size smaller"):
        EulerMaruyamaSampler(t_eps=0.3, last_step_size=0.25).sample(field, Y0)


def test_sde_grid_respects_t_eps_and_field_range(linear):
    assert EulerMaruyamaSampler(steps=4, t_eps=1e-3).grid_times(0.0, 1.0) == ([0.001 + k * 0.959 / 4 for k in range(4)] + [0.96], 0.04)
    times, last = StochasticHeunSampler(steps=2, t_eps=1e-3, last_step="none").grid_times(0.1, 0.9)
    assert times == [0.1, 0.5, 0.9] and last == 0.0


# -- registration and parameters ---------------------------------------------------------------

def test_registered_samplers_follow_protocols(registry):
    assert set(registry.names("sampler")) >= {"euler", "heun", "midpoint", "rk4", "dopri5", "euler_maruyama", "stochastic_heun"}
    for name in ("euler", "heun", "midpoint", "rk4", "dopri5"):
        sampler = registry.create("sampler", name)
        assert isinstance(sampler, Sampler) and isinstance(sampler, OdeSolver) and sampler.stochastic is False
    for name in ("euler_maruyama", "stochastic_heun"):
        sampler = registry.create("sampler", name)
        assert isinstance(sampler, Sampler) and sampler.stochastic is True
        assert sampler.diffusion == ReverseDiffusion() and sampler.steps == 250
        assert (sampler.last_step, sampler.last_step_size, sampler.t_eps, sampler.grid) == ("mean", 0.04, 1e-3, "uniform")
    defaults = {"euler": 100, "heun": 50, "midpoint": 50, "rk4": 25}
    for name, steps in defaults.items():
        sampler = registry.create("sampler", name)
        assert sampler.steps == steps and sampler.grid == "uniform"
        assert attrs.evolve(sampler, steps=3).steps == 3
    assert registry.create("sampler", "dopri5") == Dopri5Sampler(rtol=1e-5, atol=1e-5, max_steps=10_000)


@pytest.mark.parametrize("cls, kwargs, message", [
    (EulerSampler, {"steps": 0}, "steps must be an integer >= 1, got 0"),
    (HeunSampler, {"steps": 2.5}, "steps must be an integer >= 1, got 2.5"),
    (Rk4Sampler, {"steps": True}, "steps must be an integer >= 1, got True"),
    (MidpointSampler, {"grid": "cosine"}, "grid must be one of 'uniform', 'edm', 'tuned', 'fitted', got 'cosine'"),
    (Dopri5Sampler, {"rtol": 0.0}, "rtol must be a finite number > 0, got 0.0"),
    (Dopri5Sampler, {"atol": -1e-3}, "atol must be a finite number > 0, got -0.001"),
    (Dopri5Sampler, {"max_steps": 0}, "max_steps must be an integer >= 1, got 0"),
    (EulerMaruyamaSampler, {"steps": -1}, "steps must be an integer >= 1, got -1"),
    (EulerMaruyamaSampler, {"last_step": "Mean"}, "last_step must be one of 'none', 'mean', 'tweedie', 'euler', got 'Mean'"),
    (StochasticHeunSampler, {"last_step_size": 0.0}, "last_step_size must be a finite number > 0, got 0.0"),
    (StochasticHeunSampler, {"t_eps": 1.0}, r"t_eps must be a number in \[0, 1\), got 1.0"),
    (StochasticHeunSampler, {"grid": "cosine"}, "grid must be one of 'uniform', 'edm', 'tuned', got 'cosine'"),
])
def test_bad_parameters_are_rejected(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_sde_diffusion_must_be_a_diffusion():
    with pytest.raises(TypeError, match="diffusion must be a diffusion coefficient"):
        EulerMaruyamaSampler(diffusion="optimal")


def test_recipe_structures_sde_sampler_with_diffusion(registry):
    from interpgen.config import RecipeConverter

    conv = RecipeConverter(registry)
    sampler = conv.structure_part("sampler", {"name": "stochastic_heun", "steps": 10,
                                              "diffusion": {"name": "sigma", "norm": 0.5}})
    assert sampler == StochasticHeunSampler(steps=10, diffusion=registry.get("diffusion", "sigma").params(norm=0.5))
    assert conv.structure_part("sampler", conv.unstructure_part(sampler)) == sampler
