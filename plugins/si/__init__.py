"""The stochastic-interpolant plugin: gamma forms and interpolants (math.md 1).

Registers, through the ``interpgen_register`` hook,

* kind ``"gamma"``: ``zero``, ``brownian``, ``a_brownian`` (``a``), ``bsquared``, ``sinesquared``
  (:mod:`.gammas`);
* kind ``"interpolant"``: ``linear``, ``trig``, ``gvp``, ``vp`` (``beta_min``, ``beta_max``),
  ``encoding_decoding``, ``one_sided``, ``fm_ot`` (``sigma_min``), ``mirror``
  (:mod:`.schedules`); those with a ``gamma`` field take any registered gamma; and the lazy
  schedules ``lazy_vp``, ``point_mass`` (``sigma_d``, :mod:`.lazy`, math.md 3.2, 3.3).

The params instance is the working object (no build function). The shared machinery
(targets, conversions, endpoint epsilons) lives in :mod:`.affine` and :mod:`.conversions`.
"""

from __future__ import annotations

from typing import Any

from interpgen.hookspecs import hookimpl

from interpgen.affine import AffineInterpolant, DeterministicInterpolant

from .noisy import NoisyInterpolant
from .gammas import (GAMMAS, ABrownianGamma, BrownianGamma, BSquaredGamma, GammaForm,
                     SineSquaredGamma, ZeroGamma)
from .lazy import LAZY_INTERPOLANTS, LazyVPInterpolant, PointMassInterpolant
from .schedules import (INTERPOLANTS, EncodingDecodingInterpolant, FMOTInterpolant,
                        GVPInterpolant, LinearInterpolant, MirrorInterpolant,
                        OneSidedInterpolant, TrigInterpolant, VPInterpolant)

#: Every interpolant this plugin registers: the catalogue of :mod:`.schedules` and the lazy
#: schedules of :mod:`.lazy` (``lazy_vp``, ``point_mass``; math.md 3.2, 3.3).
INTERPOLANTS = {**INTERPOLANTS, **LAZY_INTERPOLANTS}

__all__ = [
    "GAMMAS", "INTERPOLANTS", "AffineInterpolant", "NoisyInterpolant", "DeterministicInterpolant",
    "GammaForm", "ZeroGamma", "BrownianGamma", "ABrownianGamma", "BSquaredGamma", "SineSquaredGamma",
    "LinearInterpolant", "TrigInterpolant", "GVPInterpolant", "VPInterpolant",
    "EncodingDecodingInterpolant", "OneSidedInterpolant", "FMOTInterpolant", "MirrorInterpolant",
    "LazyVPInterpolant", "PointMassInterpolant", "LAZY_INTERPOLANTS",
    "interpgen_register",
]


@hookimpl
def interpgen_register(registry: Any) -> None:
    """Add the gamma forms (kind ``"gamma"``) and the interpolants (kind ``"interpolant"``)."""
    for name, cls in GAMMAS.items():
        registry.add("gamma", name, cls)
    for name, cls in INTERPOLANTS.items():
        registry.add("interpolant", name, cls)
