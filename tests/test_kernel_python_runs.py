"""Runs trained from Python: ``Pipeline.fit(run_dir=...)`` writes the same run directory as
``interpgen train`` (recipe.toml included), so ``Pipeline.load`` and ``interpgen sample`` read it.
A part that was the user's own object is recorded as ``name = "python-object"``: loading needs the
same object again (``Pipeline.load(run, prior=obj)``), and the command line refuses the run with one
clear message and exit status 2."""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pytest
import torch

import interpgen as ig
from interpgen.cli import main

TRAIN = ig.Train(steps=8, batch_size=32, log_every=4, checkpoint_every=8, sample_every=0, pictures=False,
                 ema_decay=0.9)


class WidePrior:
    """A Gaussian with standard deviation 2, written here and not registered."""

    standard_normal = False

    def sample(self, num, shape, *, generator=None, device=None, dtype=None):
        return 2.0 * torch.randn(num, *shape, generator=generator, device=device, dtype=dtype or torch.float32)

    def log_prob(self, x):
        d = x[0].numel()
        return -0.5 * (x / 2.0).pow(2).flatten(1).sum(1) - d * math.log(2.0 * math.sqrt(2 * math.pi))


def _net():
    return ig.part("network", "mlp", hidden=16, depth=1)


def _cli_sample(run, out, *extra):
    return main(["sample", str(run), "--output", str(out), "--num", "12", "--sampler", "euler", "--steps", "3",
                 *extra])


def test_fit_writes_a_run_that_load_and_the_cli_read(tmp_path, capsys):
    run = tmp_path / "run"
    pipe = ig.Pipeline(data=ig.part("dataset", "moons"), network=_net())
    losses = pipe.fit(TRAIN, run_dir=run, progress=False)
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    assert (run / "recipe.toml").is_file() and (run / "metrics.jsonl").is_file()
    recipe = ig.load_recipe(run / "recipe.toml", ig.registry())
    assert recipe == pipe.recipe and recipe.train == TRAIN
    loaded = ig.Pipeline.load(run)
    assert loaded.step == 8
    euler = ig.part("sampler", "euler", steps=3)
    expected = pipe.sample(12, sampler=euler, seed=5).x
    torch.testing.assert_close(loaded.sample(12, sampler=euler, seed=5).x, expected, rtol=0, atol=0)
    out = tmp_path / "x.npy"
    assert _cli_sample(run, out, "--seed", "5") == 0
    assert "(3 network evaluations per sample)" in capsys.readouterr().out
    torch.testing.assert_close(torch.from_numpy(np.load(out)), expected, rtol=0, atol=0)
    # the folder now holds a run: refused without resume or overwrite, replaced with overwrite
    with pytest.raises(Exception, match="resume|overwrite"):
        ig.Pipeline(data=ig.part("dataset", "moons"), network=_net()).fit(TRAIN, run_dir=run, progress=False)
    again = ig.Pipeline(data=ig.part("dataset", "moons"), network=_net(), seed=1)
    again.fit(TRAIN, run_dir=run, progress=False, overwrite=True)
    torch.testing.assert_close(ig.Pipeline.load(run).sample(12, sampler=euler, seed=5).x,
                               again.sample(12, sampler=euler, seed=5).x, rtol=0, atol=0)


def test_a_run_with_the_users_own_prior(tmp_path, capsys):
    run = tmp_path / "wide"
    pipe = ig.Pipeline(data=ig.part("dataset", "moons"), prior=WidePrior(), network=_net())
    pipe.fit(TRAIN, run_dir=run, progress=False)
    recorded = tomllib.loads((run / "recipe.toml").read_text())["prior"]
    assert recorded == {"name": "python-object", "class": f"{__name__}.WidePrior"}
    # without the object: a message that names the prior and its class, and says what to do
    with pytest.raises(ValueError) as info:
        ig.Pipeline.load(run)
    message = str(info.value)
    assert "prior" in message and "WidePrior" in message and "Pipeline.load" in message
    # with it: the same model
    loaded = ig.Pipeline.load(run, prior=WidePrior())
    assert isinstance(loaded.prior, WidePrior) and loaded.step == 8
    euler = ig.part("sampler", "euler", steps=3)
    torch.testing.assert_close(loaded.sample(12, sampler=euler, seed=2).x, pipe.sample(12, sampler=euler, seed=2).x,
                               rtol=0, atol=0)
    with pytest.raises(TypeError, match="Pipeline.load got priorr"):
        ig.Pipeline.load(run, priorr=WidePrior())
    # the command line cannot rebuild it: one message, exit status 2, no traceback, no file
    capsys.readouterr()
    out = tmp_path / "x.npy"
    assert _cli_sample(run, out) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback" not in captured.err and captured.err.count("error:") == 1
    assert "prior" in captured.err and "WidePrior" in captured.err
    assert not out.exists()


class Blobs:
    """The user's own data source (not registered): an unlabelled blob around (3, 3) in 2D."""

    event_shape, num_classes = (2,), None

    def batches(self, batch_size, *, generator, shard=(0, 1)):
        while True:
            yield (torch.randn(batch_size, 2, generator=generator) + 3.0,)

    def reference(self, num, *, generator):
        return torch.randn(num, 2, generator=generator) + 3.0

    def data_affine(self):
        return (torch.tensor([3.0, 3.0]), torch.tensor([1.0, 1.0]))


def test_a_latent_run_on_the_users_own_data_loads_without_it(tmp_path, capsys):
    """An lsi model (dense autoencoder) trained from Python on the user's data source: sampling needs
    no data, so Pipeline.load and `interpgen sample` work without it, and give decoded data."""
    run = tmp_path / "lsi"
    pipe = ig.Pipeline(data=Blobs(), network=_net(), autoencoder=ig.part("autoencoder", "dense", hidden=8),
                       interpolant=ig.part("interpolant", "lsi_bridge"), objective=ig.part("objective", "lsi"),
                       sampler=ig.part("sampler", "lsi_sde", steps=4))
    pipe.fit(TRAIN, run_dir=run, progress=False)
    loaded = ig.Pipeline.load(run)
    assert loaded.latent_shape == (2,) and loaded.event_shape == (2,)
    assert loaded.recipe.objective == pipe.recipe.objective
    expected = pipe.sample(12, seed=0)
    got = loaded.sample(12, seed=0)
    assert got.nfe == expected.nfe == 5
    torch.testing.assert_close(got.x, expected.x, rtol=0, atol=0)
    out = tmp_path / "x.npy"
    assert main(["sample", str(run), "--output", str(out), "--num", "12", "--seed", "0"]) == 0
    assert "(5 network evaluations per sample)" in capsys.readouterr().out
    torch.testing.assert_close(torch.from_numpy(np.load(out)), expected.x, rtol=0, atol=0)
