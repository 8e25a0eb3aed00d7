"""The LSI objective (math.md 4.3, 4.4): InterpFlow target, equality with observation-space SI,
gradients to the encoder, stop-gradient, and the training modes."""

from __future__ import annotations

import pytest
import torch

import interpgen as ig
from interpgen_plugins.lsi.objective import LSIObjective, interpflow_target, lsi_times
from interpgen.protocols import Batch
from lsi_helpers import NormalRows


Data = NormalRows


def _latent_pipe(registry, *, autoencoder="identity", shape=(3,), sigma=0.7, **latent):
    return ig.Pipeline(data=Data(shape), autoencoder=ig.part("autoencoder", autoencoder, registry)
                       if isinstance(autoencoder, str) else autoencoder,
                       interpolant=ig.part("interpolant", "lsi_bridge", registry, sigma=sigma),
                       network=ig.part("network", "mlp", registry, hidden=16, depth=2),
                       objective=ig.part("objective", "lsi", registry, **latent), registry=registry)


def test_time_change():
    gen = torch.Generator().manual_seed(3)
    t = lsi_times(1000, 2.5, generator=gen, dtype=torch.float64)
    s = torch.rand(1000, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert torch.allclose(t, 1 - (1 - s) ** 2.5, atol=1e-15)
    assert torch.equal(lsi_times(5, 1.0, generator=torch.Generator().manual_seed(1)),
                       torch.rand(5, generator=torch.Generator().manual_seed(1)))
    capped = lsi_times(1000, 0.2, t_eps=0.01, generator=gen)
    assert capped.max() <= 0.99


def test_interpflow_target_ends_and_identity():
    """T = sqrt(1-t) h_phi + sqrt(t) z_t; T = z1 - z0 at t = 0 and z1 - sigma eps at t = 1 (math.md 4.3)."""
    from interpgen_plugins.lsi import LSIBridge

    sigma = 0.7
    b = LSIBridge(sigma=sigma)
    g = torch.Generator().manual_seed(0)
    z0, z1, eps = (torch.randn(6, 4, generator=g, dtype=torch.float64) for _ in range(3))
    t = torch.tensor([0.0, 0.1, 0.4, 0.7, 0.95, 1.0], dtype=torch.float64)
    zt = b.interpolate(z0, z1, eps, t)
    target = interpflow_target(z0, z1, eps, zt, t, sigma)
    assert torch.allclose(target[0], z1[0] - z0[0], atol=1e-15)
    assert torch.allclose(target[-1], z1[-1] - sigma * eps[-1], atol=1e-15)
    inner = t[1:-1, None]
    h_phi = b.bridge_drift(zt[1:-1], z1[1:-1], t[1:-1])
    assert torch.allclose(target[1:-1], (1 - inner).sqrt() * h_phi + inner.sqrt() * zt[1:-1], atol=1e-12)


def test_identity_lsi_loss_is_the_si_drift_loss(registry):
    """Identity autoencoder, no reconstruction: the LSI loss equals (1-t)/2 ||h - T_SI||^2 with T_SI
    SI's own target of b + (sigma^2/2) s on the linear interpolant with gamma = sigma sqrt(t(1-t))
    (velocity target + sigma^2/2 times the score target -z/gamma), per sample, from the same draws."""
    sigma = 0.7
    pipe = _latent_pipe(registry, sigma=sigma, reconstruction_weight=0.0, beta=2.0)
    pipe.network.double()
    si = ig.part("interpolant", "linear", registry, gamma={"name": "a_brownian", "a": sigma**2})
    x = torch.randn(64, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    loss = pipe.loss(Batch(x), generator=torch.Generator().manual_seed(7))

    g = torch.Generator().manual_seed(7)  # replay the documented draw order
    torch.randn(x.shape, generator=g, dtype=torch.float64)  # encoder noise (scale 0 for identity)
    x0 = torch.randn(x.shape, generator=g, dtype=torch.float64)  # gaussian prior
    t = torch.rand(64, generator=g, dtype=torch.float64)
    z = torch.randn(x.shape, generator=g, dtype=torch.float64)
    xt = si.interpolate(x0, x, z, t)
    target = (si.target("velocity", x0, x, z, t, gaussian_base=False)
              + sigma**2 / 2 * si.target("score", x0, x, z, t, gaussian_base=False))
    with torch.no_grad():
        h = (pipe.network(xt, t) - t.sqrt()[:, None] * xt) / (1 - t).sqrt()[:, None]
    expected = ((1 - t) * (h - target).pow(2).mean(1)).mean()  # beta = 2 cancels the 1/2
    assert torch.allclose(loss.detach(), expected, rtol=1e-9)


def _encoder_grads(pipe):
    return [p.grad for p in pipe.autoencoder.encoder.parameters()]


def test_gradients_reach_the_encoder_when_beta_positive(registry):
    pipe = _latent_pipe(registry, autoencoder=ig.part("autoencoder", "dense", registry, hidden=8),
                        reconstruction_weight=0.0, beta=0.5)
    pipe.loss(Batch(torch.randn(16, 3)), generator=torch.Generator().manual_seed(0)).backward()
    grads = _encoder_grads(pipe)
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is None for p in pipe.autoencoder.decoder.parameters())  # no reconstruction term


def test_stop_gradient_stops_gradients_to_the_encoder(registry):
    ae = ig.part("autoencoder", "dense", registry, hidden=8)
    x = torch.randn(16, 3)
    stopped = _latent_pipe(registry, autoencoder=ae, reconstruction_weight=0.0, stop_gradient=True)
    stopped.loss(Batch(x), generator=torch.Generator().manual_seed(0)).backward()
    assert all(g is None for g in _encoder_grads(stopped))
    assert any(p.grad is not None for p in stopped.network.parameters())
    # with the reconstruction on, the encoder's gradient is the reconstruction's alone
    both = _latent_pipe(registry, autoencoder=ae, stop_gradient=True)
    recon_only = _latent_pipe(registry, autoencoder=ae, stop_gradient=True, beta=1e-30)
    for pipe in (both, recon_only):
        pipe.loss(Batch(x), generator=torch.Generator().manual_seed(0)).backward()
    for a, b in zip(_encoder_grads(both), _encoder_grads(recon_only)):
        assert torch.allclose(a, b, atol=1e-7)


def test_frozen_mode_trains_only_the_latent_model(registry):
    pipe = _latent_pipe(registry, autoencoder=ig.part("autoencoder", "dense", registry, hidden=8),
                        encoder_training="frozen")
    assert all(not p.requires_grad for p in pipe.autoencoder.parameters())
    assert pipe.trainable_modules()[0] is pipe.network
    pipe.loss(Batch(torch.randn(8, 3)), generator=torch.Generator().manual_seed(0)).backward()
    assert all(p.grad is None for p in pipe.autoencoder.parameters())
    # the frozen autoencoder is saved with checkpoints: a model built from another seed gets it back
    other = ig.Pipeline(data=Data(), autoencoder=ig.part("autoencoder", "dense", registry, hidden=8),
                        interpolant=ig.part("interpolant", "lsi_bridge", registry, sigma=0.7),
                        network=ig.part("network", "mlp", registry, hidden=16, depth=2),
                        objective=ig.part("objective", "lsi", registry, encoder_training="frozen"),
                        registry=registry, seed=1)
    before = [p.clone() for p in other.autoencoder.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(before, pipe.autoencoder.parameters()))
    other.load_state_dict(pipe.state_dict())
    for a, b in zip(other.autoencoder.parameters(), pipe.autoencoder.parameters()):
        assert torch.equal(a, b)


def test_pretrain_then_freeze_switches_on_the_step(registry):
    pipe = _latent_pipe(registry, autoencoder=ig.part("autoencoder", "dense", registry, hidden=8),
                        encoder_training="pretrain_then_freeze", pretrain_steps=5)
    x = torch.randn(8, 3)
    loss = pipe.loss(Batch(x), generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    mean, c = pipe.autoencoder.encode(x)
    z1 = mean + c * torch.randn(mean.shape, generator=g)
    recon = -(pipe.autoencoder.reconstruction_log_prob(x, z1) / 3).mean()
    assert torch.allclose(loss, recon)
    loss.backward()
    assert all(p.grad is None for p in pipe.network.parameters())
    pipe.autoencoder.zero_grad(set_to_none=True)
    pipe.step = 5
    pipe.loss(Batch(x), generator=torch.Generator().manual_seed(0)).backward()
    assert all(p.grad is None for p in pipe.autoencoder.parameters())
    assert all(p.grad is not None for p in pipe.network.parameters())
    # some parameters get no gradient in some steps: DDP must look for them
    assert pipe.unused_parameters and not pipe.pairs_ahead()


def test_configuration_errors(registry):
    with pytest.raises(ValueError, match="needs pretrain_steps >= 1, got 0"):
        LSIObjective(encoder_training="pretrain_then_freeze")
    with pytest.raises(ValueError, match="needs t_eps > 0"):
        LSIObjective(weighting="exact")
    with pytest.raises(ig.RecipeError, match="encoder_training must be one of 'joint', 'frozen', "
                                             "'pretrain_then_freeze', got 'both'"):
        ig.structure_recipe({"data": "moons", "objective": {"name": "lsi", "encoder_training": "both"}}, registry)
    with pytest.raises(ValueError, match="beta = 0 leaves the latent model untrained"):
        LSIObjective(beta=0.0)
    with pytest.raises(ValueError, match="beta = 0 leaves the latent model untrained"):
        _latent_pipe(registry, beta=0.0)
    assert LSIObjective(beta=0.0, stop_gradient=True).beta == 0.0  # the two-stage baseline is allowed
    with pytest.raises(ValueError, match="are derived for the linear bridge"):
        ig.Pipeline(data=Data(), objective=ig.part("objective", "lsi", registry), registry=registry,
                    interpolant=ig.part("interpolant", "lsi_bridge", registry, schedule="trig"))
    # the lsi objective does not pick its bridge: with the default (linear SI) interpolant it says which to use
    with pytest.raises(ValueError, match="lsi_bridge"):
        ig.Pipeline(data=Data(), objective=ig.part("objective", "lsi", registry), registry=registry)


def test_one_pipeline_class(registry):
    """No dispatch on the autoencoder any more: every model is an ig.Pipeline; the objective (si by
    default) decides the method and the autoencoder the model space."""
    plain = ig.Pipeline(data=Data(), registry=registry)
    assert type(plain) is ig.Pipeline
    assert plain.objective == ig.part("objective", "si", registry).resolve(plain.interpolant)
    assert plain.latent_shape == plain.event_shape == (3,)
    same = ig.Pipeline(data=Data(), registry=registry, autoencoder=ig.part("autoencoder", "identity", registry))
    assert type(same) is ig.Pipeline and same.latent_shape == (3,)
    latent = ig.Pipeline(data=Data(), registry=registry, autoencoder=ig.part("autoencoder", "dense", registry),
                         interpolant=ig.part("interpolant", "lsi_bridge", registry),
                         objective=ig.part("objective", "lsi", registry))
    assert type(latent) is ig.Pipeline
    assert latent.event_shape == (3,) and latent.latent_shape == (2,)
    assert latent.objective == LSIObjective(noise_head=False) and latent.interpolant == ig.part("interpolant", "lsi_bridge", registry)
    assert registry.entry_for(latent.recipe.objective).name == "lsi"
