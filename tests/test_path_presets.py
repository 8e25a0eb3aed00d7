"""One name per path (math.md 1.7, 1.8, 4.2): a preset is its canonical path with fixed parameters,
equal in alpha, beta, gamma and every derivative; the other names for an existing path are refused
with a message naming the path to use."""

from __future__ import annotations

import pytest
import torch

import interpgen as ig
from interpgen.config import RecipeConverter
from interpgen_plugins.lsi import LSIBridge

F64 = torch.float64
#: t = 0 and t = 1 included: gamma_dot is infinite there, and must be infinite alike.
GRID = torch.cat([torch.tensor([0.0, 1e-9, 1.0 - 1e-9, 1.0], dtype=F64), torch.linspace(0, 1, 101, dtype=F64)])
QUANTITIES = ("alpha", "beta", "gamma", "alpha_dot", "beta_dot", "gamma_dot", "gamma_gamma_dot")


def assert_same_path(a, b) -> None:
    for name in QUANTITIES:
        torch.testing.assert_close(getattr(a, name)(GRID), getattr(b, name)(GRID), msg=name)
    assert a.deterministic == b.deterministic


def test_one_sided_is_linear_with_gamma_zero(registry):
    preset = ig.part("interpolant", "one_sided", registry)
    assert_same_path(preset, ig.part("interpolant", "linear", registry, gamma="zero"))
    assert preset.deterministic
    assert registry.get("interpolant", "one_sided").description.startswith("Preset of ``linear`` with gamma = zero")


@pytest.mark.parametrize("sigma", [1.0, 0.8, 2.5])
def test_linear_lsi_bridge_is_linear_with_a_brownian_gamma(registry, sigma):
    """lsi_bridge(schedule="linear", sigma): alpha = 1 - t, beta = t, gamma = sigma sqrt(t(1-t))."""
    bridge = ig.part("interpolant", "lsi_bridge", registry, schedule="linear", sigma=sigma)
    assert isinstance(bridge, LSIBridge)
    linear = ig.part("interpolant", "linear", registry, gamma={"name": "a_brownian", "a": sigma**2})
    assert_same_path(bridge, linear)
    torch.testing.assert_close(bridge.gamma(GRID), sigma * (GRID * (1 - GRID)).sqrt())
    if sigma == 1.0:
        assert_same_path(bridge, ig.part("interpolant", "linear", registry, gamma="brownian"))


def test_a_second_name_for_a_path_points_to_the_canonical_one(registry):
    conv = RecipeConverter(registry)
    with pytest.raises(ig.RecipeError, match=r"sigma_min = 0 is the path 'linear': use it\), got 0.0 @ interpolant"):
        conv.structure_part("interpolant", {"name": "fm_ot", "sigma_min": 0.0}, path="interpolant")
    with pytest.raises(ig.RecipeError, match="with gamma zero the path is 'gvp'"):
        conv.structure_part("interpolant", {"name": "trig", "gamma": "zero"}, path="interpolant")
    with pytest.raises(ig.RecipeError, match="unknown parameter.*gamma; accepted: [(]none[)]"):
        conv.structure_part("interpolant", {"name": "one_sided", "gamma": "brownian"}, path="interpolant")


def test_fm_ot_tends_to_linear_as_sigma_min_vanishes(registry):
    """fm_ot is its own path: alpha = 1 - (1 - sigma_min) t differs from linear's by sigma_min t,
    alpha_dot by sigma_min; everything else is linear's with gamma zero (math.md 1.7)."""
    s = 1e-3
    fm = ig.part("interpolant", "fm_ot", registry, sigma_min=s)
    linear = ig.part("interpolant", "linear", registry)
    torch.testing.assert_close(fm.alpha(GRID) - linear.alpha(GRID), s * GRID)
    torch.testing.assert_close(fm.alpha_dot(GRID) - linear.alpha_dot(GRID), torch.full_like(GRID, s))
    for name in ("beta", "beta_dot", "gamma", "gamma_gamma_dot"):
        torch.testing.assert_close(getattr(fm, name)(GRID), getattr(linear, name)(GRID))


def test_every_preset_names_a_registered_path(registry):
    presets = [e for e in registry if e.kind == "interpolant" and e.description.startswith("Preset of")]
    assert [e.name for e in presets] == ["one_sided"]
    for entry in presets:
        canonical = entry.description.split("``")[1]
        assert canonical in registry.names("interpolant")
