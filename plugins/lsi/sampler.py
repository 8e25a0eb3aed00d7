"""The LSI sampler: Euler-Maruyama on the latent SDE family of math.md 4.5 (Singh & Fischer, 4.6).

    dz = [h(z, t) - (1 - g^2) (sigma_t^2 / 2) grad log p_t(z)] dt + g sigma_t dW,   z_0 ~ p0,

with the stochasticity knob ``g = stochasticity`` in [0, 1]: ``g = 1`` is the model SDE (needs no
score, any prior), ``g = 0`` the probability-flow ODE (needs the score: a standard Gaussian
prior). Every ``g`` has the same marginals (math.md 4.5, 4.6). The grid has ``steps`` uniform
steps from ``t = 0`` to ``t_K = 1 - last_step_size``; the last step returns the denoised latent
``E[z1 | z_{t_K}] = z + (1 - t_K) h`` (linear bridge; math.md 4.5), so ``steps + 1`` evaluations.

The field is the latent pipeline's (``pipe.field()`` of an ``lsi`` pipeline: the bridge reads the ``interpflow`` output): ``evaluate`` offers
``"drift"`` (``h``), ``"score"`` (Gaussian prior) and ``"x1"`` (``E[z1|z_t]``); its interpolant
is an LSI bridge (``diffusion_squared(t) = sigma_t^2``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import torch
from torch import Tensor

from interpgen.protocols import SampleResult
from interpgen.sde import euler_maruyama_step, integrate_sde
from interpgen.tensors import batch_time, expand_like
from interpgen.validators import positive_int, unit_interval, unit_interval_open


@attrs.frozen(kw_only=True)
class LSISampler:
    """Euler-Maruyama on the LSI SDE family with stochasticity ``g`` (math.md 4.5)."""

    stochastic: ClassVar[bool] = False  # needs no SI score: the pipeline's SDE check does not apply
    #: Euler-Maruyama steps on [0, 1 - last_step_size].
    steps: int = attrs.field(default=100, validator=positive_int)
    #: ``g`` of math.md 4.5: 1 = model SDE, 0 = probability-flow ODE (Gaussian prior only).
    stochasticity: float = attrs.field(default=1.0, validator=unit_interval)
    #: ``delta``: the grid ends at ``1 - delta``; the final step jumps to ``E[z1 | z]``.
    last_step_size: float = attrs.field(default=0.01, validator=unit_interval_open)

    def grid(self) -> list[float]:
        end = 1.0 - self.last_step_size
        return [end * i / self.steps for i in range(self.steps + 1)]

    def sample(self, field: Any, x0: Tensor, *, generator: torch.Generator | None = None,
               return_trajectory: bool = False) -> SampleResult:
        g = float(self.stochasticity)
        wants = ("drift",) if g == 1.0 else ("drift", "score")
        if g < 1.0 and "score" not in field.available():
            raise ValueError(
                f"lsi_sde with stochasticity={g} needs the score of the latent marginals, which only a "
                "standard Gaussian prior gives (math.md 4.5); use stochasticity = 1 (the model SDE) "
                "with this prior")
        bridge = field.interpolant

        def drift(t: Tensor, z: Tensor) -> Tensor:
            out = field.evaluate(z, t, wants)
            if g == 1.0:
                return out[0]
            return out[0] - (1.0 - g * g) * 0.5 * expand_like(bridge.diffusion_squared(t), z) * out[1]

        before = field.nfe
        times = self.grid()
        states = [x0] if return_trajectory else None
        step = euler_maruyama_step(drift, lambda t: g * g * bridge.diffusion_squared(t))
        z = integrate_sde(step, x0, times, generator=generator, noise=g > 0.0, states=states)
        z = field.evaluate(z, batch_time(times[-1], z.shape[0], like=z), ("x1",))[0]
        if states is not None:
            states.append(z)
        trajectory = torch.stack(states) if states is not None else None
        return SampleResult(x=z, nfe=field.nfe - before, trajectory=trajectory)
