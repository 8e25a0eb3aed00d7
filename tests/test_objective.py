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


# -- the logged value of the score loss (math.md 1.4, issue 13) -----------------------------------

def _score_losses(monkeypatch, prior_name: str, t_value: float, plain: bool):
    """The score loss of a linear-brownian path at every row's time ``t_value`` and the network's
    weight gradient: as trained (``plain=False``) or with the plain MSE put in its place."""
    from interpgen_plugins.si import objective as module

    interp = part("interpolant", "linear", gamma="brownian")
    prior, coupling = part("prior", prior_name), part("coupling", "independent")
    objective = Objective(time_sampling="uniform", t_eps=0.0, prediction="score")
    monkeypatch.setattr(module, "sample_times",
                        lambda obj, n, **kw: torch.full((n,), t_value, dtype=kw.get("dtype", torch.float32)))
    if plain:
        monkeypatch.setattr(module, "regression_loss",
                            lambda name, pred, target: (pred - target).pow(2).reshape(pred.shape[0], -1).mean(1).mean())
    net = torch.nn.Linear(3, 3)
    torch.nn.init.constant_(net.weight, 0.1), torch.nn.init.constant_(net.bias, -0.2)
    x1 = torch.randn(4096, 3, generator=torch.Generator().manual_seed(4))
    loss = module.interpolant_loss(lambda x, t: net(x), interp, prior, coupling, objective, x1,
                                   generator=torch.Generator().manual_seed(8))
    loss.backward()
    return loss.detach(), net.weight.grad.clone()


# target -(alpha x0 + gamma z)/(alpha^2 + gamma^2) on a Gaussian base (infinite at t = 1), -z/gamma
# on another base (infinite at both ends)
@pytest.mark.parametrize("prior_name, t_value, end", [
    ("gaussian", 1.0 - 1e-6, True), ("gaussian", 0.3, False), ("uniform", 1e-6, True), ("uniform", 1.0 - 1e-6, True)])
def test_score_loss_logs_the_papers_form_with_the_mse_gradient(monkeypatch, prior_name, t_value, end):
    logged, grad = _score_losses(monkeypatch, prior_name, t_value, plain=False)
    mse, mse_grad = _score_losses(monkeypatch, prior_name, t_value, plain=True)
    torch.testing.assert_close(grad, mse_grad)  # training is unchanged
    # paper's form = (MSE - |target|^2) / 2: finite near the ends where the MSE is not
    assert torch.isfinite(logged) and abs(float(logged)) < 10.0
    assert (float(mse) > 1e4) == end, float(mse)


def test_regression_loss_values_and_gradients():
    from interpgen_plugins.si.objective import regression_loss

    target = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(1)) * 1e3
    for name in ("score", "velocity"):
        pred = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(2), requires_grad=True)
        value = regression_loss(name, pred, target)
        value.backward()
        mse = (pred.detach() - target).pow(2).mean()
        torch.testing.assert_close(pred.grad, 2 * (pred.detach() - target) / pred[0].numel() / 5)
        expected = (0.5 * pred.detach() ** 2 - pred.detach() * target).mean() if name == "score" else mse
        torch.testing.assert_close(value.detach(), expected)
