"""The independent coupling and the identity autoencoder: their contracts and error messages."""

from __future__ import annotations

import pytest
import torch

import interpgen_plugins.autoencoders as autoencoders_plugin
import interpgen_plugins.couplings as couplings_plugin
from interpgen.config import RecipeConverter
from interpgen.plugin_manager import load_plugins
from interpgen.protocols import Autoencoder, Coupling
from interpgen.registry import Registry
from interpgen_plugins.autoencoders import IdentityAutoencoder
from interpgen_plugins.couplings import IndependentCoupling


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    couplings_plugin.interpgen_register(reg)
    autoencoders_plugin.interpgen_register(reg)
    return reg


def test_registered_through_the_entry_points():
    plugins = load_plugins(strict=False)
    failed = [f.name for f in plugins.failed]
    assert "couplings" not in failed and "autoencoders" not in failed
    assert "independent" in plugins.registry.names("coupling")
    assert "identity" in plugins.registry.names("autoencoder")


# -- independent coupling ---------------------------------------------------------------------------

def test_independent_coupling_returns_the_batch_unchanged(registry):
    coupling = registry.create("coupling", "independent")
    assert isinstance(coupling, Coupling) and isinstance(coupling, IndependentCoupling)
    x0, x1 = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    labels = torch.arange(5)
    p0, p1 = coupling.pair(x0, x1, labels)
    assert p0 is x0 and p1 is x1
    p0, p1 = coupling.pair(x0, x1)
    assert p0 is x0 and p1 is x1


def test_independent_coupling_allows_different_event_shapes(registry):
    # a latent prior may live in another space than the data it is paired with
    x0, x1 = torch.randn(4, 2), torch.randn(4, 3, 2, 2)
    p0, p1 = registry.create("coupling", "independent").pair(x0, x1)
    assert p0 is x0 and p1 is x1


def test_independent_coupling_rejects_unequal_batches(registry):
    coupling = registry.create("coupling", "independent")
    with pytest.raises(ValueError) as info:
        coupling.pair(torch.zeros(4, 2), torch.zeros(5, 2))
    assert str(info.value) == ("coupling 'independent': x0 and x1 must have the same batch size, "
                               "got x0 of shape (4, 2) and x1 of shape (5, 2)")
    with pytest.raises(ValueError) as info:
        coupling.pair(torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(3))
    assert str(info.value) == ("coupling 'independent': labels must have one entry per x1, "
                               "got labels of shape (3,) and x1 of shape (4, 2)")


def test_independent_coupling_from_a_recipe(registry):
    conv = RecipeConverter(registry)
    params = conv.structure_part("coupling", "independent")
    assert params == IndependentCoupling()
    assert conv.unstructure_part(params) == {"name": "independent"}


# -- identity autoencoder ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(6, 2), (3, 1, 4, 4)])
def test_identity_autoencoder_contract(registry, shape):
    ae = registry.create("autoencoder", "identity")
    assert isinstance(ae, Autoencoder) and isinstance(ae, IdentityAutoencoder)
    x = torch.randn(*shape, dtype=torch.float64)
    assert ae.latent_shape(shape[1:]) == shape[1:]
    mean, noise = ae.encode(x)
    assert mean is x
    assert noise.shape == x.shape and noise.dtype == x.dtype and bool((noise == 0).all())
    assert ae.decode(mean) is mean
    lp = ae.reconstruction_log_prob(x, mean)
    assert lp.shape == (shape[0],) and lp.dtype == torch.float64 and bool((lp == 0).all())


def test_identity_autoencoder_keeps_gradients(registry):
    ae = registry.create("autoencoder", "identity")
    x = torch.randn(4, 2, requires_grad=True)
    mean, _ = ae.encode(x)
    ae.decode(mean).sum().backward()
    assert torch.equal(x.grad, torch.ones(4, 2))


def test_identity_reconstruction_checks_shapes(registry):
    ae = registry.create("autoencoder", "identity")
    with pytest.raises(ValueError) as info:
        ae.reconstruction_log_prob(torch.zeros(4, 2), torch.zeros(3, 2))
    assert str(info.value) == ("autoencoder 'identity': x and z must be batches of one shape, "
                               "got x of shape (4, 2) and z of shape (3, 2)")


def test_identity_autoencoder_from_a_recipe(registry):
    conv = RecipeConverter(registry)
    params = conv.structure_part("autoencoder", {"name": "identity"})
    assert params == IdentityAutoencoder()
    assert conv.unstructure_part(params) == {"name": "identity"}
