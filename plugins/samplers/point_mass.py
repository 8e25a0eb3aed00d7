"""The few-step point-mass SDE sampler (math.md 3.4).

The model is converted (math.md 3.1) to the point-mass schedule that is lazy for the
reverse-diffusion SDE (math.md 3.3): ``beta_bar(s) = s``, ``alpha_bar(s) = sigma_d sqrt(s (1 - s))``,
whose reverse diffusion (``reverse``, math.md 1.3) is ``eps_bar* = sigma_d^2 / 2`` and whose
eps*-SDE drift is the Foellmer drift

    b_bar + eps_bar* s_bar = beta_bar' (eta_bar_1 - y) / (1 - beta_bar)            (math.md 3.3),

regular at s = 0 (where the ODE velocity is not). Starting from the point ``Y_0 = 0``, each of
the ``K = steps`` Euler-Maruyama steps on the grid ``0 = s_0 < ... < s_K = 1`` is

    Y <- Y + h (eta_1_hat - Y) / (1 - s) + sigma_d sqrt(h) xi,     eta_1_hat = E[x1 | Y_s = Y],

one model evaluation each (NFE = K). At ``s = 0`` the predictor is the source's ``E[x1 | x_0]``
at ``x_0 = 0`` (``= E[x1]`` for an exact model). The last step (``h = 1 - s``) lands on
``eta_1_hat``; ``final_noise`` chooses whether it also adds ``sigma_d sqrt(h) xi``:

* ``final_noise = true``: exact for any K on data ``N(0, sigma_d^2 I)`` (the drift vanishes and
  the noise adds up to variance ``sigma_d^2``);
* ``final_noise = false``: returns the posterior mean (like SiT's ``"Mean"`` last step);
  under-dispersed on Gaussian data but often better on multimodal data.

``sigma_d`` (the data scale) is a hyperparameter: 1, or the data's standard deviation (UNVERIFIED
choice, math.md 3.4). The grid is ``uniform`` or ``edm`` (``tuned`` needs an ODE velocity, which
is singular at the point mass, so it is not offered here).
"""

from __future__ import annotations

import math
from typing import ClassVar

import attrs
import torch
from torch import Tensor

from interpgen.affine import DeterministicInterpolant
from interpgen.protocols import Field, SampleResult
from interpgen.sde import standard_normal_like
from interpgen.tensors import batch_time
from interpgen.validators import one_of, positive_float, positive_int

from interpgen_plugins.samplers.converted_field import ConvertedField
from interpgen_plugins.samplers.time_grid import time_grid


@attrs.frozen(kw_only=True)
class PointMassSchedule(DeterministicInterpolant):
    """``alpha = sigma_d sqrt(s (1 - s))``, ``beta = s`` (math.md 3.3; the same schedule as the SI
    plugin's ``point_mass`` interpolant, kept here so the sampler needs no other plugin)."""

    sigma_d: float = attrs.field(default=1.0, validator=positive_float)

    def alpha(self, t: Tensor) -> Tensor:
        return self.sigma_d * (t * (1.0 - t)).clamp_min(0.0).sqrt()

    def beta(self, t: Tensor) -> Tensor:
        return t.clone()

    def alpha_dot(self, t: Tensor) -> Tensor:
        return self.sigma_d * (1.0 - 2.0 * t) / (2.0 * (t * (1.0 - t)).clamp_min(0.0).sqrt())

    def beta_dot(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)


@attrs.frozen(kw_only=True)
class PointMassSampler:
    """Few-step point-mass SDE sampler (math.md 3.4): ``steps`` evaluations, data scale
    ``sigma_d``, ``final_noise`` for the last step, ``grid`` ``uniform`` or ``edm`` (with ``rho``)."""

    stochastic: ClassVar[bool] = True
    steps: int = attrs.field(default=8, validator=positive_int)
    sigma_d: float = attrs.field(default=1.0, validator=positive_float)
    final_noise: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    grid: str = attrs.field(default="uniform", validator=one_of("uniform", "edm"))
    rho: float = attrs.field(default=7.0, validator=positive_float)

    def schedule(self) -> PointMassSchedule:
        return PointMassSchedule(sigma_d=self.sigma_d)

    def sample(self, field: Field, x0: Tensor, generator: torch.Generator | None = None,
               return_trajectory: bool = False) -> SampleResult:
        """``Y_0 = 0``, then the K steps of the module docstring; ``x0`` only gives the shape,
        dtype and device (the base is the point 0). ``nfe = steps``."""
        schedule = self.schedule()
        converted = ConvertedField(field, schedule)
        if "x1" not in field.available():
            raise ValueError("the point_mass sampler needs the field's 'x1' prediction")
        times = time_grid(self.grid, 0.0, 1.0, self.steps, interpolant=schedule, rho=self.rho)
        before = field.nfe
        y = torch.zeros_like(x0)
        states = [y] if return_trajectory else None
        last = len(times) - 2
        for k, (s, s_next) in enumerate(zip(times[:-1], times[1:])):
            h = s_next - s
            eta1 = converted.evaluate(y, batch_time(s, y.shape[0], like=y), ("x1",))[0]
            y = y + (h / (1.0 - s)) * (eta1 - y)
            if k < last or self.final_noise:
                y = y + self.sigma_d * math.sqrt(h) * standard_normal_like(y, generator)
            if states is not None:
                states.append(y)
        trajectory = torch.stack(states) if states is not None else None
        return SampleResult(x=y, nfe=field.nfe - before, trajectory=trajectory)


__all__ = ["PointMassSampler", "PointMassSchedule"]
