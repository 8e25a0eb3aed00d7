"""Sampling really uses the EMA weights, and the EMA is the documented recursion
(interpgen/train/ema.py, on torch's AveragedModel): ema <- d_k ema + (1 - d_k) w_{k+1}, d_k = min(decay, (1 + k) / (10 + k))."""

from __future__ import annotations

import copy

import pytest
import torch

import interpgen as ig
import interpgen.train.ema as ema_module
from interpgen.train.ema import averaged_model, ema_decay_at

EULER = {"steps": 4}


def small_pipe() -> ig.Pipeline:
    return ig.Pipeline(data=ig.part("dataset", "moons"), network=ig.part("network", "mlp", hidden=32, depth=2))


def test_ema_decay_warm_up_closed_form():
    assert ema_decay_at(0.999, 0) == pytest.approx(0.1)
    assert ema_decay_at(0.999, 10) == pytest.approx(11 / 20)
    assert ema_decay_at(0.999, 100_000) == 0.999


def test_averaged_model_is_a_lerp_in_place_and_copies_buffers():
    a, b = torch.nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        b.weight.fill_(2.0)
        b.running_mean.fill_(5.0)
    average = averaged_model(a, 0.9)
    assert average.module is a  # no copy: the EMA module itself is updated
    average.multi_avg_fn.step = 100  # past the warm-up: d = 0.9
    expected = [0.9 * p.detach() + 0.1 * q.detach() for p, q in zip(a.parameters(), b.parameters())]
    average.update_parameters(b)
    for p, e in zip(a.parameters(), expected):
        torch.testing.assert_close(p.detach(), e, rtol=0, atol=1e-7)
    assert torch.equal(a.running_mean, b.running_mean)


def test_the_trainer_keeps_the_documented_average(monkeypatch):
    """Record the weights after every optimiser step and redo the recursion by hand."""
    pipe = small_pipe()
    start = copy.deepcopy(pipe.network.state_dict())
    seen: list[tuple[float, dict]] = []
    real = ema_module.WarmupEMA.__call__

    def spy(self, averaged, current, count):
        seen.append((ema_decay_at(self.decay, self.step), {k: v.clone() for k, v in pipe.network.state_dict().items()}))
        real(self, averaged, current, count)

    monkeypatch.setattr(ema_module.WarmupEMA, "__call__", spy)
    pipe.fit(ig.Train(steps=12, batch_size=16, ema_decay=0.8, sample_every=0, pictures=False))
    assert [d for d, _ in seen] == [min(0.8, (1 + k) / (10 + k)) for k in range(12)]
    expected = {k: v.clone() for k, v in start.items()}
    for decay, weights in seen:
        expected = {k: decay * expected[k] + (1 - decay) * weights[k] for k in expected}
    for name, value in pipe.ema.state_dict().items():
        torch.testing.assert_close(value, expected[name], rtol=1e-6, atol=1e-6)
    assert any(not torch.equal(e, w) for e, w in zip(pipe.ema.parameters(), pipe.network.parameters()))


def test_sampling_uses_the_ema_weights():
    pipe = small_pipe()
    pipe.fit(ig.Train(steps=30, batch_size=64, log_every=10, sample_every=0, pictures=False))
    euler = ig.part("sampler", "euler", **EULER)
    before = pipe.sample(16, sampler=euler, seed=3).x
    with torch.no_grad():  # wreck the raw network: EMA samples must not change
        for p in pipe.network.parameters():
            p.fill_(0.5)
    after = pipe.sample(16, sampler=euler, seed=3).x
    raw = pipe.sample(16, sampler=euler, seed=3, ema=False).x
    assert torch.equal(after, before)
    assert not torch.allclose(raw, before)


def test_a_loaded_run_samples_with_its_ema(tmp_path):
    pipe = small_pipe()
    run = tmp_path / "run"
    pipe.fit(ig.Train(steps=20, batch_size=32, checkpoint_every=20, sample_every=0, pictures=False), run_dir=run)
    # fit(run_dir=...) writes the recipe file beside the checkpoints, as `interpgen train` does
    recipe = ig.load_recipe(run / "recipe.toml", ig.registry())
    assert recipe.network == ig.part("network", "mlp", hidden=32, depth=2) and recipe.train.steps == 20
    loaded = ig.Pipeline.load(run)
    euler = ig.part("sampler", "euler", **EULER)
    for p, q in zip(loaded.ema.parameters(), pipe.ema.parameters(), strict=True):
        assert torch.equal(p, q)
    expected = pipe.sample(16, sampler=euler, seed=1).x
    assert torch.equal(loaded.sample(16, sampler=euler, seed=1).x, expected)
    # the same weights put into the raw network give the same samples without EMA
    loaded.network.load_state_dict(loaded.ema.state_dict())
    assert torch.equal(loaded.sample(16, sampler=euler, seed=1, ema=False).x, expected)
    assert not torch.equal(pipe.sample(16, sampler=euler, seed=1, ema=False).x, expected)
