"""The entropic-OT (Sinkhorn) coupling, computed in torch on the batch's device (math.md 5)."""

from __future__ import annotations

from typing import Any

import attrs
import torch
from torch import Tensor

from interpgen.validators import positive_float, positive_int

from .assignment import squared_distances
from .checks import check_pair_arguments
from .entropic import log_sinkhorn, sample_rows


@attrs.frozen(kw_only=True)
class SinkhornParams:
    """Entropic minibatch OT: x0 for each x1 drawn from the Sinkhorn plan of the squared distance.

    ``reg`` is *relative to the batch's mean cost*: the solver uses ``reg * mean_ij M_ij``, so one
    value means the same amount of blur whatever the data's scale. Small ``reg`` approaches the
    exact plan, large ``reg`` the independent coupling."""

    reg: float = attrs.field(default=0.05, validator=positive_float)
    max_iter: int = attrs.field(default=1000, validator=positive_int)
    tol: float = attrs.field(default=1e-4, validator=positive_float)
    #: seed of the coupling's own generator (used to draw from the plan)
    seed: int = 0


class EntropicCoupling:
    """Pairs each x1 row ``i`` with x0 row ``j ~ pi(j | i)`` of the entropic plan (math.md 5).

    x1 rows appear exactly once and in order; x0 rows may repeat or be left out, because this is
    a draw from the plan (the exact plan of ``exact_ot`` is a permutation, the entropic one is not).
    Draws come from the coupling's own ``torch.Generator`` seeded with ``seed`` (no numpy RNG);
    its state is not part of a checkpoint, so a resumed run pairs differently from an unbroken one.
    """

    name = "sinkhorn"
    pairs_ahead = True  # see ExactOTCoupling.pairs_ahead

    def __init__(self, *, reg: float, relative: bool, max_iter: int, tol: float, seed: int):
        self.reg, self.relative, self.max_iter, self.tol = float(reg), relative, max_iter, tol
        self.generator = torch.Generator().manual_seed(seed)

    def effective_reg(self, cost: Tensor) -> float:
        """The regularisation handed to the solver: ``reg * mean(M)`` when relative, else ``reg``."""
        if not self.relative:
            return self.reg
        return self.reg * max(float(cost.mean()), torch.finfo(cost.dtype).tiny)

    def plan(self, x0: Tensor, x1: Tensor) -> Tensor:
        """The log entropic plan, rows ``x1``, columns ``x0`` (computed in float64 for float32
        inputs too, so small ``reg`` stays accurate)."""
        cost = squared_distances(x1.double(), x0.double())
        return log_sinkhorn(cost, self.effective_reg(cost), max_iter=self.max_iter, tol=self.tol)

    def pair(self, x0: Tensor, x1: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_pair_arguments(self.name, x0, x1, labels)
        with torch.no_grad():
            index = sample_rows(self.plan(x0, x1), self.generator)
        return x0[index], x1

    def __repr__(self) -> str:
        scale = "x mean cost" if self.relative else "(absolute)"
        return f"{type(self).__name__}(reg={self.reg} {scale}, max_iter={self.max_iter}, tol={self.tol})"


def build_sinkhorn(params: SinkhornParams, **context: Any) -> EntropicCoupling:
    return EntropicCoupling(reg=params.reg, relative=True, max_iter=params.max_iter, tol=params.tol,
                            seed=params.seed)
