"""The conv, dense and pretrained autoencoders: shapes, noise scale, Gaussian likelihood, loading."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import interpgen as ig
from interpgen.protocols import Autoencoder
from interpgen_plugins.autoencoders import ConvAutoencoder, DenseAutoencoder, PretrainedAutoencoderError


def _build(registry, name, shape, tmp_path=None, **params):
    spec = ig.part("autoencoder", name, registry, **params)
    return registry.entry_for(spec).create(spec, event_shape=shape, num_classes=None, registry=registry,
                                           root=tmp_path)


def test_registered(registry):
    assert {"identity", "conv", "dense", "pretrained"} <= set(registry.names("autoencoder"))


@pytest.mark.parametrize("shape,downsamples,latent", [((1, 8, 8), 1, (4, 4, 4)), ((3, 25, 25), 2, (4, 7, 7)),
                                                      ((2, 6, 10), 0, (4, 6, 10))])
def test_conv_shapes_and_padding(registry, shape, downsamples, latent):
    ae = _build(registry, "conv", shape, channels=8, downsamples=downsamples)
    assert isinstance(ae, ConvAutoencoder) and isinstance(ae, Autoencoder)
    assert ae.latent_shape(shape) == latent
    x = torch.randn(3, *shape)
    mean, scale = ae.encode(x)
    assert mean.shape == (3, *latent) and scale.shape == mean.shape
    assert ae.decode(mean).shape == (3, *shape)


def test_conv_rejects_vectors(registry):
    with pytest.raises(ValueError, match=r"autoencoder 'conv' needs image data of shape \(C, H, W\), got event shape \(2,\)"):
        _build(registry, "conv", (2,))


def test_noise_scale_fixed_learned_and_zero(registry):
    fixed = _build(registry, "dense", (3,), noise_scale=0.25)
    assert torch.equal(fixed.encode(torch.randn(4, 3))[1], torch.full((4, 2), 0.25))
    assert not any(p is fixed.log_noise_scale for p in fixed.parameters())
    learned = _build(registry, "dense", (3,), noise_scale=0.25, learn_noise_scale=True)
    assert isinstance(learned.log_noise_scale, nn.Parameter)
    assert learned.log_noise_scale.item() == pytest.approx(math.log(0.25))
    _, c = learned.encode(torch.randn(4, 3))
    c.sum().backward()
    assert learned.log_noise_scale.grad.item() == pytest.approx(8 * 0.25)  # d/dlog_c of sum(c) over 8 entries
    zero = _build(registry, "dense", (3,), noise_scale=0.0)
    assert bool((zero.encode(torch.randn(4, 3))[1] == 0).all())
    with pytest.raises(ValueError, match="learn_noise_scale needs noise_scale > 0"):
        _build(registry, "dense", (3,), noise_scale=0.0, learn_noise_scale=True)


def test_parameters_are_strict(registry):
    with pytest.raises(ig.RecipeError, match="noise_scale must be a finite number >= 0, got -1.0"):
        ig.part("autoencoder", "conv", registry, noise_scale=-1.0)
    with pytest.raises(ig.RecipeError, match="decoder_std must be a finite number > 0, got 0.0"):
        ig.part("autoencoder", "dense", registry, decoder_std=0.0)
    with pytest.raises(ig.RecipeError, match="downsamples must be an integer >= 0, got -1"):
        ig.part("autoencoder", "conv", registry, downsamples=-1)


@pytest.mark.parametrize("learn", [False, True])
def test_gaussian_reconstruction_likelihood(registry, learn):
    ae = _build(registry, "conv", (1, 4, 4), channels=4, decoder_std=0.3, learn_decoder_std=learn).double()
    x = torch.randn(5, 1, 4, 4, dtype=torch.float64)
    z = torch.randn(5, 4, 2, 2, dtype=torch.float64)
    expected = torch.distributions.Normal(ae.decode(z), 0.3).log_prob(x).reshape(5, -1).sum(1)
    assert torch.allclose(ae.reconstruction_log_prob(x, z), expected, atol=1e-10)
    assert isinstance(ae.log_decoder_std, nn.Parameter) == learn


def test_pretrained_loads_and_freezes(registry, tmp_path):
    source = _build(registry, "dense", (3,), hidden=8, latent_dim=2)
    torch.save({"autoencoder": source.state_dict()}, tmp_path / "ae.pt")
    arch = {"name": "dense", "hidden": 8, "latent_dim": 2}
    ae = _build(registry, "pretrained", (3,), tmp_path, checkpoint="ae.pt", autoencoder=arch)
    assert isinstance(ae, DenseAutoencoder) and ae.frozen and not ae.training
    assert all(not p.requires_grad for p in ae.parameters())
    x = torch.randn(4, 3)
    assert torch.equal(ae.encode(x)[0], source.eval().encode(x)[0])  # eval: the running statistics, saved too
    torch.save(source.state_dict(), tmp_path / "raw.pt")  # a bare state_dict works too
    raw = _build(registry, "pretrained", (3,), tmp_path, checkpoint="raw.pt", autoencoder=arch)
    assert torch.equal(raw.decode(torch.ones(1, 2)), source.decode(torch.ones(1, 2)))


def test_pretrained_errors(registry, tmp_path):
    with pytest.raises(PretrainedAutoencoderError, match="checkpoint not found: .*missing.pt"):
        _build(registry, "pretrained", (3,), tmp_path, checkpoint="missing.pt", autoencoder="dense")
    torch.save(_build(registry, "dense", (3,), hidden=8).state_dict(), tmp_path / "small.pt")
    with pytest.raises(PretrainedAutoencoderError, match="does not fit the 'dense' architecture"):
        _build(registry, "pretrained", (3,), tmp_path, checkpoint="small.pt", autoencoder="dense")
    with pytest.raises(ig.RecipeError, match="required parameter 'checkpoint' is missing"):
        ig.part("autoencoder", "pretrained", registry)
