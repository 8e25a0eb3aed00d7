"""The networks plugin: the ``mlp`` network and the time embeddings (plugins/networks/)."""

from __future__ import annotations

import math

import pytest
import torch

from interpgen.config import RecipeConverter, RecipeError
from interpgen.plugin_manager import registry as default_registry
from interpgen.protocols import Network
from interpgen_plugins.networks.mlp import MLP, MLPParams, build_mlp
from interpgen_plugins.networks.time_embedding import FourierTimeEmbedding, SinusoidalTimeEmbedding


def small(**kw) -> MLPParams:
    return MLPParams(hidden=32, depth=3, embedding_dim=16, **kw)


def test_mlp_is_registered_and_built_through_the_registry():
    entry = default_registry().get("network", "mlp")
    assert entry.plugin == "networks" and entry.params is MLPParams
    net = default_registry().create("network", "mlp", small(), in_shape=(2,), out_shape=(2,),
                                    num_classes=None, event_shape=(2,), root=None, registry=None)
    assert isinstance(net, MLP) and isinstance(net, Network)


@pytest.mark.parametrize(("in_shape", "out_shape"), [((2,), (2,)), ((2,), (4,)), ((1, 6, 6), (1, 6, 6)),
                                                     ((3, 4, 4), (6, 4, 4))])
def test_output_shape_for_vector_and_image_inputs(in_shape, out_shape):
    net = build_mlp(small(), in_shape=in_shape, out_shape=out_shape)
    x = torch.randn(5, *in_shape)
    out = net(x, torch.rand(5))
    assert out.shape == (5, *out_shape) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert net(x, torch.tensor(0.3)).shape == (5, *out_shape)  # a scalar time is broadcast


def test_output_starts_small():
    net = build_mlp(MLPParams(), in_shape=(2,), out_shape=(2,))
    out = net(3 * torch.randn(256, 2), torch.rand(256))
    assert out.abs().max() < 0.1
    assert torch.count_nonzero(net.output.weight) == net.output.weight.numel()  # small, not zero


@pytest.mark.parametrize("activation", ["silu", "gelu", "relu", "tanh"])
@pytest.mark.parametrize("embedding", ["fourier", "sinusoidal"])
def test_gradients_reach_every_parameter(activation, embedding):
    net = build_mlp(small(activation=activation, time_embedding=embedding), in_shape=(1, 3, 3),
                    out_shape=(1, 3, 3), num_classes=4)
    labels = torch.tensor([0, 1, 2, 3, 4, 4, 1, 0])
    net(torch.randn(8, 1, 3, 3), torch.rand(8), labels).pow(2).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert not any(n.startswith("time_embedding") for n, _ in net.named_parameters())  # frequencies are fixed


def test_labels_change_the_output_and_none_means_the_null_class():
    torch.manual_seed(0)
    net = build_mlp(small(), in_shape=(2,), out_shape=(2,), num_classes=3)
    with torch.no_grad():  # make the label embedding matter visibly
        net.output.weight.normal_()
    x, t = torch.randn(6, 2), torch.rand(6)
    null = torch.full((6,), 3)
    assert torch.equal(net(x, t), net(x, t, null))
    a, b = net(x, t, torch.zeros(6, dtype=torch.long)), net(x, t, torch.ones(6, dtype=torch.long))
    assert not torch.allclose(a, b)
    mixed = net(x, t, torch.tensor([0, 1, 0, 1, 0, 1]))
    assert torch.allclose(mixed[0::2], a[0::2]) and torch.allclose(mixed[1::2], b[1::2])  # rows independent


def test_bad_inputs_are_rejected():
    net = build_mlp(small(), in_shape=(2,), out_shape=(2,), num_classes=3)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\] \(3 = no label\), got values in \[0, 4\]"):
        net(torch.randn(2, 2), torch.rand(2), torch.tensor([0, 4]))
    with pytest.raises(ValueError, match=r"labels must be integers of shape \(2,\)"):
        net(torch.randn(2, 2), torch.rand(2), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"expected t of shape \(2,\), got \(3,\)"):
        net(torch.randn(2, 2), torch.rand(3))
    with pytest.raises(ValueError, match=r"expected x of shape \(B, 2\), got \(2, 3\)"):
        net(torch.randn(2, 3), torch.rand(2))
    plain = build_mlp(small(), in_shape=(2,), out_shape=(2,))
    with pytest.raises(ValueError, match="built without classes"):
        plain(torch.randn(2, 2), torch.rand(2), torch.tensor([0, 1]))


def test_params_are_validated():
    with pytest.raises(ValueError, match=r"activation must be one of 'silu', 'gelu', 'relu', 'tanh', got 'swish'"):
        MLPParams(activation="swish")
    with pytest.raises(ValueError, match=r"time_embedding must be one of 'fourier', 'sinusoidal', got 'learned'"):
        MLPParams(time_embedding="learned")
    with pytest.raises(ValueError, match=r"embedding_dim must be an even integer >= 2, got 63"):
        MLPParams(embedding_dim=63)
    with pytest.raises(ValueError, match=r"depth must be an integer >= 1, got 0"):
        MLPParams(depth=0)
    with pytest.raises(ValueError, match=r"fourier_scale must be a finite number > 0, got -1.0"):
        MLPParams(fourier_scale=-1.0)
    conv = RecipeConverter(default_registry())
    assert conv.structure_part("network", {"name": "mlp", "hidden": 64}) == MLPParams(hidden=64)
    with pytest.raises(RecipeError, match="expected an integer, got float 64.5"):
        conv.structure_part("network", {"name": "mlp", "hidden": 64.5})


def test_network_is_deterministic_given_the_torch_seed_and_checkpoints_round_trip():
    torch.manual_seed(1)
    a = build_mlp(small(), in_shape=(2,), out_shape=(2,))
    b = build_mlp(small(fourier_scale=1.0), in_shape=(2,), out_shape=(2,))
    b.load_state_dict(a.state_dict())  # the frequencies travel with the checkpoint
    x, t = torch.randn(4, 2), torch.rand(4)
    assert torch.equal(a(x, t), b(x, t))
    assert "time_embedding.frequencies" in a.state_dict()


def test_double_precision_network():
    net = build_mlp(small(), in_shape=(2,), out_shape=(2,)).double()
    out = net(torch.randn(3, 2, dtype=torch.float64), torch.rand(3, dtype=torch.float64))
    assert out.dtype == torch.float64


# -- time embeddings ------------------------------------------------------------------------------

def test_fourier_embedding_is_deterministic_given_its_seed():
    a, b, c = FourierTimeEmbedding(32, seed=7), FourierTimeEmbedding(32, seed=7), FourierTimeEmbedding(32, seed=8)
    assert torch.equal(a.frequencies, b.frequencies)
    assert not torch.equal(a.frequencies, c.frequencies)
    t = torch.linspace(0, 1, 11)
    assert torch.equal(a(t), b(t))
    assert a(t).shape == (11, 32)
    # the frequencies are 2 pi scale xi with xi from torch.Generator().manual_seed(seed)
    xi = torch.randn(16, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    expected = (2 * math.pi * 4.0 * xi).to(torch.float32)
    assert torch.equal(a.frequencies, expected)
    assert torch.equal(FourierTimeEmbedding(32, scale=2.0, seed=7).frequencies, (2 * math.pi * 2.0 * xi).float())


def test_sinusoidal_embedding_closed_form():
    emb = SinusoidalTimeEmbedding(8)
    t = torch.tensor([0.0, 0.25, 1.0])
    k = torch.arange(4, dtype=torch.float64)
    w = 1000.0 * 10000.0 ** (-k / 4)
    angles = t.double()[:, None] * w[None, :]
    expected = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1).float()
    assert torch.allclose(emb(t), expected, atol=1e-5)
    assert torch.equal(emb(torch.zeros(2)), torch.tensor([[0.0] * 4 + [1.0] * 4] * 2))


def test_time_embeddings_reject_bad_arguments():
    with pytest.raises(ValueError, match="embedding dim must be an even integer >= 2, got 7"):
        FourierTimeEmbedding(7)
    with pytest.raises(ValueError, match="scale must be > 0"):
        FourierTimeEmbedding(8, scale=0.0)
    with pytest.raises(ValueError, match=r"expected times of shape \(B,\), got \(2, 1\)"):
        SinusoidalTimeEmbedding(8)(torch.zeros(2, 1))
