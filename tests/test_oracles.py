"""The analytic oracles of math.md 8 checked against themselves and against autograd:
score = grad log rho_t, divergence = trace of the velocity Jacobian, the flow map solves the ODE,
the identities of math.md 1.2, a one-component mixture equals the Gaussian oracle, and the
moments match samples of x_t drawn with the plugin's own interpolate."""

from __future__ import annotations

import pytest
import torch

import interpgen_plugins.si as si
from oracles import GaussianOracle, MixtureOracle, OracleField
from interpgen.protocols import PREDICTIONS, Field

F64 = torch.float64
D = 3

INTERPOLANTS = {
    "linear": si.LinearInterpolant(),
    "linear-brownian": si.LinearInterpolant(gamma=si.BrownianGamma()),
    "trig-a_brownian": si.TrigInterpolant(gamma=si.ABrownianGamma(a=2.0)),
    "gvp-bsquared": si.GVPInterpolant(gamma=si.BSquaredGamma()),
    "vp": si.VPInterpolant(),
    "encoding_decoding": si.EncodingDecodingInterpolant(),
    "fm_ot": si.FMOTInterpolant(),
    "mirror": si.MirrorInterpolant(),
}

TIMES = torch.tensor([0.0, 0.13, 0.38, 0.5, 0.62, 0.87, 1.0], dtype=F64)


def _covariance(seed: int, scale: float = 1.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(D, D, generator=gen, dtype=F64)
    return scale * (a @ a.T / D) + 0.3 * torch.eye(D, dtype=F64)


def _gaussian(interp) -> GaussianOracle:
    return GaussianOracle(interp, torch.tensor([0.3, -0.2, 0.5], dtype=F64), _covariance(1, 0.5),
                          torch.tensor([1.0, 2.0, -1.0], dtype=F64), _covariance(2))


def _mixture(interp) -> MixtureOracle:
    means = torch.tensor([[2.0, 0.0, -1.0], [-1.5, 1.0, 0.5], [0.0, -2.0, 1.0]], dtype=F64)
    covs = torch.stack([_covariance(3), 0.5 * torch.eye(D, dtype=F64), _covariance(4, 0.3)])
    return MixtureOracle(interp, torch.zeros(D, dtype=F64), torch.eye(D, dtype=F64), [0.2, 0.5, 0.3], means, covs)


def _points(seed: int, n: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return 1.5 * torch.randn(n, D, generator=gen, dtype=F64)


def _oracle_cases():
    for name in INTERPOLANTS:
        for kind in ("gaussian", "mixture"):
            yield pytest.param(name, kind, id=f"{name}-{kind}")


def _make(name: str, kind: str):
    interp = INTERPOLANTS[name]
    return _gaussian(interp) if kind == "gaussian" else _mixture(interp)


@pytest.mark.parametrize("name, kind", list(_oracle_cases()))
def test_score_is_the_gradient_of_log_prob(name, kind):
    oracle = _make(name, kind)
    x = _points(0, len(TIMES)).requires_grad_(True)
    (grad,) = torch.autograd.grad(oracle.log_prob(x, TIMES).sum(), x)
    torch.testing.assert_close(oracle.predict("score", x.detach(), TIMES), grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, kind", list(_oracle_cases()))
def test_divergence_is_the_trace_of_the_velocity_jacobian(name, kind):
    oracle = _make(name, kind)
    x = _points(1, len(TIMES))
    t = TIMES.clamp(0.0, 0.99) if name == "vp" else TIMES  # vp: alpha'(1) = -inf, alpha alpha' = nan
    jac = torch.autograd.functional.jacobian(lambda y: oracle.predict("velocity", y, t).sum(0), x)
    trace = torch.einsum("ibi->b", jac)
    torch.testing.assert_close(oracle.divergence(x, t), trace, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name, kind", list(_oracle_cases()))
def test_identities_of_math_md_1_2(name, kind):
    """x = alpha eta_0 + beta eta_1 + gamma eta_z and b = v - gamma gamma' s with
    v = alpha' eta_0 + beta' eta_1, to 1e-10."""
    interp = INTERPOLANTS[name]
    oracle = _make(name, kind)
    x = _points(2, len(TIMES))
    t = TIMES.clamp(0.01, 0.99) if name == "vp" else TIMES  # vp: alpha'(1) = -inf
    eta0, eta1 = oracle.predict("x0", x, t), oracle.predict("x1", x, t)
    etaz = torch.zeros_like(x) if interp.deterministic else oracle.predict("noise", x, t)
    if interp.deterministic:
        torch.testing.assert_close(oracle.predict("noise", x, t), eta0, rtol=0, atol=0)
    col = lambda f: f(t)[:, None]  # noqa: E731
    torch.testing.assert_close(col(interp.alpha) * eta0 + col(interp.beta) * eta1 + col(interp.gamma) * etaz,
                               x, rtol=1e-10, atol=1e-10)
    v = col(interp.alpha_dot) * eta0 + col(interp.beta_dot) * eta1
    b = v - col(interp.gamma_gamma_dot) * oracle.predict("score", x, t)
    torch.testing.assert_close(oracle.predict("velocity", x, t), b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ["linear", "linear-brownian", "trig-a_brownian", "vp", "fm_ot"])
def test_flow_map_solves_the_ode(name):
    interp = INTERPOLANTS[name]
    diag = lambda *v: torch.diag(torch.tensor(v, dtype=F64))  # noqa: E731
    oracle = GaussianOracle(interp, torch.zeros(D, dtype=F64), diag(1.0, 0.5, 2.0),
                            torch.tensor([1.0, -1.0, 0.5], dtype=F64), diag(0.3, 1.5, 0.8))
    x0 = _points(3, 5)
    torch.testing.assert_close(oracle.flow_map(x0, 0.0), x0, rtol=1e-12, atol=1e-12)
    h = 1e-5
    for t in (0.2, 0.5, 0.8):
        xt = oracle.flow_map(x0, t)
        derivative = (oracle.flow_map(x0, t + h) - oracle.flow_map(x0, t - h)) / (2 * h)
        torch.testing.assert_close(derivative, oracle.predict("velocity", xt, t), rtol=1e-6, atol=1e-7)
    # pushes N(mu_0, Sigma_0) to N(mu_t, Sigma_t): affine with the right linear part
    root = oracle.flow_map(torch.eye(D, dtype=F64) + oracle.mean(0.0), 0.7) - oracle.mean(0.7)
    cov0 = oracle.cov(0.0)[0]
    torch.testing.assert_close(root @ cov0 @ root.T, oracle.cov(0.7)[0], rtol=1e-10, atol=1e-12)


def test_flow_map_needs_commuting_covariances():
    oracle = _gaussian(INTERPOLANTS["linear"])
    with pytest.raises(ValueError, match="commuting covariances"):
        oracle.flow_map(_points(0, 2), 0.5)


@pytest.mark.parametrize("name", ["linear-brownian", "encoding_decoding", "vp"])
def test_single_component_mixture_equals_the_gaussian_oracle(name):
    interp = INTERPOLANTS[name]
    m0, s0 = torch.zeros(D, dtype=F64), torch.eye(D, dtype=F64)
    m1, s1 = torch.tensor([1.0, 2.0, -1.0], dtype=F64), _covariance(5)
    gauss = GaussianOracle(interp, m0, s0, m1, s1)
    mix = MixtureOracle(interp, m0, s0, [1.0], m1[None], s1[None])
    x = _points(4, len(TIMES))
    t = TIMES.clamp(0.0, 0.99)
    for p in PREDICTIONS:
        torch.testing.assert_close(mix.predict(p, x, t), gauss.predict(p, x, t), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(mix.log_prob(x, t), gauss.log_prob(x, t), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(mix.divergence(x, t), gauss.divergence(x, t), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(mix.mean(t), gauss.mean(t), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(mix.cov(t), gauss.cov(t), rtol=1e-12, atol=1e-12)


def test_closed_form_gaussian_fields():
    """math.md 8a by hand for the one-sided linear path in 1-D: x0 ~ N(0,1), x1 ~ N(m, v)."""
    m, v = 2.0, 0.5
    oracle = GaussianOracle(si.OneSidedInterpolant(), [0.0], [[1.0]], [m], [[v]])
    t = torch.tensor([0.3], dtype=F64)
    x = torch.tensor([[1.2]], dtype=F64)
    var = 0.7 ** 2 + 0.3 ** 2 * v
    mean = 0.3 * m
    assert oracle.predict("score", x, t).item() == pytest.approx(-(1.2 - mean) / var, rel=1e-14)
    assert oracle.predict("x1", x, t).item() == pytest.approx(m + 0.3 * v * (1.2 - mean) / var, rel=1e-14)
    velocity = m + (-0.7 + 0.3 * v) * (1.2 - mean) / var
    assert oracle.predict("velocity", x, t).item() == pytest.approx(velocity, rel=1e-14)
    assert oracle.divergence(x, t).item() == pytest.approx((-0.7 + 0.3 * v) / var, rel=1e-14)


@pytest.mark.parametrize("kind", ["gaussian", "mixture"])
def test_moments_match_samples_of_the_interpolant(kind):
    """The oracle's mean/cov are those of x_t = interpolate(x0, x1, z, t) (Monte Carlo, seeded)."""
    interp = INTERPOLANTS["linear-brownian"]
    oracle = _make("linear-brownian", kind)
    gen = torch.Generator().manual_seed(6)
    n, t = 40000, 0.35
    x0 = oracle.sample_prior(n, gen)
    x1 = oracle.sample_data(n, gen)
    z = torch.randn(n, D, generator=gen, dtype=F64)
    xt = interp.interpolate(x0, x1, z, torch.full((n,), t, dtype=F64))
    torch.testing.assert_close(xt.mean(0), oracle.mean(t)[0], rtol=0, atol=0.05)
    torch.testing.assert_close(torch.cov(xt.T), oracle.cov(t)[0], rtol=0, atol=0.08)
    marginal = oracle.sample_marginal(n, t, gen)
    torch.testing.assert_close(marginal.mean(0), oracle.mean(t)[0], rtol=0, atol=0.05)
    torch.testing.assert_close(torch.cov(marginal.T), oracle.cov(t)[0], rtol=0, atol=0.08)


def test_sampling_is_reproducible_and_shaped():
    oracle = _mixture(INTERPOLANTS["linear"])
    a = oracle.sample_data(7, torch.Generator().manual_seed(0))
    b = oracle.sample_data(7, torch.Generator().manual_seed(0))
    assert a.shape == (7, D) and a.dtype == F64 and torch.equal(a, b)
    assert oracle.sample_prior(4, torch.Generator().manual_seed(1)).shape == (4, D)
    mirror = _gaussian(INTERPOLANTS["mirror"])  # base_is_data: rho_0 is the data
    torch.testing.assert_close(mirror.mean(0.0)[0], mirror.m1)
    torch.testing.assert_close(mirror.cov(0.0)[0], mirror.S1)


def test_oracle_field():
    oracle = _mixture(INTERPOLANTS["linear-brownian"])
    field = OracleField(oracle)
    assert isinstance(field, Field)
    assert field.interpolant is oracle.interpolant
    assert field.available() == PREDICTIONS
    assert field.time_range(False) == (0.0, 1.0) and field.time_range(True) == (0.0, 1.0)
    assert field.nfe == 0
    x = _points(7, 4).to(torch.float32)
    t = torch.tensor([0.1, 0.4, 0.6, 0.9], dtype=torch.float32)
    b, s = field.evaluate(x, t, ("velocity", "score"))
    assert field.nfe == 1
    assert b.dtype == torch.float32 and b.shape == x.shape
    torch.testing.assert_close(b, oracle.predict("velocity", x.double(), t.double()).float())
    torch.testing.assert_close(s, oracle.predict("score", x.double(), t.double()).float())
    (x1,) = field.evaluate(x.reshape(4, 1, D), t, ("x1",))
    assert field.nfe == 2 and x1.shape == (4, 1, D)
    with pytest.raises(ValueError, match="unknown prediction 'eps'"):
        field.evaluate(x, t, ("eps",))


def test_bad_oracle_arguments():
    interp = INTERPOLANTS["linear"]
    eye = torch.eye(D, dtype=F64)
    with pytest.raises(ValueError, match="S0 must be symmetric"):
        GaussianOracle(interp, torch.zeros(D), eye + torch.triu(eye.roll(1, 1)), torch.zeros(D), eye)
    with pytest.raises(ValueError, match="S1 must be positive semi-definite"):
        GaussianOracle(interp, torch.zeros(D), eye, torch.zeros(D), -eye)
    with pytest.raises(ValueError, match="weights must be"):
        MixtureOracle(interp, torch.zeros(D), eye, [0.5, 0.6], torch.zeros(2, D), torch.stack([eye, eye]))
    with pytest.raises(ValueError, match=r"means must have shape \(2, 3\)"):
        MixtureOracle(interp, torch.zeros(D), eye, [0.5, 0.5], torch.zeros(3, D), torch.stack([eye, eye]))
    with pytest.raises(ValueError, match=r"unknown prediction 'eps'; expected one of velocity, score, noise, x0, x1"):
        _gaussian(interp).predict("eps", _points(0, 2), 0.5)
