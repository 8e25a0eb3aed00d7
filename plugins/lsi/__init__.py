"""Latent Stochastic Interpolants (Singh & Lagun, arXiv 2506.02276; docs/math.md section 4).

Registers, through the one registration hook a third-party plugin uses:

* kind ``"objective"``: ``lsi`` (:mod:`.objective`): encoder, decoder and latent model trained under
  one objective (math.md 4.4), with any of four parameterisations (:mod:`.parameterisations`) and
  a noise head for the score of any prior; its fields are the ``[objective]`` table of an LSI recipe;
* kind ``"interpolant"``: ``lsi_bridge`` (``schedule`` = ``linear`` | ``trig``, ``sigma``): the bridge
  ``z_t = eta_t eps + kappa_t z1 + nu_t z0`` with ``eta``, ``sigma_t`` derived (:mod:`.bridge`,
  math.md 4.2); it also reads the network's outputs as a drift, ``x1``, score and velocity;
* kind ``"sampler"``: ``lsi_sde`` (``steps``, ``stochasticity``, ``stochasticity_schedule``,
  ``time_change_c``, ``last_step_size``): Euler-Maruyama on the latent SDE family, then the denoised
  final step (:mod:`.sampler`, math.md 4.5).

Nothing here is known to the kernel: an LSI pipeline is an ordinary ``Pipeline`` whose autoencoder
is not the identity and whose objective is ``lsi``.
"""

from __future__ import annotations

from interpgen import hookimpl
from interpgen.registry import Registry

from .bridge import BRIDGE_SCHEDULES, LSIBridge
from .objective import LSIObjective, build_lsi, save_autoencoder
from .parameterisations import PARAMETERISATIONS
from .sampler import LSISampler

__all__ = ["BRIDGE_SCHEDULES", "PARAMETERISATIONS", "LSIBridge", "LSIObjective", "LSISampler", "save_autoencoder"]


@hookimpl
def interpgen_register(registry: Registry) -> None:
    registry.add("objective", "lsi", LSIObjective, build=build_lsi)
    registry.add("interpolant", "lsi_bridge", LSIBridge)
    registry.add("sampler", "lsi_sde", LSISampler)
