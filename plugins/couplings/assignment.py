"""The minibatch transport cost and its exact optimal assignment (math.md 5, minibatch OT).

For a batch of ``B`` data rows ``x1`` and ``B`` base rows ``x0`` the cost is the squared distance
between flattened rows, ``M_ij = ||x1_i - x0_j||^2`` (rows index ``x1``, columns ``x0``). Between
two uniform empirical measures of equal size the exact OT plan ``ot.emd(unif, unif, M)`` is a
permutation matrix (Birkhoff), so exact minibatch OT is the linear assignment problem

    sigma* = argmin_sigma  sum_i M_{i, sigma(i)}

and pairing ``x1_i`` with ``x0_{sigma*(i)}`` uses every row of each batch exactly once. (TorchCFM
instead samples ``B`` index pairs from the plan with replacement, which duplicates some rows and
drops others.)

Solvers (both exact, both deterministic, both in C/C++ on the CPU):

* ``network_simplex``: POT's ``ot.emd`` (the same solver TorchCFM calls). Its basic optimal
  solution is a vertex of the Birkhoff polytope, i.e. a permutation matrix; the permutation is
  read off by a row argmax and checked (one entry per row and per column, and POT's result code
  "optimal"); if either check fails the LSA solver below is used instead.
* ``lsa``: SciPy's ``linear_sum_assignment`` (shortest augmenting paths).
* ``auto`` (the default): ``network_simplex`` when POT is installed, else ``lsa``.

Measured on a 2-core CPU on Gaussian-to-2D-target batches (``benchmarks/results/couplings.md``):
the two are equally fast at B = 256 and the network simplex is about 3.5 times faster at B = 1024
on these geometric costs (SciPy's augmenting paths meet many near-ties). A torch auction algorithm
(to stay on a GPU) needs hundreds of sequential iterations of several kernel launches each and is
not used. The cost is computed on the batch's device; only the ``B x B`` cost matrix goes to the
CPU (as float64) and the permutation comes back to the device.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def squared_distances(x1: Tensor, x0: Tensor) -> Tensor:
    """``M_ij = ||x1_i - x0_j||^2`` over the flattened event dimensions, shape ``(B1, B0)``, on
    the inputs' device and in their dtype (``|a|^2 + |b|^2 - 2 a.b``, clamped at 0)."""
    a = x1.detach().reshape(x1.shape[0], -1)
    b = x0.detach().reshape(x0.shape[0], -1)
    cost = a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1).unsqueeze(0) - 2.0 * (a @ b.T)
    return cost.clamp_min_(0.0)


SOLVERS: tuple[str, ...] = ("auto", "network_simplex", "lsa")

#: POT's pivot limit, far above what B = 4096 needs, so a run never stops early.
_EMD_MAX_ITER = 100_000_000


def _network_simplex(matrix: np.ndarray) -> np.ndarray | None:
    """The permutation from POT's exact plan, or None when POT is missing or the plan is not a
    certified permutation."""
    try:
        import ot
    except ImportError:
        return None
    n = matrix.shape[0]
    weights = np.full(n, 1.0 / n)
    plan, log = ot.emd(weights, weights, matrix, numItermax=_EMD_MAX_ITER, log=True)
    cols = plan.argmax(axis=1)
    if log.get("result_code") != 1 or np.count_nonzero(plan > 0.5 / n) != n or len(np.unique(cols)) != n:
        return None
    return cols


def _lsa(matrix: np.ndarray) -> np.ndarray:
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError:
        raise ImportError("exact OT needs POT (pip install pot) or SciPy (pip install scipy)") from None
    rows, cols = linear_sum_assignment(matrix)
    assert (rows == np.arange(matrix.shape[0])).all()
    return cols


def optimal_permutation(cost: Tensor, solver: str = "auto") -> Tensor:
    """The exact minimiser ``sigma`` of ``sum_i cost[i, sigma(i)]`` over permutations, as a long
    tensor on ``cost``'s device with ``sigma[i]`` the column assigned to row ``i``.

    Deterministic: the same cost matrix always gives the same permutation (ties included)."""
    if cost.dim() != 2 or cost.shape[0] != cost.shape[1]:
        raise ValueError(f"the assignment needs a square cost matrix, got shape {tuple(cost.shape)}")
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
    matrix = np.ascontiguousarray(cost.detach().to(device="cpu", dtype=torch.float64).numpy())
    if not np.isfinite(matrix).all():
        raise ValueError("the transport cost holds NaN or inf values (are x0 or x1 non-finite?)")
    cols = _network_simplex(matrix) if solver in ("auto", "network_simplex") else None
    if cols is None:
        cols = _lsa(matrix)
    return torch.from_numpy(np.asarray(cols, dtype=np.int64)).to(device=cost.device)


def assignment_cost(cost: Tensor, permutation: Tensor) -> Tensor:
    """``sum_i cost[i, permutation[i]]``: the total cost of an assignment."""
    return cost.gather(1, permutation.reshape(-1, 1)).sum()
