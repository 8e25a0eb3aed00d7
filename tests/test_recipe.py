"""Recipes: strict loading, every problem at once with its path, overrides, round trips."""

from __future__ import annotations

import numpy as np
import pytest

from interpgen.config import RecipeError
from interpgen.plugin_manager import registry
from interpgen.recipe import (Recipe, apply_overrides, dump_recipe, load_recipe, recipe_to_dict,
                              structure_recipe)

ISSUE_RECIPE = """
[data]
name = "array"        # the user's own .npy file, shape (N, D)
path = "points.npy"

[prior]
name = "gaussian"

[interpolant]
name = "linear"
gamma = "zero"

[network]
name = "mlp"

[train]
steps = 3000
batch_size = 256
lr = 1e-3
seed = 0
"""


@pytest.fixture
def recipe_file(tmp_path):
    np.save(tmp_path / "points.npy", np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32))
    path = tmp_path / "recipe.toml"
    path.write_text(ISSUE_RECIPE)
    return path


def test_issue_recipe_loads_as_written(recipe_file):
    recipe = load_recipe(recipe_file, registry())
    assert isinstance(recipe, Recipe)
    assert recipe.train.steps == 3000 and recipe.train.lr == 1e-3 and recipe.train.batch_size == 256
    assert recipe.data.path == "points.npy"
    assert recipe.objective.prediction == "velocity"
    assert isinstance(recipe.objective.t_eps, float)  # endpoint epsilons always have a value


def test_round_trip_load_dump_load(recipe_file, tmp_path):
    reg = registry()
    recipe = load_recipe(recipe_file, reg)
    again = tmp_path / "again.toml"
    again.write_text(dump_recipe(recipe, reg))
    assert load_recipe(again, reg) == recipe
    assert structure_recipe(recipe_to_dict(recipe, reg), reg) == recipe


def test_every_problem_reported_with_its_path(tmp_path):
    (tmp_path / "bad.toml").write_text("""
[data]
name = "checkerboard"
[interpolant]
name = "linaer"
[train]
steps = 3.7
seed = "0"
lr = "fast"
[objective]
antithetic = "false"
colour = "blue"
""")
    with pytest.raises(RecipeError) as info:
        load_recipe(tmp_path / "bad.toml", registry())
    problems = info.value.problems
    text = "\n".join(problems)
    assert any(p.startswith("unknown interpolant 'linaer'; installed: ") and p.endswith("@ interpolant.name")
               and "linear" in p for p in problems), text
    assert "expected an integer, got float 3.7 @ train.steps" in problems
    assert "expected an integer, got str '0' @ train.seed" in problems
    assert "expected a number, got str 'fast' @ train.lr" in problems
    assert "expected true or false, got str 'false' @ objective.antithetic" in problems
    assert any("unknown parameter(s) colour" in p and p.endswith("@ objective") for p in problems), text
    assert str(tmp_path / "bad.toml") in str(info.value)


def test_unknown_plugin_parameter_and_bad_value(tmp_path):
    with pytest.raises(RecipeError) as info:
        structure_recipe({"data": {"name": "checkerboard"}, "network": {"name": "mlp", "widht": 3},
                          "train": {"batch_size": -1}}, registry())
    problems = info.value.problems
    assert any("unknown parameter(s) widht" in p and p.endswith("@ network") for p in problems)
    assert any("batch_size must be an integer >= 1, got -1" in p and p.endswith("@ train.batch_size") for p in problems), problems


def test_missing_data_table_is_reported():
    with pytest.raises(RecipeError, match="'data' is missing @ data"):
        structure_recipe({}, registry())


def test_overrides_apply_with_toml_values_and_stay_strict(recipe_file):
    reg = registry()
    recipe = load_recipe(recipe_file, reg, overrides=["train.steps=10", "interpolant.name=trig",
                                                      "interpolant.gamma=brownian", "train.lr=2e-4"])
    assert recipe.train.steps == 10 and recipe.train.lr == 2e-4
    assert recipe_to_dict(recipe, reg)["interpolant"]["name"] == "trig"
    with pytest.raises(RecipeError, match="expected an integer, got float 3.7 @ train.steps"):
        load_recipe(recipe_file, reg, overrides=["train.steps=3.7"])
    with pytest.raises(RecipeError, match="--set expects dotted.key=value"):
        apply_overrides({}, ["train.steps"])


def test_part_shorthand_string_becomes_a_table():
    raw = apply_overrides({"interpolant": "linear"}, ["interpolant.gamma=brownian"])
    assert raw == {"interpolant": {"name": "linear", "gamma": "brownian"}}


def test_missing_recipe_file_and_bad_toml(tmp_path):
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.toml", registry())
    (tmp_path / "broken.toml").write_text("[data\nname=")
    with pytest.raises(RecipeError, match="not valid TOML"):
        load_recipe(tmp_path / "broken.toml", registry())


def test_prediction_names_are_checked():
    with pytest.raises(RecipeError, match="prediction must be one of"):
        structure_recipe({"data": {"name": "checkerboard"}, "objective": {"prediction": "velocty"}}, registry())


# -- keys that moved in the restructure (issue 11) ------------------------------------------------
def test_old_model_table_is_refused_naming_network():
    with pytest.raises(RecipeError) as info:
        structure_recipe({"data": {"name": "checkerboard"}, "model": {"name": "mlp", "hidden": 8}}, registry())
    text = str(info.value)
    assert "[model] table is now [network]" in text and "@ model" in text


def test_old_latent_table_is_refused_naming_the_lsi_objective():
    with pytest.raises(RecipeError) as info:
        structure_recipe({"data": {"name": "checkerboard"}, "latent": {"beta": 0.1}}, registry())
    text = str(info.value)
    assert "[latent]" in text and "[objective]" in text and 'name = "lsi"' in text and "@ latent" in text


def test_objective_table_without_a_name_is_the_si_objective():
    from interpgen_plugins.si.objective import SIObjective

    reg = registry()
    recipe = structure_recipe({"data": {"name": "checkerboard"},
                               "objective": {"prediction": "x1", "antithetic": True}}, reg)
    assert isinstance(recipe.objective, SIObjective)
    assert recipe.objective.prediction == "x1" and recipe.objective.antithetic
    named = structure_recipe({"data": {"name": "checkerboard"},
                              "objective": {"name": "si", "prediction": "x1", "antithetic": True}}, reg)
    assert named == recipe
    assert recipe_to_dict(recipe, reg)["objective"]["name"] == "si"  # written out with its name
    # and an [objective] left out entirely is si's default
    assert structure_recipe({"data": {"name": "checkerboard"}}, reg).objective.prediction == "velocity"


# -- values no run can use are refused at load, with the key path (issue 13, item 6) ------------------

def _problems(recipe_file, *sets: str) -> list[str]:
    with pytest.raises(RecipeError) as info:
        load_recipe(recipe_file, registry(), overrides=sets)
    return info.value.problems


def test_integers_beyond_64_bits_are_refused_with_the_key_path(recipe_file):
    # TOML integers are 64-bit; Python's are not, so the converter checks the range itself
    assert _problems(recipe_file, "train.steps=99999999999999999999") == [
        "expected an integer in [-2**63, 2**63 - 1] (TOML's 64 bits), got 99999999999999999999 @ train.steps"]
    assert _problems(recipe_file, "train.seed=99999999999999999999") == [
        "expected an integer in [-2**63, 2**63 - 1] (TOML's 64 bits), got 99999999999999999999 @ train.seed"]
    text = recipe_file.read_text().replace("steps = 3000", "steps = 99999999999999999999")
    recipe_file.write_text(text)
    with pytest.raises(RecipeError, match=r"got 99999999999999999999 @ train\.steps"):
        load_recipe(recipe_file, registry())
    assert load_recipe(recipe_file, registry(), overrides=["train.steps=9223372036854775807"]).train.steps == 2**63 - 1


def test_negative_seeds_and_non_finite_guidance_are_refused(recipe_file):
    assert _problems(recipe_file, "train.seed=-1") == ["seed must be an integer >= 0, got -1 @ train.seed"]
    assert _problems(recipe_file, "sample.seed=-1") == ["seed must be an integer >= 0, got -1 @ sample.seed"]
    assert _problems(recipe_file, "sample.guidance=nan") == ["guidance must be a finite number, got nan @ sample.guidance"]
    assert _problems(recipe_file, "sample.guidance=inf") == ["guidance must be a finite number, got inf @ sample.guidance"]
    assert load_recipe(recipe_file, registry(), overrides=["sample.guidance=-0.5"]).sample.guidance == -0.5


def test_a_table_set_to_a_value_names_the_table(recipe_file):
    assert _problems(recipe_file, "train=5") == [
        "this table cannot be set to a value (got int 5); set its keys instead (steps, trainer, batch_size, ...) @ train"]
    assert _problems(recipe_file, 'sample="x"') == [
        "this table cannot be set to a value (got str 'x'); set its keys instead (sampler, num, seed, ...) @ sample"]
