"""The LSI sampler: Euler-Maruyama on the latent SDE family of math.md 4.5 (Singh & Fischer, 4.6).

    dz = [h(z, t) - (1 - g_t^2) (sigma_t^2 / 2) grad log p_t(z)] dt + g_t sigma_t dW,   z_0 ~ p0,

with ``g_t = g`` (``stochasticity_schedule = "constant"``) or ``g_t = g (1 - t)`` (``"one_minus_t"``,
the stochastic option the paper uses), ``g = stochasticity`` in [0, 1]. ``g_t = 1`` is the model SDE
(needs no score, any prior); anything less needs the score: from the noise head (any prior, eq. 21)
or from the drift (a standard Gaussian prior, eq. 89); ``g = 0`` is the probability-flow ODE, the
sampler of every result the paper reports. Every ``g_t`` has the same marginals (math.md 4.5, 4.6).

The grid has ``steps`` steps from the field's first time (0, or ``1e-3`` where the drift or the score
is singular at 0; ``t_start`` when that is later) to ``t_K = 1 - last_step_size``, uniform in ``s`` under the time change
``t(s) = 1 - (1 - s)^c`` (``time_change_c = c``; 1 is a uniform grid, the paper's NoisePred and
Denoising preferred ``c ~ 2``: math.md 4.3). The last step returns the denoised latent
``E[z1 | z_{t_K}] = z + (1 - t_K) h`` (linear bridge; math.md 4.5), so ``steps + 1`` evaluations.

The field is the latent pipeline's (``pipe.field()`` of an ``lsi`` pipeline): ``evaluate`` offers
``"drift"`` (``h``), ``"score"`` and ``"x1"`` (``E[z1|z_t]``); its interpolant is an LSI bridge
(``diffusion_squared(t) = sigma_t^2``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import torch
from torch import Tensor

from interpgen.protocols import SampleResult
from interpgen.sde import euler_maruyama_step, integrate_sde
from interpgen.tensors import batch_time, expand_like
from interpgen.validators import (one_of, positive_float, positive_int, unit_interval, unit_interval_open,
                                  unit_interval_open_right)

#: How the stochasticity varies along the path: ``g_t = g`` or ``g_t = g (1 - t)``.
STOCHASTICITY_SCHEDULES: tuple[str, ...] = ("constant", "one_minus_t")


def time_change_grid(t_start: float, t_end: float, steps: int, c: float) -> list[float]:
    """``steps + 1`` times from ``t_start`` to ``t_end``, uniform in ``s`` under ``t(s) = 1 - (1 - s)^c``
    (math.md 4.3); ``c = 1`` is the uniform grid ``t_start + (t_end - t_start) k / steps``."""
    if c == 1.0:
        return [t_start + (t_end - t_start) * k / steps for k in range(steps + 1)]
    s0, s1 = 1.0 - (1.0 - t_start) ** (1.0 / c), 1.0 - (1.0 - t_end) ** (1.0 / c)
    inner = [1.0 - (1.0 - (s0 + (s1 - s0) * k / steps)) ** c for k in range(1, steps)]
    return [t_start, *inner, t_end]


@attrs.frozen(kw_only=True)
class LSISampler:
    """Euler-Maruyama on the LSI SDE family with stochasticity ``g_t`` (math.md 4.5)."""

    stochastic: ClassVar[bool] = False  # needs no SI score: the pipeline's SDE check does not apply
    #: Euler-Maruyama steps on [t_start, 1 - last_step_size].
    steps: int = attrs.field(default=100, validator=positive_int)
    #: ``g`` of math.md 4.5: 1 = model SDE, 0 = probability-flow ODE (the paper's sampler).
    stochasticity: float = attrs.field(default=1.0, validator=unit_interval)
    #: ``constant``: ``g_t = g``; ``one_minus_t``: ``g_t = g (1 - t)`` (the paper's stochastic runs).
    stochasticity_schedule: str = attrs.field(default="constant", validator=one_of(*STOCHASTICITY_SCHEDULES))
    #: ``c`` of the grid ``t(s) = 1 - (1 - s)^c``, ``s`` uniform (1: a uniform grid).
    time_change_c: float = attrs.field(default=1.0, validator=positive_float)
    #: ``delta``: the grid ends at ``1 - delta``; the final step jumps to ``E[z1 | z]``.
    last_step_size: float = attrs.field(default=0.01, validator=unit_interval_open)
    #: First time of the grid, from a draw of the prior (left out: the field's, 0 or 1e-3; never earlier).
    t_start: float | None = attrs.field(default=None, validator=attrs.validators.optional(unit_interval_open_right))

    def __attrs_post_init__(self) -> None:
        if self.t_start is not None and self.t_start >= 1.0 - self.last_step_size:
            raise ValueError(f"t_start must be < 1 - last_step_size = {1.0 - self.last_step_size:g}, got {self.t_start}")

    def grid(self, t_start: float = 0.0) -> list[float]:
        return time_change_grid(t_start, 1.0 - self.last_step_size, self.steps, self.time_change_c)

    def g(self, t: Tensor) -> Tensor:
        """``g_t``, shape of ``t``."""
        g = torch.full_like(t, float(self.stochasticity))
        return g * (1.0 - t) if self.stochasticity_schedule == "one_minus_t" else g

    @property
    def needs_score(self) -> bool:
        return not (self.stochasticity == 1.0 and self.stochasticity_schedule == "constant")

    def sample(self, field: Any, x0: Tensor, *, generator: torch.Generator | None = None,
               return_trajectory: bool = False) -> SampleResult:
        needs_score = self.needs_score
        wants = ("drift", "score") if needs_score else ("drift",)
        if needs_score and "score" not in field.available():
            raise ValueError(
                f"lsi_sde with stochasticity={self.stochasticity} ({self.stochasticity_schedule}) needs the score "
                "of the latent marginals, which this model cannot give: a prior other than N(0, I) needs the "
                "noise head (objective.noise_head = true, math.md 4.5); or use stochasticity = 1 (the model SDE)")
        bridge = field.interpolant

        def drift(t: Tensor, z: Tensor) -> Tensor:
            out = field.evaluate(z, t, wants)
            if not needs_score:
                return out[0]
            g2 = self.g(t) ** 2
            return out[0] - expand_like((1.0 - g2) * 0.5 * bridge.diffusion_squared(t), z) * out[1]

        before = field.nfe
        times = self.grid(max(float(field.time_range(needs_score)[0]), self.t_start or 0.0))
        states = [x0] if return_trajectory else None
        step = euler_maruyama_step(drift, lambda t: self.g(t) ** 2 * bridge.diffusion_squared(t))
        z = integrate_sde(step, x0, times, generator=generator, noise=self.stochasticity > 0.0, states=states)
        z = field.evaluate(z, batch_time(times[-1], z.shape[0], like=z), ("x1",))[0]
        if states is not None:
            states.append(z)
        trajectory = torch.stack(states) if states is not None else None
        return SampleResult(x=z, nfe=field.nfe - before, trajectory=trajectory)
