"""Engine events (interpgen_train_event): the engine tells plugins about each logged row, each saved
checkpoint and the end of training; the built-in pictures plugin draws on those events."""

from __future__ import annotations

import pytest
import torch

import interpgen as ig
from interpgen.hookspecs import TrainEvent
from interpgen.train import LOSS_CURVE, SAMPLES_DIR, fit, read_metrics

PNG = b"\x89PNG\r\n\x1a\n"


class Spy:
    """A plugin object that records every engine event."""

    def __init__(self) -> None:
        self.events: list[TrainEvent] = []

    @ig.hookimpl
    def interpgen_train_event(self, event: TrainEvent) -> None:
        self.events.append(event)


@pytest.fixture
def spy():
    found = Spy()
    ig.reload_plugins(extra={"spy": found})
    try:
        yield found
    finally:
        ig.reload_plugins()


def _pipe() -> ig.Pipeline:
    return ig.Pipeline(data=ig.part("dataset", "moons"), network=ig.part("network", "mlp", hidden=16, depth=1))


def test_engine_calls_the_hook_for_log_checkpoint_and_end(spy, tmp_path):
    pipe = _pipe()
    cfg = ig.Train(steps=6, batch_size=16, log_every=2, checkpoint_every=3, sample_every=0, pictures=False)
    losses = pipe.fit(cfg, run_dir=tmp_path, progress=False)
    kinds = [(e.kind, e.step) for e in spy.events]
    assert kinds == [("log", 2), ("checkpoint", 3), ("log", 4), ("log", 6), ("checkpoint", 6), ("end", 6)]
    for event in spy.events:
        assert event.pipe is pipe and event.run_dir == tmp_path and event.train == cfg
    logs = [e for e in spy.events if e.kind == "log"]
    assert [e.record for e in logs] == read_metrics(tmp_path)  # the row written to metrics.jsonl
    assert [e.record["loss"] for e in logs] == losses
    assert all(e.record is None for e in spy.events if e.kind != "log")


def test_events_carry_a_trainable_that_is_not_a_pipeline(spy, tmp_path):
    from test_engine_trainable import TinyRegression, _cfg

    model = TinyRegression()
    fit(model, _cfg(3), run_dir=tmp_path, progress=False)
    assert [(e.kind, e.step) for e in spy.events] == [("log", 2), ("log", 3), ("checkpoint", 3), ("end", 3)]
    assert all(e.pipe is model for e in spy.events)
    assert not (tmp_path / SAMPLES_DIR).exists()  # the pictures plugin leaves what it cannot sample alone


def test_hook_is_gone_after_the_plugins_are_reloaded(tmp_path):
    found = Spy()
    ig.reload_plugins(extra={"spy": found})
    ig.reload_plugins()
    _pipe().fit(ig.Train(steps=2, batch_size=8, log_every=1, sample_every=0, pictures=False), run_dir=tmp_path,
                progress=False)
    assert found.events == []


# -- the pictures plugin ---------------------------------------------------------------------------
def test_pictures_plugin_draws_samples_and_the_loss_curve(tmp_path):
    _pipe().fit(ig.Train(steps=6, batch_size=16, log_every=2, checkpoint_every=6, sample_every=2),
                run_dir=tmp_path, progress=False)
    names = sorted(p.name for p in (tmp_path / SAMPLES_DIR).iterdir())
    assert names == ["step_00000002.png", "step_00000004.png", "step_00000006.png"]
    for path in [*(tmp_path / SAMPLES_DIR).iterdir(), tmp_path / LOSS_CURVE]:
        assert path.read_bytes()[:8] == PNG


def test_pictures_plugin_draws_image_grids(tmp_path):
    pipe = ig.Pipeline(data=ig.part("dataset", "digits"), network=ig.part("network", "mlp", hidden=16, depth=1))
    pipe.fit(ig.Train(steps=2, batch_size=8, log_every=1, checkpoint_every=2, sample_every=0), run_dir=tmp_path,
             progress=False)
    assert [p.name for p in (tmp_path / SAMPLES_DIR).iterdir()] == ["step_00000002.png"]  # the end only
    assert (tmp_path / LOSS_CURVE).read_bytes()[:8] == PNG


def test_no_pictures_when_turned_off(tmp_path):
    _pipe().fit(ig.Train(steps=6, batch_size=16, log_every=2, checkpoint_every=6, sample_every=2, pictures=False),
                run_dir=tmp_path, progress=False)
    assert not (tmp_path / SAMPLES_DIR).exists() and not (tmp_path / LOSS_CURVE).exists()
    assert not list(tmp_path.rglob("*.png"))


def test_pictures_sample_without_touching_the_training(tmp_path):
    """Drawing samples on an event must not change what the run trains (seeded noise per step)."""
    with_pictures, without = _pipe(), _pipe()
    a = with_pictures.fit(ig.Train(steps=4, batch_size=16, log_every=1, sample_every=1), run_dir=tmp_path / "a",
                          progress=False)
    b = without.fit(ig.Train(steps=4, batch_size=16, log_every=1, sample_every=1, pictures=False),
                    run_dir=tmp_path / "b", progress=False)
    assert a == b
    for p, q in zip(with_pictures.network.parameters(), without.network.parameters(), strict=True):
        assert torch.equal(p, q)
