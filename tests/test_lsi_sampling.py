"""LSI sampling (math.md 4.5, 4.6): the SDE family keeps the marginals, equals SI's samplers on the
same network, needs a Gaussian prior below stochasticity 1, decodes once, and its FLOPs account."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import interpgen as ig
from interpgen.fields import ModelField
from interpgen_plugins.eval.flops import count_flops, flops_report
from interpgen_plugins.lsi import LSIBridge, LSISampler
from lsi_helpers import InterpFlowOracle, NormalRows


def Data(shape=(3,)):
    return NormalRows(shape, affine=(1.0, 2.0))  # data space: 1 + 2 x


def lsi_field(network, bridge, *, gaussian_prior, t_eps=0.0):
    """The field an lsi pipeline gives samplers: the network's ``interpflow`` output read by the bridge."""
    return ModelField(network, bridge, ("interpflow",), gaussian_base=gaussian_prior, time_range=(0.0, 1.0 - t_eps))


def _lsi_parts(registry, **bridge):
    return {"interpolant": ig.part("interpolant", "lsi_bridge", registry, **bridge),
            "objective": ig.part("objective", "lsi", registry)}


@pytest.mark.parametrize("g", [1.0, 0.5, 0.0])
def test_sde_family_keeps_the_marginals(g):
    bridge = LSIBridge(sigma=0.8)
    m = torch.tensor([1.5, -0.5], dtype=torch.float64)
    s2 = torch.tensor([0.3, 1.2], dtype=torch.float64)
    field = lsi_field(InterpFlowOracle(bridge, m, s2), bridge, gaussian_prior=True, t_eps=1e-3)
    gen = torch.Generator().manual_seed(0)
    z0 = torch.randn(20000, 2, generator=gen, dtype=torch.float64)
    result = LSISampler(steps=200, stochasticity=g, last_step_size=0.002).sample(field, z0, generator=gen)
    assert result.nfe == 201
    assert torch.allclose(result.x.mean(0), m, atol=0.03)
    assert torch.allclose(result.x.var(0), s2, rtol=0.05)


def _lsi_and_si(registry, sigma):
    lsi = ig.Pipeline(data=Data(), prior=ig.part("prior", "gaussian", registry), **_lsi_parts(registry, sigma=sigma),
                      network=ig.part("network", "mlp", registry, hidden=16, depth=2), registry=registry)
    with torch.no_grad():  # a network far from zero, so the check is not trivially met
        for p in lsi.network.parameters():
            p.normal_(0, 0.5, generator=torch.Generator().manual_seed(p.numel()))

    class VelocityScore(nn.Module):
        """SI's two heads (b, s) read off the LSI network (math.md 4.5)."""

        def forward(self, x, t, labels=None):
            field = lsi_field(lsi.network, lsi.interpolant, gaussian_prior=True)
            return torch.cat(field.evaluate(x, t, ("velocity", "score")), dim=1)

    si = ig.Pipeline(data=Data(), prior=ig.part("prior", "gaussian", registry),
                     interpolant=ig.part("interpolant", "linear", registry, gamma={"name": "a_brownian", "a": sigma**2}),
                     network=VelocityScore(),
                     objective=ig.part("objective", "si", registry, prediction="velocity+score", t_eps=0.0),
                     registry=registry)
    return lsi, si


@pytest.mark.parametrize("g", [1.0, 0.5, 0.0])
def test_same_samples_as_si_with_identity_autoencoder(registry, g):
    """lsi_sde with stochasticity g is SI's Euler-Maruyama with eps = g^2 sigma^2 / 2 and a Tweedie
    last step on the linear interpolant with gamma = sigma sqrt(t(1-t)), same network and seeds."""
    sigma = 0.8
    lsi, si = _lsi_and_si(registry, sigma)
    diffusion = {"name": "constant", "value": g * g * sigma**2 / 2} if g > 0 else {"name": "zero"}
    si_sampler = ig.part("sampler", "euler_maruyama", registry, steps=20, diffusion=diffusion, last_step="tweedie",
                         last_step_size=0.01, t_eps=0.0)
    lsi_sampler = ig.part("sampler", "lsi_sde", registry, steps=20, stochasticity=g, last_step_size=0.01)
    a = lsi.sample(256, sampler=lsi_sampler, seed=3, ema=False, data_space=False)
    b = si.sample(256, sampler=si_sampler, seed=3, ema=False, data_space=False)
    assert a.nfe == b.nfe == 21
    a, b = a.x, b.x
    assert a.abs().max() > 1.0
    assert torch.allclose(a, b, atol=2e-5, rtol=1e-5)


def test_non_gaussian_prior_without_noise_head_needs_stochasticity_one(registry):
    parts = {**_lsi_parts(registry), "objective": ig.part("objective", "lsi", registry, noise_head=False)}
    pipe = ig.Pipeline(data=Data(), prior=ig.part("prior", "uniform", registry), **parts,
                       registry=registry, network=ig.part("network", "mlp", registry, hidden=8, depth=1))
    x = pipe.sample(16, sampler=ig.part("sampler", "lsi_sde", registry, steps=4), data_space=False).x
    assert x.shape == (16, 3) and torch.isfinite(x).all()
    with pytest.raises(ValueError, match="stochasticity=0.5 \\(constant\\) needs the score .* noise head"):
        pipe.sample(4, sampler=ig.part("sampler", "lsi_sde", registry, steps=4, stochasticity=0.5))
    with pytest.raises(ValueError, match="needs the score"):
        pipe.sample(4, sampler=ig.part("sampler", "lsi_sde", registry, steps=4, stochasticity_schedule="one_minus_t"))
    with pytest.raises(ValueError, match="needs the score"):
        pipe.sample(4, sampler=ig.part("sampler", "euler_maruyama", registry, steps=4))
    # left to decide, the objective trains the noise head for this prior: every sampler works
    auto = ig.Pipeline(data=Data(), prior=ig.part("prior", "uniform", registry), **_lsi_parts(registry),
                       registry=registry, network=ig.part("network", "mlp", registry, hidden=8, depth=1))
    assert auto.objective.noise_head and auto.objective.heads == 2
    for sampler in (ig.part("sampler", "lsi_sde", registry, steps=4, stochasticity=0.0),
                    ig.part("sampler", "euler_maruyama", registry, steps=4), ig.part("sampler", "heun", registry, steps=2)):
        assert torch.isfinite(auto.sample(8, sampler=sampler, data_space=False).x).all()


def test_sampling_decodes_once_and_never_encodes(registry):
    pipe = ig.Pipeline(data=Data(), autoencoder=ig.part("autoencoder", "dense", registry, hidden=8),
                       network=ig.part("network", "mlp", registry, hidden=8, depth=1), registry=registry,
                       **_lsi_parts(registry))
    calls = []
    pipe.autoencoder.encode = lambda x: (_ for _ in ()).throw(AssertionError("encoder ran while sampling"))
    decode = pipe.autoencoder.decode
    pipe.autoencoder.decode = lambda z: calls.append(z.shape) or decode(z)
    sampler = ig.part("sampler", "lsi_sde", registry, steps=5)
    out = pipe.sample(10, sampler=sampler, seed=4)
    x, nfe = out.x, out.nfe
    assert calls == [(10, 2)] and nfe == 6 and x.shape == (10, 3)
    latents = pipe.sample(10, sampler=sampler, seed=4, decode=False)
    z = latents.x
    assert calls == [(10, 2)] and latents.nfe == 6 and z.shape == (10, 2)  # decode=False: no decoder run
    assert torch.allclose(x, 1.0 + 2.0 * decode(z))  # data space: shift + scale * model space
    assert torch.allclose(pipe.sample(10, sampler=sampler, seed=4, data_space=False).x, decode(z))
    # an SI ODE sampler runs on the latent field too (Gaussian prior)
    assert pipe.sample(7, sampler=ig.part("sampler", "heun", registry, steps=3)).x.shape == (7, 3)


def test_flops_accounting(registry):
    pipe = ig.Pipeline(data=Data(), autoencoder=ig.part("autoencoder", "dense", registry, hidden=8, depth=1),
                       network=ig.part("network", "mlp", registry, hidden=8, depth=1), registry=registry,
                       sampler=ig.part("sampler", "lsi_sde", registry), **_lsi_parts(registry))
    report = flops_report(pipe, steps=10)
    assert report["encoder"] == 2 * (3 * 8 + 8 * 2)  # two Linear layers, 2 FLOPs per multiply-add
    assert report["decoder"] == 2 * (2 * 8 + 8 * 3)
    latent = count_flops(lambda: pipe.network(torch.zeros(1, 2), torch.zeros(1)))
    assert report["latent_model"] == latent > 0
    assert report["nfe"] == 11
    assert report["sampling_per_sample"] == 11 * latent + report["decoder"]
    assert report["parameters_total"] == sum(p.numel() for p in pipe.network.parameters()) + sum(
        p.numel() for p in pipe.autoencoder.parameters())
    plain = ig.Pipeline(data=Data(), network=ig.part("network", "mlp", registry, hidden=8, depth=1), registry=registry)
    plain_report = flops_report(plain, steps=10, sampler=ig.part("sampler", "euler", registry))
    assert plain_report["encoder"] == plain_report["decoder"] == 0
    assert plain_report["sampling_per_sample"] == 10 * plain_report["latent_model"]
