"""The LSI bridge interpolant (math.md 4.2): closed forms, marginals, pinning, score from drift."""

from __future__ import annotations

import math

import pytest
import torch

import interpgen as ig
from interpgen_plugins.lsi import LSIBridge


def _t(*values):
    return torch.tensor(values, dtype=torch.float64)


def test_registered_and_strict(registry):
    assert "lsi_bridge" in registry.names("interpolant")
    assert "lsi_sde" in registry.names("sampler")
    bridge = ig.part("interpolant", "lsi_bridge", registry, schedule="trig", sigma=0.5)
    assert bridge == LSIBridge(schedule="trig", sigma=0.5)
    with pytest.raises(ig.RecipeError, match="schedule must be one of 'linear', 'trig', got 'cubic'"):
        ig.part("interpolant", "lsi_bridge", registry, schedule="cubic")
    with pytest.raises(ig.RecipeError, match="sigma must be a finite number > 0, got -1.0"):
        ig.part("interpolant", "lsi_bridge", registry, sigma=-1.0)


def test_linear_closed_forms():
    sigma = 0.7
    b = LSIBridge(sigma=sigma)
    t = _t(0.0, 0.2, 0.5, 0.9, 1.0)
    assert torch.allclose(b.eta_squared(t), sigma**2 * t * (1 - t), atol=1e-15)
    assert torch.allclose(b.diffusion_squared(t), torch.full_like(t, sigma**2))
    assert torch.allclose(b.gamma_gamma_dot(t), sigma**2 * (1 - 2 * t) / 2)
    z, z1 = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    tt = _t(0.0, 0.2, 0.5, 0.9, 0.99)
    assert torch.allclose(b.bridge_drift(z, z1, tt), (z1 - z) / (1 - tt)[:, None], atol=1e-12)


def test_trig_closed_forms():
    sigma = 1.3
    b = LSIBridge(schedule="trig", sigma=sigma)
    t = _t(0.1, 0.4, 0.8)
    c = sigma**2
    s, co = torch.sin(math.pi * t / 2), torch.cos(math.pi * t / 2)
    assert torch.allclose(b.eta_squared(t), c * s * co)
    assert torch.allclose(b.diffusion_squared(t), torch.full_like(t, c * math.pi / 2))
    z, z1 = torch.randn(3, 2, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)
    expected = -(math.pi / 2) * torch.tan(math.pi * t / 2)[:, None] * z + (math.pi / 2) * z1 / co[:, None]
    assert torch.allclose(b.bridge_drift(z, z1, t), expected, atol=1e-12)


@pytest.mark.parametrize("schedule", ["linear", "trig"])
def test_gamma_gamma_dot_is_half_the_derivative_of_eta_squared(schedule):
    b = LSIBridge(schedule=schedule, sigma=0.8)
    t = torch.linspace(0.05, 0.95, 7, dtype=torch.float64).requires_grad_(True)
    (grad,) = torch.autograd.grad(b.eta_squared(t).sum(), t)
    assert torch.allclose(b.gamma_gamma_dot(t.detach()), grad / 2, atol=1e-12)


def test_linear_bridge_is_the_si_linear_interpolant_with_a_brownian_gamma(registry):
    sigma = 0.6
    b = LSIBridge(sigma=sigma)
    si = ig.part("interpolant", "linear", registry, gamma={"name": "a_brownian", "a": sigma**2})
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    for name in ("alpha", "beta", "gamma", "alpha_dot", "beta_dot", "gamma_gamma_dot"):
        assert torch.allclose(getattr(b, name)(t), getattr(si, name)(t), atol=1e-15), name


@pytest.mark.parametrize("schedule", ["linear", "trig"])
def test_bridge_sde_marginals_and_pinning(schedule):
    """dz = h_phi dt + sigma_t dW from z0 hits N(kappa z1 + nu z0, C kappa nu) and pins z1 (math.md 4.2)."""
    sigma = 0.9
    b = LSIBridge(schedule=schedule, sigma=sigma)
    gen = torch.Generator().manual_seed(0)
    n, steps = 10000, 400
    z0 = torch.tensor([1.0, -2.0], dtype=torch.float64)
    z1 = torch.tensor([-0.5, 3.0], dtype=torch.float64)
    z = z0.expand(n, 2).clone()
    checks = {100: None, 200: None, 300: None}
    dt = 1.0 / steps
    for k in range(steps):
        t = torch.full((n,), k * dt, dtype=torch.float64)
        var = b.diffusion_squared(t)[:, None]
        z = z + dt * b.bridge_drift(z, z1.expand(n, 2), t)
        if k < steps - 1:
            z = z + (var * dt).sqrt() * torch.randn(n, 2, generator=gen, dtype=torch.float64)
        if k + 1 in checks:
            checks[k + 1] = z.clone()
    for k, zk in checks.items():
        t = _t(k * dt)
        mean = b.kappa(t) * z1 + b.nu(t) * z0
        var = (sigma**2 * b.kappa(t) * b.nu(t)).item()
        assert torch.allclose(zk.mean(0), mean, atol=0.03), (k, zk.mean(0), mean)
        assert torch.allclose(zk.var(0), torch.full((2,), var, dtype=torch.float64), rtol=0.05), (k, zk.var(0), var)
    assert (z - z1).abs().max() < (1e-9 if schedule == "linear" else 0.05)


@pytest.mark.parametrize("schedule", ["linear", "trig"])
def test_x1_and_score_from_the_exact_drift_of_gaussian_data(schedule):
    """z0 ~ N(0, 1), z1 ~ N(m, s^2): E[z1|z_t] and the score recovered from h = E[h_phi|z_t] (math.md 4.5)."""
    b = LSIBridge(schedule=schedule, sigma=0.8)
    m, s2 = 1.5, 0.3
    t = torch.linspace(0.05, 0.95, 9, dtype=torch.float64)
    z = torch.linspace(-2, 3, 9, dtype=torch.float64)[:, None]
    k, v = b.kappa(t)[:, None], b.nu(t)[:, None]
    var_t = v**2 + k**2 * s2 + b.eta_squared(t)[:, None]
    x1 = m + k * s2 * (z - k * m) / var_t
    h = b.bridge_drift(z, x1, t)  # affine in z1, so E[h_phi | z_t] = h_phi(z, E[z1 | z_t])
    assert torch.allclose(b.x1_from_drift(h, z, t), x1, atol=1e-12)
    assert torch.allclose(b.score_from_drift(h, z, t), -(z - k * m) / var_t, atol=1e-12)
