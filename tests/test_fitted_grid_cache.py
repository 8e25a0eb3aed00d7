"""The ``fitted`` time grid is fitted once per model and kept (issue 13, item 3): it says what it
will cost before it starts and shows progress, a run's grid goes to ``RUN/grids/`` and a later
load of the run reuses it, and the key changes with what the grid depends on (weights, steps,
guidance, pilot rows)."""

from __future__ import annotations

import io
import json

import pytest
import torch

import interpgen as ig
from interpgen.pipeline import Pipeline
from interpgen_plugins.samplers import fitted_grid as fg
from interpgen_plugins.samplers import grid_cache
from interpgen_plugins.samplers.butcher import EULER
from interpgen_plugins.samplers.fixed_step import EulerSampler

FITTED = ig.part("sampler", "euler", steps=3, grid="fitted")


@pytest.fixture(scope="module")
def run(registry, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fitted") / "run"
    pipe = ig.Pipeline(data=ig.part("dataset", "moons", registry), registry=registry,
                       network=ig.part("network", "mlp", registry, hidden=16, depth=1))
    pipe.fit(ig.Train(steps=2, batch_size=16, log_every=1, pictures=False), run_dir=folder, progress=False)
    return folder


@pytest.fixture
def fits(monkeypatch):
    """Counts the fits (each one's pilot rows) and starts with nothing kept in memory."""
    grid_cache.forget_fitted_grids()
    calls = []
    real = fg.fitted_grid

    def counting(velocity, x, *args, **kwargs):
        calls.append(int(x[:fg.FITTED_PILOT_BATCH].shape[0]))
        return real(velocity, x, *args, **kwargs)

    monkeypatch.setattr(fg, "fitted_grid", counting)
    yield calls
    grid_cache.forget_fitted_grids()


def _clear(run):
    for path in (run / "grids").glob("*.json"):
        path.unlink()


def test_a_runs_grid_is_fitted_once_kept_in_the_run_and_reused_after_a_fresh_load(run, registry, fits, capsys):
    _clear(run)
    first = Pipeline.load(run, registry=registry).sample(40, sampler=FITTED, seed=1)
    err = capsys.readouterr().err
    total = fg.fitted_evaluations(3, 1)
    assert f"fitting the 'fitted' time grid for euler, 3 steps: {total} model evaluations on 40 pilot rows" in err
    assert "fitted the time grid in" in err and str(run / "grids") in err
    files = list((run / "grids").glob("fitted-euler-3steps-*.json"))
    assert len(files) == 1 and fits == [40]
    saved = json.loads(files[0].read_text())
    assert saved["pilot_rows"] == 40 and saved["evaluations"] == total and len(saved["times"]) == 4
    # the same pipeline: kept in memory, no fit and no message
    again = Pipeline.load(run, registry=registry)
    assert torch.equal(again.sample(40, sampler=FITTED, seed=1).x, first.x) and fits == [40]
    # a new process (nothing in memory): read from the run directory, said so, same samples
    grid_cache.forget_fitted_grids()
    capsys.readouterr()
    fresh = Pipeline.load(run, registry=registry).sample(40, sampler=FITTED, seed=1)
    assert torch.equal(fresh.x, first.x) and fits == [40]
    assert f"using the 'fitted' time grid kept in {files[0]} (fitted on 40 pilot rows)" in capsys.readouterr().err
    # a smaller call reuses it; a call with more pilot rows fits again and replaces it
    Pipeline.load(run, registry=registry).sample(10, sampler=FITTED, seed=2)
    assert fits == [40]
    Pipeline.load(run, registry=registry).sample(64, sampler=FITTED, seed=2)
    assert fits == [40, 64] and json.loads(files[0].read_text())["pilot_rows"] == 64


def test_the_key_follows_the_weights_the_steps_and_the_guidance(run, registry, fits):
    _clear(run)
    pipe = Pipeline.load(run, registry=registry)
    pipe.sample(16, sampler=FITTED)
    pipe.sample(16, sampler=FITTED, ema=False)  # the raw weights differ from the EMA's
    pipe.sample(16, sampler=ig.part("sampler", "euler", steps=4, grid="fitted"))
    assert fits == [16, 16, 16]
    with torch.no_grad():
        next(pipe.ema.parameters()).add_(0.01)  # another checkpoint
    pipe.sample(16, sampler=FITTED)
    assert len(fits) == 4
    assert len(list((run / "grids").glob("*.json"))) >= 3


def test_guidance_scale_and_conditioning_change_the_key_but_not_which_labels():
    net = torch.nn.Linear(2, 2)

    class Guided(torch.nn.Module):
        def __init__(self, scale):
            super().__init__()
            self.network, self.scale = net, scale

    class Field:
        def __init__(self, network, labels=None):
            self.network, self.labels, self.interpolant, self.predictions = network, labels, None, ("velocity",)

    keys = [grid_cache.field_key(Field(Guided(1.0))), grid_cache.field_key(Field(Guided(2.0))),
            grid_cache.field_key(Field(Guided(2.0), torch.tensor([0, 1]))), grid_cache.field_key(Field(Guided(2.0))),
            grid_cache.field_key(Field(Guided(2.0), torch.tensor([3, 3, 3])))]
    assert keys[0] != keys[1] != keys[2] and keys[1] == keys[3] and keys[2] == keys[4]
    assert grid_cache.field_key(object()) is None  # no network: not kept


def test_an_explicit_grid_cache_folder_and_the_progress_lines(tmp_path, fits):
    class Field:  # a field that reveals its network, driving a fixed linear velocity
        interpolant, predictions, labels, nfe = None, ("velocity",), None, 0
        network = torch.nn.Linear(2, 2)

        def time_range(self, stochastic):
            return (0.0, 1.0)

        def evaluate(self, x, t, wants):
            self.nfe += 1
            return (-x * (1 + 3 * t[:, None] ** 2),)

    out = io.StringIO()
    velocity = lambda t, x: Field().evaluate(x, t, ("velocity",))[0]  # noqa: E731
    x0 = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    times = grid_cache.fitted_times(velocity, x0, 0.0, 1.0, 3, EULER, sampler="euler", field=Field(),
                                    folder=tmp_path / "mine", stream=out)
    text = out.getvalue()
    assert times[0] == 0.0 and times[-1] == 1.0 and all(b > a for a, b in zip(times, times[1:]))
    assert f"{fg.fitted_evaluations(3, 1)} model evaluations on 8 pilot rows" in text
    assert "fitted grid: about" in text and "s per evaluation" in text  # the estimate in seconds
    assert len(list((tmp_path / "mine").glob("*.json"))) == 1
    sampler = EulerSampler(steps=3, grid="fitted", grid_cache=str(tmp_path / "mine"))
    grid_cache.forget_fitted_grids()
    result = sampler.sample(Field(), x0)
    assert fits == [8] and result.times.tolist() == times and result.nfe == 3


def test_the_build_puts_a_runs_grids_in_the_run_directory(registry, tmp_path):
    entry = registry.get("sampler", "midpoint")
    fitted = ig.part("sampler", "midpoint", registry, steps=2, grid="fitted")
    assert entry.create(fitted, run_dir=tmp_path).grid_cache == str(tmp_path / "grids")
    assert entry.create(fitted).grid_cache is None
    assert entry.create(ig.part("sampler", "midpoint", registry, steps=2), run_dir=tmp_path).grid_cache is None
    mine = ig.part("sampler", "midpoint", registry, steps=2, grid="fitted", grid_cache="elsewhere")
    assert entry.create(mine, run_dir=tmp_path).grid_cache == "elsewhere"
