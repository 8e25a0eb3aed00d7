"""Classifier-free guidance wrapper (interpgen/guidance.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from interpgen.guidance import GuidedNetwork
from interpgen.plugin_manager import registry as default_registry
from interpgen_plugins.networks.dit import DiTParams, build_dit
from interpgen_plugins.networks.unet import UNetParams, build_unet

NUM_CLASSES = 3


class PerChannelNet(nn.Module):
    """``out[:, c] = (c + 1) x[:, c] + t * E[label, c]``: every channel depends on the label
    differently, so guiding a subset of channels is visible. Counts its calls and batch sizes."""

    def __init__(self, channels: int):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.table = nn.Parameter(torch.randn(NUM_CLASSES + 1, channels, generator=g, dtype=torch.float64))
        self.scales = torch.arange(1, channels + 1, dtype=torch.float64)
        self.calls: list[int] = []

    def forward(self, x, t, labels):
        self.calls.append(x.shape[0])
        bias = t[:, None, None, None] * self.table[labels][:, :, None, None]
        return self.scales[None, :, None, None] * x + bias


def inputs(batch=4, channels=4):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, channels, 3, 3, generator=g, dtype=torch.float64)
    t = torch.rand(batch, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 3][:batch])
    return x, t, labels


@pytest.mark.parametrize("scale", [0.0, 2.5, 4.0, -1.0])
def test_guidance_equals_two_separate_forwards_on_every_channel(scale):
    net = PerChannelNet(4)
    x, t, labels = inputs()
    guided = GuidedNetwork(net, scale, NUM_CLASSES)
    out = guided(x, t, labels)
    assert net.calls == [8]  # ONE forward on the doubled batch
    cond = net(x, t, labels)
    uncond = net(x, t, torch.full((4,), NUM_CLASSES))
    assert torch.allclose(out, uncond + scale * (cond - uncond), rtol=0, atol=1e-14)


def test_every_channel_is_guided_regression_for_partial_guidance():
    """DiT's and SiT's forward_with_cfg guide only the first 3 (or C/2) channels and pass the rest
    through from the conditional output. Here every channel of the guided output must differ from
    the conditional one where the label matters (row 3 is the null label, where cond == uncond)."""
    net = PerChannelNet(6)
    x, t, labels = inputs(channels=6)
    guided = GuidedNetwork(net, 3.0, NUM_CLASSES)(x, t, labels)
    cond = net(x, t, labels)
    uncond = net(x, t, torch.full((4,), NUM_CLASSES))
    for channel in range(6):
        assert not torch.allclose(guided[:3, channel], cond[:3, channel]), channel
    partial = cond.clone()  # what the buggy wrappers return (first half guided only)
    partial[:, :3] = uncond[:, :3] + 3.0 * (cond[:, :3] - uncond[:, :3])
    assert not torch.allclose(guided[:3], partial[:3])
    assert torch.allclose(guided[:, 3:], uncond[:, 3:] + 3.0 * (cond[:, 3:] - uncond[:, 3:]), atol=1e-14)
    assert torch.equal(guided[3], cond[3])  # the null label: nothing to guide


def test_scale_one_is_exactly_the_conditional_output_and_none_is_unconditional():
    net = PerChannelNet(4)
    x, t, labels = inputs()
    assert torch.equal(GuidedNetwork(net, 1.0, NUM_CLASSES)(x, t, labels), net(x, t, labels))
    assert net.calls == [4, 4]  # one forward on the plain batch
    null = torch.full((4,), NUM_CLASSES)
    assert torch.equal(GuidedNetwork(net, 7.0, NUM_CLASSES)(x, t, None), net(x, t, null))
    scalar = GuidedNetwork(net, 2.0, NUM_CLASSES)(x, torch.tensor(0.5, dtype=torch.float64), labels)
    assert torch.allclose(scalar, GuidedNetwork(net, 2.0, NUM_CLASSES)(x, torch.full((4,), 0.5, dtype=torch.float64),
                                                                        labels), atol=1e-15)


@pytest.mark.parametrize("which", ["dit_learn_sigma", "unet_two_predictions"])
def test_real_networks_are_guided_on_all_output_channels(which):
    torch.manual_seed(0)
    reg = default_registry()
    if which == "dit_learn_sigma":
        net = build_dit(DiTParams(depth=1, width=16, heads=2, learn_sigma=True), in_shape=(4, 4, 4),
                        out_shape=(4, 4, 4), num_classes=NUM_CLASSES, registry=reg).double()
        zero_init = [net.blocks[0].modulation, net.final.modulation, net.final.linear]
        shape, channels = (4, 4, 4), 8
    else:
        net = build_unet(UNetParams(channels=8, heads=2, norm_groups=4), in_shape=(1, 6, 6), out_shape=(2, 6, 6),
                         num_classes=NUM_CLASSES, registry=reg).double()
        zero_init = [net.conv_out]
        shape, channels = (1, 6, 6), 2
    with torch.no_grad():
        for layer in zero_init:
            layer.weight.normal_(std=0.3)
            layer.bias.normal_(std=0.3)
        if which == "unet_two_predictions":
            net.label_embedding.table.weight.mul_(10)
    x = torch.randn(3, *shape, dtype=torch.float64)
    t, labels = torch.rand(3, dtype=torch.float64), torch.tensor([0, 1, 2])
    out = GuidedNetwork(net, 4.0, NUM_CLASSES).eval()(x, t, labels)
    cond, uncond = net(x, t, labels), net(x, t, None)
    assert out.shape == (3, channels, *shape[1:])
    assert torch.allclose(out, uncond + 4.0 * (cond - uncond), atol=1e-10)
    for channel in range(channels):
        assert not torch.allclose(out[:, channel], cond[:, channel], atol=1e-6), channel


def test_guidance_commutes_with_prediction_conversions():
    """Guiding the velocity then converting to x1 (math.md 1.5) equals guiding the converted x1."""
    interpolant = default_registry().create("interpolant", "linear")
    net = PerChannelNet(2)
    x, t, labels = inputs(channels=2)
    t = 0.1 + 0.8 * t

    def to_x1(velocity):
        return interpolant.convert({"velocity": velocity}, x, t, "x1", gaussian_base=True)

    guided = to_x1(GuidedNetwork(net, 2.0, NUM_CLASSES)(x, t, labels))
    cond, uncond = to_x1(net(x, t, labels)), to_x1(net(x, t, torch.full((4,), NUM_CLASSES)))
    assert torch.allclose(guided, uncond + 2.0 * (cond - uncond), atol=1e-12)


def test_bad_arguments():
    with pytest.raises(ValueError, match="guidance scale must be a finite number, got nan"):
        GuidedNetwork(PerChannelNet(2), float("nan"), NUM_CLASSES)
    with pytest.raises(ValueError, match="num_classes must be an integer >= 1, got 0"):
        GuidedNetwork(PerChannelNet(2), 2.0, 0)
    guided = GuidedNetwork(PerChannelNet(2), 2.0, NUM_CLASSES)
    assert isinstance(guided, nn.Module) and "network.table" in dict(guided.named_parameters())
