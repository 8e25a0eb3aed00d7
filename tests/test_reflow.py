"""Reflow (math.md 5): path straightness in closed form, pairs that are the model's own ODE
samples, the pairs file, and one reflow round that straightens 2D paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import interpgen as ig
from interpgen.cli import main
from interpgen.protocols import SampleResult
from interpgen_plugins.reflow.pairs import (ReflowPairs, generate_pairs, measure_straightness, path_straightness,
                                            reported_times, save_pairs)


def test_straight_constant_speed_paths_have_zero_straightness():
    times = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64)
    start, end = torch.randn(5, 1, 2, 2, dtype=torch.float64), torch.randn(5, 1, 2, 2, dtype=torch.float64)
    trajectory = torch.stack([start + t * (end - start) for t in times])
    assert torch.allclose(path_straightness(trajectory, times), torch.zeros(5, dtype=torch.float64), atol=1e-24)


def test_straightness_of_a_kinked_path_in_closed_form():
    # 0 -> 1 in the first half, then standing still: mean velocity 1, step velocities 2 and 0,
    # S = 0.5 (2 - 1)^2 + 0.5 (0 - 1)^2 = 1 (times 2 for two identical coordinates)
    times = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    trajectory = torch.tensor([[[0.0, 0.0]], [[1.0, 1.0]], [[1.0, 1.0]]], dtype=torch.float64)
    assert path_straightness(trajectory, times).tolist() == [2.0]
    # same geometry at a non-uniform speed on a straight line still counts: S > 0
    bent = torch.tensor([[[0.0]], [[0.9]], [[1.0]]], dtype=torch.float64)
    assert path_straightness(bent, times).item() == pytest.approx(0.5 * 0.8 ** 2 + 0.5 * 0.8 ** 2)


def test_straightness_rejects_bad_grids():
    with pytest.raises(ValueError, match="the time grid must increase"):
        path_straightness(torch.zeros(3, 2, 1), torch.tensor([0.0, 0.5, 0.5]))
    with pytest.raises(ValueError, match=r"need states \(K \+ 1, B, \*event\) and times"):
        path_straightness(torch.zeros(3, 2, 1), torch.tensor([0.0, 1.0]))


@pytest.fixture(scope="module")
def small_pipe(registry):
    pipe = ig.Pipeline(data=ig.part("dataset", "eight_gaussians", registry), registry=registry,
                       network=ig.part("network", "mlp", registry, hidden=32, depth=2))
    pipe.fit(ig.Train(steps=20, batch_size=64, log_every=10))
    return pipe


def test_reflow_pairs_are_the_models_own_samples(small_pipe, registry):
    pairs = generate_pairs(small_pipe, 50, sampler="euler", steps=6, seed=3)
    x1 = small_pipe.sample(50, sampler="euler", steps=6, seed=3, data_space=False)
    assert torch.equal(pairs.x1, x1.x) and x1.nfe == 6
    x0 = small_pipe.prior.sample(50, (2,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(pairs.x0, x0) and pairs.nfe == 6 and pairs.labels is None
    # in chunks the rows are the same draws whatever the chunk size
    chunked = generate_pairs(small_pipe, 50, sampler="euler", steps=6, seed=3, chunk=50)
    assert torch.equal(chunked.x1, pairs.x1)
    # the reported straightness is the mean over the sampled paths
    field = small_pipe.field()
    result = small_pipe.sampler_for("euler", steps=6).sample(field, x0, return_trajectory=True)
    t0, t1 = field.time_range(False)
    torch.testing.assert_close(result.times, torch.linspace(t0, t1, 7, dtype=torch.float64))
    expected = path_straightness(result.trajectory, result.times).mean()
    assert pairs.straightness == pytest.approx(float(expected), rel=1e-9)


def test_reflow_refuses_samplers_that_report_no_time_grid(small_pipe):
    """Issue 13, item 9: only ODE samplers that report their grid; the others by name."""
    with pytest.raises(ValueError, match="sampler Dopri5Sampler reported none with its trajectory"):
        generate_pairs(small_pipe, 4, sampler="dopri5")
    with pytest.raises(ValueError, match="probability-flow ODE: sampler EulerMaruyamaSampler integrates an SDE"):
        generate_pairs(small_pipe, 4, sampler="euler_maruyama")
    # the example third-party plugin's sampler returns no times: refused with the same message
    with pytest.raises(ValueError, match="sampler RalstonSampler reported none .*SampleResult.times"):
        generate_pairs(small_pipe, 4, sampler="ralston", steps=3)


@pytest.mark.parametrize("grid", ["uniform", "tuned", "edm"])
def test_reflow_accepts_every_grid_a_fixed_step_sampler_reports(small_pipe, grid):
    sampler = ig.part("sampler", "midpoint", steps=4, grid=grid)
    pairs = generate_pairs(small_pipe, 30, sampler=sampler, seed=4)
    x0 = small_pipe.prior.sample(30, (2,), generator=torch.Generator().manual_seed(4))
    result = small_pipe.sampler_for(sampler).sample(small_pipe.field(), x0, return_trajectory=True)
    assert result.times.shape == (5,) and torch.equal(pairs.x1, result.x)
    if grid != "uniform":  # straightness along the grid actually used, not an assumed uniform one
        assert not torch.allclose(result.times, torch.linspace(float(result.times[0]), float(result.times[-1]), 5, dtype=torch.float64))
    expected = float(path_straightness(result.trajectory, result.times).mean())
    assert pairs.straightness == pytest.approx(expected, rel=1e-9)


def test_reflow_accepts_a_plugin_sampler_that_reports_its_grid(small_pipe):
    class TwoEulerSteps:  # not registered: the user's own ODE sampler, on the grid 0 -> 0.3 -> 1
        stochastic = False

        def sample(self, field, x0, *, generator=None, return_trajectory=False):
            t0, t1 = field.time_range(False)
            times = torch.tensor([t0, 0.3, t1], dtype=torch.float64)
            states = [x0]
            for a, b in zip(times[:-1].tolist(), times[1:].tolist()):
                x = states[-1]
                states.append(x + (b - a) * field.evaluate(x, torch.full((x.shape[0],), a), ("velocity",))[0])
            return SampleResult(x=states[-1], nfe=2, trajectory=torch.stack(states), times=times)

    pairs = generate_pairs(small_pipe, 8, sampler=TwoEulerSteps(), seed=0)
    assert pairs.nfe == 2 and pairs.straightness > 0
    with pytest.raises(ValueError, match="reported 2 times for a trajectory of 3 states"):
        reported_times(TwoEulerSteps(), SampleResult(x=torch.zeros(1), nfe=0, trajectory=torch.zeros(3, 1),
                                                     times=torch.zeros(2)))


def test_pairs_file_round_trips_through_the_paired_dataset(tmp_path, registry):
    pairs = ReflowPairs(x0=torch.randn(6, 2), x1=torch.randn(6, 2), labels=None, straightness=0.25, nfe=4)
    affine = (torch.tensor([1.0, -1.0]), torch.tensor([2.0, 3.0]))
    path = save_pairs(tmp_path / "pairs.npz", pairs, affine)
    with np.load(path) as saved:
        assert set(saved.files) == {"x0", "x1", "shift", "scale", "straightness"}
        assert float(saved["straightness"]) == 0.25
    source = registry.create("dataset", "paired", ig.part("dataset", "paired", registry, path=str(path)))
    assert torch.equal(source.x0, pairs.x0) and torch.equal(source.x1, pairs.x1)
    assert all(torch.equal(a, b) for a, b in zip(source.data_affine(), affine))
    with pytest.raises(ValueError, match="must end in .npz"):
        save_pairs(tmp_path / "pairs.npy", pairs, None)


@pytest.mark.slow
def test_one_reflow_round_straightens_the_paths(tmp_path, registry):
    torch.manual_seed(0)
    train = ig.Train(steps=250, batch_size=128, log_every=50, lr=2e-3)
    mlp = ig.part("network", "mlp", registry, hidden=64, depth=3)
    first = ig.Pipeline(data=ig.part("dataset", "eight_gaussians", registry), registry=registry, network=mlp)
    first.fit(train)
    pairs = generate_pairs(first, 2048, sampler="midpoint", steps=16, seed=1)
    path = save_pairs(tmp_path / "pairs.npz", pairs, first.data_affine)
    second = ig.Pipeline(data=ig.part("dataset", "paired", registry, path=str(path)), registry=registry,
                         network=mlp, coupling=ig.part("coupling", "paired", registry))
    second.fit(train)
    before = measure_straightness(first, 500, steps=40, seed=2)
    after = measure_straightness(second, 500, steps=40, seed=2)
    assert after < 0.5 * before, (before, after)


@pytest.mark.slow
def test_reflow_command_writes_pairs_and_reports_straightness(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--output", str(run), "--quiet", "--set", "train.steps=10", "--set", "train.log_every=5",
                 "--set", "network.hidden=16", "--set", "network.depth=1"]) == 0
    out = tmp_path / "pairs.npz"
    assert main(["reflow", str(run), "--num", "64", "--sampler", "euler", "--steps", "4", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote 64 pairs to {out} (4 network evaluations per sample); straightness of the input model's paths: " \
        in printed
    with np.load(out) as saved:
        assert saved["x0"].shape == (64, 2) and saved["x1"].shape == (64, 2)
    assert main(["reflow", str(run), "--num", "4", "--sampler", "dopri5", "--output", str(out)]) == 2
