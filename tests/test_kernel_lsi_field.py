"""An lsi pipeline's field is the old LatentField (math.md 4.3, 4.5), and log-likelihoods of latent models.

The lsi objective reads the network's ``interpflow`` output ``h^`` through the bridge's
``convert``; on random tensors it must give exactly the formulas the removed ``LatentField`` used:

    h        = (h^ - sqrt(t) z) / sqrt(1 - t)
    x1       = z + (1 - t) h
    score    = (t h - z) / (1 - t + sigma^2 t)            (standard Gaussian prior)
    velocity = h - sigma^2 / 2 * score

``Pipeline.log_likelihood`` of a model in an autoencoder's latent space is ``log p(z)`` of latents
(``data_space=False``); the data's density is refused (the decoder makes it an ELBO).
"""

from __future__ import annotations

import pytest
import torch

import interpgen as ig
from lsi_helpers import InterpFlowOracle, NormalRows


SIGMA = 0.7
F64 = torch.float64


Data = NormalRows


def lsi_pipe(registry, *, prior="gaussian", num_classes=None, t_eps=0.0, autoencoder="dense", **objective):
    pipe = ig.Pipeline(data=Data(num_classes=num_classes), registry=registry,
                       prior=ig.part("prior", prior, registry),
                       autoencoder=ig.part("autoencoder", autoencoder, registry),
                       interpolant=ig.part("interpolant", "lsi_bridge", registry, sigma=SIGMA),
                       network=ig.part("network", "mlp", registry, hidden=16, depth=2),
                       objective=ig.part("objective", "lsi", registry, t_eps=t_eps, **objective))
    pipe.network.double()
    with torch.no_grad():  # weights far from zero, so the comparison is not trivially met
        for i, p in enumerate(pipe.network.parameters()):
            p.normal_(0, 0.5, generator=torch.Generator().manual_seed(i))
    return pipe


def old_latent_field(h_hat, z, t):
    """The removed LatentField's formulas, written out."""
    tt = t[:, None]
    h = (h_hat - tt.sqrt() * z) / (1 - tt).sqrt()
    x1 = z + (1 - tt) * h
    score = (tt * h - z) / (1 - tt + SIGMA**2 * tt)
    velocity = h - SIGMA**2 / 2 * score
    return {"drift": h, "x1": x1, "score": score, "velocity": velocity}


def _random_zt(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = 2.0 * torch.randn(64, *shape, generator=g, dtype=F64)
    t = 0.02 + 0.96 * torch.rand(64, generator=g, dtype=F64)
    return z, t


@pytest.mark.parametrize("autoencoder", ["dense", "identity"])
def test_field_equals_the_old_latent_field(registry, autoencoder):
    pipe = lsi_pipe(registry, autoencoder=autoencoder)
    shape = pipe.latent_shape
    assert shape == ((2,) if autoencoder == "dense" else (3,))
    z, t = _random_zt(shape)
    field = pipe.field()
    assert set(field.available()) >= {"drift", "x1", "score", "velocity"}
    got = dict(zip(("drift", "x1", "score", "velocity"), field.evaluate(z, t, ("drift", "x1", "score", "velocity"))))
    assert field.nfe == 1  # one network run gives all four
    with torch.no_grad():
        expected = old_latent_field(pipe.network(z, t), z, t)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-12, atol=1e-12, msg=name)
    assert expected["drift"].abs().max() > 1.0  # not a trivial field


def test_field_time_range_stops_short_of_one(registry):
    """h is singular at t = 1: samplers stop at 1 - max(t_eps, 1e-3), as LatentField did."""
    assert lsi_pipe(registry).field().time_range(False) == (0.0, pytest.approx(1 - 1e-3))
    assert lsi_pipe(registry, t_eps=0.01).field().time_range(True) == (0.0, pytest.approx(0.99))


def test_non_gaussian_prior_without_noise_head_gives_drift_and_x1_only(registry):
    pipe = lsi_pipe(registry, prior="uniform", noise_head=False)
    z, t = _random_zt(pipe.latent_shape, seed=1)
    field = pipe.field()
    assert "score" not in field.available() and "velocity" not in field.available()
    drift, x1 = field.evaluate(z, t, ("drift", "x1"))
    with torch.no_grad():
        expected = old_latent_field(pipe.network(z, t), z, t)
    torch.testing.assert_close(drift, expected["drift"], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(x1, expected["x1"], rtol=1e-12, atol=1e-12)
    for want in ("score", "velocity"):
        with pytest.raises(ig.ConversionError, match=f"non-Gaussian prior and no noise head cannot give '{want}'"):
            field.evaluate(z, t, (want,))


def test_guidance_guides_the_interpflow_output(registry):
    """h^_w = h^_null + w (h^_y - h^_null), then the same formulas (all affine in h^)."""
    pipe = lsi_pipe(registry, num_classes=2)
    z, t = _random_zt(pipe.latent_shape, seed=2)
    labels = torch.arange(64) % 2
    w = 2.5
    got = pipe.field(labels=labels, guidance=w).evaluate(z, t, ("drift", "x1", "score", "velocity"))
    with torch.no_grad():
        cond, null = pipe.network(z, t, labels), pipe.network(z, t, torch.full_like(labels, 2))
        expected = old_latent_field(null + w * (cond - null), z, t)
    for name, value in zip(("drift", "x1", "score", "velocity"), got):
        torch.testing.assert_close(value, expected[name], rtol=1e-10, atol=1e-10, msg=name)


def test_log_likelihood_of_a_latent_model(registry):
    """data_space=True is refused with a message; data_space=False gives log p(z) of the latent
    model: with the exact field of Gaussian latents it is the Gaussian marginal of the bridge at the
    field's last time (math.md 1.9, 4.5)."""
    m = torch.tensor([1.5, -0.5], dtype=F64)
    s2 = torch.tensor([0.3, 1.2], dtype=F64)
    bridge = ig.part("interpolant", "lsi_bridge", registry, sigma=0.8)
    pipe = ig.Pipeline(data=Data(), registry=registry, autoencoder=ig.part("autoencoder", "dense", registry),
                       interpolant=bridge, network=InterpFlowOracle(bridge, m, s2),
                       objective=ig.part("objective", "lsi", registry))
    assert pipe.latent_shape == (2,) and pipe.event_shape == (3,)
    z = torch.randn(16, 2, generator=torch.Generator().manual_seed(0), dtype=F64) + m
    with pytest.raises(ValueError, match="pass latents z with data_space=False"):
        pipe.log_likelihood(torch.zeros(4, 3))
    rk4 = ig.part("sampler", "rk4", registry, steps=200)
    logp = pipe.log_likelihood(z, data_space=False, solver=rk4)
    assert logp.shape == (16,) and torch.isfinite(logp).all()
    t_end = torch.tensor([pipe.field().time_range(False)[1]], dtype=F64)
    k, v = pipe.interpolant.kappa(t_end), pipe.interpolant.nu(t_end)
    var = v**2 + k**2 * s2 + pipe.interpolant.eta_squared(t_end)
    exact = torch.distributions.Normal(k * m, var.sqrt()).log_prob(z).sum(1)
    torch.testing.assert_close(logp, exact, rtol=0, atol=2e-4)
