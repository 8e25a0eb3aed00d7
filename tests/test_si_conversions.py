"""Prediction conversions of the SI plugin (math.md 1.2, 1.5) against the exact oracles of
math.md 8: every conversion the algebra allows must reproduce the oracle's own answer to
float64 precision, on Gaussian and on Gaussian-mixture data, and every other one must raise a
ConversionError that says why."""

from __future__ import annotations

import itertools

import pytest
import torch

import interpgen_plugins.si as si
from oracles import GaussianOracle, MixtureOracle
from interpgen.protocols import PREDICTIONS, ConversionError

F64 = torch.float64
D = 3

INTERPOLANTS = {
    "linear": si.LinearInterpolant(),
    "linear-brownian": si.LinearInterpolant(gamma=si.BrownianGamma()),
    "trig-brownian": si.TrigInterpolant(),
    "trig-bsquared": si.TrigInterpolant(gamma=si.BSquaredGamma()),
    "gvp": si.GVPInterpolant(),
    "gvp-sinesquared": si.GVPInterpolant(gamma=si.SineSquaredGamma()),
    "vp": si.VPInterpolant(),
    "encoding_decoding": si.EncodingDecodingInterpolant(),
    "one_sided": si.OneSidedInterpolant(),
    "fm_ot": si.FMOTInterpolant(),
    "mirror": si.MirrorInterpolant(),
}

# Avoids t = 1/2, where the mirror's velocity -gamma gamma' s vanishes for the Brownian gamma.
TIMES = torch.tensor([0.03, 0.17, 0.31, 0.44, 0.58, 0.72, 0.86, 0.97], dtype=F64)
HAVES = [h for k in (1, 2) for h in itertools.combinations(PREDICTIONS, k)]


def _data(seed: int):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(D, D, generator=gen, dtype=F64)
    s1 = a @ a.T / D + 0.3 * torch.eye(D, dtype=F64)
    means = 2.0 * torch.randn(2, D, generator=gen, dtype=F64)
    x = 1.5 * torch.randn(len(TIMES), D, generator=gen, dtype=F64)
    return s1, means, x


def _oracle(interp, kind: str, gaussian_base: bool):
    s1, means, _ = _data(0)
    if gaussian_base:
        m0, s0 = torch.zeros(D, dtype=F64), torch.eye(D, dtype=F64)
    else:
        m0 = torch.tensor([0.4, -0.3, 1.0], dtype=F64)
        s0 = torch.diag(torch.tensor([0.5, 1.7, 0.8], dtype=F64))
    if kind == "gaussian":
        return GaussianOracle(interp, m0, s0, means[0], s1)
    return MixtureOracle(interp, m0, s0, [0.35, 0.65], means, torch.stack([s1, 0.4 * torch.eye(D, dtype=F64)]))


def _informative(name: str, used: set[str]) -> torch.Tensor:
    """Times at which every field in ``used`` carries information: for encoding-decoding x1
    drops out of x_t on t <= 1/2 and x0 on t > 1/2 (their conditional means are constants no
    field determines)."""
    keep = torch.ones(len(TIMES), dtype=torch.bool)
    if name == "encoding_decoding":
        if "x1" in used:
            keep &= TIMES > 0.5
        if "x0" in used:
            keep &= TIMES <= 0.5
    return keep


def _cases():
    for name in INTERPOLANTS:
        for kind in ("gaussian", "mixture"):
            for gaussian_base in (True, False):
                yield pytest.param(name, kind, gaussian_base,
                                   id=f"{name}-{kind}-{'gaussbase' if gaussian_base else 'anybase'}")


@pytest.mark.parametrize("name, kind, gaussian_base", list(_cases()))
def test_conversions_reproduce_the_oracle(name, kind, gaussian_base):
    interp = INTERPOLANTS[name]
    oracle = _oracle(interp, kind, gaussian_base)
    x = _data(0)[2]
    truth = {p: oracle.predict(p, x, TIMES) for p in PREDICTIONS}
    converted = 0
    for have in HAVES:
        possible = interp.available(have, gaussian_base=gaussian_base)
        assert set(have) <= set(possible)
        for want in PREDICTIONS:
            given = {p: truth[p] for p in have}
            if want not in possible:
                with pytest.raises(ConversionError, match=f"cannot convert .* to '{want}'"):
                    interp.convert(given, x, TIMES, want, gaussian_base=gaussian_base)
                continue
            out = interp.convert(given, x, TIMES, want, gaussian_base=gaussian_base)
            keep = _informative(name, set(have) | {want})
            scale = truth[want].abs().max().item() + 1.0
            torch.testing.assert_close(out[keep], truth[want][keep], rtol=1e-8, atol=1e-8 * scale,
                                       msg=lambda m: f"{have} -> {want}: {m}")
            converted += 1
    assert converted > 0


def test_what_is_available():
    lin, lb, mirror = INTERPOLANTS["linear"], INTERPOLANTS["linear-brownian"], INTERPOLANTS["mirror"]
    everything = PREDICTIONS
    # deterministic: velocity, x0, noise (= x0), x1 interconvert with any base; the score needs a Gaussian one
    assert lin.available(("velocity",), gaussian_base=True) == everything
    assert lin.available(("x1",), gaussian_base=False) == ("velocity", "noise", "x0", "x1")
    assert lin.available(("score",), gaussian_base=False) == ("score",)
    # two-sided with a Gaussian base: one prediction gives all five
    for p in PREDICTIONS:
        assert lb.available((p,), gaussian_base=True) == everything
    # two-sided, any base: a pair is needed; score and noise only give each other
    assert lb.available(("velocity",), gaussian_base=False) == ("velocity",)
    assert lb.available(("score",), gaussian_base=False) == ("score", "noise")
    assert lb.available(("velocity", "noise"), gaussian_base=False) == everything
    assert lb.available(("x0", "x1"), gaussian_base=False) == everything
    assert lb.available(("score", "noise"), gaussian_base=False) == ("score", "noise")
    # mirror: x0 never enters x_t, so one field gives the others, but never E[x0|x_t]
    assert mirror.available(("score",), gaussian_base=False) == ("velocity", "score", "noise", "x1")
    assert mirror.available(("x0",), gaussian_base=False) == ("x0",)
    assert lin.available((), gaussian_base=True) == ()


def test_conversion_error_messages():
    x = torch.zeros(2, D, dtype=F64)
    t = torch.tensor([0.3, 0.6], dtype=F64)
    lin, lb, mirror = INTERPOLANTS["linear"], INTERPOLANTS["linear-brownian"], INTERPOLANTS["mirror"]
    with pytest.raises(ConversionError, match=r"cannot convert \['velocity'\] to 'score' \(gamma == 0, "
                                              r"non-Gaussian base\): a score needs a Gaussian base"):
        lin.convert({"velocity": x}, x, t, "score", gaussian_base=False)
    with pytest.raises(ConversionError, match=r"a score determines nothing else"):
        lin.convert({"score": x}, x, t, "x1", gaussian_base=False)
    with pytest.raises(ConversionError, match=r"\(gamma > 0, non-Gaussian base\): one prediction is not enough "
                                              r"without a Gaussian base: give a pair such as \(velocity, score\)"):
        lb.convert({"velocity": x}, x, t, "score", gaussian_base=False)
    with pytest.raises(ConversionError, match=r"no field determines E\[x0\|x_t\]"):
        mirror.convert({"score": x, "velocity": x}, x, t, "x0", gaussian_base=False)
    with pytest.raises(ConversionError, match="no prediction was given"):
        lb.convert({}, x, t, "x1", gaussian_base=True)
    assert issubclass(ConversionError, ValueError)


def test_given_predictions_are_returned_as_they_are():
    x = torch.randn(2, D, dtype=F64)
    t = torch.tensor([0.3, 0.6], dtype=F64)
    lin, lb = INTERPOLANTS["linear"], INTERPOLANTS["linear-brownian"]
    assert lb.convert({"score": x}, x, t, "score", gaussian_base=False) is x
    assert lin.convert({"noise": x}, x, t, "x0", gaussian_base=False) is x  # noise means x0 when gamma == 0
    assert lin.convert({"x0": x}, x, t, "noise", gaussian_base=False) is x


@pytest.mark.parametrize("name", ["linear", "gvp", "one_sided", "fm_ot"])
def test_velocity_conversions_are_regular_at_the_ends(name):
    """math.md 1.5: from a velocity, eta_0 and eta_1 have no singularity on [0, 1]; the score
    is regular at t = 0 (only 1/alpha, singular at t = 1 unless alpha(1) != 0 as for fm_ot)."""
    interp = INTERPOLANTS[name]
    oracle = _oracle(interp, "mixture", True)
    t = torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=F64)
    x = _data(1)[2][:4]
    b = oracle.predict("velocity", x, t)
    for want in ("x0", "x1", "noise"):
        out = interp.convert({"velocity": b}, x, t, want, gaussian_base=True)
        torch.testing.assert_close(out, oracle.predict(want, x, t), rtol=1e-10, atol=1e-10)
    score = interp.convert({"velocity": b}, x, t, "score", gaussian_base=True)
    torch.testing.assert_close(score[:2], oracle.predict("score", x[:2], t[:2]), rtol=1e-10, atol=1e-10)
    if name == "fm_ot":
        torch.testing.assert_close(score[2:], oracle.predict("score", x[2:], t[2:]), rtol=1e-8, atol=1e-8)
    else:
        assert not torch.isfinite(score[2:]).all()
    assert interp.default_t_eps("velocity") == 0.0


def test_two_sided_gaussian_velocity_to_score_is_regular_at_both_ends():
    """With gamma > 0 and a Gaussian base, s = (beta' x - beta b)/D' with
    D' = beta (alpha alpha' + gamma gamma') - beta' (alpha^2 + gamma^2) != 0 on [0, 1]."""
    interp = INTERPOLANTS["linear-brownian"]
    oracle = _oracle(interp, "mixture", True)
    t = torch.tensor([0.0, 1.0], dtype=F64)
    x = _data(2)[2][:2]
    b = oracle.predict("velocity", x, t)
    for want in ("score", "x1"):
        out = interp.convert({"velocity": b}, x, t, want, gaussian_base=True)
        torch.testing.assert_close(out, oracle.predict(want, x, t), rtol=1e-10, atol=1e-10)


def test_one_sided_tables_of_math_md():
    """Spot checks of the closed forms in math.md 1.5 for the linear path."""
    interp = INTERPOLANTS["one_sided"]
    gen = torch.Generator().manual_seed(3)
    x, b = torch.randn(4, D, generator=gen, dtype=F64), torch.randn(4, D, generator=gen, dtype=F64)
    t = torch.tensor([0.1, 0.4, 0.6, 0.9], dtype=F64)
    tc = t[:, None]
    conv = lambda want: interp.convert({"velocity": b}, x, t, want, gaussian_base=True)  # noqa: E731
    torch.testing.assert_close(conv("x1"), x + (1 - tc) * b)
    torch.testing.assert_close(conv("x0"), x - tc * b)
    torch.testing.assert_close(conv("score"), (tc * b - x) / (1 - tc))


def test_encoding_decoding_leaves_the_undetermined_side_nan():
    interp = INTERPOLANTS["encoding_decoding"]
    oracle = _oracle(interp, "gaussian", True)
    t = torch.tensor([0.2, 0.5, 0.8], dtype=F64)
    x = _data(4)[2][:3]
    b = oracle.predict("velocity", x, t)
    x1 = interp.convert({"velocity": b}, x, t, "x1", gaussian_base=True)
    assert torch.isnan(x1[:2]).all() and torch.isfinite(x1[2]).all()
    # at t = 1/2, x_t = gamma z: the score is -x/gamma^2 from any field
    score = interp.convert({"velocity": b}, x, t, "score", gaussian_base=True)
    torch.testing.assert_close(score, oracle.predict("score", x, t), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(score[1], -x[1])


@pytest.mark.parametrize("name", ["linear-brownian", "one_sided", "trig-brownian"])
def test_conversions_work_on_any_event_shape(name):
    interp = INTERPOLANTS[name]
    gen = torch.Generator().manual_seed(5)
    x, s = torch.randn(3, 2, 4, 4, generator=gen, dtype=F64), torch.randn(3, 2, 4, 4, generator=gen, dtype=F64)
    t = torch.tensor([0.2, 0.5, 0.7], dtype=F64)
    flat = interp.convert({"score": s.reshape(3, -1)}, x.reshape(3, -1), t, "velocity", gaussian_base=True)
    image = interp.convert({"score": s}, x, t, "velocity", gaussian_base=True)
    assert image.shape == x.shape
    torch.testing.assert_close(image.reshape(3, -1), flat, rtol=0, atol=0)
