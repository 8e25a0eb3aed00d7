"""``interpgen sample`` on a trained run: every sampler option one flag away (``--set sample.*``),
evaluation budgets (``--nfe``), bad values refused with one message, and writers for other
suffixes (``.png`` from the pictures plugin, a plugin's own)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from interpgen.cli import main


def _run(*args: str) -> int:
    return main(list(args))


def _tiny(run: Path, *extra: str) -> list[str]:
    return ["train", "--output", str(run), "--quiet", "--set", "data.name=moons", "--set", "network.hidden=16",
            "--set", "train.steps=4", "--set", "train.batch_size=16", "--set", "train.log_every=2",
            "--set", "train.checkpoint_every=2", "--set", "train.sample_every=0", *extra]


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
        source + "unknown parameter(s) stepz; accepted: rho, grid_cache, steps, grid @ sample.sampler")
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
