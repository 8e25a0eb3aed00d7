"""The training engine trains anything Trainable (interpgen.protocols.Trainable), not only a
Pipeline: a tiny least-squares model with its own data, loss and state goes through
interpgen.train.fit with a run directory, is saved, and resumes exactly."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import torch
from torch import nn

import interpgen as ig
from interpgen.protocols import Batch, Trainable
from interpgen.train import fit, read_metrics
from interpgen.train import run_dir as rd

TRUE_W = torch.tensor([[2.0], [-1.0], [0.5]])


class LineData:
    """Rows ``x ~ N(0, I_3)`` and ``y = x w + 0.1 n`` packed as one event ``(x, y)`` of shape (4,),
    drawn from the engine's generator (so the stream depends on the seed and the step only)."""

    event_shape = (4,)
    num_classes = None

    def batches(self, batch_size: int, *, generator: torch.Generator,
                shard: tuple[int, int] = (0, 1)) -> Iterator[tuple[torch.Tensor, None]]:
        index, count = shard
        while True:
            x = torch.randn(batch_size * count, 3, generator=generator)
            y = x @ TRUE_W + 0.1 * torch.randn(batch_size * count, 1, generator=generator)
            rows = torch.cat([x, y], dim=1)
            yield rows[index * batch_size:(index + 1) * batch_size], None

    def reference(self, num: int, *, generator: torch.Generator) -> torch.Tensor:
        return next(self.batches(num, generator=generator))[0]

    def data_affine(self) -> None:
        return None


class TinyRegression:
    """A Trainable that is not a Pipeline: a linear map fitted by least squares. The loss also
    draws from the engine's per-step generator (random row weights), so resuming must reproduce
    the noise stream too."""

    def __init__(self, seed: int = 0):
        torch.manual_seed(seed)
        self.data = LineData()
        self.net = nn.Linear(3, 1)
        self.step = 0

    def loss(self, batch: Batch, *, generator: torch.Generator | None = None, network: Any = None) -> torch.Tensor:
        net = network if network is not None else self.net
        x, y = batch.x1[:, :3], batch.x1[:, 3:]
        weight = torch.rand(x.shape[0], 1, generator=generator, device=x.device)
        return (weight * (net(x) - y).pow(2)).mean()

    def trainable_modules(self) -> list[nn.Module]:
        return [self.net]

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "step": int(self.step)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.step = int(state["step"])

    def run_files(self, train: Any) -> dict[str, str]:
        return {rd.RECIPE: f'model = "TinyRegression"\ninputs = 3\n\n[train]\nsteps = {train.steps}\n'}


def _cfg(steps: int) -> ig.Train:
    return ig.Train(steps=steps, batch_size=16, lr=0.1, log_every=2, checkpoint_every=3, keep_checkpoints=5,
                    ema_decay=0.0, seed=7, sample_every=0, pictures=False)


def test_the_tiny_model_follows_the_protocol():
    assert isinstance(TinyRegression(), Trainable)
    assert not isinstance(TinyRegression(), ig.Pipeline)


def test_engine_trains_a_trainable_that_is_not_a_pipeline(tmp_path):
    model = TinyRegression()
    losses = fit(model, _cfg(60), run_dir=tmp_path / "run", progress=False)
    assert model.step == 60 and len(losses) == 30
    assert losses[-1] < 0.1 * losses[0]  # it learnt the line
    torch.testing.assert_close(model.net.weight.detach(), TRUE_W.T, atol=0.1, rtol=0)
    run = tmp_path / "run"
    assert (run / rd.RECIPE).read_text() == 'model = "TinyRegression"\ninputs = 3\n\n[train]\nsteps = 60\n'
    assert [r["step"] for r in read_metrics(run)] == list(range(2, 61, 2))
    assert [p.name for p in rd.list_checkpoints(run)][-1] == "step_00000060"
    saved = rd.load_checkpoint(rd.latest_checkpoint(run))
    assert saved["step"] == 60 and torch.equal(saved["net"]["weight"], model.net.weight.detach())
    assert json.loads((run / rd.PROCESSES).read_text())["step"] == 60


def test_a_trainable_is_saved_and_resumed_exactly(tmp_path):
    straight = TinyRegression()
    losses = fit(straight, _cfg(12), run_dir=tmp_path / "a", progress=False)

    first = TinyRegression()
    fit(first, _cfg(6), run_dir=tmp_path / "b", progress=False)
    assert first.step == 6
    resumed = TinyRegression(seed=99)  # other initial weights: the checkpoint must replace them
    rest = fit(resumed, _cfg(12), run_dir=tmp_path / "b", progress=False, resume=True)
    assert resumed.step == 12
    assert rest == losses[3:]  # the logging windows after step 6
    for p, q in zip(straight.net.parameters(), resumed.net.parameters(), strict=True):
        assert torch.equal(p, q)
    assert [r["loss"] for r in read_metrics(tmp_path / "b")] == losses


def test_an_existing_run_is_not_overwritten_without_resume(tmp_path):
    fit(TinyRegression(), _cfg(3), run_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="already holds a run; pass --resume"):
        fit(TinyRegression(), _cfg(3), run_dir=tmp_path, progress=False)


# -- the Trainable contract as interpgen.protocols.Trainable documents it --------------------------
class OwnFiles(TinyRegression):
    """A run directory without a recipe.toml: the trainable keeps a file of its own (the protocol
    says "e.g. ``recipe.toml``")."""

    def run_files(self, train: Any) -> dict[str, str]:
        return {"tiny.json": json.dumps({"model": "TinyRegression", "inputs": 3})}


def test_run_files_of_its_own(tmp_path):
    model = OwnFiles()
    fit(model, _cfg(4), run_dir=tmp_path, progress=False)
    assert model.step == 4
    assert json.loads((tmp_path / "tiny.json").read_text()) == {"model": "TinyRegression", "inputs": 3}
    assert not (tmp_path / rd.RECIPE).exists()
    with pytest.raises(ValueError, match="already holds a run; pass --resume"):
        fit(OwnFiles(), _cfg(4), run_dir=tmp_path, progress=False)


def test_a_run_without_a_recipe_file_resumes_exactly(tmp_path):
    straight = OwnFiles()
    losses = fit(straight, _cfg(12), run_dir=tmp_path / "a", progress=False)
    fit(OwnFiles(), _cfg(6), run_dir=tmp_path / "b", progress=False)
    resumed = OwnFiles(seed=5)
    fit(resumed, _cfg(12), run_dir=tmp_path / "b", progress=False, resume=True)
    assert resumed.step == 12
    assert [r["loss"] for r in read_metrics(tmp_path / "b")] == losses
    assert torch.equal(straight.net.weight, resumed.net.weight) and torch.equal(straight.net.bias, resumed.net.bias)
