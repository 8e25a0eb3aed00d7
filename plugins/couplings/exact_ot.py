"""Exact minibatch optimal transport (math.md 5, "Minibatch OT"; Tong et al. 2302.00482)."""

from __future__ import annotations

import attrs
from torch import Tensor

from interpgen.validators import one_of

from .assignment import SOLVERS, optimal_permutation, squared_distances
from .checks import check_pair_arguments


@attrs.frozen(kw_only=True)
class ExactOTCoupling:
    """Exact minibatch OT: reorders x0 by the optimal assignment for the squared distance.

    The plan of ``ot.emd(unif, unif, M)`` with ``M_ij = ||x1_i - x0_j||^2`` is a permutation, so
    each x0 and each x1 of the batch is used exactly once (no duplicated or dropped rows); see
    :mod:`.assignment` for the solvers. Labels are ignored (``class_ot`` respects them)."""

    #: The assignment runs on the CPU and needs nothing from the training step: the trainer
    #: solves it for the next batch while the current one trains (interpgen.train.pair_ahead).
    pairs_ahead = True

    #: auto (POT's network simplex when installed, else SciPy), network_simplex or lsa
    solver: str = attrs.field(default="auto", validator=one_of(*SOLVERS))

    def pair(self, x0: Tensor, x1: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(x0[sigma], x1)`` with ``sigma`` the optimal assignment of x0 rows to x1 rows."""
        check_pair_arguments("exact_ot", x0, x1, labels)
        return x0[optimal_permutation(squared_distances(x1, x0), self.solver)], x1
