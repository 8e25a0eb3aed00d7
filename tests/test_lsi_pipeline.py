"""LSI end to end: recipes load and round-trip; one `interpgen train` runs pretrain-then-freeze;
`interpgen sample` returns decoded data; a reloaded run has its autoencoder; eval reports FLOPs."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

import interpgen as ig
from interpgen.cli import main
from interpgen_plugins.lsi.objective import LSIObjective
from interpgen.recipe import dump_recipe, load_recipe, structure_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes" / "lsi"


@pytest.mark.parametrize("name", ["digits_lsi", "faces_lsi", "imagenet64_lsi", "ablations/digits_noisepred",
                                  "ablations/faces_prior_mixture", "ablations/digits_noise_learned"])
def test_recipes_load_and_round_trip(registry, name):
    recipe = load_recipe(RECIPES / f"{name}.toml", registry)
    assert isinstance(recipe.objective, LSIObjective) and registry.entry_for(recipe.interpolant).name == "lsi_bridge"
    assert structure_recipe(tomllib.loads(dump_recipe(recipe, registry)), registry) == recipe


@pytest.mark.slow
def test_digits_lsi_matches_the_pixel_recipe_in_parameters(registry):
    lsi = ig.Pipeline.from_recipe(load_recipe(RECIPES / "digits_lsi.toml", registry), registry=registry)
    pixel_recipe = load_recipe(RECIPES.parent / "images" / "digits.toml", registry)
    pixel = ig.Pipeline.from_recipe(pixel_recipe, registry=registry)
    assert isinstance(lsi.objective, LSIObjective) and lsi.latent_shape == (4, 4, 4)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    total, reference = count(lsi.network) + count(lsi.autoencoder), count(pixel.network)
    assert abs(total - reference) / reference < 0.02
    assert lsi.recipe.train == pixel_recipe.train


def test_plain_recipes_stay_plain(registry):
    recipe = load_recipe(RECIPES.parent / "images" / "digits.toml", registry)
    assert registry.entry_for(recipe.objective).name == "si" and registry.entry_for(recipe.autoencoder).name == "identity"
    pipe = ig.Pipeline.from_recipe(recipe, registry=registry)
    assert type(pipe) is ig.Pipeline and pipe.latent_shape == pipe.event_shape


TINY = """
[data]
name = "digits"
labels = true

[autoencoder]
name = "conv"
channels = 8
latent_channels = 2

[interpolant]
name = "lsi_bridge"

[objective]
name = "lsi"
encoder_training = "pretrain_then_freeze"
pretrain_steps = 6
label_dropout = 0.1

[network]
name = "mlp"
hidden = 32
depth = 2

[train]
steps = 12
batch_size = 32
log_every = 6
checkpoint_every = 12
ema_decay = 0.9

[sample]
sampler = { name = "lsi_sde", steps = 5 }
num = 20
"""


@pytest.mark.slow
def test_train_sample_load_eval(tmp_path, capsys):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY)
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--output", str(run), "--quiet"]) == 0
    pipe = ig.Pipeline.load(run)
    assert isinstance(pipe.objective, LSIObjective) and pipe.step == 12 and pipe.latent_shape == (2, 4, 4)
    assert pipe.event_shape == (1, 8, 8) and pipe.objective.label_dropout == 0.1
    fresh = ig.Pipeline.from_recipe(load_recipe(recipe, pipe.registry), root=tmp_path)
    weights = [p for p in pipe.autoencoder.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(weights, fresh.autoencoder.parameters()))  # restored
    out = tmp_path / "x.npy"
    assert main(["sample", str(run), "--output", str(out), "--num", "20"]) == 0
    x = np.load(out)
    assert x.shape == (20, 1, 8, 8) and np.isfinite(x).all()
    assert "(6 network evaluations per sample)" in capsys.readouterr().out
    torch.testing.assert_close(torch.from_numpy(x), pipe.sample(20, labels=pipe.sampling_labels(20, None)).x)
    from interpgen_plugins.eval.evaluate import evaluate_run

    report = evaluate_run(run, num=20, steps=5, classifier=False)
    flops = report["flops"]
    assert flops["nfe"] == 6 and flops["encoder"] > 0 and flops["decoder"] > 0
    assert flops["sampling_per_sample"] == 6 * flops["latent_model"] + flops["decoder"]
    assert "flops" in (run / "eval.json").read_text()
