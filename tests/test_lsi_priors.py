"""Priors for latent models (math.md 4.3): ``laplacian``, and ``encoded_mixture``, the paper's mixture with
one component (std 0.1) per encoded training image, means under stop-gradient, handed the encoder and
the data by the lsi objective; usable from a recipe and from Python, and kept by checkpoints."""

from __future__ import annotations

import math

import pytest
import torch

import interpgen as ig
from interpgen.protocols import Batch
from interpgen_plugins.priors import EncodedMixturePrior, LaplacePrior


def _build(registry, name, shape, **params):
    spec = ig.part("prior", name, registry, **params)
    return registry.entry_for(spec).create(spec, event_shape=shape, num_classes=None, registry=registry, root=None)


def test_laplacian(registry):
    prior = _build(registry, "laplacian", (3,), loc=[0.0, 1.0, -2.0], scale=0.5)
    assert isinstance(prior, LaplacePrior) and not prior.standard_normal
    x = prior.sample(40000, (3,), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(x.mean(0), torch.tensor([0.0, 1.0, -2.0]), atol=0.02)
    assert torch.allclose(x.var(0), torch.full((3,), 2 * 0.25), rtol=0.05)  # variance 2 b^2
    same = prior.sample(5, (3,), generator=torch.Generator().manual_seed(1))
    assert torch.equal(same, prior.sample(5, (3,), generator=torch.Generator().manual_seed(1)))
    y = torch.randn(7, 3)
    expected = torch.distributions.Laplace(torch.tensor([0.0, 1.0, -2.0]), 0.5).log_prob(y).sum(1)
    torch.testing.assert_close(prior.log_prob(y), expected)
    with pytest.raises(ig.RecipeError, match="scale must be > 0"):
        ig.part("prior", "laplacian", registry, scale=0.0)
    with pytest.raises(ValueError, match="loc has 2 values but the data has 3 features"):
        _build(registry, "laplacian", (3,), loc=[0.0, 1.0])


class Images:
    """A finite data source: ``take("train", index)`` and ``part_size``, as the built-in finite data sets."""

    def __init__(self, n=40, shape=(3,)):
        self.event_shape, self.num_classes = shape, None
        self.rows = torch.randn(n, *shape, generator=torch.Generator().manual_seed(11))

    def data_affine(self):
        return None

    def part_size(self, part):
        return self.rows.shape[0]

    def take(self, part, index=None):
        return (self.rows if index is None else self.rows[index]), None

    def batches(self, batch_size, *, generator, shard=(0, 1)):
        while True:
            yield (self.rows[torch.randint(self.rows.shape[0], (batch_size,), generator=generator)],)

    def reference(self, num, *, generator):
        return self.rows[:num]


def _pipe(registry, data=None, **prior):
    return ig.Pipeline(data=data if data is not None else Images(), registry=registry,
                       prior=ig.part("prior", "encoded_mixture", registry, **prior),
                       autoencoder=ig.part("autoencoder", "dense", registry, hidden=8, latent_dim=2),
                       interpolant=ig.part("interpolant", "lsi_bridge", registry),
                       network=ig.part("network", "mlp", registry, hidden=16, depth=2),
                       objective=ig.part("objective", "lsi", registry))


def _means(pipe, rows=None):
    x = pipe.data.rows if rows is None else pipe.data.rows[rows]
    with torch.no_grad():
        return pipe.autoencoder.encode(x)[0]


def test_encoded_mixture_components_are_the_encoded_training_images(registry):
    pipe = _pipe(registry)
    prior = pipe.prior
    assert isinstance(prior, EncodedMixturePrior) and prior.num_components == 40 and not prior.standard_normal
    assert pipe.objective.noise_head  # not N(0, I): the score comes from the noise head
    # sampling (no gradients): from the means of all 40 images, std 0.1
    with torch.no_grad():
        z = prior.sample(6, (2,), generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    pick = torch.randint(40, (6,), generator=g)
    torch.testing.assert_close(z, _means(pipe)[pick] + 0.1 * torch.randn(6, 2, generator=g))
    torch.testing.assert_close(prior.means, _means(pipe))
    # a training draw (gradients on): the images encoded now, under stop-gradient
    z = prior.sample(6, (2,), generator=torch.Generator().manual_seed(4))
    assert not z.requires_grad
    g = torch.Generator().manual_seed(4)
    pick = torch.randint(40, (6,), generator=g)
    torch.testing.assert_close(z, _means(pipe, pick) + 0.1 * torch.randn(6, 2, generator=g))
    # the means follow the encoder: change it, and the next sampling re-encodes
    with torch.no_grad():
        for p in pipe.autoencoder.encoder.parameters():
            p.add_(0.3)
    with torch.no_grad():
        prior.sample(1, (2,))
    torch.testing.assert_close(prior.means, _means(pipe))
    # log_prob is the mixture's
    y = torch.randn(5, 2)
    comp = torch.distributions.Normal(prior.means, 0.1).log_prob(y[:, None, :]).sum(-1)
    torch.testing.assert_close(prior.log_prob(y), torch.logsumexp(comp, 1) - math.log(40))


def test_encoded_mixture_sends_no_gradient_to_the_encoder(registry):
    pipe = _pipe(registry)
    pipe.objective = ig.part("objective", "lsi", registry, reconstruction_weight=0.0, stop_gradient=True,
                             noise_head=True)
    pipe.loss(Batch(pipe.data.rows[:16]), generator=torch.Generator().manual_seed(0)).backward()
    assert all(p.grad is None for p in pipe.autoencoder.parameters())  # z1 detached, z0's means too


def test_encoded_mixture_subset_and_checkpoints(registry):
    pipe = _pipe(registry, max_components=10, seed=2, std=0.2)
    rows = torch.randperm(40, generator=torch.Generator().manual_seed(2))[:10].sort().values
    assert pipe.prior.num_components == 10
    pipe.prior.sample(3, (2,))  # a training draw leaves the saved means to be re-encoded
    state = pipe.state_dict()
    torch.testing.assert_close(state["prior"]["means"], _means(pipe, rows))
    # a pipeline loaded for sampling has no data: its components come from the checkpoint
    stand_in = type("Trained", (), {"event_shape": (3,), "num_classes": None, "data_affine": lambda self: None})()
    loaded = _pipe(registry, data=stand_in, max_components=10, seed=2, std=0.2)
    with pytest.raises(ValueError, match="no components yet"):
        loaded.sample(2)
    loaded.load_state_dict(state)
    torch.testing.assert_close(loaded.prior.means, _means(pipe, rows))
    a = loaded.sample(8, seed=5, sampler=ig.part("sampler", "lsi_sde", registry, steps=3, stochasticity=0.0))
    assert a.x.shape == (8, 3) and torch.isfinite(a.x).all()


def test_encoded_mixture_needs_the_lsi_objective(registry):
    pipe = ig.Pipeline(data=Images(), registry=registry, prior=ig.part("prior", "encoded_mixture", registry))
    with pytest.raises(ValueError, match="no components yet: it needs the encoder and the training data, which the lsi "
                                         "objective hands it"):
        pipe.prior.sample(2, (3,))


def test_priors_from_a_recipe(registry):
    recipe = ig.structure_recipe({
        "data": {"name": "digits", "holdout": 0.2}, "prior": {"name": "encoded_mixture", "std": 0.1},
        "autoencoder": {"name": "conv", "channels": 8, "latent_channels": 2},
        "interpolant": {"name": "lsi_bridge"}, "objective": {"name": "lsi"},
        "network": {"name": "mlp", "hidden": 16, "depth": 1},
        "sample": {"sampler": {"name": "lsi_sde", "steps": 2, "stochasticity": 0.0}}}, registry)
    pipe = ig.Pipeline.from_recipe(recipe, registry=registry)
    assert pipe.prior.num_components == pipe.data.part_size("train") and pipe.objective.noise_head
    assert pipe.sample(4).x.shape == (4, 1, 8, 8)
    assert pipe.prior.means.shape == (pipe.prior.num_components, 2, 4, 4)
