"""The four LSI parameterisations (math.md 4.3, table; 4.5 for the sampler conversions).

* algebra: ``h(out) - h_phi = J(t) (out - T)`` sample by sample, ``J^2 / sigma^2`` is the exact weight,
  and ``output`` inverts ``drift``;
* training reduces to observation-space SI with the identity autoencoder: each loss is SI's regression of
  ``b + (sigma^2/2) s`` (velocity target + sigma^2/2 times the score target) weighted by ``1/J^2``, and
  with ``weighting = "exact"`` all four are the same KL integrand ``|h - T_SI|^2 / (2 sigma^2)``;
* sampling reduces to observation-space SI: ``lsi_sde`` on the exact Gaussian field written in each
  parameterisation gives SI's Euler-Maruyama samples on the velocity and score of tests/oracles.py
  (an independent implementation of math.md 8a), for the ODE and an SDE.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import interpgen as ig
from interpgen.protocols import Batch
from interpgen_plugins.lsi import PARAMETERISATIONS, LSIBridge, parameterisations as P
from oracles import GaussianOracle
from lsi_helpers import NormalRows

F64 = torch.float64
SIGMA = 0.7


def Data(shape=(2,)):
    return NormalRows(shape)


def _draws(seed=0, n=64):
    g = torch.Generator().manual_seed(seed)
    z0, z1, eps = (torch.randn(n, 3, generator=g, dtype=F64) for _ in range(3))
    t = 0.01 + 0.98 * torch.rand(n, generator=g, dtype=F64)
    return z0, z1, eps, t


def _jacobian(name, t):
    s = P.total_noise_scale(t, SIGMA)
    return {"interpflow": 1 / (1 - t).sqrt(), "origflow": 1 / (1 - t).sqrt(), "denoising": 1 / (1 - t),
            "noisepred": -s / (t * (1 - t))}[name]


@pytest.mark.parametrize("name", PARAMETERISATIONS)
def test_drift_error_is_J_times_output_error(name):
    bridge = LSIBridge(sigma=SIGMA)
    z0, z1, eps, t = _draws()
    zt = bridge.interpolate(z0, z1, eps, t)
    target = P.target(name, z0, z1, eps, zt, t, SIGMA)
    out = torch.randn(zt.shape, generator=torch.Generator().manual_seed(9), dtype=F64)
    h_phi = bridge.bridge_drift(zt, z1, t)
    lhs = P.drift(name, out, zt, t, SIGMA) - h_phi
    torch.testing.assert_close(lhs, _jacobian(name, t)[:, None] * (out - target), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(P.exact_weight(name, t, SIGMA), _jacobian(name, t) ** 2 / SIGMA**2, rtol=1e-12, atol=0)
    # the target is the output whose drift is the bridge drift, and output() inverts drift()
    torch.testing.assert_close(P.output(name, h_phi, zt, t, SIGMA), target, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(P.drift(name, P.output(name, h_phi, zt, t, SIGMA), zt, t, SIGMA), h_phi,
                               rtol=1e-9, atol=1e-9)
    # NoisePred's z0' is what the paper's z_t = t z1 + s_t z0' needs; it is eps at t = 1 and z0 at t = 0
    if name == "noisepred":
        torch.testing.assert_close(zt, t[:, None] * z1 + P.total_noise_scale(t, SIGMA)[:, None] * target)
        ends = torch.tensor([0.0, 1.0], dtype=F64)
        torch.testing.assert_close(P.standard_noise(z0[:2], eps[:2], ends, SIGMA), torch.stack([z0[0], eps[1]]))


def _pipe(registry, name, **objective):
    return ig.Pipeline(data=Data(), registry=registry,
                       interpolant=ig.part("interpolant", "lsi_bridge", registry, sigma=SIGMA),
                       network=ig.part("network", "mlp", registry, hidden=16, depth=2),
                       objective=ig.part("objective", "lsi", registry, parameterisation=name, reconstruction_weight=0.0,
                                         beta=2.0, **objective))


@pytest.mark.parametrize("weighting", ["constant", "exact"])
@pytest.mark.parametrize("name", PARAMETERISATIONS)
def test_identity_autoencoder_training_is_si(registry, name, weighting):
    """Identity autoencoder, no reconstruction: the loss is SI's regression of ``b + (sigma^2/2) s`` on the
    linear interpolant with gamma = sigma sqrt(t(1-t)), weighted by ``1/J^2`` (constant) or ``1/sigma^2``
    (exact: the ELBO's KL integrand, the same for all four)."""
    extra = {"weighting": "exact", "t_eps": 0.02} if weighting == "exact" else {}
    pipe = _pipe(registry, name, **extra)
    pipe.network.double()
    si = ig.part("interpolant", "linear", registry, gamma={"name": "a_brownian", "a": SIGMA**2})
    x = torch.randn(128, 2, dtype=F64, generator=torch.Generator().manual_seed(1))
    loss = pipe.loss(Batch(x), generator=torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)  # the documented draw order
    torch.randn(x.shape, generator=g, dtype=F64)  # encoder noise (scale 0)
    x0 = torch.randn(x.shape, generator=g, dtype=F64)
    t = torch.rand(128, generator=g, dtype=F64)
    if weighting == "exact":
        t = t.clamp(max=0.98, min=0.02 if name == "noisepred" else 0.0)
    z = torch.randn(x.shape, generator=g, dtype=F64)
    xt = si.interpolate(x0, x, z, t)
    target_si = (si.target("velocity", x0, x, z, t, gaussian_base=False)
                 + SIGMA**2 / 2 * si.target("score", x0, x, z, t, gaussian_base=False))
    with torch.no_grad():
        h = P.drift(name, pipe.network(xt, t), xt, t, SIGMA)
    weight = 1 / SIGMA**2 if weighting == "exact" else 1 / _jacobian(name, t) ** 2
    expected = (weight * (h - target_si).pow(2).mean(1)).mean()  # beta = 2 cancels the 1/2
    torch.testing.assert_close(loss.detach(), expected, rtol=1e-9, atol=1e-12)


class LSIOracle(nn.Module):
    """The exact Gaussian field of tests/oracles.py, written as parameterisation ``name``'s output:
    ``h = b + (sigma^2/2) s`` (math.md 4.7)."""

    def __init__(self, oracle, name):
        super().__init__()
        self.oracle, self.name = oracle, name

    def forward(self, z, t, labels=None):
        zz, tt = z.to(F64), t.to(F64)
        h = self.oracle.predict("velocity", zz, tt) + SIGMA**2 / 2 * self.oracle.predict("score", zz, tt)
        return P.output(self.name, h, zz, tt, SIGMA).to(z.dtype)


class SIOracle(nn.Module):
    def __init__(self, oracle):
        super().__init__()
        self.oracle = oracle

    def forward(self, x, t, labels=None):
        xx, tt = x.to(F64), t.to(F64)
        return torch.cat([self.oracle.predict("velocity", xx, tt), self.oracle.predict("score", xx, tt)], 1).to(x.dtype)


@pytest.mark.parametrize("g", [0.0, 0.6])
@pytest.mark.parametrize("name", PARAMETERISATIONS)
def test_identity_autoencoder_sampling_is_si(registry, name, g):
    si_path = ig.part("interpolant", "linear", registry, gamma={"name": "a_brownian", "a": SIGMA**2})
    oracle = GaussianOracle(si_path, torch.zeros(2), torch.eye(2), torch.tensor([1.5, -0.5]),
                            torch.diag(torch.tensor([0.3, 1.2])))
    lsi = ig.Pipeline(data=Data(), registry=registry, network=LSIOracle(oracle, name),
                      interpolant=ig.part("interpolant", "lsi_bridge", registry, sigma=SIGMA),
                      objective=ig.part("objective", "lsi", registry, parameterisation=name))
    si = ig.Pipeline(data=Data(), registry=registry, interpolant=si_path, network=SIOracle(oracle),
                     objective=ig.part("objective", "si", registry, prediction="velocity+score", t_eps=0.0))
    start = 1e-3 if name == "noisepred" else 0.0  # NoisePred's drift divides by t: its field starts after 0
    assert lsi.field().time_range(False)[0] == pytest.approx(start)
    diffusion = {"name": "constant", "value": g * g * SIGMA**2 / 2} if g > 0 else {"name": "zero"}
    si_sampler = ig.part("sampler", "euler_maruyama", registry, steps=25, diffusion=diffusion, last_step="tweedie",
                         last_step_size=0.01, t_eps=start)
    lsi_sampler = ig.part("sampler", "lsi_sde", registry, steps=25, stochasticity=g, last_step_size=0.01)
    a = lsi.sample(512, sampler=lsi_sampler, seed=3, data_space=False)
    b = si.sample(512, sampler=si_sampler, seed=3, data_space=False)
    assert a.nfe == b.nfe == 26
    torch.testing.assert_close(a.x, b.x, rtol=1e-4, atol=2e-4)
    assert a.x.abs().max() > 1.0
