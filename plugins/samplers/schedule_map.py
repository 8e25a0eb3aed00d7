"""The time change and rescaling between two schedules (math.md 3.1).

A one-sided schedule ``(alpha, beta)`` is known, up to a time change and a rescaling, by its
signal-to-noise ratio ``r(t) = beta/alpha = exp(lambda(t))`` (math.md 0). For a source
``(alpha, beta)`` and a target ``(alpha_bar, beta_bar)`` with increasing ratios,

    tau(s) = lambda^{-1}(lambda_bar(s)),        c(s) = alpha_bar(s)/alpha(tau) = beta_bar(s)/beta(tau),

and then ``alpha_bar x0 + beta_bar x1 = c(s) (alpha(tau) x0 + beta(tau) x1)`` for every pair
``(x0, x1)``. A two-sided schedule with a Gaussian base enters through its effective base
coefficient ``alpha_eff = sqrt(alpha^2 + gamma^2)`` (math.md 1.5).

``tau`` comes from a vectorised bisection in float64 on the sign of ``beta(tau) alpha_bar(s) -
beta_bar(s) alpha(tau)`` (no division, so the ends where a ratio is 0 or infinite are handled),
to float64 resolution. ``c`` is taken from whichever of ``alpha(tau)``
and ``beta(tau)`` is larger. For the linear source the closed form is ``tau = beta_bar/(alpha_bar +
beta_bar)``, ``c = alpha_bar + beta_bar`` (math.md 3.1), which the bisection reproduces.
"""

from __future__ import annotations

import torch
from torch import Tensor

from interpgen.protocols import ConversionError, Interpolant

_DTYPE = torch.float64
_POINTS = 4097
_ROUNDS = 5
_MEMO_SIZE = 4096


def effective_alpha(interpolant: Interpolant, t: Tensor) -> Tensor:
    """``alpha_eff = sqrt(alpha^2 + gamma^2)`` (math.md 1.5; ``alpha`` itself when gamma = 0)."""
    if interpolant.deterministic:
        return interpolant.alpha(t)
    return (interpolant.alpha(t) ** 2 + interpolant.gamma(t) ** 2).sqrt()


def check_monotone_ratio(interpolant: Interpolant, role: str) -> None:
    """Raise :class:`ConversionError` unless ``beta/alpha_eff`` is non-decreasing on a grid of
    [0, 1] and rises from its value at 0 (math.md 3.1 needs ``lambda`` increasing)."""
    grid = torch.linspace(0.0, 1.0, 401, dtype=_DTYPE)
    a, b = effective_alpha(interpolant, grid), interpolant.beta(grid)
    # r_{k+1} >= r_k  <=>  b_{k+1} a_k >= b_k a_{k+1}  (a, b >= 0)
    rising = b[1:] * a[:-1] - b[:-1] * a[1:]
    ok = bool((a >= 0).all() and (b >= 0).all() and (rising >= -1e-12).all() and (rising > 0).any())
    if not ok:
        raise ConversionError(
            f"schedule conversion (math.md 3.1) needs a {role} schedule whose signal-to-noise ratio "
            f"beta/alpha increases with t; {type(interpolant).__name__} does not have one (e.g. "
            "mirror, whose beta/gamma falls and then rises), so no time change maps it to another schedule")


class ScheduleMap:
    """``tau(s)`` and ``c(s)`` from a target schedule to a source schedule (math.md 3.1)."""

    def __init__(self, source: Interpolant, target: Interpolant):
        check_monotone_ratio(source, "source")
        check_monotone_ratio(target, "target")
        self.source = source
        self.target = target
        self._memo: dict[float, tuple[Tensor, Tensor]] = {}

    def _bisect(self, num: Tensor, den: Tensor, schedule: Interpolant) -> Tensor:
        """The ``t`` of ``schedule`` whose ratio ``beta/alpha_eff`` equals ``num/den``:
        the smallest t (to float64 resolution) with ``beta(t) den - num alpha_eff(t) >= 0``.

        A vectorised bisection: each round evaluates :data:`_POINTS` equally spaced points of the
        current bracket and keeps the cell where the sign changes (5 rounds of 4096 points
        narrow [0, 1] to below 1e-18)."""
        num, den = num[:, None], den[:, None]

        def below(t: Tensor) -> Tensor:
            b, a = schedule.beta(t), effective_alpha(schedule, t)
            # a point mass (a = b = 0) has ratio 0 by continuity (math.md 3.2)
            return torch.where((a == 0) & (b == 0), (num > 0).expand_as(t), b * den - num * a < 0)

        lo = torch.zeros_like(num)
        hi = torch.ones_like(num)
        frac = torch.linspace(0.0, 1.0, _POINTS, dtype=_DTYPE)[None, :]
        for _ in range(_ROUNDS):
            points = lo + (hi - lo) * frac
            short = below(points)
            first = (~short).to(torch.int64).argmax(dim=1, keepdim=True)  # first point not below
            first = torch.where(short[:, -1:], torch.full_like(first, _POINTS - 1), first)
            hi = points.gather(1, first)
            lo = points.gather(1, (first - 1).clamp_min(0))
        result = torch.where(below(torch.zeros_like(num)), hi, torch.zeros_like(num))
        return result[:, 0]

    def tau_and_scale(self, s: Tensor) -> tuple[Tensor, Tensor]:
        """``(tau(s), c(s))``, each of ``s``'s shape, computed in float64. Samplers ask with one
        time for the whole batch; those single-time answers are remembered (the same grid comes
        back at every call of a sampler)."""
        s64, index = torch.unique(s.to(_DTYPE).cpu(), return_inverse=True)
        if s64.numel() == 1:
            key = float(s64)
            if key not in self._memo:
                if len(self._memo) >= _MEMO_SIZE:
                    self._memo.clear()
                self._memo[key] = self._solve(s64)
            tau, scale = self._memo[key]
        else:
            tau, scale = self._solve(s64)
        return tau[index].to(s.device), scale[index].to(s.device)

    def _solve(self, s64: Tensor) -> tuple[Tensor, Tensor]:
        a_bar, b_bar = effective_alpha(self.target, s64), self.target.beta(s64)
        tau = self._bisect(b_bar, a_bar, self.source)
        a, b = effective_alpha(self.source, tau), self.source.beta(tau)
        scale = torch.where(b >= a, b_bar / b, a_bar / a)
        return tau, scale

    def target_time(self, t: float) -> float:
        """The target time ``s`` with ``tau(s) = t`` (the inverse map), for a source time ``t``."""
        t64 = torch.tensor([float(t)], dtype=_DTYPE)
        num, den = self.source.beta(t64), effective_alpha(self.source, t64)
        return float(self._bisect(num, den, self.target))


_SHARED: dict[tuple[Interpolant, Interpolant], ScheduleMap] = {}


def shared_map(source: Interpolant, target: Interpolant) -> ScheduleMap:
    """A :class:`ScheduleMap`, reused across calls for equal (hashable) schedule pairs so that its
    remembered grid times serve every sampling call."""
    try:
        key = (source, target)
        hash(key)
    except TypeError:
        return ScheduleMap(source, target)
    if key not in _SHARED:
        if len(_SHARED) >= 64:
            _SHARED.clear()
        _SHARED[key] = ScheduleMap(source, target)
    return _SHARED[key]


__all__ = ["ScheduleMap", "effective_alpha", "check_monotone_ratio", "shared_map"]
