"""Turning one prediction into another (math.md 1.2, 1.5), for any ``alpha, beta, gamma``.

Every prediction is a conditional expectation given ``x_t = x`` (math.md 1.2):
``eta_0 = E[x0|x_t]``, ``eta_1 = E[x1|x_t]``, ``eta_z = E[z|x_t]``, the velocity
``b = alpha' eta_0 + beta' eta_1 + gamma' eta_z`` and the score ``s``. Two identities always hold,

    x = alpha eta_0 + beta eta_1 + gamma eta_z,         b = alpha' eta_0 + beta' eta_1 + gamma' eta_z,

and, when ``gamma > 0``, ``s = -eta_z / gamma`` (z is Gaussian and independent of x0, x1).
Writing ``m = -s = eta_z / gamma`` turns the ``gamma'`` terms into ``gamma gamma'`` terms, so
only the finite closed-form ``gamma_gamma_dot`` is ever used:

    x = alpha eta_0 + beta eta_1 + gamma^2 m,           b = alpha' eta_0 + beta' eta_1 + gamma gamma' m.

Three regimes (chosen by :func:`convert`):

* **deterministic** (``gamma == 0``), any base: unknowns ``(eta_0, eta_1)``, ``noise`` means
  ``eta_0``; a score additionally needs a Gaussian base, ``s = -eta_0 / alpha``.
* **two-sided, Gaussian base** (``x0 ~ N(0, I)`` independent of ``x1``): ``alpha x0 + gamma z`` is
  Gaussian noise of variance ``A2 = alpha^2 + gamma^2`` (the one-sided reduction with
  ``alpha_eff = sqrt(A2)`` of math.md 1.5 [DERIVED]); then ``eta_0 = alpha m``, ``eta_z = gamma m``
  and every prediction follows from one of them through ``(m, eta_1)``.
* **two-sided, any base**: a pair is needed (math.md 1.5, last paragraph).
* **alpha == 0** (mirror, math.md 1.6), any base: x0 drops out, ``x = beta eta_1 + gamma^2 m``,
  and any one of velocity, score, noise, x1 determines the others.

Each regime reduces to two unknowns and two linear equations (:func:`solve_pair`). Where an
unknown drops out of both (``encoding_decoding`` has ``beta = beta' = 0`` on t <= 1/2 and
``alpha = alpha' = 0`` on t > 1/2) the field it belongs to is not determined by anything and
is returned as ``nan`` there.

Formulas with a denominator are singular where it vanishes; each function's docstring lists
them. At such points the result is ``inf`` or ``nan`` (nothing is clamped): keep ``t`` inside
``[t_eps, 1 - t_eps]`` with the interpolant's ``default_t_eps``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import torch
from torch import Tensor

from interpgen.protocols import PREDICTIONS, ConversionError

#: The order in which a single source is chosen when several predictions are given and one
#: is enough: a score gives ``m = -s`` exactly, so it comes first for score, noise and x0; the
#: velocity formulas have no endpoint singularity for monotone schedules, so it comes first
#: for velocity and x1.
_SOURCE_ORDER: dict[str, tuple[str, ...]] = {
    "score": ("score", "velocity", "x1", "x0", "noise"),
    "noise": ("score", "velocity", "x1", "x0", "noise"),
    "x0": ("score", "velocity", "x1", "x0", "noise"),
    "x1": ("velocity", "score", "x1", "x0", "noise"),
    "velocity": ("velocity", "score", "x1", "x0", "noise"),
}


class Coefficients(NamedTuple):
    """Schedule values at ``t``, each broadcast to ``x`` (shape ``(B, 1, ..., 1)``)."""

    alpha: Tensor
    beta: Tensor
    gamma: Tensor
    alpha_dot: Tensor
    beta_dot: Tensor
    gamma_gamma_dot: Tensor


def check_prediction(name: str) -> None:
    """Raise ValueError naming :data:`PREDICTIONS` for an unknown prediction name."""
    if name not in PREDICTIONS:
        raise ValueError(f"unknown prediction {name!r}; expected one of {', '.join(PREDICTIONS)}")


def _ordered(names: Iterable[str]) -> tuple[str, ...]:
    chosen = set(names)
    return tuple(p for p in PREDICTIONS if p in chosen)


# -- what can be produced ----------------------------------------------------------------------

def available(have: Iterable[str], *, deterministic: bool, gaussian_base: bool,
              ignores_base: bool = False) -> tuple[str, ...]:
    """The predictions :func:`convert` can produce from ``have`` (``have`` included), in the
    order of :data:`PREDICTIONS`. ``ignores_base`` is True when ``alpha == 0`` identically
    (the mirror interpolant), so ``eta_0`` never enters ``x_t``."""
    given = set(have)
    for name in given:
        check_prediction(name)
    if not given:
        return ()
    out = set(given)
    if deterministic:
        core = {"velocity", "x0", "noise", "x1"}
        if given & core or (gaussian_base and "score" in given):
            out |= core | ({"score"} if gaussian_base else set())
    elif ignores_base:
        related = {"velocity", "score", "noise", "x1"}
        if given & related:  # with a Gaussian base E[x0|x_t] = E[x0] = 0
            out |= related | ({"x0"} if gaussian_base else set())
    elif gaussian_base:
        out = set(PREDICTIONS)
    else:
        classes = {"m" if p in ("score", "noise") else p for p in given}
        if len(classes) >= 2:
            out = set(PREDICTIONS)
        elif "m" in classes:
            out |= {"score", "noise"}
    return _ordered(out)


def explain(have: Iterable[str], want: str, *, deterministic: bool, gaussian_base: bool,
            ignores_base: bool = False) -> str:
    """Why ``want`` cannot be made from ``have`` (the text of the ConversionError)."""
    given = _ordered(have)
    regime = (("gamma == 0" if deterministic else "gamma > 0")
              + (", Gaussian base" if gaussian_base else ", non-Gaussian base"))
    head = f"cannot convert {list(given)} to {want!r} ({regime}): "
    if not given:
        return head + "no prediction was given"
    if deterministic:
        if want == "score":
            return head + ("a score needs a Gaussian base or a score prediction when gamma is zero "
                           "(s = -E[x0|x_t]/alpha holds only for x0 ~ N(0, I), math.md 1.2)")
        return head + ("a score determines nothing else without a Gaussian base "
                       "(Tweedie's formula of math.md 1.5 needs x0 ~ N(0, I))")
    if ignores_base:
        if want == "x0":
            return head + ("x_t does not depend on x0 (alpha == 0), so no field determines "
                           "E[x0|x_t] unless the base is N(0, I)")
        return head + ("x_t does not depend on x0 (alpha == 0), so E[x0|x_t] determines nothing; "
                       "give velocity, score, noise or x1")
    return head + ("one prediction is not enough without a Gaussian base: give a pair such as "
                   "(velocity, score) or (velocity, noise) (math.md 1.5)")


# -- the conversions ---------------------------------------------------------------------------

def convert(have: Mapping[str, Tensor], x: Tensor, c: Coefficients, want: str, *,
            deterministic: bool, gaussian_base: bool, ignores_base: bool = False) -> Tensor:
    """Turn ``have`` into ``want`` at ``x`` with schedule values ``c`` (math.md 1.2, 1.5).

    Raises :class:`ConversionError` (naming what was given, what was asked and why) when the
    algebra does not determine ``want``, and ValueError for an unknown prediction name.
    """
    check_prediction(want)
    for name in have:
        check_prediction(name)
    if want in have:
        return have[want]
    if deterministic and want in ("x0", "noise"):
        twin = "noise" if want == "x0" else "x0"
        if twin in have:
            return have[twin]
    flags = dict(deterministic=deterministic, gaussian_base=gaussian_base, ignores_base=ignores_base)
    if want not in available(have, **flags):
        raise ConversionError(explain(have, want, **flags))
    if deterministic:
        eta0, eta1 = _deterministic_denoisers(have, x, c, want, gaussian_base)
        return _from_denoisers(want, eta0, eta1, c)
    if ignores_base:
        m, eta1 = _base_free_state(have, x, c, want)
        return _from_state(want, None, eta1, m, c)
    if gaussian_base:
        m, eta1 = _gaussian_two_sided_state(have, x, c, want)
        return _from_state(want, None, eta1, m, c)
    eta0, eta1, m = _pair_state(have, x, c)
    return _from_state(want, eta0, eta1, m, c)


#: With alpha == 0 (mirror) the velocity ``b = -gamma gamma' s`` vanishes where gamma' does,
#: so it comes last.
_BASE_FREE_ORDER: tuple[str, ...] = ("score", "x1", "noise", "velocity")


def _first_source(have: Mapping[str, Tensor], want: str,
                  order: tuple[str, ...] | None = None) -> str:
    return next(name for name in (order or _SOURCE_ORDER[want]) if name in have)


def _scaled(coef: Tensor, value: Tensor) -> Tensor:
    """``coef * value`` with an exact zero where ``coef == 0`` (so an undetermined ``nan``
    that the formula does not need does not leak into the result)."""
    return torch.where(coef == 0, torch.zeros_like(value), coef * value)


def solve_pair(p: Tensor, q: Tensor, p_dot: Tensor, q_dot: Tensor, x: Tensor, *,
               first: Tensor | None = None, second: Tensor | None = None,
               drift: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Solve ``x = p P + q Q`` together with ``drift = p' P + q' Q`` for ``(P, Q)`` given one of
    ``first`` (= P), ``second`` (= Q) or ``drift``.

    * P given: ``Q = (x - p P)/q`` (singular where q = 0);
    * Q given: ``P = (x - q Q)/p`` (singular where p = 0);
    * drift given: ``P = (q' x - q drift)/det``, ``Q = (p drift - p' x)/det`` with
      ``det = p q' - q p'`` (singular where det = 0).

    Where an unknown drops out of both equations (``q = q' = 0``, e.g. x1 for
    ``encoding_decoding`` at t <= 1/2) it is not determined and is returned as ``nan``, and the
    other one is read off ``x``: ``P = x/p``.
    """
    p_gone = (p == 0) & (p_dot == 0)
    q_gone = (q == 0) & (q_dot == 0)
    if first is not None:
        big_p, big_q = first, (x - p * first) / q
    elif second is not None:
        big_p, big_q = (x - q * second) / p, second
    else:
        assert drift is not None
        det = p * q_dot - q * p_dot
        big_p = torch.where(q_gone, x / p, (q_dot * x - q * drift) / det)
        big_q = torch.where(p_gone, x / q, (p * drift - p_dot * x) / det)
    nan = torch.full_like(x, math.nan)
    return torch.where(p_gone, nan, big_p), torch.where(q_gone, nan, big_q)


def _deterministic_denoisers(have: Mapping[str, Tensor], x: Tensor, c: Coefficients, want: str,
                             gaussian_base: bool) -> tuple[Tensor, Tensor]:
    """``(eta_0, eta_1)`` for ``gamma == 0`` from one prediction (math.md 1.5), solving
    ``x = alpha eta_0 + beta eta_1``, ``b = alpha' eta_0 + beta' eta_1``:

    * velocity: ``eta_0 = (beta b - beta' x)/D``, ``eta_1 = (alpha' x - alpha b)/D`` with
      ``D = alpha' beta - alpha beta'`` (regular wherever ``D != 0``: all of [0, 1] for the
      monotone schedules; ``vp`` has ``alpha' = -inf`` at t = 1);
    * x0 / noise: ``eta_1 = (x - alpha eta_0)/beta`` (singular where beta = 0: t = 0);
    * score (Gaussian base): ``eta_0 = -alpha s`` (regular), then ``eta_1`` as above (t = 0);
    * x1: ``eta_0 = (x - beta eta_1)/alpha`` (singular where alpha = 0: t = 1).
    """
    usable = {k: v for k, v in have.items() if k != "score" or gaussian_base}
    source = _first_source(usable, want)
    args = (c.alpha, c.beta, c.alpha_dot, c.beta_dot, x)
    if source == "velocity":
        return solve_pair(*args, drift=usable["velocity"])
    if source == "x1":
        return solve_pair(*args, second=usable["x1"])
    eta0 = -c.alpha * usable["score"] if source == "score" else usable[source]
    return solve_pair(*args, first=eta0)


def _from_denoisers(want: str, eta0: Tensor, eta1: Tensor, c: Coefficients) -> Tensor:
    """Any prediction for ``gamma == 0`` from ``(eta_0, eta_1)``: ``b = alpha' eta_0 + beta' eta_1``,
    ``noise = eta_0``, ``s = -eta_0/alpha`` (singular where alpha = 0: t = 1)."""
    if want in ("x0", "noise"):
        return eta0
    if want == "x1":
        return eta1
    if want == "velocity":
        return _scaled(c.alpha_dot, eta0) + _scaled(c.beta_dot, eta1)
    return -eta0 / c.alpha


def _gaussian_two_sided_state(have: Mapping[str, Tensor], x: Tensor, c: Coefficients,
                              want: str) -> tuple[Tensor, Tensor]:
    """``(m, eta_1)`` with ``m = -s`` for ``gamma > 0`` and a Gaussian base (math.md 1.5, DERIVED).

    ``alpha x0 + gamma z`` is Gaussian with variance ``A2 = alpha^2 + gamma^2`` and independent
    of x1, so ``eta_0 = alpha m``, ``eta_z = gamma m`` and, with ``AA' = alpha alpha' + gamma gamma'``
    (= alpha_eff alpha_eff'), ``x = A2 m + beta eta_1``, ``b = AA' m + beta' eta_1``. Sources:

    * velocity: ``m = (beta b - beta' x)/D'``, ``eta_1 = (AA' x - A2 b)/D'`` with
      ``D' = beta AA' - beta' A2`` (for gamma == 0 this is ``alpha D``); regular where D' != 0,
      which holds on all of [0, 1] for linear/trig/gvp with the gammas here;
    * score: ``m = -s``; x0: ``m = eta_0/alpha`` (singular where alpha = 0);
      noise: ``m = eta_z/gamma`` (singular at t = 0 and 1); then ``eta_1 = (x - A2 m)/beta``
      (singular where beta = 0: t = 0);
    * x1: ``m = (x - beta eta_1)/A2`` (singular where A2 = 0: t = 1).

    Where ``beta = beta' = 0`` (``encoding_decoding`` at t <= 1/2) ``m = x/A2`` from anything and
    ``eta_1`` is not determined (nan).
    """
    source = _first_source(have, want)
    a2 = c.alpha * c.alpha + c.gamma * c.gamma
    aad = c.alpha * c.alpha_dot + c.gamma_gamma_dot
    args = (a2, c.beta, aad, c.beta_dot, x)
    if source == "velocity":
        return solve_pair(*args, drift=have["velocity"])
    if source == "x1":
        return solve_pair(*args, second=have["x1"])
    if source == "score":
        m = -have["score"]
    elif source == "x0":
        m = have["x0"] / c.alpha
    else:
        m = have["noise"] / c.gamma
    return solve_pair(*args, first=m)


def _base_free_state(have: Mapping[str, Tensor], x: Tensor, c: Coefficients, want: str) -> tuple[Tensor, Tensor]:
    """``(m, eta_1)`` when ``alpha == 0`` identically (mirror, math.md 1.6), any base:
    ``x = gamma^2 m + beta eta_1``, ``b = gamma gamma' m + beta' eta_1``.

    * velocity: ``det = gamma^2 beta' - beta gamma gamma'``; ``m = (beta' x - beta b)/det``,
      ``eta_1 = (gamma^2 b - gamma gamma' x)/det`` (for the mirror ``m = b / (gamma gamma')``:
      singular at t = 0, 1 and where gamma' = 0, e.g. t = 1/2 for the Brownian gamma);
    * score / noise: ``m = -s`` or ``eta_z/gamma`` (t = 0, 1); ``eta_1 = (x - gamma^2 m)/beta``;
    * x1: ``m = (x - beta eta_1)/gamma^2`` (singular at t = 0, 1).
    """
    source = _first_source(have, want, _BASE_FREE_ORDER)
    args = (c.gamma * c.gamma, c.beta, c.gamma_gamma_dot, c.beta_dot, x)
    if source == "velocity":
        return solve_pair(*args, drift=have["velocity"])
    if source == "x1":
        return solve_pair(*args, second=have["x1"])
    m = -have["score"] if source == "score" else have["noise"] / c.gamma
    return solve_pair(*args, first=m)


def _pair_state(have: Mapping[str, Tensor], x: Tensor, c: Coefficients) -> tuple[Tensor, Tensor, Tensor]:
    """``(eta_0, eta_1, m)`` for ``gamma > 0`` with any base, from two predictions (math.md 1.2,
    1.5). The unknowns satisfy ``x = alpha eta_0 + beta eta_1 + gamma^2 m`` and
    ``b = alpha' eta_0 + beta' eta_1 + gamma gamma' m``; one given prediction fixes one unknown
    and :func:`solve_pair` finds the other two from the second:

    * m given (score: ``m = -s``; noise: ``m = eta_z/gamma``, singular at t = 0, 1): with
      ``r = x - gamma^2 m`` and ``v = b - gamma gamma' m`` (the velocity of I alone),
      velocity gives ``eta_0 = (beta v - beta' r)/D``, ``eta_1 = (alpha' r - alpha v)/D``,
      ``D = alpha' beta - alpha beta'``; x0 gives ``eta_1 = (r - alpha eta_0)/beta`` (t = 0);
      x1 gives ``eta_0 = (r - beta eta_1)/alpha`` (t = 1);
    * x0 given: with x1, ``m = (x - alpha eta_0 - beta eta_1)/gamma^2`` (t = 0, 1); with velocity,
      ``det = beta gamma gamma' - beta' gamma^2`` (singular at t = 0, 1);
    * x1 given with velocity: ``det = alpha gamma gamma' - alpha' gamma^2`` (t = 0, 1).

    For ``encoding_decoding`` x1 drops out of x_t at t <= 1/2 and x0 at t > 1/2, so E[x1|x_t]
    (resp. E[x0|x_t]) is not determined there and comes out as nan.
    """
    a, b, g2 = c.alpha, c.beta, c.gamma * c.gamma
    ad, bd, ggd = c.alpha_dot, c.beta_dot, c.gamma_gamma_dot
    vel = have.get("velocity")
    if "score" in have or "noise" in have:
        m = -have["score"] if "score" in have else have["noise"] / c.gamma
        if vel is None and "x0" not in have and "x1" not in have:
            nan = torch.full_like(x, math.nan)  # score <-> noise only: the denoisers stay unknown
            return nan, nan, m
        r = x - g2 * m
        drift = None if vel is None else vel - _scaled(ggd, m)
        eta0, eta1 = solve_pair(a, b, ad, bd, r, first=have.get("x0"), second=have.get("x1"),
                                drift=drift)
        return eta0, eta1, m
    if "x0" in have:
        eta0 = have["x0"]
        r = x - _scaled(a, eta0)
        drift = None if vel is None else vel - _scaled(ad, eta0)
        eta1, m = solve_pair(b, g2, bd, ggd, r, first=have.get("x1"), drift=drift)
        return eta0, eta1, m
    eta1 = have["x1"]
    eta0, m = solve_pair(a, g2, ad, ggd, x - _scaled(b, eta1), drift=vel - _scaled(bd, eta1))
    return eta0, eta1, m


def _from_state(want: str, eta0: Tensor | None, eta1: Tensor, m: Tensor, c: Coefficients) -> Tensor:
    """Any prediction for ``gamma > 0`` from ``(eta_0, eta_1, m = -s)``: ``s = -m``,
    ``eta_z = gamma m``, ``b = alpha' eta_0 + beta' eta_1 + gamma gamma' m``. With a Gaussian base
    (``eta0`` None) ``eta_0 = alpha m`` and ``b = AA' m + beta' eta_1``. All regular."""
    if eta0 is None:
        eta0 = _scaled(c.alpha, m)
    if want == "score":
        return -m
    if want == "noise":
        return c.gamma * m
    if want == "x0":
        return eta0
    if want == "x1":
        return eta1
    return _scaled(c.alpha_dot, eta0) + _scaled(c.beta_dot, eta1) + c.gamma_gamma_dot * m
