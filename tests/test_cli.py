"""The command line end to end: train, sample, and every bad input stopped before training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from interpgen.cli import main

RECIPE = """
[data]
name = "array"
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
def workdir(tmp_path):
    rng = np.random.default_rng(0)
    centres = np.array([[5.0, 5.0], [-5.0, 5.0]])
    points = centres[rng.integers(0, 2, 512)] + 0.3 * rng.normal(size=(512, 2))
    np.save(tmp_path / "points.npy", points.astype(np.float32))
    (tmp_path / "recipe.toml").write_text(RECIPE)
    return tmp_path


def _run(*args: str) -> int:
    return main(list(args))


@pytest.mark.slow
def test_train_then_sample_in_data_space(workdir, capsys):
    run = workdir / "run"
    assert _run("train", str(workdir / "recipe.toml"), "--output", str(run), "--quiet",
                "--set", "train.steps=600", "--set", "train.checkpoint_every=200") == 0
    assert (run / "recipe.toml").is_file()
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*")) == ["step_00000400", "step_00000600"]
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [100, 200, 300, 400, 500, 600]
    out = workdir / "samples.npy"
    assert _run("sample", str(run), "--num", "400", "--steps", "8", "--sampler", "heun", "--seed", "1",
                "--output", str(out)) == 0
    assert "network evaluations" in capsys.readouterr().out
    x = np.load(out)
    assert x.shape == (400, 2)
    # data space: the two clusters at (+-5, 5), not the standardised ones
    assert abs(x[:, 1].mean() - 5.0) < 0.5 and abs(np.abs(x[:, 0]).mean() - 5.0) < 0.7
    # same seed, same samples
    assert _run("sample", str(run), "--num", "400", "--steps", "8", "--sampler", "heun", "--seed", "1",
                "--output", str(workdir / "again.npy")) == 0
    np.testing.assert_array_equal(np.load(workdir / "again.npy"), x)
    # an existing run is not overwritten by accident
    assert _run("train", str(workdir / "recipe.toml"), "--output", str(run), "--quiet") == 2
    assert "already holds a run" in capsys.readouterr().err


def _fails_before_training(workdir: Path, capsys, *extra: str, recipe: str | None = None) -> str:
    if recipe is not None:
        (workdir / "recipe.toml").write_text(recipe)
    run = workdir / "run_bad"
    code = _run("train", str(workdir / "recipe.toml"), "--output", str(run), "--quiet", *extra)
    err = capsys.readouterr().err
    assert code == 2, err
    assert not (run / "checkpoints").exists()
    return err


def test_unknown_plugin(workdir, capsys):
    err = _fails_before_training(workdir, capsys, "--set", "interpolant.name=linaer")
    assert "unknown interpolant 'linaer'; installed:" in err and "@ interpolant.name" in err


def test_wrong_type(workdir, capsys):
    err = _fails_before_training(workdir, capsys, "--set", "train.steps=3.7")
    assert "expected an integer, got float 3.7 @ train.steps" in err


def test_missing_data_file(workdir, capsys):
    (workdir / "points.npy").unlink()
    err = _fails_before_training(workdir, capsys)
    assert "points.npy" in err


def test_array_of_wrong_shape(workdir, capsys):
    np.save(workdir / "points.npy", np.arange(10.0))
    err = _fails_before_training(workdir, capsys)
    assert "points.npy" in err and "dimension" in err


def test_array_with_nan_rows(workdir, capsys):
    data = np.random.default_rng(0).normal(size=(50, 2))
    data[[3, 17]] = np.nan
    np.save(workdir / "points.npy", data)
    err = _fails_before_training(workdir, capsys)
    assert "points.npy" in err and "NaN" in err and "3" in err and "17" in err


@pytest.mark.parametrize("override, message", [
    ("train.seed=99999999999999999999",
     "expected an integer in [-2**63, 2**63 - 1] (TOML's 64 bits), got 99999999999999999999 @ train.seed"),
    ("train.steps=99999999999999999999",
     "expected an integer in [-2**63, 2**63 - 1] (TOML's 64 bits), got 99999999999999999999 @ train.steps"),
    ("train.seed=-1", "seed must be an integer >= 0, got -1 @ train.seed"),
    ("train=5", "this table cannot be set to a value (got int 5); set its keys instead (steps, trainer, batch_size, "
                "...) @ train"),
])
def test_values_no_run_can_use_are_refused_with_the_key_path(workdir, capsys, override, message):
    err = _fails_before_training(workdir, capsys, "--set", override)
    assert err == f"error: 1 problem(s) in {workdir / 'recipe.toml'}:\n  - {message}\n"


def test_sde_sampler_without_a_score(workdir, capsys):
    recipe = RECIPE.replace('name = "gaussian"', 'name = "uniform"') + '\n[sample]\nsampler = "euler_maruyama"\n'
    err = _fails_before_training(workdir, capsys, recipe=recipe)
    assert "needs the score" in err


def test_old_model_table_is_refused_with_exit_2(workdir, capsys):
    err = _fails_before_training(workdir, capsys, recipe=RECIPE.replace("[network]", "[model]"))
    assert "[model] table is now [network]" in err and "Traceback" not in err
    assert not (workdir / "run_bad").exists()
    # the same for an override that names the old table
    err = _fails_before_training(workdir, capsys, "--set", "model.hidden=8", recipe=RECIPE)
    assert "[network]" in err and "@ model" in err


def test_old_latent_table_is_refused_with_exit_2(workdir, capsys):
    err = _fails_before_training(workdir, capsys, recipe=RECIPE + "\n[latent]\nbeta = 0.1\n")
    assert "[latent]" in err and "[objective]" in err and 'name = "lsi"' in err and "Traceback" not in err
    assert not (workdir / "run_bad").exists()


def test_objective_without_a_name_is_si(workdir, capsys):
    (workdir / "recipe.toml").write_text(RECIPE + '\n[objective]\nprediction = "x1"\n')
    assert _run("recipe", str(workdir / "recipe.toml")) == 0
    text = capsys.readouterr().out
    objective = text.split("[objective]\n", 1)[1].split("\n\n", 1)[0]
    assert 'name = "si"' in objective and 'prediction = "x1"' in objective


def test_recipe_command_prints_resolved_recipe(workdir, capsys):
    assert _run("recipe", str(workdir / "recipe.toml")) == 0
    text = capsys.readouterr().out
    assert 't_eps = ' in text and '[sample.sampler]' in text


def test_console_script_and_default_recipe(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "interpgen.cli", "recipe", "--set", "train.steps=5"],
                         capture_output=True, text=True, env=env, check=True).stdout
    assert 'name = "checkerboard"' in out and "steps = 5" in out


# -- train: run directories, resume, overwrite (the training engine's part) --------------------
def _tiny(run: Path, *extra: str) -> list[str]:
    return ["train", "--output", str(run), "--quiet", "--set", "data.name=moons", "--set", "network.hidden=16",
            "--set", "train.steps=4", "--set", "train.batch_size=16", "--set", "train.log_every=2",
            "--set", "train.checkpoint_every=2", "--set", "train.sample_every=0", *extra]


def test_train_refuses_to_mix_runs_and_lists_recipe_differences(tmp_path, capsys):
    run = tmp_path / "run"
    assert _run(*_tiny(run)) == 0
    assert "trained 4 steps" in capsys.readouterr().out
    assert _run(*_tiny(run)) == 2
    assert "already holds a run; pass --resume to continue it or --overwrite to replace it" in capsys.readouterr().err
    before = (run / "recipe.toml").read_text()
    assert _run(*_tiny(run, "--resume", "--set", "train.lr=0.002", "--set", "network.hidden=8")) == 2
    err = capsys.readouterr().err
    assert "the recipe differs from the saved one in network.hidden: 16 -> 8; train.lr: 0.001 -> 0.002" in err
    assert (run / "recipe.toml").read_text() == before  # nothing saved is touched
    assert [p.name for p in (run / "checkpoints").glob("step_*")] != []


def test_train_resume_may_extend_the_run(tmp_path, capsys):
    run = tmp_path / "run"
    assert _run(*_tiny(run)) == 0
    assert _run(*_tiny(run, "--resume", "--set", "train.steps=6")) == 0
    assert "trained 6 steps" in capsys.readouterr().out
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [2, 4, 6]
    assert "steps = 6" in (run / "recipe.toml").read_text()


def test_train_overwrite_replaces_the_run_and_a_foreign_folder_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    assert _run(*_tiny(run)) == 0
    (run / "notes.txt").write_text("mine")
    assert _run(*_tiny(run, "--overwrite", "--set", "train.steps=2")) == 0
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*")) == ["step_00000002"]
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [2]
    assert (run / "notes.txt").read_text() == "mine"  # only the run's own files are replaced
    other = tmp_path / "other"
    other.mkdir()
    (other / "data.csv").write_text("1,2")
    capsys.readouterr()
    assert _run(*_tiny(other)) == 2
    assert "is not empty and is not an interpgen run" in capsys.readouterr().err


def test_train_rejects_a_wrong_launch_before_writing(tmp_path, capsys):
    run = tmp_path / "run"
    assert _run(*_tiny(run, "--set", 'train.mixed_precision="fp16"')) == 2
    assert '"fp16" needs a CUDA GPU' in capsys.readouterr().err
    assert not run.exists()
    assert _run(*_tiny(run, "--set", "train.num_processes=2")) == 2
    assert "asks for 2 processes (train.num_processes) but 1 is running" in capsys.readouterr().err
    assert not run.exists()  # a wrong launch leaves nothing behind to block the right one


@pytest.mark.slow
def test_python_dash_m_interpgen_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "interpgen", "recipe", "--set", "train.grad_accumulation=2"],
                         capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=True).stdout
    assert "grad_accumulation = 2" in out and 'mixed_precision = "no"' in out

