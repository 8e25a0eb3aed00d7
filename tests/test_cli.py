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
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*.pt")) == ["step_00000400.pt", "step_00000600.pt"]
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
    assert [p.name for p in (run / "checkpoints").glob("step_*.pt")] != []


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
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*.pt")) == ["step_00000002.pt"]
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


# -- sample: every sampler option one flag away, evaluation budgets, bad values (issue 13) -----------
@pytest.fixture(scope="module")
def moons_run(tmp_path_factory):
    """A tiny trained 2D run (moons, unconditional) whose recipe samples with euler, 3 steps."""
    run = tmp_path_factory.mktemp("moons") / "run"
    assert _run(*_tiny(run, "--set", "sample.sampler.name=euler", "--set", "sample.sampler.steps=3")) == 0
    return run


def _sample(run: Path, capsys, *args: str, num: str = "50") -> tuple[int, str, str]:
    code = _run("sample", str(run), "--num", num, *args)
    out, err = capsys.readouterr()
    return code, out, err


def _refused(run: Path, capsys, *args: str) -> str:
    """Exit status 2, nothing written, one message on stderr and no traceback: that message."""
    out_file = run.parent / "refused.npy"
    code, out, err = _sample(run, capsys, *args, *(() if "--output" in args else ("--output", str(out_file))))
    assert code == 2 and out == "" and "Traceback" not in err and err.startswith("error: "), (code, out, err)
    assert not out_file.exists()
    return err.removeprefix("error: ").rstrip("\n")


def test_sample_set_reaches_every_sampler_option(moons_run, tmp_path, capsys):
    import torch

    import interpgen as ig

    out = tmp_path / "x.npy"
    # the run's own sampler (euler, 3 steps) unless told otherwise; the line says what ran
    code, printed, _ = _sample(moons_run, capsys, "--output", str(out))
    assert code == 0 and printed.splitlines()[-1] == "sampler euler, 3 steps (3 network evaluations per sample)"
    # a sampler with a required option: the error names the key and how to give it
    assert _refused(moons_run, capsys, "--sampler", "converted", "--steps", "4") == (
        f"1 problem(s) in {moons_run / 'recipe.toml'}:\n  - required parameter 'schedule' is missing "
        "@ sample.sampler.schedule; give it with --set sample.sampler.schedule=VALUE")
    code, printed, _ = _sample(moons_run, capsys, "--set", "sample.sampler.name=converted", "--set",
                               "sample.sampler.schedule=gvp", "--steps", "4", "--seed", "7", "--output", str(out))
    assert code == 0 and printed.splitlines()[-1] == "sampler converted, 4 steps (4 network evaluations per sample)"
    pipe = ig.Pipeline.load(moons_run)
    expected = pipe.sample(50, sampler=ig.part("sampler", "converted", schedule="gvp", steps=4), seed=7).x
    torch.testing.assert_close(torch.from_numpy(np.load(out)), expected)
    # a time grid is a key like any other; the other keys of the new sampler are its defaults
    code, printed, _ = _sample(moons_run, capsys, "--sampler", "heun", "--set", "sample.sampler.grid=edm",
                               "--set", "sample.sampler.steps=2", "--output", str(out))
    assert code == 0 and printed.splitlines()[-1] == "sampler heun, 2 steps (4 network evaluations per sample)"
    expected = pipe.sample(50, sampler=ig.part("sampler", "heun", grid="edm", steps=2), seed=0).x
    torch.testing.assert_close(torch.from_numpy(np.load(out)), expected)
    # naming the run's own sampler keeps its keys (3 steps); --steps wins over the table
    code, printed, _ = _sample(moons_run, capsys, "--set", "sample.sampler.name=euler", "--output", str(out))
    assert printed.splitlines()[-1] == "sampler euler, 3 steps (3 network evaluations per sample)"
    # the same parser and messages as train --set, with the key path
    source = f"1 problem(s) in {moons_run / 'recipe.toml'}:\n  - "
    assert _refused(moons_run, capsys, "--set", "sample.sampler.steps=0") == (
        source + "steps must be an integer >= 1, got 0 @ sample.sampler.steps")
    assert _refused(moons_run, capsys, "--set", "sample.sampler.stepz=4") == (
        source + "unknown parameter(s) stepz; accepted: rho, steps, grid @ sample.sampler")
    assert _refused(moons_run, capsys, "--set", "sample.sampler.grid=nope").endswith("@ sample.sampler.grid")
    assert _refused(moons_run, capsys, "--set", "sample=5") == (
        source + "this table cannot be set to a value (got int 5); set its keys instead (sampler, num, seed, ...) "
        "@ sample")
    assert _refused(moons_run, capsys, "--set", "train.steps=3") == (
        source + "--set changes only sample.* keys of a trained run (for example sample.sampler.name=heun); the "
        "rest of the recipe is what was trained @ train.steps")
    assert _refused(moons_run, capsys, "--set", "sample.sampler.name") == "1 problem(s):\n  - --set expects " \
        "dotted.key=value, got 'sample.sampler.name'"


def test_sample_nfe_picks_the_steps_that_use_exactly_that_budget(moons_run, tmp_path, capsys):
    out = str(tmp_path / "x.npy")
    for sampler, nfe, steps in [("heun", 6, 3), ("euler", 5, 5), ("rk4", 8, 2), ("euler_maruyama", 4, 3),
                                ("stochastic_heun", 7, 3)]:
        code, printed, err = _sample(moons_run, capsys, "--sampler", sampler, "--nfe", str(nfe), "--output", out)
        assert code == 0, err
        assert printed.splitlines()[-1] == (f"sampler {sampler}, {steps} steps ({nfe} network evaluations per "
                                            f"sample): the --nfe {nfe} budget")
    # a budget the sampler cannot hit: the nearest ones it can, with their --steps
    assert _refused(moons_run, capsys, "--sampler", "heun", "--nfe", "5") == (
        "sampler heun cannot use exactly 5 network evaluations per sample; the nearest budgets it can hit: "
        "4 (--steps 2) and 6 (--steps 3)")
    assert _refused(moons_run, capsys, "--sampler", "euler_maruyama", "--nfe", "1") == (
        "sampler euler_maruyama cannot use exactly 1 network evaluation per sample; the nearest budget it can "
        "hit: 2 (--steps 1)")
    assert _refused(moons_run, capsys, "--sampler", "dopri5", "--nfe", "8") == (
        "--nfe 8: sampler dopri5 chooses its own steps (adaptive), so its evaluations cannot be set; choose a "
        "fixed-step sampler (euler, heun, midpoint, rk4, ...)")
    assert _refused(moons_run, capsys, "--nfe", "0") == "--nfe must be an integer >= 1, got 0"
    # an adaptive sampler reports what it used
    code, printed, _ = _sample(moons_run, capsys, "--sampler", "dopri5", "--output", out)
    assert code == 0 and printed.splitlines()[-1].startswith("sampler dopri5, adaptive steps (")
    with pytest.raises(SystemExit) as info:  # --steps and --nfe together: argparse's usage error
        _run("sample", str(moons_run), "--steps", "2", "--nfe", "4", "--output", out)
    assert info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_sample_refuses_bad_values_with_one_message(moons_run, capsys):
    assert _refused(moons_run, capsys, "--guidance", "2") == (
        "guidance=2.0 needs a class-conditional model; this one was trained without labels")
    assert _refused(moons_run, capsys, "--guidance", "nan") == "--guidance must be a finite number, got nan"
    assert _refused(moons_run, capsys, "--num", "0") == "--num must be an integer >= 1, got 0"
    assert _refused(moons_run, capsys, "--num", "-4") == "--num must be an integer >= 1, got -4"
    assert _refused(moons_run, capsys, "--seed", "-1") == "--seed must be an integer >= 0, got -1"
    assert _refused(moons_run, capsys, "--steps", "0") == "--steps must be an integer >= 1, got 0"
    assert _refused(moons_run, capsys, "--set", "sample.seed=99999999999999999999").endswith(
        "expected an integer in [-2**63, 2**63 - 1] (TOML's 64 bits), got 99999999999999999999 @ sample.seed")
    assert _refused(moons_run, capsys, "--output", str(moons_run.parent / "x.txt")) == (
        f"--output must end in .npy or in a suffix an installed writer plugin handles (.png), got "
        f"{moons_run.parent / 'x.txt'}")
    assert not (moons_run.parent / "x.txt").exists()


def test_sample_to_png_draws_the_points_over_the_data(moons_run, tmp_path, capsys):
    from matplotlib.image import imread

    out = tmp_path / "moons.png"
    code, printed, err = _sample(moons_run, capsys, "--output", str(out), num="300")
    assert code == 0, err
    assert printed.splitlines() == [
        f"wrote (300, 2) samples to {out} as a picture: a scatter over 300 points of the data",
        "sampler euler, 3 steps (3 network evaluations per sample)"]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = imread(out)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 300 and pixels[..., :3].std() > 0.05  # not blank
    assert not out.with_suffix(".npy").exists()


def test_sample_writes_other_suffixes_through_a_plugins_writer(moons_run, tmp_path, monkeypatch, capsys):
    """docs/plugins.md's CSV writer, registered by a plugin: interpgen sample finds it by suffix."""
    import types

    import attrs

    import interpgen as ig
    import interpgen.cli as cli
    from interpgen.plugin_manager import load_plugins

    @attrs.frozen(kw_only=True)
    class CsvSamples:
        """Samples as a CSV table, one row per sample."""

    def build_csv(params, *, pipe, **context):
        def write(path, samples, title=""):
            np.savetxt(path, samples.x.reshape(len(samples.x), -1).cpu().numpy(), delimiter=",")
            return f"a CSV table of {len(samples.x)} rows"
        return write

    plugin = types.SimpleNamespace(interpgen_register=ig.hookimpl(
        lambda registry: registry.add("writer", ".csv", CsvSamples, build=build_csv)))
    reg = load_plugins(extra={"csv": plugin}).registry
    assert reg.names("writer") == [".csv", ".png"]
    monkeypatch.setattr(cli, "_registry", lambda: reg)
    out = tmp_path / "x.csv"
    code, printed, err = _sample(moons_run, capsys, "--output", str(out), num="20")
    assert code == 0, err
    assert printed.splitlines()[0] == f"wrote (20, 2) samples to {out} as a CSV table of 20 rows"
    np.testing.assert_allclose(np.loadtxt(out, delimiter=","), np.load(_sample_npy(moons_run, tmp_path, capsys)),
                               rtol=1e-6)
    assert _refused(moons_run, capsys, "--output", str(tmp_path / "x.txt")) == (
        f"--output must end in .npy or in a suffix an installed writer plugin handles (.csv, .png), got "
        f"{tmp_path / 'x.txt'}")


def _sample_npy(run: Path, tmp_path: Path, capsys) -> Path:
    out = tmp_path / "same.npy"
    assert _sample(run, capsys, "--output", str(out), num="20")[0] == 0
    return out
