"""Schedule conversion (math.md 3.1): converted fields against the analytic fields of the target
schedule, the comparison with flow_matching's ScheduleTransformedModel, the SDE path map, and
stochastic sampling of a velocity-only model (math.md 4.6)."""

from __future__ import annotations

import math

import pytest
import torch

from interpgen.fields import ModelField
from oracles import GaussianOracle, MixtureOracle, OracleField
from interpgen.protocols import PREDICTIONS, ConversionError
from interpgen_plugins.samplers.converted import ConvertedSampler
from interpgen_plugins.samplers.converted_field import ConvertedField
from interpgen_plugins.samplers.diffusions import ConstantDiffusion, OptimalDiffusion
from interpgen_plugins.samplers.fixed_step import EulerSampler, HeunSampler
from interpgen_plugins.samplers.schedule_map import ScheduleMap
from interpgen_plugins.samplers.sde import EulerMaruyamaSampler
from interpgen_plugins.si import (BrownianGamma, EncodingDecodingInterpolant, FMOTInterpolant,
                                  GVPInterpolant, LazyVPInterpolant, LinearInterpolant,
                                  MirrorInterpolant, OneSidedInterpolant, PointMassInterpolant,
                                  TrigInterpolant, VPInterpolant)

F64 = torch.float64
M1 = torch.tensor([0.5, -1.0], dtype=F64)
S1 = torch.tensor([[2.0, 0.3], [0.3, 0.5]], dtype=F64)
MIX = dict(weights=[0.3, 0.7], means=[[-2.0, 0.5], [1.5, -1.0]],
           covs=[[[0.2, 0.05], [0.05, 0.3]], [[0.4, 0.0], [0.0, 0.1]]])

SOURCES = {
    "one_sided": OneSidedInterpolant(),
    "linear_brownian": LinearInterpolant(gamma=BrownianGamma()),
    "gvp": GVPInterpolant(),
}
TARGETS = {
    "gvp": GVPInterpolant(),
    "lazy_vp": LazyVPInterpolant(sigma_d=2.0),
    "point_mass": PointMassInterpolant(sigma_d=1.5),
    "vp": VPInterpolant(),
    "fm_ot": FMOTInterpolant(sigma_min=0.01),
    "one_sided": OneSidedInterpolant(),
    "trig_brownian": TrigInterpolant(gamma=BrownianGamma()),
    "encoding_decoding": EncodingDecodingInterpolant(),  # ratio 0 on [0, 1/2]: tau = 0 there
}
TIMES = torch.tensor([0.02, 0.2, 0.5, 0.8, 0.97], dtype=F64)


def gaussian(interpolant):
    return GaussianOracle(interpolant, torch.zeros(2), torch.eye(2), M1, S1)


def mixture(interpolant):
    return MixtureOracle(interpolant, torch.zeros(2), torch.eye(2), **MIX)


@pytest.mark.parametrize("make_oracle", [gaussian, mixture], ids=["gaussian", "mixture"])
@pytest.mark.parametrize("source", SOURCES, ids=list(SOURCES))
@pytest.mark.parametrize("target", TARGETS, ids=list(TARGETS))
def test_converted_fields_equal_the_target_schedules_fields(make_oracle, source, target):
    field = ConvertedField(OracleField(make_oracle(SOURCES[source])), TARGETS[target], gaussian_base=True)
    exact = make_oracle(TARGETS[target])
    y = torch.randn(len(TIMES), 2, dtype=F64, generator=torch.Generator().manual_seed(3)) * 1.5
    got = field.evaluate(y, TIMES, PREDICTIONS)
    assert field.nfe == 1  # one source evaluation gives every prediction
    for name, value in zip(PREDICTIONS, got):
        want = exact.predict(name, y, TIMES)
        torch.testing.assert_close(value, want, rtol=1e-10, atol=1e-10, msg=name)


def test_linear_source_has_the_closed_form_time_change():
    target = LazyVPInterpolant(sigma_d=2.0)
    tau, c = ScheduleMap(OneSidedInterpolant(), target).tau_and_scale(TIMES)
    a, b = target.alpha(TIMES), target.beta(TIMES)
    torch.testing.assert_close(tau, b / (a + b), rtol=1e-14, atol=1e-15)  # math.md 3.1
    torch.testing.assert_close(c, a + b, rtol=1e-14, atol=1e-15)


def test_time_range_maps_the_source_range_and_avoids_singular_target_ends():
    source = OracleField(gaussian(OneSidedInterpolant()))
    assert ConvertedField(source, LazyVPInterpolant()).time_range(False) == (0.0, 1.0)
    assert ConvertedField(source, PointMassInterpolant()).time_range(False) == (1e-3, 1 - 1e-3)

    class Shorter(OracleField):
        def time_range(self, stochastic):
            return (0.2, 0.8)

    lo, hi = ConvertedField(Shorter(gaussian(OneSidedInterpolant())), GVPInterpolant()).time_range(False)
    # sin(pi s/2)/cos(pi s/2) = t/(1-t): s = (2/pi) atan(t/(1-t))
    assert lo == pytest.approx(2 / math.pi * math.atan(0.25), abs=1e-15)
    assert hi == pytest.approx(2 / math.pi * math.atan(4.0), abs=1e-15)


def test_point_mass_start_uses_the_source_at_time_zero():
    oracle = mixture(OneSidedInterpolant())
    field = ConvertedField(OracleField(oracle), PointMassInterpolant(sigma_d=2.0), gaussian_base=True)
    y = torch.zeros(3, 2, dtype=F64)
    (eta1,) = field.evaluate(y, torch.zeros(3, dtype=F64), ("x1",))
    mean = (torch.tensor(MIX["weights"], dtype=F64)[:, None] * torch.tensor(MIX["means"], dtype=F64)).sum(0)
    torch.testing.assert_close(eta1, mean.expand(3, 2), rtol=1e-12, atol=1e-12)  # E[x1|x_0] = E[x1]


class CountingVelocity(torch.nn.Module):
    """A velocity network made of the exact linear-path velocity (for flow_matching's wrapper)."""

    def __init__(self, oracle):
        super().__init__()
        self.oracle = oracle

    def forward(self, x, t, **extras):
        t = t.reshape(-1).expand(x.shape[0]) if t.numel() == 1 else t
        return self.oracle.predict("velocity", x, t.to(F64))


def test_converted_ode_agrees_with_flow_matching_schedule_transformed_model():
    scheduler = pytest.importorskip("flow_matching.path.scheduler")
    oracle = mixture(OneSidedInterpolant())
    theirs = scheduler.ScheduleTransformedModel(
        velocity_model=CountingVelocity(oracle), original_scheduler=scheduler.CondOTScheduler(),
        new_scheduler=scheduler.CosineScheduler())
    ours = ConvertedField(OracleField(oracle), GVPInterpolant(), gaussian_base=True)
    y = torch.randn(len(TIMES), 2, dtype=F64, generator=torch.Generator().manual_seed(5))
    for k, s in enumerate(TIMES):
        s_batch = torch.full((len(TIMES),), float(s), dtype=F64)
        torch.testing.assert_close(ours.evaluate(y, s_batch, ("velocity",))[0],
                                   theirs(y, torch.tensor(float(s), dtype=F64)), rtol=1e-10, atol=1e-10)
    # the whole Euler solve on the same grid
    x0 = torch.randn(64, 2, dtype=F64, generator=torch.Generator().manual_seed(6))
    ours_x = ConvertedSampler(schedule=GVPInterpolant(), sampler=EulerSampler(steps=6)).sample(
        OracleField(oracle), x0).x
    theirs_x = x0.clone()
    for k in range(6):
        theirs_x = theirs_x + theirs(theirs_x, torch.tensor(k / 6, dtype=F64)) / 6
    torch.testing.assert_close(ours_x, theirs_x, rtol=1e-10, atol=1e-10)


def test_fine_converted_ode_reaches_the_source_ode_endpoint():
    oracle = gaussian(OneSidedInterpolant())
    x0 = torch.randn(32, 2, dtype=F64, generator=torch.Generator().manual_seed(1))
    plain = HeunSampler(steps=100).sample(OracleField(oracle), x0).x  # S0, S1 do not commute: no flow map
    for target in (LazyVPInterpolant(sigma_d=2.0), GVPInterpolant()):
        sampler = ConvertedSampler(schedule=target, sampler=HeunSampler(steps=100))
        torch.testing.assert_close(sampler.sample(OracleField(oracle), x0).x, plain, rtol=0, atol=2e-3)


def test_unsupported_conversions_are_refused_with_the_reason():
    source = OracleField(gaussian(OneSidedInterpolant()))
    with pytest.raises(ConversionError, match="signal-to-noise ratio beta/alpha increases"):
        ConvertedField(source, MirrorInterpolant(), gaussian_base=True)  # beta/gamma falls, then rises
    with pytest.raises(ConversionError, match="two-sided target .* needs a N\\(0, I\\) base"):
        ConvertedField(source, TrigInterpolant(gamma=BrownianGamma()), gaussian_base=False)
    no_score = ConvertedField(source, GVPInterpolant(), gaussian_base=False)
    assert "score" not in no_score.available()
    with pytest.raises(ConversionError, match="cannot give 'score'"):
        no_score.evaluate(torch.zeros(1, 2, dtype=F64), torch.full((1,), 0.5, dtype=F64), ("score",))


def test_converted_sampler_parameters():
    with pytest.raises(TypeError, match="schedule must be an interpolant"):
        ConvertedSampler(schedule="gvp")
    with pytest.raises(ConversionError, match="target schedule whose signal-to-noise ratio"):
        ConvertedSampler(schedule=MirrorInterpolant())
    with pytest.raises(ValueError, match="steps must be an integer >= 1 or left out, got 0"):
        ConvertedSampler(schedule=GVPInterpolant(), steps=0)
    sampler = ConvertedSampler(schedule=GVPInterpolant(), sampler=EulerMaruyamaSampler(steps=3), steps=5)
    assert sampler.stochastic is True and sampler.inner().steps == 5
    field = OracleField(gaussian(OneSidedInterpolant()))
    result = sampler.sample(field, torch.zeros(4, 2, dtype=F64), generator=torch.Generator().manual_seed(0))
    assert result.nfe == 6 and field.nfe == 6  # 5 steps + the "mean" last step


# -- the SDE path map ------------------------------------------------------------------------------

def test_sde_path_conversion_matches_a_coupled_simulation():
    """Y_s = c(s) X_tau(s): EM on the target SDE with eps_bar, and EM on the source SDE with
    eps = eps_bar/(c^2 tau') driven by the same Brownian increments (dW_tau = sqrt(tau') dW_s)."""
    oracle = MixtureOracle(OneSidedInterpolant(), torch.zeros(1), torch.eye(1), weights=[0.4, 0.6],
                           means=[[-1.5], [1.0]], covs=[[[0.1]], [[0.2]]])
    target = GVPInterpolant()
    source_field = OracleField(oracle)
    target_field = ConvertedField(OracleField(oracle), target, gaussian_base=True)
    eps_bar = 0.5
    steps, s_end = 300, 0.9
    grid = torch.linspace(0.0, s_end, steps + 1, dtype=F64)
    a, b = target.alpha(grid), target.beta(grid)
    tau = b / (a + b)  # linear source, math.md 3.1
    c = a + b
    n = 200
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(n, 1, dtype=F64, generator=gen)
    y = c[0] * x
    for k in range(steps):
        ds, dtau = float(grid[k + 1] - grid[k]), float(tau[k + 1] - tau[k])
        xi = torch.randn(n, 1, dtype=F64, generator=gen)
        s_k = torch.full((n,), float(grid[k]), dtype=F64)
        bb, ss = target_field.evaluate(y, s_k, ("velocity", "score"))
        y = y + (bb + eps_bar * ss) * ds + math.sqrt(2 * eps_bar * ds) * xi
        eps_src = eps_bar * ds / (float(c[k]) ** 2 * dtau)  # eps_bar / (c^2 tau')
        t_k = torch.full((n,), float(tau[k]), dtype=F64)
        vb, vs = source_field.evaluate(x, t_k, ("velocity", "score"))
        x = x + (vb + eps_src * vs) * dtau + math.sqrt(2 * eps_src * dtau) * xi
    gap = (c[-1] * x - y).abs().mean()
    spread = y.std()
    assert gap < 0.02 * spread, (float(gap), float(spread))
    # an uncoupled run (fresh noise) is nowhere near: the agreement is pathwise, not just in law
    assert (y - y[torch.randperm(n, generator=gen)]).abs().mean() > 20 * gap


def test_optimal_diffusion_maps_to_the_target_optimal_diffusion():
    """eps* = alpha^2 lambda' is schedule invariant: eps_bar*(s) = c^2 tau' eps*(tau) (math.md 3.1)."""
    target = LazyVPInterpolant(sigma_d=1.7)
    s = torch.tensor([0.1, 0.4, 0.7], dtype=F64)
    h = 1e-6
    mapping = ScheduleMap(OneSidedInterpolant(), target)
    tau, c = mapping.tau_and_scale(s)
    tau_dot = (mapping.tau_and_scale(s + h)[0] - mapping.tau_and_scale(s - h)[0]) / (2 * h)
    source_eps = OptimalDiffusion()(tau, OneSidedInterpolant())
    torch.testing.assert_close(c ** 2 * tau_dot * source_eps, OptimalDiffusion()(s, target), rtol=1e-7, atol=1e-9)


# -- stochastic sampling from a deterministic (velocity) model, math.md 4.6 -------------------------

def test_velocity_model_gives_the_score_of_math_4_6_and_samples_by_sde():
    oracle = gaussian(OneSidedInterpolant())

    def velocity_net(x, t):
        return oracle.predict("velocity", x, t)

    field = ModelField(velocity_net, OneSidedInterpolant(), ("velocity",), gaussian_base=True, t_eps=0.0)
    x = torch.randn(5, 2, dtype=F64, generator=torch.Generator().manual_seed(2))
    t = TIMES
    (score,) = field.evaluate(x, t, ("score",))
    b = oracle.predict("velocity", x, t)
    torch.testing.assert_close(score, (t[:, None] * b - x) / (1 - t[:, None]), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(score, oracle.predict("score", x, t), rtol=1e-10, atol=1e-10)
    # an SDE with noise level g (eps = g^2/2) has the ODE's marginals: data N(m1, S1) at t = 1
    x0 = torch.randn(6000, 2, dtype=F64, generator=torch.Generator().manual_seed(3))
    sampler = EulerMaruyamaSampler(steps=200, diffusion=ConstantDiffusion(value=0.5), last_step="mean")
    out = sampler.sample(field, x0, generator=torch.Generator().manual_seed(4)).x
    torch.testing.assert_close(out.mean(0), M1, rtol=0, atol=0.06)
    torch.testing.assert_close(torch.cov(out.T), S1, rtol=0, atol=0.12)


def test_converted_and_point_mass_samplers_run_through_the_pipeline(registry):
    import interpgen as ig

    pipe = ig.Pipeline(data=ig.part("dataset", "moons", registry), registry=registry)
    for spec, nfe in ((ig.part("sampler", "converted", registry, schedule={"name": "lazy_vp", "sigma_d": 0.8},
                               sampler={"name": "midpoint", "steps": 2}), 4),
                      (ig.part("sampler", "point_mass", registry, steps=3, sigma_d=1.2), 3)):
        out = pipe.sample(16, sampler=spec, seed=0)
        x, used = out.x, out.nfe
        assert x.shape == (16, 2) and used == nfe and bool(torch.isfinite(x).all())
    out = pipe.sample(8, sampler=ig.part("sampler", "converted", registry, schedule="gvp"), steps=5)
    assert out.nfe == 5 and out.x.shape == (8, 2)
