"""Adaptive step-size integration with an embedded Runge-Kutta pair (Dormand-Prince 5(4)).

Error control (Hairer, Norsett & Wanner, *Solving ODEs I*, II.4): a step of size ``h`` gives
``y_next`` (order 5) and the error estimate ``e = h sum_i (b_i - b_low_i) k_i``; it is accepted
when ``||e / (atol + rtol max(|y|, |y_next|))||_rms <= 1`` and the next size is
``h * clip(0.9 err^(-1/5), 0.2, 10)``. One step size is shared by the whole batch (the norm runs
over every element). The first step size comes from the same book's starting heuristic.
"""

from __future__ import annotations

from torch import Tensor

from interpgen.tensors import batch_time
from interpgen_plugins.samplers.butcher import ButcherTableau
from interpgen_plugins.samplers.explicit_rk import RightHandSide, rk_step, weighted_step

SAFETY = 0.9
MIN_FACTOR = 0.2
MAX_FACTOR = 10.0


class StepLimitError(RuntimeError):
    """An adaptive solver hit its step limit or its step size vanished."""


def _rms(x: Tensor) -> float:
    return float(x.detach().pow(2).mean().sqrt())


def _error_scale(y: Tensor, y_next: Tensor | None, rtol: float, atol: float) -> Tensor:
    size = y.detach().abs()
    if y_next is not None:
        size = size.maximum(y_next.detach().abs())
    return atol + rtol * size


def initial_step_size(fn: RightHandSide, t: float, y: Tensor, f0: Tensor, direction: float, span: float,
                      order: int, rtol: float, atol: float) -> tuple[float, int]:
    """Starting |h| from the size of ``y``, ``f(t, y)`` and a finite-difference estimate of the
    second derivative (one extra call). Returns ``(h, calls)``."""
    scale = _error_scale(y, None, rtol, atol)
    d0, d1 = _rms(y / scale), _rms(f0 / scale)
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    h0 = min(h0, span)
    y1 = y + (direction * h0) * f0
    f1 = fn(batch_time(t + direction * h0, y.shape[0], like=y), y1)
    d2 = _rms((f1 - f0) / scale) / h0
    biggest = max(d1, d2)
    h1 = max(1e-6, h0 * 1e-3) if biggest <= 1e-15 else (0.01 / biggest) ** (1.0 / order)
    return min(100 * h0, h1, span), 1


def integrate_adaptive(fn: RightHandSide, y: Tensor, t_start: float, t_end: float, tableau: ButcherTableau, *,
                       rtol: float, atol: float, max_steps: int, record: bool = False
                       ) -> tuple[Tensor, int, list[Tensor] | None]:
    """Integrate ``dy/dt = fn(t, y)`` from ``t_start`` to ``t_end`` (either direction) with an
    embedded FSAL pair. ``max_steps`` bounds the attempted steps (accepted plus rejected).

    Returns ``(y_end, calls, states)``; ``states`` (when ``record``) holds ``y`` at ``t_start``
    and after every accepted step.
    """
    if tableau.b_low is None or not tableau.fsal:
        raise ValueError(f"{tableau.name} has no embedded FSAL pair for adaptive stepping")
    states = [y] if record else None
    if t_end == t_start:
        return y, 0, states
    direction = 1.0 if t_end > t_start else -1.0
    span = abs(t_end - t_start)
    error_weights = [b - bl for b, bl in zip(tableau.b, tableau.b_low)]
    t = t_start
    k1 = fn(batch_time(t, y.shape[0], like=y), y)
    h_abs, calls = initial_step_size(fn, t, y, k1, direction, span, tableau.order, rtol, atol)
    calls += 1
    attempts = 0
    while True:
        remaining = abs(t_end - t)
        if attempts >= max_steps:
            raise StepLimitError(
                f"{tableau.name} exceeded max_steps={max_steps} at t={t:.6g} before reaching t={t_end:.6g} "
                f"(last step size {h_abs:.3g}); raise max_steps or loosen rtol/atol")
        if h_abs < 1e-12 * max(1.0, abs(t)):
            raise StepLimitError(
                f"{tableau.name} step size fell to {h_abs:.3g} at t={t:.6g}: the right-hand side is "
                "probably singular or not finite there")
        attempts += 1
        last = h_abs >= remaining * (1 - 1e-10)
        h = direction * (remaining if last else h_abs)
        y_next, stages, used = rk_step(fn, t, y, h, tableau, first_stage=k1)
        calls += used
        error = weighted_step(y.new_zeros(()), h, error_weights, [k.detach() for k in stages])
        err = _rms(error / _error_scale(y, y_next, rtol, atol))
        if err != err:  # NaN: the state or the field is not finite
            raise StepLimitError(f"{tableau.name} produced a non-finite state at t={t:.6g}")
        accepted = err <= 1.0
        if accepted:
            t = t_end if last else t + h
            y, k1 = y_next, stages[-1]
            if states is not None:
                states.append(y)
            if last:
                return y, calls, states
        factor = MAX_FACTOR if err == 0 else min(MAX_FACTOR, max(MIN_FACTOR, SAFETY * err ** (-1.0 / tableau.order)))
        if not accepted:
            factor = min(factor, 1.0)
        h_abs = abs(h) * factor
