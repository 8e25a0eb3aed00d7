"""Built-in couplings nu of (x0, x1) (math.md 5) and paired data sources.

Couplings (kind ``"coupling"``):

* ``independent``: pairs as drawn, nu = rho0 x rho1;
* ``exact_ot``: exact minibatch OT, an optimal assignment (each row used once);
* ``sinkhorn`` (``reg`` relative to the mean cost, ``max_iter``, ``tol``, ``seed``): entropic OT
  in torch on the batch's device, x0 drawn per x1 from the plan;
* ``schrodinger_bridge`` (``sigma``, ...): entropic OT with reg = 2 sigma^2, for the linear
  interpolant with gamma sigma sqrt(t(1-t)) (checked when the pipeline is built);
* ``class_ot`` (``seed``): exact OT inside each label group;
* ``paired``: the data's own pairs (data-to-data, reflow).

Data sources (kind ``"dataset"``): ``paired`` (an .npz of
x0/x1 pairs, as written by ``interpgen reflow``) and ``paired_transform`` (another dataset's rows
and a transform of each, e.g. mirror images).
"""

from __future__ import annotations

from interpgen import Registry, hookimpl

from .class_ot import ClassOTCoupling, ClassOTParams, build_class_ot
from .exact_ot import ExactOTCoupling
from .independent import IndependentCoupling
from .paired import PairedCoupling
from .paired_data import (PairedArrays, PairedSource, PairedTransform, TransformedPairs, build_paired,
                          build_paired_transform)
from .schrodinger_bridge import SchrodingerBridgeCoupling, SchrodingerBridgeParams, build_schrodinger_bridge
from .sinkhorn import EntropicCoupling, SinkhornParams, build_sinkhorn

__all__ = [
    "ClassOTCoupling", "ClassOTParams", "EntropicCoupling", "ExactOTCoupling", "IndependentCoupling",
    "PairedArrays", "PairedCoupling", "PairedSource", "PairedTransform", "SchrodingerBridgeCoupling",
    "SchrodingerBridgeParams", "SinkhornParams", "TransformedPairs",
]


@hookimpl
def interpgen_register(registry: Registry) -> None:
    """Add the couplings (kind ``"coupling"``) and the paired data sources (kind ``"dataset"``)."""
    registry.add("coupling", "independent", IndependentCoupling)
    registry.add("coupling", "exact_ot", ExactOTCoupling)
    registry.add("coupling", "sinkhorn", SinkhornParams, build=build_sinkhorn)
    registry.add("coupling", "schrodinger_bridge", SchrodingerBridgeParams, build=build_schrodinger_bridge)
    registry.add("coupling", "class_ot", ClassOTParams, build=build_class_ot)
    registry.add("coupling", "paired", PairedCoupling)
    registry.add("dataset", "paired", PairedArrays, build=build_paired)
    registry.add("dataset", "paired_transform", PairedTransform, build=build_paired_transform)
