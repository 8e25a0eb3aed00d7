"""Schedules of the SI plugin: registration, boundary values, closed-form derivatives against
autograd, gamma_gamma_dot, x_t, regression targets, endpoint epsilons and bad parameters
(math.md 1.1, 1.4, 1.6-1.8)."""

from __future__ import annotations

import math

import pytest
import torch

import interpgen_plugins.si as si
from interpgen.config import RecipeConverter
from oracles import GaussianOracle
from interpgen.plugin_manager import load_plugins
from interpgen.protocols import PREDICTIONS, ConversionError, Gamma, Interpolant

F64 = torch.float64

GAMMAS = {
    "zero": si.ZeroGamma(),
    "brownian": si.BrownianGamma(),
    "a_brownian": si.ABrownianGamma(a=0.7),
    "bsquared": si.BSquaredGamma(),
    "sinesquared": si.SineSquaredGamma(),
}

INTERPOLANTS = {
    "linear": si.LinearInterpolant(),
    "linear-brownian": si.LinearInterpolant(gamma=si.BrownianGamma()),
    "linear-sinesquared": si.LinearInterpolant(gamma=si.SineSquaredGamma()),
    "trig-brownian": si.TrigInterpolant(),
    "trig-a_brownian": si.TrigInterpolant(gamma=si.ABrownianGamma(a=2.5)),
    "trig-bsquared": si.TrigInterpolant(gamma=si.BSquaredGamma()),
    "gvp": si.GVPInterpolant(),
    "gvp-bsquared": si.GVPInterpolant(gamma=si.BSquaredGamma()),
    "vp": si.VPInterpolant(),
    "encoding_decoding": si.EncodingDecodingInterpolant(),
    "encoding_decoding-brownian": si.EncodingDecodingInterpolant(gamma=si.BrownianGamma()),
    "one_sided": si.OneSidedInterpolant(),
    "fm_ot": si.FMOTInterpolant(),
    "mirror": si.MirrorInterpolant(),
    "mirror-bsquared": si.MirrorInterpolant(gamma=si.BSquaredGamma()),
}

INTERIOR = torch.linspace(0.01, 0.99, 37, dtype=F64)
ENDS = torch.tensor([0.0, 1.0], dtype=F64)


def _grad(fn, t: torch.Tensor) -> torch.Tensor:
    tt = t.clone().requires_grad_(True)
    out = fn(tt)
    if not out.requires_grad:  # a constant schedule (zeros_like / ones_like)
        return torch.zeros_like(t)
    (g,) = torch.autograd.grad(out.sum(), tt)
    return g


# -- registration ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def registry():
    return load_plugins().registry


def test_everything_is_registered(registry):
    # other installed plugins (the example third-party one) may add names of their own
    assert {n for n in registry.names("gamma") if registry.get("gamma", n).plugin == "si"} == set(si.GAMMAS)
    assert {n for n in registry.names("interpolant")
            if registry.get("interpolant", n).plugin == "si"} == set(si.INTERPOLANTS)
    for name, cls in si.INTERPOLANTS.items():
        entry = registry.get("interpolant", name)
        assert entry.params is cls and entry.plugin == "si"
        made = registry.create("interpolant", name)
        assert isinstance(made, cls) and isinstance(made, Interpolant)
    for name, cls in si.GAMMAS.items():
        assert registry.get("gamma", name).params is cls
        assert isinstance(registry.create("gamma", name), Gamma)


def test_recipe_tables_build_interpolants(registry):
    conv = RecipeConverter(registry)
    trig = conv.structure_part("interpolant", {"name": "trig", "gamma": {"name": "a_brownian", "a": 0.5}})
    assert trig == si.TrigInterpolant(gamma=si.ABrownianGamma(a=0.5))
    assert conv.structure_part("interpolant", {"name": "linear", "gamma": "brownian"}).gamma == si.BrownianGamma()
    assert conv.structure_part("interpolant", "vp") == si.VPInterpolant(beta_min=0.1, beta_max=20.0)
    dumped = conv.unstructure_part(trig)
    assert dumped == {"name": "trig", "gamma": {"name": "a_brownian", "a": 0.5}}
    assert conv.structure_part("interpolant", dumped) == trig


def test_deterministic_flag_and_defaults():
    deterministic = {"linear", "gvp", "vp", "one_sided", "fm_ot"}
    for name, interp in INTERPOLANTS.items():
        assert interp.deterministic is (name in deterministic), name
    assert si.EncodingDecodingInterpolant().gamma == si.SineSquaredGamma()
    assert si.MirrorInterpolant().gamma == si.BrownianGamma()
    assert si.LinearInterpolant().gamma == si.ZeroGamma()
    assert si.FMOTInterpolant().sigma_min == 1e-4
    assert si.MirrorInterpolant.base_is_data is True
    assert all(not cls.base_is_data for name, cls in si.INTERPOLANTS.items() if name != "mirror")
    assert [g.is_zero for g in GAMMAS.values()] == [True, False, False, False, False]


# -- gamma forms ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(GAMMAS))
def test_gamma_ends_and_derivatives(name):
    g = GAMMAS[name]
    assert torch.equal(g.gamma(ENDS), torch.zeros(2, dtype=F64))
    assert torch.equal(g(INTERIOR), g.gamma(INTERIOR))
    torch.testing.assert_close(g.gamma_dot(INTERIOR), _grad(g.gamma, INTERIOR), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(g.gamma_gamma_dot(INTERIOR), g.gamma(INTERIOR) * g.gamma_dot(INTERIOR),
                               rtol=1e-10, atol=1e-14)
    assert torch.isfinite(g.gamma_gamma_dot(ENDS)).all()


def test_gamma_closed_forms():
    t = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=F64)
    a = 0.7
    torch.testing.assert_close(GAMMAS["a_brownian"].gamma(t), (a * t * (1 - t)).sqrt())
    torch.testing.assert_close(GAMMAS["a_brownian"].gamma_gamma_dot(t), a * (1 - 2 * t) / 2)
    torch.testing.assert_close(GAMMAS["brownian"].gamma_gamma_dot(t), (1 - 2 * t) / 2)
    torch.testing.assert_close(GAMMAS["sinesquared"].gamma(t), torch.sin(math.pi * t) ** 2)
    # the square-root gammas have an infinite derivative at the ends (documented, not clamped)
    for name in ("brownian", "a_brownian"):
        assert GAMMAS[name].gamma_dot(ENDS).tolist() == [math.inf, -math.inf]
    assert torch.isfinite(GAMMAS["bsquared"].gamma_dot(ENDS)).all()


# -- interpolants ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(INTERPOLANTS))
def test_boundary_conditions(name):
    interp = INTERPOLANTS[name]
    alpha, beta, gamma = interp.alpha(ENDS), interp.beta(ENDS), interp.gamma(ENDS)
    assert gamma.tolist() == [0.0, 0.0]
    if name.startswith("mirror"):  # x_t = x1 + gamma z (math.md 1.6)
        expected_alpha, expected_beta = [0.0, 0.0], [1.0, 1.0]
    elif name == "fm_ot":  # alpha(1) = sigma_min (math.md 1.7)
        expected_alpha, expected_beta = [1.0, 1e-4], [0.0, 1.0]
    elif name == "vp":  # beta(0) = exp(-(beta_max + beta_min)/4) (math.md 1.7)
        b0 = math.exp(-(20.0 + 0.1) / 4)
        expected_alpha, expected_beta = [math.sqrt(1 - b0 * b0), 0.0], [b0, 1.0]
        assert abs(b0 - 0.0066) < 1e-4
    else:
        expected_alpha, expected_beta = [1.0, 0.0], [0.0, 1.0]
    torch.testing.assert_close(alpha, torch.tensor(expected_alpha, dtype=F64), rtol=0, atol=1e-15)
    torch.testing.assert_close(beta, torch.tensor(expected_beta, dtype=F64), rtol=0, atol=1e-15)


@pytest.mark.parametrize("name", list(INTERPOLANTS))
def test_derivatives_match_autograd(name):
    interp = INTERPOLANTS[name]
    for value, derivative in [(interp.alpha, interp.alpha_dot), (interp.beta, interp.beta_dot),
                              (interp.gamma, interp.gamma_dot)]:
        torch.testing.assert_close(derivative(INTERIOR), _grad(value, INTERIOR), rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(interp.gamma_gamma_dot(INTERIOR),
                               interp.gamma(INTERIOR) * interp.gamma_dot(INTERIOR), rtol=1e-10, atol=1e-14)
    assert torch.isfinite(interp.gamma_gamma_dot(ENDS)).all()
    assert torch.isfinite(interp.beta_dot(ENDS)).all()
    if name != "vp":
        assert torch.isfinite(interp.alpha_dot(ENDS)).all()


def test_closed_forms_of_the_catalogue():
    t = torch.tensor([0.1, 0.3, 0.5, 0.7, 0.9], dtype=F64)
    half = 0.5 * math.pi * t
    torch.testing.assert_close(INTERPOLANTS["gvp"].alpha(t), torch.cos(half))
    g = si.BrownianGamma().gamma(t)
    torch.testing.assert_close(INTERPOLANTS["trig-brownian"].beta(t), (1 - g * g).sqrt() * torch.sin(half))
    enc = INTERPOLANTS["encoding_decoding"]
    cos2 = torch.cos(math.pi * t) ** 2
    torch.testing.assert_close(enc.alpha(t), cos2 * (t <= 0.5))
    torch.testing.assert_close(enc.beta(t), cos2 * (t > 0.5))
    vp = INTERPOLANTS["vp"]
    log_beta = -0.25 * (1 - t) ** 2 * (20.0 - 0.1) - 0.5 * (1 - t) * 0.1
    torch.testing.assert_close(vp.beta(t), log_beta.exp())
    torch.testing.assert_close(vp.alpha(t) ** 2 + vp.beta(t) ** 2, torch.ones_like(t))
    torch.testing.assert_close(vp.beta_dot(t) / vp.beta(t), vp.beta_sde(t) / 2)  # math.md 1.7
    assert vp.alpha_dot(ENDS)[1].item() == -math.inf
    torch.testing.assert_close(INTERPOLANTS["fm_ot"].alpha(t), 1 - (1 - 1e-4) * t)


@pytest.mark.parametrize("name", ["linear-brownian", "trig-brownian", "one_sided", "mirror"])
def test_interpolate_on_images(name):
    interp = INTERPOLANTS[name]
    gen = torch.Generator().manual_seed(0)
    x0, x1, z = (torch.randn(4, 2, 3, 3, generator=gen, dtype=F64) for _ in range(3))
    t = torch.rand(4, generator=gen, dtype=F64)
    xt = interp.interpolate(x0, x1, z, t)
    for i in range(4):
        ti = t[i:i + 1]
        expected = interp.alpha(ti) * x0[i] + interp.beta(ti) * x1[i] + interp.gamma(ti) * z[i]
        torch.testing.assert_close(xt[i], expected, rtol=1e-14, atol=1e-14)
    if interp.deterministic:
        torch.testing.assert_close(interp.interpolate(x0, x1, None, t), xt)
    else:
        with pytest.raises(ValueError, match="needs z"):
            interp.interpolate(x0, x1, None, t)


# -- regression targets (math.md 1.4) ---------------------------------------------------------------

def test_targets_closed_form():
    gen = torch.Generator().manual_seed(1)
    x0, x1, z = (torch.randn(5, 3, generator=gen, dtype=F64) for _ in range(3))
    t = torch.rand(5, generator=gen, dtype=F64) * 0.9 + 0.05
    tc = t[:, None]
    lin = INTERPOLANTS["linear"]
    torch.testing.assert_close(lin.target("velocity", x0, x1, None, t, gaussian_base=True), x1 - x0)
    torch.testing.assert_close(lin.target("noise", x0, x1, None, t, gaussian_base=True), x0)
    torch.testing.assert_close(lin.target("score", x0, x1, None, t, gaussian_base=True), -x0 / (1 - tc))
    fm = INTERPOLANTS["fm_ot"]  # Lipman's target x1 - (1 - sigma_min) x0 (math.md 1.7)
    torch.testing.assert_close(fm.target("velocity", x0, x1, None, t, gaussian_base=True), x1 - (1 - 1e-4) * x0)
    lb = INTERPOLANTS["linear-brownian"]
    g = (tc * (1 - tc)).sqrt()
    torch.testing.assert_close(lb.target("velocity", x0, x1, z, t, gaussian_base=False),
                               x1 - x0 + (1 - 2 * tc) / (2 * g) * z)
    torch.testing.assert_close(lb.target("noise", x0, x1, z, t, gaussian_base=False), z)
    torch.testing.assert_close(lb.target("score", x0, x1, z, t, gaussian_base=False), -z / g)
    torch.testing.assert_close(lb.target("score", x0, x1, z, t, gaussian_base=True),
                               -((1 - tc) * x0 + g * z) / ((1 - tc) ** 2 + g * g))
    for interp in (lin, lb):
        assert interp.target("x0", x0, x1, z, t, gaussian_base=True) is x0
        assert interp.target("x1", x0, x1, z, t, gaussian_base=True) is x1


def _cases_for_targets():
    for name, interp in INTERPOLANTS.items():
        for gaussian_base in (True, False):
            yield pytest.param(name, gaussian_base, id=f"{name}-{'gauss' if gaussian_base else 'any'}")


@pytest.mark.parametrize("name, gaussian_base", list(_cases_for_targets()))
def test_targets_have_the_prediction_as_conditional_mean(name, gaussian_base):
    """Each target is linear in (x0, x1, z), so its conditional mean given x_t is the same
    combination of (eta_0, eta_1, eta_z); with the Gaussian oracle that must equal the oracle's
    prediction exactly (math.md 1.4 vs 8a)."""
    interp = INTERPOLANTS[name]
    gen = torch.Generator().manual_seed(2)
    d = 3
    m0 = torch.zeros(d, dtype=F64) if gaussian_base else torch.tensor([0.5, -1.0, 0.2], dtype=F64)
    s0 = torch.eye(d, dtype=F64) if gaussian_base else torch.diag(torch.tensor([0.6, 1.5, 0.9], dtype=F64))
    a = torch.randn(d, d, generator=gen, dtype=F64)
    s1 = a @ a.T / d + 0.2 * torch.eye(d, dtype=F64)
    oracle = GaussianOracle(interp, m0, s0, torch.tensor([1.0, 2.0, -0.5], dtype=F64), s1)
    t = torch.linspace(0.05, 0.95, 9, dtype=F64)
    x = torch.randn(9, d, generator=gen, dtype=F64)
    eta0, eta1 = oracle.predict("x0", x, t), oracle.predict("x1", x, t)
    etaz = torch.zeros_like(x) if interp.deterministic else oracle.predict("noise", x, t)
    for prediction in PREDICTIONS:
        if prediction == "score" and interp.deterministic and not gaussian_base:
            with pytest.raises(ConversionError, match="no score target exists"):
                interp.target(prediction, eta0, eta1, etaz, t, gaussian_base=gaussian_base)
            continue
        mean = interp.target(prediction, eta0, eta1, etaz, t, gaussian_base=gaussian_base)
        if prediction == "score" and gaussian_base and not interp.deterministic and name.startswith("mirror"):
            continue  # base_is_data: a "Gaussian base" here is Gaussian data, x0 never enters x_t
        torch.testing.assert_close(mean, oracle.predict(prediction, x, t), rtol=1e-10, atol=1e-10)


def test_velocity_target_drops_an_infinite_gamma_dot_at_the_ends():
    lb = INTERPOLANTS["linear-brownian"]
    x0, x1, z = torch.ones(2, 2, dtype=F64), 2 * torch.ones(2, 2, dtype=F64), torch.ones(2, 2, dtype=F64)
    out = lb.target("velocity", x0, x1, z, ENDS, gaussian_base=True)
    torch.testing.assert_close(out, x1 - x0)
    assert lb.default_t_eps("velocity") > 0


def test_unknown_prediction_is_rejected():
    lin = INTERPOLANTS["linear"]
    x = torch.zeros(2, 2, dtype=F64)
    for call in (lambda: lin.target("eps", x, x, x, ENDS, gaussian_base=True),
                 lambda: lin.default_t_eps("eps"),
                 lambda: lin.convert({"velocity": x}, x, ENDS, "eps", gaussian_base=True),
                 lambda: lin.convert({"eps": x}, x, ENDS, "x1", gaussian_base=True)):
        with pytest.raises(ValueError, match="unknown prediction 'eps'; expected one of "
                                             "velocity, score, noise, x0, x1"):
            call()


# -- endpoint epsilons ------------------------------------------------------------------------------

def test_default_t_eps():
    for name in ("linear", "gvp", "one_sided", "fm_ot", "trig-bsquared", "gvp-bsquared",
                 "encoding_decoding", "mirror-bsquared"):
        assert INTERPOLANTS[name].default_t_eps("velocity") == 0.0, name
    for name in ("linear-brownian", "trig-brownian", "mirror"):  # gamma' infinite at the ends
        assert INTERPOLANTS[name].default_t_eps("velocity") == 1e-3, name
    for name, interp in INTERPOLANTS.items():
        for prediction in ("score", "noise", "x0", "x1"):
            eps = interp.default_t_eps(prediction)
            assert type(eps) is float and eps == (1e-5 if name == "vp" else 1e-3)
    assert INTERPOLANTS["vp"].default_t_eps("velocity") == 1e-5


# -- bad parameters -----------------------------------------------------------------------------

def test_bad_parameters_raise_clear_errors(registry):
    with pytest.raises(ValueError, match=r"a must be a finite number > 0, got -1.0"):
        si.ABrownianGamma(a=-1.0)
    with pytest.raises(ValueError, match=r"trig needs gamma\(t\)\^2 < 1 .*SineSquaredGamma reaches 1"):
        si.TrigInterpolant(gamma=si.SineSquaredGamma())
    with pytest.raises(ValueError, match="ABrownianGamma reaches 1$"):
        si.TrigInterpolant(gamma=si.ABrownianGamma(a=4.0))
    si.TrigInterpolant(gamma=si.ABrownianGamma(a=3.9))  # max gamma^2 = 0.975 is fine
    with pytest.raises(ValueError, match="MirrorInterpolant needs a non-zero gamma"):
        si.MirrorInterpolant(gamma=si.ZeroGamma())
    with pytest.raises(ValueError, match="EncodingDecodingInterpolant needs a non-zero gamma .*alpha = beta = 0"):
        si.EncodingDecodingInterpolant(gamma=si.ZeroGamma())
    with pytest.raises(ValueError, match=r"beta_max must be > beta_min = 5.0, got 2.0"):
        si.VPInterpolant(beta_min=5.0, beta_max=2.0)
    with pytest.raises(ValueError, match=r"beta_min must be a finite number >= 0, got -0.1"):
        si.VPInterpolant(beta_min=-0.1)
    with pytest.raises(ValueError, match=r"sigma_min must be a number in \(0, 1\) .*got 1.0"):
        si.FMOTInterpolant(sigma_min=1.0)
    with pytest.raises(ValueError, match=r"sigma_min = 0 is the path 'linear': use it\), got 0.0"):
        si.FMOTInterpolant(sigma_min=0.0)
    with pytest.raises(ValueError, match="TrigInterpolant needs a non-zero gamma .*the path is 'gvp'"):
        si.TrigInterpolant(gamma=si.ZeroGamma())
    with pytest.raises(TypeError, match="gamma must be a gamma part"):
        si.LinearInterpolant(gamma=0.5)
    conv = RecipeConverter(registry)
    with pytest.raises(ValueError, match=r"a must be a finite number > 0, got -2.0 @ gamma"):
        conv.structure_part("interpolant", {"name": "linear", "gamma": {"name": "a_brownian", "a": -2}})
    with pytest.raises(ValueError, match="unknown parameter.*gamma; accepted: [(]none[)]"):
        conv.structure_part("interpolant", {"name": "one_sided", "gamma": "brownian"})


def test_encoding_decoding_needs_gamma_positive_at_one_half(registry):
    """math.md 1.8: alpha = beta = 0 at t = 1/2, so a gamma that vanishes there (not only a zero
    one) is refused with a message, from Python and from a recipe."""
    class VanishesAtHalf(si.BSquaredGamma):  # t(1 - t)(1 - 2t)^2: non-zero, but 0 at t = 1/2
        def gamma(self, t):
            return t * (1 - t) * (1 - 2 * t) ** 2

    with pytest.raises(ValueError, match=r"encoding_decoding needs gamma\(1/2\) > 0, but VanishesAtHalf gives "
                                         r"gamma\(1/2\) = 0.*sin\^2\(pi t\)"):
        si.EncodingDecodingInterpolant(gamma=VanishesAtHalf())
    with pytest.raises(ValueError, match=r"needs a non-zero gamma .*@ interpolant"):
        RecipeConverter(registry).structure_part("interpolant", {"name": "encoding_decoding", "gamma": "zero"},
                                                 path="interpolant")
    for name in ("sinesquared", "brownian", "bsquared"):  # every built-in non-zero gamma is > 0 at 1/2
        RecipeConverter(registry).structure_part("interpolant", {"name": "encoding_decoding", "gamma": name})
