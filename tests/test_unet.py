"""The ``unet`` network (plugins/networks/unet.py)."""

from __future__ import annotations

import copy

import pytest
import torch

from interpgen.config import RecipeConverter, RecipeError
from interpgen.plugin_manager import registry as default_registry
from interpgen.protocols import Network
from interpgen_plugins.networks.unet import AttentionBlock, UNet, UNetParams, build_unet


def tiny(**kw) -> UNetParams:
    kw.setdefault("channels", 8)
    kw.setdefault("channel_mult", (1, 2))
    kw.setdefault("heads", 2)
    kw.setdefault("norm_groups", 4)
    return UNetParams(**kw)


def build(params=None, shape=(1, 8, 8), out=None, num_classes=None):
    return build_unet(params or tiny(), in_shape=shape, out_shape=out or shape, num_classes=num_classes,
                      registry=default_registry())


def perturb_zero_init(net: torch.nn.Module) -> None:
    """Give the zero-initialised output layer random weights, so gradients reach the layers before it."""
    with torch.no_grad():
        net.conv_out.weight.normal_(std=0.1)
        net.conv_out.bias.normal_(std=0.1)


def test_unet_is_registered_and_built_through_the_registry():
    reg = default_registry()
    entry = reg.get("network", "unet")
    assert entry.plugin == "networks" and entry.params is UNetParams
    net = reg.create("network", "unet", tiny(), in_shape=(1, 8, 8), out_shape=(1, 8, 8), num_classes=None,
                     event_shape=(1, 8, 8), registry=reg, root=None, something_new=1)
    assert isinstance(net, UNet) and isinstance(net, Network)


@pytest.mark.parametrize(("shape", "out", "mult"), [
    ((1, 8, 8), (1, 8, 8), (1, 2)),          # digits
    ((1, 25, 25), (1, 25, 25), (1, 2, 2)),   # faces, padded to 28 inside
    ((1, 24, 24), (2, 24, 24), (1, 2)),      # faces resized, two stacked predictions
    ((3, 32, 32), (3, 32, 32), (1, 2, 2)),   # CIFAR-10
    ((2, 7, 12), (4, 7, 12), (1, 1, 2)),     # non-square, odd height
])
def test_output_shape_and_zero_initial_output(shape, out, mult):
    net = build(tiny(channel_mult=mult), shape, out, num_classes=3)
    x = torch.randn(3, *shape)
    y = net(x, torch.rand(3), torch.tensor([0, 2, 3]))
    assert y.shape == (3, *out) and y.dtype == torch.float32
    assert torch.equal(y, torch.zeros_like(y))  # zero-initialised output layer
    perturb_zero_init(net)
    y = net(x, torch.rand(3))
    assert y.shape == (3, *out) and torch.isfinite(y).all() and y.abs().sum() > 0


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 25, 25)])
def test_gradients_reach_every_parameter(shape):
    torch.manual_seed(0)
    net = build(tiny(attention_resolutions=(8,) if shape[1] == 8 else (13,), dropout=0.1), shape, num_classes=4)
    perturb_zero_init(net)
    labels = torch.tensor([0, 1, 2, 3, 4, 4])
    net(torch.randn(6, *shape), torch.rand(6), labels).pow(2).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert not any(n.startswith("time_embedding") for n, _ in net.named_parameters())


def test_padding_does_not_change_the_result_of_a_multiple_sized_input():
    """On 8x8 with a 3-level U-Net (multiple of 4) nothing is padded; on 6x6 two rows and columns are,
    and the output is cropped back to 6x6."""
    net = build(tiny(channel_mult=(1, 1, 2)), (1, 6, 6))
    assert net.multiple == 4 and net.sizes == (8, 4, 2)
    perturb_zero_init(net)
    assert net(torch.randn(2, 1, 6, 6), torch.rand(2)).shape == (2, 1, 6, 6)


def test_attention_is_placed_at_the_chosen_resolutions():
    net = build(tiny(channel_mult=(1, 2, 2), attention_resolutions=(14, 7), blocks=2), (1, 25, 25))
    assert net.sizes == (28, 14, 7)
    per_level = [sum(isinstance(a, AttentionBlock) for a in lvl.attentions) for lvl in net.down_levels]
    assert per_level == [0, 2, 2]
    up = [sum(isinstance(a, AttentionBlock) for a in lvl.attentions) for lvl in net.up_levels]
    assert up == [3, 3, 0]  # decoder runs from the coarsest level, blocks + 1 per level
    assert isinstance(net.mid_attention, AttentionBlock)
    assert not isinstance(build(tiny(mid_attention=False)).mid_attention, AttentionBlock)
    with pytest.raises(ValueError, match=r"attention_resolutions \[16\] match no level: on input \(1, 8, 8\) the "
                                         r"feature maps of this U-Net are 8, 4 pixels"):
        build(tiny(attention_resolutions=(16,)))


def test_attention_backends_give_the_same_network_output():
    torch.manual_seed(0)
    a = build(tiny(attention_resolutions=(8, 4), attention="math")).double()
    b = build(tiny(attention_resolutions=(8, 4), attention="sdpa")).double()
    perturb_zero_init(a)
    b.load_state_dict(a.state_dict())
    x, t = torch.randn(2, 1, 8, 8, dtype=torch.float64), torch.rand(2, dtype=torch.float64)
    assert torch.allclose(a(x, t), b(x, t), atol=1e-12)


def test_labels_none_means_the_null_class_and_labels_matter():
    torch.manual_seed(0)
    net = build(num_classes=3)
    perturb_zero_init(net)
    x, t = torch.randn(4, 1, 8, 8), torch.rand(4)
    assert torch.equal(net(x, t), net(x, t, torch.full((4,), 3)))
    assert not torch.allclose(net(x, t, torch.zeros(4, dtype=torch.long)), net(x, t, torch.ones(4, dtype=torch.long)))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\] \(3 = no label\), got values in \[-1, 2\]"):
        net(x, t, torch.tensor([0, 1, 2, -1]))
    with pytest.raises(ValueError, match="built without classes"):
        build()(x, t, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"expected x of shape \(B, 1, 8, 8\), got \(4, 1, 8, 9\)"):
        net(torch.randn(4, 1, 8, 9), t)
    with pytest.raises(ValueError, match=r"expected t of shape \(4,\), got \(2,\)"):
        net(x, t[:2])
    assert net(x, torch.tensor(0.5)).shape == (4, 1, 8, 8)


def test_shapes_are_checked_at_build_time():
    with pytest.raises(ValueError, match=r"unet needs image shapes \(C, H, W\) .* in_shape=\(2,\)"):
        build(shape=(2,))
    with pytest.raises(ValueError, match=r"in_shape=\(1, 8, 8\) out_shape=\(1, 4, 4\)"):
        build(shape=(1, 8, 8), out=(1, 4, 4))
    with pytest.raises(ValueError, match="U-Net attention at width 16 needs heads dividing it, got heads=3"):
        build(tiny(heads=3))


def test_params_are_validated_and_load_from_a_recipe_table():
    with pytest.raises(ValueError, match=r"channel_mult must be a non-empty list of integers >= 1, got \(\)"):
        UNetParams(channel_mult=())
    with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\), got 1.0"):
        UNetParams(dropout=1.0)
    with pytest.raises(ValueError, match=r"attention_resolutions must be a list of integers >= 1"):
        UNetParams(attention_resolutions=(0,))
    with pytest.raises(ValueError, match="channels must be an integer >= 1, got 0"):
        UNetParams(channels=0)
    conv = RecipeConverter(default_registry())
    table = {"name": "unet", "channels": 16, "channel_mult": [1, 2, 2], "attention_resolutions": [8],
             "attention": "sdpa"}
    params = conv.structure_part("network", table)
    assert params == UNetParams(channels=16, channel_mult=(1, 2, 2), attention_resolutions=(8,), attention="sdpa")
    assert conv.structure_part("network", conv.unstructure_part(params)) == params
    with pytest.raises(RecipeError, match="expected an integer, got float 1.5"):
        conv.structure_part("network", {"name": "unet", "channel_mult": [1, 1.5]})


def test_deepcopy_float64_and_state_dict_round_trip():
    torch.manual_seed(0)
    net = build(tiny(attention_resolutions=(4,)), num_classes=2).double()
    perturb_zero_init(net)
    ema = copy.deepcopy(net)  # the EMA copy of the trainer
    x, t = torch.randn(2, 1, 8, 8, dtype=torch.float64), torch.rand(2, dtype=torch.float64)
    assert net(x, t).dtype == torch.float64 and torch.equal(net(x, t), ema(x, t))
    fresh = build(tiny(attention_resolutions=(4,)), num_classes=2).double()
    fresh.load_state_dict(net.state_dict())
    assert torch.equal(fresh(x, t), net(x, t))
