"""What every ODE sampler shares: sampling the probability-flow ODE of a field and
integrating an arbitrary right-hand side with the same solver core.

ODE (math.md 1.3): ``dX/dt = b(t, X)``, ``X_{t_start} = x0``, solved up to ``t_end``, where
``(t_start, t_end) = field.time_range(stochastic=False)``. A subclass supplies ``_solve``, its
one integration core; ``sample`` and ``integrate`` both go through it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from interpgen.protocols import Field, SampleResult
from interpgen_plugins.samplers.explicit_rk import RightHandSide


def velocity_of(field: Field) -> RightHandSide:
    """The right-hand side ``(t, x) -> b(t, x)`` of the probability-flow ODE (math.md 1.3)."""

    def velocity(t: Tensor, x: Tensor) -> Tensor:
        return field.evaluate(x, t, ("velocity",))[0]

    return velocity


class OdeSampler:
    """Mixin for ODE samplers (both the ``Sampler`` and ``OdeSolver`` protocols).

    Gradients are not switched off: wrap a call in ``torch.no_grad()`` when none are needed.
    """

    stochastic: ClassVar[bool] = False

    def _solve(self, fn: RightHandSide, y: Tensor, t_start: float, t_end: float, *, record: bool
               ) -> tuple[Tensor, int, list[Tensor] | None]:
        """Integrate ``dy/dt = fn(t, y)``; returns ``(y_end, calls, states_or_None)``."""
        raise NotImplementedError

    def integrate(self, fn: Any, y: Tensor, t_start: float, t_end: float) -> tuple[Tensor, int]:
        """Solve ``dy/dt = fn(t, y)`` (``t`` of shape ``(B,)``) from ``t_start`` to ``t_end``,
        forward or backward in time; returns ``(y_end, number_of_fn_calls)``."""
        y_end, calls, _ = self._solve(fn, y, float(t_start), float(t_end), record=False)
        return y_end, calls

    def sample(self, field: Field, x0: Tensor, generator: torch.Generator | None = None,
               return_trajectory: bool = False) -> SampleResult:
        """Integrate ``dX = b dt`` from ``x0`` over ``field.time_range(stochastic=False)``.

        ``generator`` is unused (the ODE is deterministic). ``nfe`` is the number of
        ``field.evaluate`` calls made; ``trajectory`` stacks the states at the solver's times.
        """
        t_start, t_end = field.time_range(stochastic=False)
        before = field.nfe
        x, _, states = self._solve(velocity_of(field), x0, float(t_start), float(t_end), record=return_trajectory)
        trajectory = torch.stack(states) if states is not None else None
        return SampleResult(x=x, nfe=field.nfe - before, trajectory=trajectory)
