"""The training objective (math.md 1.4): time sampling and the MSE loss against closed forms."""

from __future__ import annotations

import pytest
import torch

import interpgen as ig
from interpgen_plugins.si.objective import SIObjective, interpolant_loss, sample_times

REG = ig.registry()


def Objective(**params):  # noqa: N802 - the si objective's params, as ig.Objective(...) used to give them
    objective = ig.part("objective", "si", **params)
    assert isinstance(objective, SIObjective)
    return objective


def part(kind, name, **kw):
    params = ig.part(kind, name, **kw)
    return REG.entry_for(params).create(params, event_shape=(3,))


def test_uniform_times_fill_the_eps_interval():
    objective = Objective(time_sampling="uniform", t_eps=0.1)
    t = sample_times(objective, 10_000, generator=torch.Generator().manual_seed(0))
    assert t.min() >= 0.1 and t.max() <= 0.9
    assert abs(float(t.mean()) - 0.5) < 0.01


def test_logit_normal_times_closed_form():
    objective = Objective(time_sampling="logit_normal", logit_normal_mean=0.3, logit_normal_std=1.5, t_eps=0.0)
    t = sample_times(objective, 5, generator=torch.Generator().manual_seed(4))
    n = torch.randn(5, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(t, torch.sigmoid(0.3 + 1.5 * n))


def _draws(seed, batch, shape):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(batch, *shape, generator=g)
    u = torch.rand(batch, generator=g)
    z = torch.randn(batch, *shape, generator=g)
    return x0, u, z


def test_velocity_loss_on_the_linear_path_matches_closed_form():
    interp, prior, coupling = part("interpolant", "linear"), part("prior", "gaussian"), part("coupling", "independent")
    objective = Objective(time_sampling="uniform", t_eps=0.0)
    x1 = torch.randn(8, 3, generator=torch.Generator().manual_seed(1))
    net = lambda x, t: 2.0 * x  # noqa: E731 - any fixed function will do
    loss = interpolant_loss(net, interp, prior, coupling, objective, x1, generator=torch.Generator().manual_seed(9))
    x0, t, _ = _draws(9, 8, (3,))
    xt = (1 - t)[:, None] * x0 + t[:, None] * x1
    expected = ((2.0 * xt - (x1 - x0)) ** 2).mean(dim=1).mean()
    torch.testing.assert_close(loss, expected)


def test_antithetic_pairs_average_z_and_minus_z():
    interp = part("interpolant", "linear", gamma="brownian")
    prior, coupling = part("prior", "gaussian"), part("coupling", "independent")
    objective = Objective(time_sampling="uniform", t_eps=0.01, antithetic=True, prediction="noise")
    x1 = torch.randn(6, 3, generator=torch.Generator().manual_seed(2))
    net = lambda x, t: x  # noqa: E731
    loss = interpolant_loss(net, interp, prior, coupling, objective, x1, generator=torch.Generator().manual_seed(5))
    x0, u, z = _draws(5, 6, (3,))
    t = 0.01 + 0.98 * u
    gamma = torch.sqrt(t * (1 - t))[:, None]
    base = (1 - t)[:, None] * x0 + t[:, None] * x1
    plus = ((base + gamma * z - z) ** 2).mean(1).mean()
    minus = ((base - gamma * z + z) ** 2).mean(1).mean()
    torch.testing.assert_close(loss, (plus + minus) / 2)


def test_two_heads_are_each_regressed_on_their_target():
    interp = part("interpolant", "linear", gamma="brownian")
    prior, coupling = part("prior", "uniform"), part("coupling", "independent")
    objective = Objective(time_sampling="uniform", t_eps=0.01, prediction="velocity+noise")
    x1 = torch.randn(4, 3, generator=torch.Generator().manual_seed(3))
    net = lambda x, t: torch.zeros(x.shape[0], 6)  # noqa: E731
    loss = interpolant_loss(net, interp, prior, coupling, objective, x1, generator=torch.Generator().manual_seed(6))
    g = torch.Generator().manual_seed(6)
    x0 = torch.rand(4, 3, generator=g) * 2 - 1
    t = 0.01 + 0.98 * torch.rand(4, generator=g)
    z = torch.randn(4, 3, generator=g)
    gdot = ((1 - 2 * t) / (2 * torch.sqrt(t * (1 - t))))[:, None]
    velocity = x1 - x0 + gdot * z
    expected = (velocity ** 2).mean(1).mean() + (z ** 2).mean(1).mean()
    torch.testing.assert_close(loss, expected)


def test_score_target_needs_a_gaussian_base():
    with pytest.raises(ig.ConversionError, match="no score"):
        ig.Pipeline(data=ig.part("dataset", "moons"), prior=ig.part("prior", "uniform"),
                    objective=Objective(prediction="score"))
