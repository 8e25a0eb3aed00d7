"""Turning one prediction into another, for any ``alpha, beta, gamma`` (formulas: docs/math.md 1.2, 1.5).

With ``m = -s = eta_z / gamma`` (math.md 1.2) the ``gamma'`` terms become ``gamma gamma'`` terms, so only the
finite closed-form ``gamma_gamma_dot`` is ever used:

    x = alpha eta_0 + beta eta_1 + gamma^2 m,           b = alpha' eta_0 + beta' eta_1 + gamma gamma' m.

:func:`convert` picks the regime: ``gamma == 0`` (unknowns ``(eta_0, eta_1)``, ``noise`` means ``eta_0``, a score
needs a Gaussian base); ``gamma > 0`` with a Gaussian base (one field suffices: ``alpha_eff``, math.md 1.5) or any
base (a pair is needed); ``alpha == 0`` (mirror, math.md 1.6: x0 drops out, and one of velocity, score, noise, x1
gives the rest). Each is two linear equations (:func:`solve_pair`); an unknown that drops out of both
(``encoding_decoding``: ``beta = beta' = 0`` on t <= 1/2, ``alpha = alpha' = 0`` on t > 1/2) comes out as ``nan``.
Elsewhere a formula is singular where its denominator vanishes (each function lists where): the result is ``inf``
or ``nan``, nothing is clamped; keep ``t`` inside ``[t_eps, 1 - t_eps]`` with the interpolant's ``default_t_eps``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import torch
from torch import Tensor

from interpgen.protocols import PREDICTIONS, ConversionError

#: Which given prediction is used when one suffices: a score gives ``m = -s`` exactly (first for score, noise, x0);
#: the velocity formulas have no endpoint singularity for monotone schedules (first for velocity and x1).
_SOURCE_ORDER: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("score", "noise", "x0"), ("score", "velocity", "x1", "x0", "noise")),
    **dict.fromkeys(("x1", "velocity"), ("velocity", "score", "x1", "x0", "noise")),
}
#: With alpha == 0 (mirror) the velocity ``b = -gamma gamma' s`` vanishes where gamma' does, so it comes last.
_BASE_FREE_ORDER: tuple[str, ...] = ("score", "x1", "noise", "velocity")


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


def available(have: Iterable[str], *, deterministic: bool, gaussian_base: bool,
              ignores_base: bool = False) -> tuple[str, ...]:
    """The predictions :func:`convert` can produce from ``have`` (``have`` included), in the order of
    :data:`PREDICTIONS`. ``ignores_base``: ``alpha == 0`` identically (mirror), so ``eta_0`` never enters ``x_t``."""
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


def convert(have: Mapping[str, Tensor], x: Tensor, c: Coefficients, want: str, *,
            deterministic: bool, gaussian_base: bool, ignores_base: bool = False) -> Tensor:
    """Turn ``have`` into ``want`` at ``x`` with schedule values ``c``. Raises :class:`ConversionError` (the
    text of :func:`explain`) when ``want`` is not determined, ValueError for an unknown prediction name."""
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
        return _from_denoisers(want, *_deterministic_denoisers(have, x, c, want, gaussian_base), c)
    if ignores_base or gaussian_base:
        state = _base_free_state if ignores_base else _gaussian_two_sided_state
        m, eta1 = state(have, x, c, want)
        return _from_state(want, None, eta1, m, c)
    return _from_state(want, *_pair_state(have, x, c), c)


def _first_source(have: Mapping[str, Tensor], want: str, order: tuple[str, ...] | None = None) -> str:
    return next(name for name in (order or _SOURCE_ORDER[want]) if name in have)


def _m(have: Mapping[str, Tensor], c: Coefficients) -> Tensor:
    """``m = -s`` from a score, else ``m = eta_z/gamma`` from a noise (singular where gamma = 0: t = 0, 1)."""
    return -have["score"] if "score" in have else have["noise"] / c.gamma


def _scaled(coef: Tensor, value: Tensor) -> Tensor:
    """``coef * value``, exactly zero where ``coef == 0`` (an undetermined ``nan`` the formula does not need
    does not leak into the result)."""
    return torch.where(coef == 0, torch.zeros_like(value), coef * value)


def solve_pair(p: Tensor, q: Tensor, p_dot: Tensor, q_dot: Tensor, x: Tensor, *,
               first: Tensor | None = None, second: Tensor | None = None,
               drift: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Solve ``x = p P + q Q`` together with ``drift = p' P + q' Q`` for ``(P, Q)`` given one of ``first``
    (= P), ``second`` (= Q) or ``drift``:

    * P given: ``Q = (x - p P)/q`` (singular where q = 0);
    * Q given: ``P = (x - q Q)/p`` (singular where p = 0);
    * drift given: ``P = (q' x - q drift)/det``, ``Q = (p drift - p' x)/det`` with ``det = p q' - q p'``
      (singular where det = 0).

    An unknown that drops out of both equations (``q = q' = 0``) is returned as ``nan``, and the other one is
    read off ``x``: ``P = x/p``.
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
    """``(eta_0, eta_1)`` for ``gamma == 0`` from one prediction (math.md 1.5):

    * velocity: ``eta_0 = (beta b - beta' x)/D``, ``eta_1 = (alpha' x - alpha b)/D`` with
      ``D = alpha' beta - alpha beta'``, regular wherever ``D != 0`` (all of [0, 1] for the monotone schedules;
      ``vp`` has ``alpha' = -inf`` at t = 1);
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
    if want == "velocity":
        return _scaled(c.alpha_dot, eta0) + _scaled(c.beta_dot, eta1)
    if want == "score":
        return -eta0 / c.alpha
    return eta1 if want == "x1" else eta0


def _gaussian_two_sided_state(have: Mapping[str, Tensor], x: Tensor, c: Coefficients,
                              want: str) -> tuple[Tensor, Tensor]:
    """``(m, eta_1)`` for ``gamma > 0`` and a Gaussian base (math.md 1.5, derived): ``eta_0 = alpha m``,
    ``eta_z = gamma m``, and with ``A2 = alpha^2 + gamma^2``, ``AA' = alpha alpha' + gamma gamma'``
    (= alpha_eff alpha_eff'), ``x = A2 m + beta eta_1``, ``b = AA' m + beta' eta_1``. Sources:

    * velocity: ``m = (beta b - beta' x)/D'``, ``eta_1 = (AA' x - A2 b)/D'``, ``D' = beta AA' - beta' A2`` (for
      gamma == 0 this is ``alpha D``); regular where D' != 0, all of [0, 1] for linear/trig/gvp with the gammas
      here;
    * score: ``m = -s``; x0: ``m = eta_0/alpha`` (singular where alpha = 0); noise: ``m = eta_z/gamma``
      (singular at t = 0 and 1); then ``eta_1 = (x - A2 m)/beta`` (singular where beta = 0: t = 0);
    * x1: ``m = (x - beta eta_1)/A2`` (singular where A2 = 0: t = 1).

    Where ``beta = beta' = 0`` (``encoding_decoding`` at t <= 1/2) ``m = x/A2`` and ``eta_1`` is nan.
    """
    source = _first_source(have, want)
    a2 = c.alpha * c.alpha + c.gamma * c.gamma
    aad = c.alpha * c.alpha_dot + c.gamma_gamma_dot
    args = (a2, c.beta, aad, c.beta_dot, x)
    if source == "velocity":
        return solve_pair(*args, drift=have["velocity"])
    if source == "x1":
        return solve_pair(*args, second=have["x1"])
    m = have["x0"] / c.alpha if source == "x0" else _m(have, c)
    return solve_pair(*args, first=m)


def _base_free_state(have: Mapping[str, Tensor], x: Tensor, c: Coefficients, want: str) -> tuple[Tensor, Tensor]:
    """``(m, eta_1)`` when ``alpha == 0`` identically (mirror, math.md 1.6), any base:
    ``x = gamma^2 m + beta eta_1``, ``b = gamma gamma' m + beta' eta_1``.

    * velocity: ``det = gamma^2 beta' - beta gamma gamma'``; ``m = (beta' x - beta b)/det``,
      ``eta_1 = (gamma^2 b - gamma gamma' x)/det`` (for the mirror ``m = b / (gamma gamma')``: singular at
      t = 0, 1 and where gamma' = 0, e.g. t = 1/2 for the Brownian gamma);
    * score / noise: ``m`` of :func:`_m`; ``eta_1 = (x - gamma^2 m)/beta``;
    * x1: ``m = (x - beta eta_1)/gamma^2`` (singular at t = 0, 1).
    """
    source = _first_source(have, want, _BASE_FREE_ORDER)
    args = (c.gamma * c.gamma, c.beta, c.gamma_gamma_dot, c.beta_dot, x)
    if source == "velocity":
        return solve_pair(*args, drift=have["velocity"])
    if source == "x1":
        return solve_pair(*args, second=have["x1"])
    return solve_pair(*args, first=_m(have, c))


def _pair_state(have: Mapping[str, Tensor], x: Tensor, c: Coefficients) -> tuple[Tensor, Tensor, Tensor]:
    """``(eta_0, eta_1, m)`` for ``gamma > 0`` with any base, from two predictions: one fixes one unknown of
    ``x = alpha eta_0 + beta eta_1 + gamma^2 m``, ``b = alpha' eta_0 + beta' eta_1 + gamma gamma' m`` and
    :func:`solve_pair` finds the other two from the second:

    * m given (:func:`_m`): with ``r = x - gamma^2 m`` and ``v = b - gamma gamma' m`` (the velocity of I alone),
      velocity gives ``eta_0 = (beta v - beta' r)/D``, ``eta_1 = (alpha' r - alpha v)/D``,
      ``D = alpha' beta - alpha beta'``; x0 gives ``eta_1 = (r - alpha eta_0)/beta`` (t = 0); x1 gives
      ``eta_0 = (r - beta eta_1)/alpha`` (t = 1);
    * x0 given: with x1, ``m = (x - alpha eta_0 - beta eta_1)/gamma^2`` (t = 0, 1); with velocity,
      ``det = beta gamma gamma' - beta' gamma^2`` (singular at t = 0, 1);
    * x1 given with velocity: ``det = alpha gamma gamma' - alpha' gamma^2`` (t = 0, 1).

    E[x1|x_t] (resp. E[x0|x_t]) for ``encoding_decoding`` at t <= 1/2 (resp. t > 1/2) comes out as nan.
    """
    a, b, g2 = c.alpha, c.beta, c.gamma * c.gamma
    ad, bd, ggd = c.alpha_dot, c.beta_dot, c.gamma_gamma_dot
    vel = have.get("velocity")
    if "score" in have or "noise" in have:
        m = _m(have, c)
        if vel is None and "x0" not in have and "x1" not in have:
            nan = torch.full_like(x, math.nan)  # score <-> noise only: the denoisers stay unknown
            return nan, nan, m
        r = x - g2 * m
        drift = None if vel is None else vel - _scaled(ggd, m)
        eta0, eta1 = solve_pair(a, b, ad, bd, r, first=have.get("x0"), second=have.get("x1"), drift=drift)
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
    """Any prediction for ``gamma > 0`` from ``(eta_0, eta_1, m)``: ``s = -m``, ``eta_z = gamma m``,
    ``b = alpha' eta_0 + beta' eta_1 + gamma gamma' m``, with ``eta_0 = alpha m`` for a Gaussian base (``eta0``
    None). All regular."""
    if want == "score":
        return -m
    if want == "noise":
        return c.gamma * m
    if want == "x1":
        return eta1
    eta0 = _scaled(c.alpha, m) if eta0 is None else eta0
    if want == "x0":
        return eta0
    return _scaled(c.alpha_dot, eta0) + _scaled(c.beta_dot, eta1) + c.gamma_gamma_dot * m
