"""Sampling a trained model under another schedule, without retraining (math.md 3.1).

``converted`` wraps any registered sampler: it presents the model under the target ``schedule``
(a registered interpolant, e.g. ``lazy_vp``, ``point_mass``, ``gvp``) as a
:class:`ConvertedField` and lets the inner ``sampler`` integrate in the target's time ``s``.

* ODE samplers integrate ``dY = b_bar(s, Y) ds``; the ODE maps to the ODE, so the limit of fine
  steps is the source ODE's result; only the discretisation changes.
* SDE samplers integrate ``dY = [b_bar + eps_bar s_bar] ds + sqrt(2 eps_bar) dW`` with the inner
  sampler's diffusion ``eps_bar(s)`` evaluated on the *target* schedule (so ``reverse`` is the
  target's ``eps_bar*``, the image of the source's ``eps*``, math.md 3.1). By the path map this
  is the source SDE with ``eps(tau) = eps_bar(s) / (c^2 tau')``.

The start state is ``c(s_start) x0`` for ``x0`` drawn from the source's base; the inner
sampler's result is ``Y`` at the end of the target range, where ``c = 1`` when that end is 1.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch
from torch import Tensor

from interpgen.config import Part
from interpgen.protocols import Field, Interpolant, SampleResult, Sampler
from interpgen.validators import optional_positive_int

from interpgen_plugins.samplers.converted_field import ConvertedField
from interpgen_plugins.samplers.fixed_step import EulerSampler
from interpgen_plugins.samplers.schedule_map import check_monotone_ratio


def _is_interpolant(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, Interpolant):
        raise TypeError(f"{attribute.name} must be an interpolant (the target schedule), got {value!r}")
    check_monotone_ratio(value, "target")


def _is_sampler(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, Sampler):
        raise TypeError(f"{attribute.name} must be a sampler, got {value!r}")
    if isinstance(value, ConvertedSampler):
        raise ValueError(f"{attribute.name} must not itself be a converted sampler")


@attrs.frozen(kw_only=True)
class ConvertedSampler:
    """Sample under the target ``schedule`` with the inner ``sampler`` (math.md 3.1).

    ``schedule``: the target interpolant (required; e.g. ``lazy_vp`` with ``sigma_d``);
    ``sampler``: the inner sampler, ODE or SDE (default ``euler``); ``steps``: when set, replaces
    the inner sampler's ``steps`` (so ``--steps`` works on the command line).
    """

    schedule: Part("interpolant") = attrs.field(validator=_is_interpolant)
    sampler: Part("sampler") = attrs.field(factory=EulerSampler, validator=_is_sampler)
    steps: int | None = attrs.field(default=None, validator=optional_positive_int)

    @property
    def stochastic(self) -> bool:
        return bool(getattr(self.sampler, "stochastic", False))

    def inner(self) -> Sampler:
        """The inner sampler, with ``steps`` applied."""
        if self.steps is None:
            return self.sampler
        if not (attrs.has(type(self.sampler)) and "steps" in attrs.fields_dict(type(self.sampler))):
            raise ValueError(f"the inner sampler {type(self.sampler).__name__} takes no step count")
        return attrs.evolve(self.sampler, steps=self.steps)

    def sample(self, field: Field, x0: Tensor, generator: torch.Generator | None = None,
               return_trajectory: bool = False) -> SampleResult:
        """Run the inner sampler on ``ConvertedField(field, schedule)`` from ``c(s_start) x0``."""
        converted = ConvertedField(field, self.schedule)
        s_start, _ = converted.time_range(self.stochastic)
        y0 = converted.initial_state(x0, s_start)
        return self.inner().sample(converted, y0, generator=generator, return_trajectory=return_trajectory)


__all__ = ["ConvertedSampler"]
