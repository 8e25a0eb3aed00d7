"""Adaptive Dormand-Prince 5(4) ODE sampler (math.md 1.3's ODE; solver in :mod:`adaptive`)."""

from __future__ import annotations

import attrs
from torch import Tensor

from interpgen_plugins.samplers.adaptive import integrate_adaptive
from interpgen_plugins.samplers.butcher import DOPRI5
from interpgen_plugins.samplers.explicit_rk import RightHandSide
from interpgen_plugins.samplers.ode_sampler import OdeSampler
from interpgen.validators import positive_float, positive_int


@attrs.frozen(kw_only=True)
class Dopri5Sampler(OdeSampler):
    """Adaptive Dormand-Prince 5(4) with first-same-as-last stages (6 evaluations per attempted
    step, plus 2 at the start: ``f(t0, x0)`` and the initial-step probe).

    ``rtol``/``atol``: the tolerances of the RMS error norm; ``max_steps``: the most attempted
    steps (accepted plus rejected) before a :class:`StepLimitError` naming the limit.
    """

    rtol: float = attrs.field(default=1e-5, validator=positive_float)
    atol: float = attrs.field(default=1e-5, validator=positive_float)
    max_steps: int = attrs.field(default=10_000, validator=positive_int)

    def _solve(self, fn: RightHandSide, y: Tensor, t_start: float, t_end: float, *, record: bool
               ) -> tuple[Tensor, int, list[Tensor] | None]:
        return integrate_adaptive(fn, y, t_start, t_end, DOPRI5, rtol=self.rtol, atol=self.atol,
                                  max_steps=self.max_steps, record=record)
