"""Latent Stochastic Interpolants (Singh & Lagun, arXiv 2506.02276; math.md 4).

Registers

* kind ``"interpolant"``: ``lsi_bridge`` (``schedule`` = ``linear`` | ``trig``, ``sigma``): the bridge
  ``z_t = eta_t eps + kappa_t z1 + nu_t z0`` with ``eta``, ``sigma_t`` derived (:mod:`.bridge`,
  math.md 4.2);
* kind ``"sampler"``: ``lsi_sde`` (``steps``, ``stochasticity``, ``last_step_size``): Euler-Maruyama
  on the latent SDE family, then the denoised final step (:mod:`.sampler`, math.md 4.5).

The objective, the latent pipeline and the cost accounting live in the kernel module
:mod:`interpgen.latent`; an LSI recipe names ``lsi_bridge`` as its interpolant and an autoencoder.
"""

from __future__ import annotations

from typing import Any

from interpgen.hookspecs import hookimpl

from .bridge import BRIDGE_SCHEDULES, LSIBridge
from .sampler import LSISampler

__all__ = ["BRIDGE_SCHEDULES", "LSIBridge", "LSISampler"]


@hookimpl
def interpgen_register(registry: Any) -> None:
    registry.add("interpolant", "lsi_bridge", LSIBridge)
    registry.add("sampler", "lsi_sde", LSISampler)
