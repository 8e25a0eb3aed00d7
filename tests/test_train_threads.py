"""torch's threads while training (docs/training.md, "Threads"): one per process on CPU unless
``train.threads`` says otherwise, 0 keeps the caller's setting, and the count is put back after."""

from __future__ import annotations

import pytest
import torch

import interpgen as ig
from interpgen.config import RecipeError
from interpgen.hookspecs import TrainEvent
from interpgen.recipe import dump_recipe, structure_recipe


class ThreadSpy:
    """Records torch's thread count at every logged step."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    @ig.hookimpl
    def interpgen_train_event(self, event: TrainEvent) -> None:
        if event.kind == "log":
            self.seen.append(torch.get_num_threads())


@pytest.fixture
def spy():
    found = ThreadSpy()
    ig.reload_plugins(extra={"thread_spy": found})
    before = torch.get_num_threads()
    try:
        yield found
    finally:
        torch.set_num_threads(before)
        ig.reload_plugins()


def _train(run_dir, **threads) -> None:
    pipe = ig.Pipeline(data=ig.part("dataset", "moons"), network=ig.part("network", "mlp", hidden=8, depth=1))
    pipe.fit(ig.Train(steps=2, batch_size=8, log_every=1, pictures=False, **threads), run_dir=run_dir, progress=False)


@pytest.mark.parametrize("threads, expected", [({}, 1), ({"threads": 2}, 2), ({"threads": 3}, 3), ({"threads": 0}, 2)])
def test_threads_while_training_and_after(spy, tmp_path, threads, expected):
    torch.set_num_threads(2)  # the caller's setting (0 keeps it)
    _train(tmp_path / "run", **threads)
    assert spy.seen == [expected, expected]
    assert torch.get_num_threads() == 2  # put back


def test_threads_in_recipes(registry):
    plain = structure_recipe({"data": "moons"}, registry)
    assert plain.train.threads is None
    assert "threads" not in dump_recipe(plain, registry)  # left out: the engine's choice
    zero = structure_recipe({"data": "moons", "train": {"threads": 0}}, registry)
    assert "threads = 0" in dump_recipe(zero, registry)
    with pytest.raises(RecipeError, match=r"threads must be an integer >= 0, got -1 @ train\.threads"):
        structure_recipe({"data": "moons", "train": {"threads": -1}}, registry)
