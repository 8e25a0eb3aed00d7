"""The ``dit`` network (plugins/networks/dit.py)."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from interpgen.config import RecipeConverter, RecipeError
from interpgen.plugin_manager import registry as default_registry
from interpgen.protocols import Network
from interpgen_plugins.networks.dit import DIT_SIZES, DiT, DiTParams, build_dit, sincos_position_embedding


def tiny(**kw) -> DiTParams:
    kw.setdefault("depth", 2)
    kw.setdefault("width", 16)
    kw.setdefault("heads", 2)
    return DiTParams(**kw)


def build(params=None, shape=(4, 8, 8), out=None, num_classes=None) -> DiT:
    return build_dit(params or tiny(), in_shape=shape, out_shape=out or shape, num_classes=num_classes,
                     registry=default_registry())


def perturb_zero_init(net: DiT) -> None:
    """Random values for every zero-initialised weight (adaLN modulations, output layer)."""
    with torch.no_grad():
        for layer in [b.modulation for b in net.blocks] + [net.final.modulation, net.final.linear]:
            layer.weight.normal_(std=0.1)
            layer.bias.normal_(std=0.1)


def test_dit_is_registered_and_sizes_follow_the_paper():
    reg = default_registry()
    entry = reg.get("network", "dit")
    assert entry.plugin == "networks" and entry.params is DiTParams
    assert DIT_SIZES == {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}
    assert DiTParams().dimensions() == (12, 384, 6) and DiTParams().learn_sigma is False
    assert DiTParams(size="XL", depth=2).dimensions() == (2, 1152, 16)
    net = reg.create("network", "dit", tiny(), in_shape=(4, 8, 8), out_shape=(4, 8, 8), num_classes=None,
                     event_shape=(4, 8, 8), registry=reg, root=None, unknown_key=True)
    assert isinstance(net, DiT) and isinstance(net, Network)
    assert len(net.blocks) == 2 and net.grid == (4, 4)


@pytest.mark.parametrize(("shape", "out", "patch", "learn_sigma", "expected"), [
    ((4, 8, 8), (4, 8, 8), 2, False, (4, 8, 8)),
    ((4, 8, 8), (4, 8, 8), 4, True, (8, 8, 8)),      # learn_sigma doubles the channels
    ((4, 16, 8), (8, 16, 8), 8, False, (8, 16, 8)),  # two stacked predictions, non-square
    ((1, 8, 8), (1, 8, 8), 1, False, (1, 8, 8)),
])
def test_output_shape_and_zero_initial_output(shape, out, patch, learn_sigma, expected):
    net = build(tiny(patch=patch, learn_sigma=learn_sigma), shape, out, num_classes=3)
    x = torch.randn(2, *shape)
    y = net(x, torch.rand(2), torch.tensor([1, 3]))
    assert y.shape == (2, *expected) and net.out_shape == expected
    assert torch.equal(y, torch.zeros_like(y))
    perturb_zero_init(net)
    assert net(x, torch.rand(2)).abs().sum() > 0


def test_every_block_starts_as_the_identity():
    torch.manual_seed(0)
    net = build(tiny(depth=3), num_classes=5)
    h = net.tokens(torch.randn(3, 4, 8, 8))
    c = net.conditioning(torch.rand(3), torch.tensor([0, 4, 5]), 3)
    assert c.abs().sum() > 0  # the conditioning itself is not zero, the gates are
    for block in net.blocks:
        assert torch.equal(block(h, c), h)
    perturb_zero_init(net)
    assert not torch.allclose(net.blocks[0](h, c), h)


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    net = build(tiny(learn_sigma=True), num_classes=4)
    perturb_zero_init(net)
    net(torch.randn(5, 4, 8, 8), torch.rand(5), torch.tensor([0, 1, 2, 3, 4])).pow(2).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    names = {n for n, _ in net.named_parameters()}
    assert not any(n.startswith(("time_embedding", "position")) for n in names)  # fixed, not learned


def test_patches_go_back_where_they_came_from():
    net = build(tiny(patch=2), (3, 4, 6), (3, 4, 6))
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    p, (rows, cols) = 2, net.grid
    # token (i, j) holds the patch x[:, :, ip:(i+1)p, jp:(j+1)p] flattened as (row-in-patch, col-in-patch, channel)
    tokens = x.reshape(2, 3, rows, p, cols, p).permute(0, 2, 4, 3, 5, 1).reshape(2, rows * cols, p * p * 3)
    assert torch.equal(net.unpatchify(tokens), x)


def test_sincos_position_embedding_closed_form():
    emb = sincos_position_embedding(8, 2, 3)
    assert emb.shape == (6, 8)
    token = 1 * 3 + 2  # row 1, column 2
    w = [1.0, 10000.0 ** -0.5]
    row = [math.sin(1 * w[0]), math.sin(1 * w[1]), math.cos(1 * w[0]), math.cos(1 * w[1])]
    col = [math.sin(2 * w[0]), math.sin(2 * w[1]), math.cos(2 * w[0]), math.cos(2 * w[1])]
    assert torch.allclose(emb[token], torch.tensor(row + col), atol=1e-6)
    with pytest.raises(ValueError, match="divisible by 4, got 6"):
        sincos_position_embedding(6, 2, 2)


def test_input_not_divisible_by_patch_is_a_clear_error():
    with pytest.raises(ValueError, match=r"dit input of shape \(4, 10, 8\) is not divisible into 4x4 patches: "
                                         r"H and W must be multiples of patch=4"):
        build(tiny(patch=4), (4, 10, 8))
    with pytest.raises(ValueError, match=r"dit needs image shapes \(C, H, W\)"):
        build(shape=(16,))


def test_attention_backends_give_the_same_network_output():
    torch.manual_seed(0)
    a = build(tiny(attention="math")).double()
    b = build(tiny(attention="sdpa")).double()
    perturb_zero_init(a)
    b.load_state_dict(a.state_dict())
    x, t = torch.randn(2, 4, 8, 8, dtype=torch.float64), torch.rand(2, dtype=torch.float64)
    assert a(x, t).dtype == torch.float64
    assert torch.allclose(a(x, t), b(x, t), atol=1e-12)
    assert torch.equal(copy.deepcopy(a)(x, t), a(x, t))


def test_labels_none_means_the_null_class_and_labels_matter():
    torch.manual_seed(0)
    net = build(num_classes=3)
    perturb_zero_init(net)
    x, t = torch.randn(4, 4, 8, 8), torch.rand(4)
    assert torch.equal(net(x, t), net(x, t, torch.full((4,), 3)))
    assert not torch.allclose(net(x, t, torch.zeros(4, dtype=torch.long)), net(x, t, torch.ones(4, dtype=torch.long)))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\] \(3 = no label\), got values in \[0, 7\]"):
        net(x, t, torch.tensor([0, 1, 2, 7]))
    with pytest.raises(ValueError, match="built without classes"):
        build()(x, t, torch.zeros(4, dtype=torch.long))


def test_params_are_validated_and_load_from_a_recipe_table():
    with pytest.raises(ValueError, match=r"size must be one of 'S', 'B', 'L', 'XL', got 'XXL'"):
        DiTParams(size="XXL")
    with pytest.raises(ValueError, match="width must be divisible by heads, got width=20 heads=3"):
        DiTParams(width=20, heads=3)
    with pytest.raises(ValueError, match="width must be a multiple of 4 .* got 18"):
        DiTParams(width=18, heads=2)
    with pytest.raises(ValueError, match="depth must be an integer >= 1 or left out, got 0"):
        DiTParams(depth=0)
    conv = RecipeConverter(default_registry())
    params = conv.structure_part("network", {"name": "dit", "size": "B", "patch": 4, "learn_sigma": True})
    assert params == DiTParams(size="B", patch=4, learn_sigma=True)
    assert conv.structure_part("network", conv.unstructure_part(params)) == params
    with pytest.raises(RecipeError, match="expected true or false"):
        conv.structure_part("network", {"name": "dit", "learn_sigma": "false"})
