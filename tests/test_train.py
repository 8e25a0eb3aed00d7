"""The first training loop: EMA (and that sampling uses it), exact resume, NaN guard, atomic
checkpoints."""

from __future__ import annotations

import os

import pytest
import torch

import interpgen as ig
from interpgen import run_dir as rd
from interpgen.train import TrainingError, ema_decay_at, lr_factor, update_ema


def small_pipe(**kw) -> ig.Pipeline:
    return ig.Pipeline(data=ig.part("dataset", "moons"), network=ig.part("network", "mlp", hidden=32, depth=2), **kw)


def test_ema_decay_warm_up_closed_form():
    assert ema_decay_at(0.999, 0) == pytest.approx(0.1)
    assert ema_decay_at(0.999, 10) == pytest.approx(11 / 20)
    assert ema_decay_at(0.999, 100_000) == 0.999


def test_update_ema_is_a_lerp():
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    expected = [0.9 * p.detach() + 0.1 * q.detach() for p, q in zip(a.parameters(), b.parameters())]
    update_ema(a, b, 0.9)
    for p, e in zip(a.parameters(), expected):
        torch.testing.assert_close(p.detach(), e)


def test_lr_schedule():
    cfg = ig.Train(steps=110, warmup_steps=10, lr_schedule="cosine")
    assert lr_factor(cfg, 0) == pytest.approx(0.1) and lr_factor(cfg, 9) == pytest.approx(1.0)
    assert lr_factor(cfg, 10) == pytest.approx(1.0) and lr_factor(cfg, 60) == pytest.approx(0.5)
    assert lr_factor(cfg, 110) == pytest.approx(0.0, abs=1e-12)


def test_sampling_uses_the_ema_weights():
    pipe = small_pipe()
    pipe.fit(ig.Train(steps=30, batch_size=64, log_every=10))
    before = pipe.sample(16, sampler=ig.part("sampler", "euler", steps=4), seed=3)
    with torch.no_grad():  # wreck the raw network: EMA samples must not change
        for p in pipe.network.parameters():
            p.fill_(0.5)
    after = pipe.sample(16, sampler=ig.part("sampler", "euler", steps=4), seed=3)
    raw = pipe.sample(16, sampler=ig.part("sampler", "euler", steps=4), seed=3, ema=False)
    torch.testing.assert_close(after, before)
    assert not torch.allclose(raw, before)


def test_resume_gives_the_same_weights_as_one_run(tmp_path):
    cfg = ig.Train(steps=40, batch_size=32, checkpoint_every=20, log_every=10, seed=5)
    straight = small_pipe()
    losses = straight.fit(cfg, run_dir=tmp_path / "a")
    first = small_pipe()
    first.fit(ig.Train(**{**_fields(cfg), "steps": 20}), run_dir=tmp_path / "b")
    resumed = small_pipe()
    resumed_losses = resumed.fit(cfg, run_dir=tmp_path / "b", resume=True)
    assert resumed.step == 40
    assert resumed_losses == losses[2:]
    for p, q in zip(straight.network.parameters(), resumed.network.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    for p, q in zip(straight.ema.parameters(), resumed.ema.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def _fields(cfg):
    import attrs

    return attrs.asdict(cfg)


def test_nan_loss_stops_with_the_step_and_keeps_the_checkpoint(tmp_path):
    pipe = small_pipe()
    pipe.fit(ig.Train(steps=10, batch_size=16, checkpoint_every=10, log_every=5), run_dir=tmp_path)
    good = rd.latest_checkpoint(tmp_path).read_bytes()
    with torch.no_grad():
        next(pipe.network.parameters()).fill_(float("nan"))
    with pytest.raises(TrainingError, match=r"loss is nan at step 10"):
        pipe.fit(ig.Train(steps=20, batch_size=16, checkpoint_every=10, log_every=5), run_dir=tmp_path)
    assert rd.latest_checkpoint(tmp_path).read_bytes() == good


def test_crash_while_saving_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    rd.save_checkpoint(tmp_path, 1, {"x": torch.ones(3)}, keep=3)
    real_replace = os.replace

    def crash(src, dst):
        raise KeyboardInterrupt("killed mid-save")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        rd.save_checkpoint(tmp_path, 2, {"x": torch.zeros(3)}, keep=3)
    monkeypatch.setattr(os, "replace", real_replace)
    latest = rd.latest_checkpoint(tmp_path)
    assert latest.name == "step_00000001.pt"
    torch.testing.assert_close(rd.load_checkpoint(latest)["x"], torch.ones(3))
    assert not list((tmp_path / rd.CHECKPOINT_DIR).glob("*.tmp"))  # no debris


def test_damaged_checkpoint_is_reported(tmp_path):
    path = rd.save_checkpoint(tmp_path, 1, {"x": torch.ones(3)}, keep=3)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(rd.CheckpointError, match="damaged or not an interpgen checkpoint"):
        rd.load_checkpoint(path)
    other = tmp_path / "other.pt"
    torch.save({"weights": 1}, other)
    with pytest.raises(rd.CheckpointError, match="format marker missing"):
        rd.load_checkpoint(other)


def test_keep_last_k(tmp_path):
    for step in range(1, 6):
        rd.save_checkpoint(tmp_path, step, {}, keep=2)
    assert [p.name for p in rd.list_checkpoints(tmp_path)] == ["step_00000004.pt", "step_00000005.pt"]
