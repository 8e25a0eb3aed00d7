"""The kernel's one SDE loop (interpgen.sde, math.md 1.3) and the two samplers built on it:
``euler_maruyama`` / ``stochastic_heun`` (plugins/samplers/sde.py) and ``lsi_sde`` (plugins/lsi,
math.md 4.5), each checked against a loop written out here with the same noise."""

from __future__ import annotations

import math

import pytest
import torch

import interpgen as ig
from interpgen.sde import euler_maruyama_step, integrate_sde, standard_normal_like
from interpgen_plugins.lsi import LSIBridge, LSISampler
from interpgen_plugins.samplers.diffusions import ConstantDiffusion
from interpgen_plugins.samplers.sde import EulerMaruyamaSampler

F64 = torch.float64


def test_euler_maruyama_matches_a_written_out_loop():
    times = [0.0, 0.1, 0.25, 0.6, 1.0]
    x0 = torch.randn(7, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    drift = lambda t, x: -x * (1 + t[:, None]) + torch.sin(t)[:, None]  # noqa: E731
    rate = lambda t: 0.5 + t  # noqa: E731  sigma^2(t)
    states = [x0]
    got = integrate_sde(euler_maruyama_step(drift, rate), x0, times, generator=torch.Generator().manual_seed(1),
                        states=states)
    gen, x = torch.Generator().manual_seed(1), x0
    for t, t_next in zip(times[:-1], times[1:]):
        xi = torch.randn(x.shape, generator=gen, dtype=F64)
        tt = torch.full((7,), t, dtype=F64)
        x = x + (t_next - t) * drift(tt, x) + math.sqrt((t_next - t) * (0.5 + t)) * xi
    torch.testing.assert_close(got, x, rtol=0, atol=1e-14)
    assert len(states) == 5 and states[-1] is got


def test_without_noise_it_is_euler_and_draws_nothing():
    gen = torch.Generator().manual_seed(2)
    x0 = torch.ones(3, 1, dtype=F64)
    got = integrate_sde(euler_maruyama_step(lambda t, x: -x, lambda t: torch.ones_like(t)), x0, [0.0, 0.5, 1.0],
                        generator=gen, noise=False)
    torch.testing.assert_close(got, x0 * 0.25, rtol=0, atol=0)
    assert torch.equal(torch.randn(3, generator=gen), torch.randn(3, generator=torch.Generator().manual_seed(2)))


def test_ornstein_uhlenbeck_variance():
    """dX = -X dt + sqrt(2) dW from X_0 = 0: Var X_1 = 1 - exp(-2)."""
    x0 = torch.zeros(20000, 1, dtype=F64)
    times = [k / 200 for k in range(201)]
    x = integrate_sde(euler_maruyama_step(lambda t, x: -x, lambda t: torch.full_like(t, 2.0)), x0, times,
                      generator=torch.Generator().manual_seed(3))
    assert abs(x.mean().item()) < 0.03
    assert abs(x.var().item() - (1 - math.exp(-2))) < 0.03


def test_kernel_exports_and_noise_draw():
    assert ig.integrate_sde is integrate_sde and ig.euler_maruyama_step is euler_maruyama_step
    x = torch.zeros(4, 3, dtype=torch.float32)
    xi = standard_normal_like(x, torch.Generator().manual_seed(4))
    assert xi.dtype == torch.float32 and torch.equal(xi, torch.randn(4, 3, generator=torch.Generator().manual_seed(4)))


class LinearField:
    """b = -x + t, s = -x/(1 + t): enough for the SI SDE drift f = b + eps s."""

    def __init__(self, interpolant):
        self.interpolant, self.nfe = interpolant, 0

    def available(self):
        return ("velocity", "score")

    def evaluate(self, x, t, wants):
        self.nfe += 1
        out = {"velocity": -x + t[:, None], "score": -x / (1 + t[:, None])}
        return tuple(out[w] for w in wants)

    def time_range(self, stochastic):
        return (0.0, 1.0)


def test_euler_maruyama_sampler_is_the_kernel_loop(linear):
    sampler = EulerMaruyamaSampler(steps=9, diffusion=ConstantDiffusion(value=0.3), last_step="none", t_eps=0.05)
    x0 = torch.randn(6, 2, generator=torch.Generator().manual_seed(5), dtype=F64)
    result = sampler.sample(LinearField(linear), x0, generator=torch.Generator().manual_seed(6))
    times, _ = sampler.grid_times(0.0, 1.0)
    field = LinearField(linear)

    def f(t, x):
        b, s = field.evaluate(x, t, ("velocity", "score"))
        return b + 0.3 * s

    same = integrate_sde(euler_maruyama_step(f, lambda t: torch.full_like(t, 0.6)), x0, times,
                         generator=torch.Generator().manual_seed(6))
    assert torch.equal(result.x, same) and result.nfe == 9


class BridgeField:
    """An analytic LSI field: drift h(z, t), score and E[z1 | z_t] in closed form."""

    def __init__(self, bridge):
        self.interpolant, self.nfe = bridge, 0

    def available(self):
        return ("drift", "score", "x1")

    def time_range(self, stochastic):
        return (0.0, 1.0)

    def evaluate(self, z, t, wants):
        self.nfe += 1
        tt = t[:, None]
        h = -0.7 * z + torch.sin(3 * tt) + 0.2 * z**2
        out = {"drift": h, "score": -z / (1 + tt), "x1": z + (1 - tt) * h}
        return tuple(out[w] for w in wants)


@pytest.mark.parametrize("schedule", ["linear", "trig"])
@pytest.mark.parametrize("g", [1.0, 0.5, 0.3, 0.0])
def test_lsi_sampler_is_euler_maruyama_on_the_lsi_family(schedule, g):
    """z <- z + [h - (1 - g^2) sigma_t^2 s / 2] dt + g sigma_t sqrt(dt) xi, then E[z1 | z] (math.md 4.5)."""
    bridge = LSIBridge(schedule=schedule, sigma=0.8)
    z0 = torch.randn(16, 2, generator=torch.Generator().manual_seed(7), dtype=F64)
    sampler = LSISampler(steps=12, stochasticity=g, last_step_size=0.05)
    gen = torch.Generator().manual_seed(8)
    result = sampler.sample(BridgeField(bridge), z0, generator=gen, return_trajectory=True)
    assert result.nfe == 13 and result.trajectory.shape == (14, 16, 2)

    ref, z, noise = BridgeField(bridge), z0, torch.Generator().manual_seed(8)
    times = sampler.grid()
    for t, t_next in zip(times[:-1], times[1:]):
        tt = torch.full((16,), t, dtype=F64)
        h, s = ref.evaluate(z, tt, ("drift", "score"))
        var = bridge.diffusion_squared(tt)[:, None]
        z = z + (t_next - t) * (h - (1 - g * g) * var * s / 2)
        if g > 0:
            z = z + g * (var * (t_next - t)).sqrt() * torch.randn(z.shape, generator=noise, dtype=F64)
    z = ref.evaluate(z, torch.full((16,), times[-1], dtype=F64), ("x1",))[0]
    torch.testing.assert_close(result.x, z, rtol=0, atol=1e-12)
    torch.testing.assert_close(result.trajectory[-1], result.x, rtol=0, atol=0)
    # the same draws, and none at all for the ODE (g = 0)
    assert torch.equal(torch.randn(3, generator=gen), torch.randn(3, generator=noise))
