"""The paper's choices (math.md 4.3, 4.5): the encoder output ``tanh(norm(mu(x)))`` with the old one kept
as ``encoder_output = "raw"``; the stochasticity ``g_t = g (1 - t)``; the sampling grid of the time
change ``t(s) = 1 - (1 - s)^c``; classifier-free guidance ``(1 + lambda) h_c - lambda h_null``."""

from __future__ import annotations

import pytest
import torch

import interpgen as ig
from interpgen_plugins.lsi import PARAMETERISATIONS, LSIBridge
from interpgen_plugins.lsi.sampler import time_change_grid
from lsi_helpers import InterpFlowOracle, NormalRows


F64 = torch.float64


Data = NormalRows


def _ae(registry, name, shape, **params):
    spec = ig.part("autoencoder", name, registry, **params)
    return registry.entry_for(spec).create(spec, event_shape=shape, num_classes=None, registry=registry, root=None)


# -- the encoder (math.md 4.3) -----------------------------------------------------------------------------
@pytest.mark.parametrize("name,shape,params", [("dense", (5,), {"latent_dim": 3}),
                                               ("conv", (1, 8, 8), {"channels": 8, "latent_channels": 2})])
def test_encoder_output_is_normalised_then_bounded(registry, name, shape, params):
    ae = _ae(registry, name, shape, **params)
    assert ae.encoder_output == "norm_tanh"  # the paper's, by default
    x = 3.0 + 2.0 * torch.randn(256, *shape, generator=torch.Generator().manual_seed(0))
    raw = ae.mean(x).detach()
    m, c = ae.encode(x)  # a training forward with gradients: the batch's statistics
    assert m.abs().max() < 1 and torch.allclose(c, torch.full_like(m, 0.1))
    dims = [0] + list(range(2, raw.dim()))  # per channel: over the batch and the positions
    expected = (raw - raw.mean(dims, keepdim=True)) / (raw.var(dims, unbiased=False, keepdim=True) + 1e-5).sqrt()
    torch.testing.assert_close(m.detach(), torch.tanh(expected), atol=1e-5, rtol=0)
    # without gradients (or in eval mode) the running statistics are used, and nothing is updated
    running = ae.latent_mean.clone()
    assert not torch.allclose(running, torch.zeros_like(running))  # the training forward moved them
    with torch.no_grad():
        alone = ae.encode(x[:1])[0]
    assert torch.equal(ae.latent_mean, running)
    shape_c = (1, -1) + (1,) * (raw.dim() - 2)
    by_running = torch.tanh((raw[:1] - running.view(shape_c)) / (ae.latent_var.view(shape_c) + 1e-5).sqrt())
    torch.testing.assert_close(alone, by_running, atol=1e-6, rtol=0)
    # the old behaviour: the network's output as is; the noise scale is a standard deviation either way
    old = _ae(registry, name, shape, encoder_output="raw", noise_scale=0.3, **params)
    old.load_state_dict({k: v for k, v in ae.state_dict().items() if k.startswith(("encoder.", "decoder."))},
                        strict=False)
    m_old, c_old = old.encode(x)
    torch.testing.assert_close(m_old, old.mean(x))
    torch.testing.assert_close(m_old.detach(), raw)
    assert torch.allclose(c_old, torch.full_like(m_old, 0.3)) and "latent_mean" not in old.state_dict()


def test_encoder_output_is_checked(registry):
    with pytest.raises(ig.RecipeError, match="encoder_output must be one of 'norm_tanh', 'raw', got 'tanh'"):
        ig.part("autoencoder", "conv", registry, encoder_output="tanh")


# -- the sampler ----------------------------------------------------------------------------------------
def test_time_change_grid():
    assert time_change_grid(0.0, 0.99, 4, 1.0) == [0.0, 0.99 / 4, 0.99 / 2, 0.99 * 3 / 4, 0.99]
    grid = time_change_grid(0.001, 0.99, 10, 2.0)
    s0, s1 = 1 - (1 - 0.001) ** 0.5, 1 - 0.01**0.5
    expected = [1 - (1 - (s0 + (s1 - s0) * k / 10)) ** 2 for k in range(11)]
    assert grid[0] == 0.001 and grid[-1] == 0.99
    assert grid == pytest.approx(expected, abs=1e-15)
    steps = [b - a for a, b in zip(grid[:-1], grid[1:])]
    assert all(a > b for a, b in zip(steps[:-1], steps[1:]))  # c > 1: finer towards the data end
    sampler = ig.part("sampler", "lsi_sde", ig.registry(), steps=10, time_change_c=2.0, last_step_size=0.01)
    assert sampler.grid(0.001) == grid


def test_t_start_moves_the_first_time_but_never_before_the_field_s(registry):
    """``t_start`` starts the grid later (from a draw of the prior); a field singular at 0 keeps its own start."""
    bridge = LSIBridge(sigma=0.8)
    pipe = _lsi(registry, InterpFlowOracle(bridge, torch.zeros(2, dtype=F64), torch.ones(2, dtype=F64)))
    z0 = torch.randn(4, 2, dtype=F64, generator=torch.Generator().manual_seed(0))
    for t_start, first in ((None, 0.0), (0.03, 0.03)):
        sampler = ig.part("sampler", "lsi_sde", registry, steps=5, stochasticity=0.0, t_start=t_start)
        states = sampler.sample(pipe.field(), z0, return_trajectory=True).trajectory
        seen = []
        field = pipe.field()
        field.evaluate = lambda z, t, wants, f=field.evaluate: seen.append(float(t[0])) or f(z, t, wants)
        sampler.sample(field, z0)
        assert seen[0] == pytest.approx(first) and len(states) == 7
    noisy = _lsi(registry, ig.part("network", "mlp", registry, hidden=8, depth=1), noise_head=True)
    field = noisy.field()
    seen = []
    field.evaluate = lambda z, t, wants, f=field.evaluate: seen.append(float(t[0])) or f(z, t, wants)
    ig.part("sampler", "lsi_sde", registry, steps=3, stochasticity=0.0, t_start=0.0).sample(field, z0.float())
    assert seen[0] == pytest.approx(1e-3)  # the noise head's score is singular at 0
    with pytest.raises(ig.RecipeError, match="t_start must be < 1 - last_step_size = 0.99, got 0.995"):
        ig.part("sampler", "lsi_sde", registry, t_start=0.995)


def _lsi(registry, network, **objective):
    return ig.Pipeline(data=Data((2,)), registry=registry, network=network,
                       interpolant=ig.part("interpolant", "lsi_bridge", registry, sigma=0.8),
                       objective=ig.part("objective", "lsi", registry, **objective))


def test_stochasticity_one_minus_t_is_euler_maruyama_with_that_g(registry):
    """``g_t = g (1 - t)``: drift ``h - (1 - g_t^2) sigma^2/2 s``, noise ``g_t sigma sqrt(dt)``, written out."""
    bridge = LSIBridge(sigma=0.8)
    m, s2 = torch.tensor([1.5, -0.5], dtype=F64), torch.tensor([0.3, 1.2], dtype=F64)
    pipe = _lsi(registry, InterpFlowOracle(bridge, m, s2))
    sampler = ig.part("sampler", "lsi_sde", registry, steps=8, stochasticity=0.7, stochasticity_schedule="one_minus_t",
                      time_change_c=1.5, last_step_size=0.02)
    z0 = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    got = sampler.sample(pipe.field(), z0, generator=torch.Generator().manual_seed(1)).x
    gen, z = torch.Generator().manual_seed(1), z0.clone()
    times = time_change_grid(0.0, 0.98, 8, 1.5)
    for t, t_next in zip(times[:-1], times[1:]):
        tb = torch.full((64,), t, dtype=F64)
        h = pipe.field().evaluate(z, tb, ("drift",))[0]
        s = (t * h - z) / (1 - t + 0.64 * t)  # eq. 89
        g = 0.7 * (1 - t)
        dt = t_next - t
        z = z + dt * (h - (1 - g * g) * 0.32 * s) + g * 0.8 * dt**0.5 * torch.randn(z.shape, generator=gen, dtype=F64)
    h = pipe.field().evaluate(z, torch.full((64,), 0.98, dtype=F64), ("drift",))[0]
    torch.testing.assert_close(got, z + 0.02 * h, rtol=1e-10, atol=1e-10)
    # and, with enough steps, it keeps the marginals: the target's moments at the end
    fine = ig.part("sampler", "lsi_sde", registry, steps=100, stochasticity=0.7, stochasticity_schedule="one_minus_t",
                   time_change_c=1.5, last_step_size=0.005)
    wide = fine.sample(pipe.field(), torch.randn(20000, 2, generator=torch.Generator().manual_seed(2), dtype=F64),
                          generator=torch.Generator().manual_seed(3)).x
    assert torch.allclose(wide.mean(0), m, atol=0.04) and torch.allclose(wide.var(0), s2, rtol=0.06)


# -- guidance (eq. 23) ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PARAMETERISATIONS)
def test_paper_guidance_is_ours_with_w_one_plus_lambda(registry, name):
    """``h_cfg = (1 + lambda) h(z, t, c) - lambda h(z, t, null)`` is ``pipe.field(guidance=1 + lambda)`` for every
    parameterisation, the drift, the noise head's score and the velocity alike."""
    pipe = ig.Pipeline(data=Data((2,), num_classes=3), registry=registry,
                       interpolant=ig.part("interpolant", "lsi_bridge", registry, sigma=0.8),
                       network=ig.part("network", "mlp", registry, hidden=16, depth=2),
                       objective=ig.part("objective", "lsi", registry, parameterisation=name, noise_head=True,
                                         label_dropout=0.1))
    pipe.network.double()
    with torch.no_grad():
        for i, p in enumerate(pipe.network.parameters()):
            p.normal_(0, 0.5, generator=torch.Generator().manual_seed(i))
    g = torch.Generator().manual_seed(0)
    z = torch.randn(32, 2, generator=g, dtype=F64)
    t = 0.05 + 0.9 * torch.rand(32, generator=g, dtype=F64)
    labels, null = torch.arange(32) % 3, torch.full((32,), 3)
    lam = 1.5
    wants = ("drift", "score", "velocity")
    guided = pipe.field(labels=labels, guidance=1 + lam).evaluate(z, t, wants)
    cond = pipe.field(labels=labels).evaluate(z, t, wants)
    uncond = pipe.field(labels=null).evaluate(z, t, wants)
    for want, a, c, u in zip(wants, guided, cond, uncond):
        torch.testing.assert_close(a, (1 + lam) * c - lam * u, rtol=1e-9, atol=1e-9, msg=want)
    assert (guided[0] - cond[0]).abs().max() > 1e-3  # guidance did something
