"""Diffusion coefficients eps(t) (plugins/samplers/diffusions.py) against their formulas
(math.md 1.3, 1.7, 2.2) and against the oracle identity b = (beta'/beta) x + eps* s (math.md 1.5)."""

from __future__ import annotations

import math

import pytest
import torch

from oracles import GaussianOracle, MixtureOracle
from interpgen.protocols import Diffusion
from interpgen_plugins.samplers.diffusions import (
    ConstantDiffusion, DecreasingDiffusion, IncreasingDecreasingDiffusion, LinearDiffusion,
    OptimalDiffusion, ReverseDiffusion, SigmaDiffusion, ZeroDiffusion)

F64 = torch.float64
T = torch.linspace(0.02, 0.98, 25, dtype=F64)




@pytest.fixture(scope="module")
def two_sided(registry):
    """Linear path with gamma = sqrt(t (1 - t)) (math.md 1.8)."""
    entry = registry.get("interpolant", "linear")
    return entry.create(entry.params(gamma=registry.create("gamma", "brownian")))


def test_registered_names_and_classes(registry):
    expected = {"zero": ZeroDiffusion, "constant": ConstantDiffusion, "reverse": ReverseDiffusion,
                "optimal": OptimalDiffusion,
                "sigma": SigmaDiffusion, "linear": LinearDiffusion, "decreasing": DecreasingDiffusion,
                "increasing_decreasing": IncreasingDecreasingDiffusion}
    assert set(registry.names("diffusion")) >= set(expected)
    for name, cls in expected.items():
        assert registry.get("diffusion", name).params is cls
        diffusion = registry.create("diffusion", name)
        assert isinstance(diffusion, Diffusion)


@pytest.mark.parametrize("norm", [1.0, 2.5, 0.0])
def test_sit_forms_match_formulas(norm, linear):
    pi = math.pi
    cases = {
        LinearDiffusion(norm=norm): norm * (1 - T),
        DecreasingDiffusion(norm=norm): 0.25 * (norm * torch.cos(pi * T) + 1) ** 2,
        IncreasingDecreasingDiffusion(norm=norm): norm * torch.sin(pi * T) ** 2,
        SigmaDiffusion(norm=norm): norm * (1 - T),  # alpha = 1 - t, gamma = 0
    }
    for diffusion, expected in cases.items():
        value = diffusion(T, linear)
        assert value.shape == T.shape and value.dtype == F64
        assert torch.allclose(value, expected, rtol=1e-13, atol=1e-15), diffusion


def test_zero_and_constant(linear):
    assert torch.equal(ZeroDiffusion()(T, linear), torch.zeros_like(T))
    assert torch.equal(ConstantDiffusion()(T, linear), torch.ones_like(T))
    assert torch.equal(ConstantDiffusion(value=0.3)(T, linear), torch.full_like(T, 0.3))


def test_sigma_uses_effective_alpha_when_gamma_is_not_zero(two_sided):
    # alpha_eff = sqrt(alpha^2 + gamma^2) = sqrt((1-t)^2 + t(1-t)) = sqrt(1-t)
    assert torch.allclose(SigmaDiffusion(norm=2.0)(T, two_sided), 2.0 * (1 - T).sqrt(), rtol=1e-13)


def test_optimal_linear_closed_form(linear):
    # math.md 1.3: eps* = alpha^2 beta'/beta - alpha alpha' = (1-t)^2/t + (1-t) on the linear path
    expected = (1 - T) ** 2 / T + (1 - T)
    assert torch.allclose(OptimalDiffusion()(T, linear), expected, rtol=1e-13)
    assert torch.allclose(OptimalDiffusion(norm=0.5)(T, linear), 0.5 * expected, rtol=1e-13)


def test_optimal_vp_is_half_beta_sde(registry):
    # math.md 1.7: beta_sde(t) = beta_min + (1 - t)(beta_max - beta_min) and eps* = beta_sde / 2
    entry = registry.get("interpolant", "vp")
    for beta_min, beta_max in [(0.1, 20.0), (0.5, 5.0)]:
        vp = entry.create(entry.params(beta_min=beta_min, beta_max=beta_max))
        beta_sde = beta_min + (1 - T) * (beta_max - beta_min)
        assert torch.allclose(OptimalDiffusion()(T, vp), beta_sde / 2, rtol=1e-10)


def test_optimal_two_sided_formula(two_sided):
    # alpha_eff^2 beta'/beta - (alpha alpha' + gamma gamma'): with alpha = 1-t, beta = t,
    # gamma^2 = t(1-t): alpha_eff^2 = 1-t and alpha alpha' + gamma gamma' = -(1-t) + (1-2t)/2
    expected = (1 - T) / T - (-(1 - T) + (1 - 2 * T) / 2)
    assert torch.allclose(OptimalDiffusion()(T, two_sided), expected, rtol=1e-12)


@pytest.mark.parametrize("name, gamma", [("linear", "zero"), ("linear", "brownian"), ("trig", "brownian"),
                                         ("gvp", None), ("vp", None)])
def test_optimal_drift_identity_on_oracles(registry, name, gamma):
    # math.md 1.5: with a N(0, I) base (one-sided, or two-sided through alpha_eff),
    # b = (beta'/beta) x + eps* s for ANY data; check on a Gaussian and a mixture target.
    entry = registry.get("interpolant", name)
    params = entry.params(gamma=registry.create("gamma", gamma)) if gamma else entry.params()
    interpolant = entry.create(params)
    oracles = [
        GaussianOracle(interpolant, m0=[0.0, 0.0], S0=torch.eye(2), m1=[1.0, -1.0], S1=[[0.5, 0.2], [0.2, 0.8]]),
        MixtureOracle(interpolant, m0=[0.0, 0.0], S0=torch.eye(2), weights=[0.4, 0.6],
                      means=[[-1.0, 0.5], [2.0, 0.0]], covs=[[[0.2, 0.0], [0.0, 0.3]], [[0.4, 0.1], [0.1, 0.2]]]),
    ]
    x = torch.randn(T.shape[0], 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    eps = OptimalDiffusion()(T, interpolant)
    ratio = (interpolant.beta_dot(T) / interpolant.beta(T))[:, None]
    for oracle in oracles:
        b, s = oracle.predict("velocity", x, T), oracle.predict("score", x, T)
        assert torch.allclose(b, ratio * x + eps[:, None] * s, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("cls", [OptimalDiffusion, SigmaDiffusion, LinearDiffusion, DecreasingDiffusion,
                                 IncreasingDecreasingDiffusion])
def test_nonnegative_on_open_interval(cls, linear, two_sided):
    for interpolant in (linear, two_sided):
        assert bool((cls()(T, interpolant) >= 0).all())


@pytest.mark.parametrize("cls, field", [(OptimalDiffusion, "norm"), (SigmaDiffusion, "norm"),
                                        (LinearDiffusion, "norm"), (DecreasingDiffusion, "norm"),
                                        (IncreasingDecreasingDiffusion, "norm"), (ConstantDiffusion, "value")])
@pytest.mark.parametrize("bad", [-1.0, float("inf"), float("nan"), "1", True])
def test_bad_parameters(cls, field, bad):
    with pytest.raises(ValueError, match=f"{field} must be a finite number >= 0, got"):
        cls(**{field: bad})


def test_diffusions_are_frozen():
    import attrs

    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        OptimalDiffusion().norm = 2.0  # type: ignore[misc]


def test_reverse_is_the_clear_name_and_optimal_a_documented_preset_of_it(registry, linear, two_sided):
    """Issue 13: ``optimal`` is the reverse-diffusion eps_rev (math.md 1.3), not the paper's optimal
    constant diffusion; ``reverse`` names it, ``optimal`` keeps working and says what it is."""
    for interpolant in (linear, two_sided):
        torch.testing.assert_close(OptimalDiffusion(norm=0.7)(T, interpolant), ReverseDiffusion(norm=0.7)(T, interpolant))
    # linear path: (1 - t)^2/t + (1 - t), infinite at t = 0
    torch.testing.assert_close(ReverseDiffusion()(T, linear), (1 - T) ** 2 / T + (1 - T))
    assert math.isinf(float(ReverseDiffusion()(torch.zeros(1, dtype=F64), linear)))
    described = registry.get("diffusion", "optimal").description
    assert "reverse" in described and "not the SI paper's optimal diffusion" in described
    # the SDE samplers' default diffusion is the clear name
    sampler = registry.create("sampler", "euler_maruyama")
    assert type(sampler.diffusion) is ReverseDiffusion
