"""The example third-party plugin in tests/fixtures/interpgen-power-plugin, installed with pip as a
plugin author would (.ci/run does it): it is found, listed, and a recipe naming it trains and samples."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from interpgen.cli import main

DIST = "interpgen-power-plugin"


@pytest.fixture(scope="module", autouse=True)
def installed():
    try:
        importlib.metadata.distribution(DIST)
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(f"{DIST} is not installed: run `pip install -e tests/fixtures/{DIST}` (see README)")


def test_listed_with_its_distribution():
    out = subprocess.run([sys.executable, "-m", "interpgen.cli", "plugins", "--json"],
                         capture_output=True, text=True, check=True).stdout
    rows = {e["name"]: e for e in json.loads(out)["interpolant"]}
    assert rows["power"]["plugin"] == "power" and rows["power"]["distribution"] == DIST


def test_registered_through_the_one_registration_hook():
    import interpgen_power
    from interpgen.hookspecs import REMOVED_HOOKS
    from interpgen.plugin_manager import load_plugins

    assert not [hook for hook in REMOVED_HOOKS if hasattr(interpgen_power, hook)]
    loaded = load_plugins(strict=True)
    assert loaded.failed == []
    assert loaded.manager.get_plugin(f"{DIST}:power") is interpgen_power
    entry = loaded.registry.get("interpolant", "power")
    assert (entry.plugin, entry.distribution, entry.params) == ("power", DIST, interpgen_power.PowerInterpolant)


def test_schedule_derivatives_match_autograd():
    from interpgen.plugin_manager import registry

    power = registry().create("interpolant", "power")
    t = torch.linspace(0.05, 0.95, 19, dtype=torch.float64, requires_grad=True)
    for value, deriv in ((power.alpha, power.alpha_dot), (power.beta, power.beta_dot)):
        (grad,) = torch.autograd.grad(value(t).sum(), t)
        torch.testing.assert_close(grad, deriv(t.detach()))
    ends = torch.tensor([0.0, 1.0], dtype=torch.float64)
    assert power.alpha(ends).tolist() == [1.0, 0.0] and power.beta(ends).tolist() == [0.0, 1.0]


@pytest.mark.slow
def test_recipe_naming_it_trains_and_samples(tmp_path, capsys):
    recipe = tmp_path / "power.toml"
    recipe.write_text("""
[data]
name = "eight_gaussians"

[interpolant]
name = "power"
p = 2.0

[network]
name = "mlp"
hidden = 64
depth = 2

[train]
steps = 400
batch_size = 256
lr = 3e-3
pictures = false
""")
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--output", str(run), "--quiet"]) == 0
    assert 'name = "power"' in (run / "recipe.toml").read_text()
    out = tmp_path / "x.npy"
    assert main(["sample", str(run), "--num", "500", "--steps", "16", "--output", str(out)]) == 0
    x = np.load(out)
    assert x.shape == (500, 2) and np.isfinite(x).all()
    # the eight Gaussians sit on a circle of radius 2.8: the samples have moved out to it
    radius = np.linalg.norm(x, axis=1)
    assert 1.8 < np.median(radius) < 3.6


def test_bad_parameter_is_reported_with_its_path(tmp_path):
    from interpgen.config import RecipeError
    from interpgen.plugin_manager import registry
    from interpgen.recipe import structure_recipe

    with pytest.raises(RecipeError, match=r"p must be a number >= 1 \(so the path is smooth at t = 1\), got 0.5 @ interpolant"):
        structure_recipe({"data": {"name": "moons"}, "interpolant": {"name": "power", "p": 0.5}}, registry())
