"""The stepping core shared by every explicit Runge-Kutta solver (fixed-step and adaptive).

A right-hand side is ``fn(t, y) -> dy/dt`` with ``t`` a tensor of shape ``(B,)`` (every batch
member at the same time) and ``y`` of any shape ``(B, ...)``. Steps may be negative
(integration backward in time).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor

from interpgen.tensors import batch_time
from interpgen_plugins.samplers.butcher import ButcherTableau

RightHandSide = Callable[[Tensor, Tensor], Tensor]


def weighted_step(y: Tensor, h: float, weights: Sequence[float], stages: Sequence[Tensor]) -> Tensor:
    """``y + h sum_i w_i k_i`` (zero weights skipped)."""
    out = y
    for w, k in zip(weights, stages):
        if w != 0.0:
            out = out + (h * w) * k
    return out


def rk_step(fn: RightHandSide, t: float, y: Tensor, h: float, tableau: ButcherTableau,
            first_stage: Tensor | None = None) -> tuple[Tensor, list[Tensor], int]:
    """One explicit Runge-Kutta step from ``(t, y)`` of size ``h``.

    Stages ``k_i = fn(t + c_i h, y + h sum_j a_ij k_j)``; returns ``(y_next, stages, calls)``
    with ``y_next = y + h sum_i b_i k_i``. ``first_stage`` (``k_1 = fn(t, y)`` already known,
    e.g. from the previous step of a first-same-as-last method) saves one call. For an FSAL
    tableau the last stage is evaluated at ``y_next`` itself, so it is the next ``k_1``.
    """
    batch = y.shape[0]
    stages: list[Tensor] = []
    calls = 0
    y_next: Tensor | None = None
    for i in range(tableau.stages):
        if i == 0 and first_stage is not None:
            stages.append(first_stage)
            continue
        y_stage = weighted_step(y, h, tableau.a[i], stages) if i > 0 else y
        if tableau.fsal and i == tableau.stages - 1:
            y_next = y_stage
        stages.append(fn(batch_time(t + tableau.c[i] * h, batch, like=y), y_stage))
        calls += 1
    if y_next is None:
        y_next = weighted_step(y, h, tableau.b, stages)
    return y_next, stages, calls


def integrate_on_grid(fn: RightHandSide, y: Tensor, times: Sequence[float], tableau: ButcherTableau,
                      *, record: bool = False) -> tuple[Tensor, int, list[Tensor] | None]:
    """Fixed-step integration through the grid ``times`` (increasing or decreasing).

    Returns ``(y_end, calls, states)`` where ``states`` (only when ``record``) holds ``y`` at
    every grid time, ``len(times)`` entries.
    """
    states = [y] if record else None
    calls = 0
    for t, t_next in zip(times[:-1], times[1:]):
        y, _, used = rk_step(fn, t, y, t_next - t, tableau)
        calls += used
        if states is not None:
            states.append(y)
    return y, calls, states
